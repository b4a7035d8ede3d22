import ArgumentParser
import DistillCore
import DistillRuntime
import DistillWire
import Foundation

/// `distill actor`: one actor process.
struct ActorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "actor",
        abstract: "Run environments with the student's policy and push trajectories to a learner.",
        discussion: """
            Says hello to the learner at --learner (its control endpoint; the learner answers with \
            its other ports, the newest parameters and how to act), queries the teacher server at \
            --teacher-server for the states it visits (caching static teachers' answers), and pushes whole \
            episodes with the behaviour probabilities and the teacher's outputs. When the teacher is \
            unreachable it retries with backoff and sends nothing incomplete; when the learner is \
            away it waits with one finished unroll; both reconnect by themselves (with \
            --give-up-after S it exits with status 75 once the learner has been silent for S \
            seconds). The environment flags (or --config) must match the learner's. Environment \
            variables: DISTILL_LEARNER, DISTILL_TEACHER_SERVER, DISTILL_ID, ...

            Examples:
              distill actor --env gridworld --seed 1 --learner tcp://learner-host:5559 --teacher-server tcp://teacher-host:5556
              distill actor --config run/config.json --learner tcp://10.0.0.2:5559 --teacher-server tcp://10.0.0.3:5556 --id actor-7
            """)

    @OptionGroup(title: "Problem (or --config)") var environment: EnvironmentOptions
    @OptionGroup var role: RoleOptions

    /// The single source of the defaults below (endpoints aside).
    static let defaults = ActorConfiguration(learner: Endpoint(host: "localhost", port: 1), teacher: "", seed: 0)

    @Option(help: "The learner's control endpoint, tcp://HOST:PORT.")
    var learner: String

    @Option(help: "The teacher server's endpoint, tcp://HOST:PORT (formerly --teacher, still read with a warning).")
    var teacherServer: String

    @Option(help: "This actor's id (unique in the cluster; default actor-HOST-PID).")
    var id: String?

    @Option(help: "Seed of this actor's sampling (default: random).")
    var actorSeed: UInt64?

    @Option(help: "Stop after this many environment steps (default: run until stopped).")
    var maxEnvSteps: Int64?

    @Option(help: ArgumentHelp("With --curve-key: the learner's CURVE public key.", valueName: "file"))
    var learnerKey: String?

    @Option(help: ArgumentHelp("With --curve-key: the teacher servers' CURVE public key.", valueName: "file"))
    var teacherKey: String?

    @Option(help: "Unrolls pushed but not yet acknowledged by the learner, at most (bounds the policy lag).")
    var maxInFlight = ActorCommand.defaults.maxUnrollsInFlight

    func validate() throws {
        try OperatorInput.endpoint(learner, flag: "--learner")
        try OperatorInput.endpoint(teacherServer, flag: "--teacher-server")
        try OperatorInput.atLeast(maxInFlight, 1, "--max-in-flight")
        try OperatorInput.positive(maxEnvSteps, "--max-env-steps")
        if let id, id.isEmpty || id.utf8.count > 128 { throw ValidationError("--id must be 1 to 128 bytes") }
    }

    func run() throws {
        let (logger, stop) = role.start(role: "actor")
        let configuration = try role.resolve(environment: environment, teacher: nil, method: nil)
        let env = try buildEnvironment(configuration)
        var settings = ActorConfiguration(
            learner: try Endpoint(parsing: learner), teacher: teacherServer,
            seed: actorSeed ?? UInt64.random(in: 1...UInt64.max))
        settings.maxEnvSteps = maxEnvSteps.map { UInt64($0) }
        settings.maxUnrollsInFlight = maxInFlight
        settings.maxMessageBytes = role.maxMessageBytes
        settings.giveUpAfterSeconds = role.giveUpAfter
        settings.curve = try role.curve()
        if settings.curve != nil {
            guard let learnerKey, let teacherKey else {
                throw ValidationError(
                    "with --curve-key an actor needs --learner-key and --teacher-key (the servers' .pub files)")
            }
            settings.learnerKey = try KeyFiles.publicKey(learnerKey, flag: "--learner-key")
            settings.teacherKey = try KeyFiles.publicKey(teacherKey, flag: "--teacher-key")
        }
        let name = id ?? "actor-\(ProcessInfo.processInfo.hostName)-\(getpid())"
        var actor = Actor(
            environment: env,
            environmentIdentity: RunConfiguration.environmentIdentity(configuration.environment, env),
            configuration: settings, sender: .starting(role: .actor, id: name), logger: logger, stop: stop)
        try runRole(logger) {
            try actor.run()
            return actor.gaveUp
        }
    }
}
