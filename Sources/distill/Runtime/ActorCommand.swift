import ArgumentParser
import DistillCore
import DistillRuntime
import DistillWire
import Foundation
import Logging

/// `distill actor`: one actor process.
struct ActorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "actor",
        abstract: "Run environments with the student's policy and push trajectories to a learner.",
        discussion: """
            Says hello to the learner at --learner (its control endpoint; the learner answers with \
            its other ports, the newest parameters and how to act), queries the teacher server at \
            --teacher-server for the states it visits (caching static teachers' answers), and pushes whole \
            episodes with the behaviour probabilities and the teacher's outputs. On cartpole, acrobot \
            and mountaincar the student is a network (--student, the learner's architecture): \
            --environments N environments are stepped together with one batched forward of the \
            student per step, the teacher server (`distill teacher --teacher-file`) is asked for the \
            observations of the finished episodes once per unroll (once per step when the control \
            reads the teacher), and new parameters apply between unrolls; heartbeats report the \
            time spent stepping environments and in inference. When the teacher is \
            unreachable it retries with backoff and sends nothing incomplete; when the learner is \
            away it waits with one finished unroll; both reconnect by themselves (with \
            --give-up-after S it exits with status 75 once the learner has been silent for S \
            seconds). The environment flags (or --config) must match the learner's. Environment \
            variables: DISTILL_LEARNER, DISTILL_TEACHER_SERVER, DISTILL_ID, ...

            Examples:
              distill actor --env gridworld --seed 1 --learner tcp://learner-host:5559 --teacher-server tcp://teacher-host:5556
              distill actor --env cartpole --student mlp:64,64 --environments 16 --learner tcp://learner-host:5559 --teacher-server tcp://teacher-host:5556
              distill actor --config run/config.json --learner tcp://10.0.0.2:5559 --teacher-server tcp://10.0.0.3:5556 --id actor-7
              distill actor --config run/config.json --task 1 --learner tcp://10.0.0.2:5559 --teacher-server tcp://10.0.0.3:5566
            """)

    @OptionGroup(title: "Problem (or --config)") var environment: EnvironmentOptions
    @OptionGroup(title: "Problem (or --config)") var tasks: TasksOptions
    @OptionGroup var role: RoleOptions

    @Option(
        help:
            "With --tasks (or a multi-task --config): the task this actor plays, 0 to K−1; --teacher-server is that task's."
    )
    var task: Int?

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

    @Option(
        help: ArgumentHelp(
            "cartpole, acrobot, mountaincar: the network student, as the learner's --student (e.g. mlp:64,64).",
            valueName: "architecture"))
    var student: String?

    /// Environments of a network actor when --environments is not given.
    static let defaultEnvironments = 16

    @Option(
        help: ArgumentHelp(
            "cartpole, acrobot, mountaincar: environments stepped together, one batched student forward per step "
                + "(default \(ActorCommand.defaultEnvironments)).", valueName: "n"))
    var environments: Int?

    func validate() throws {
        try OperatorInput.endpoint(learner, flag: "--learner")
        try OperatorInput.endpoint(teacherServer, flag: "--teacher-server")
        try OperatorInput.atLeast(maxInFlight, 1, "--max-in-flight")
        try OperatorInput.positive(maxEnvSteps, "--max-env-steps")
        if let id, id.isEmpty || id.utf8.count > 128 { throw ValidationError("--id must be 1 to 128 bytes") }
        if let environments, !(1...65_536).contains(environments) {
            throw ValidationError("--environments must be in 1...65536, got \(environments)")
        }
        if let student {
            try validating { try StudentSpec(architecture: student).validate() }
            if student == "tabular" {
                throw ValidationError(
                    "--student tabular: tabular actors take no --student (their table is the learner's); "
                        + "give a network such as mlp:64,64 on cartpole, acrobot or mountaincar")
            }
        }
    }

    func run() throws {
        let (logger, stop) = role.start(role: "actor")
        var configuration = try role.resolve(environment: environment, teacher: nil, method: nil)
        try tasks.apply(to: &configuration, observation: nil)
        if let k = try TasksOptions.task(task, configuration) {
            try runTask(k, configuration, logger: logger, stop: stop)
            return
        }
        if configuration.environment.kind == .remote {
            try runRemote(configuration, logger: logger, stop: stop)
            return
        }
        var observed = ObservedEnvironmentSpec()
        observed.kind = try validating {
            try ObservedEnvironmentSpec.Kind.named(configuration.environment.kind.rawValue)
        }
        if !observed.kind.isTabular {
            // A --config of a network run names the student; --student may repeat it.
            let configured = configuration.student.isTabular ? nil : configuration.student.architecture
            if let student, let configured, student != configured {
                throw ValidationError(
                    "--student \(student) differs from the --config file's student '\(configured)': leave --student out"
                )
            }
            guard let student = student ?? configured else {
                throw ValidationError(
                    "--env \(observed.kind.rawValue) needs --student: the learner's network architecture "
                        + "(e.g. --student mlp:64,64)")
            }
            let prototype = try validating { try observed.build() }
            try runNetwork(prototype: prototype, student: student, logger: logger, stop: stop)
            return
        }
        if student != nil || environments != nil {
            throw ValidationError(
                "--student and --environments apply to cartpole, acrobot and mountaincar; a tabular actor on "
                    + "\(configuration.environment.kind.rawValue) plays the learner's table")
        }
        let env = try buildEnvironment(configuration)
        let settings = try actorConfiguration()
        var actor = Actor(
            environment: env,
            environmentIdentity: RunConfiguration.environmentIdentity(configuration.environment, env),
            configuration: settings, sender: .starting(role: .actor, id: name), logger: logger, stop: stop)
        try runRole(logger) {
            try actor.run()
            return actor.gaveUp
        }
    }

    /// An actor of a multi-task run: the union of the tasks' gridworlds, episodes of task `k` only.
    private func runTask(_ k: Int, _ configuration: RunConfiguration, logger: Logger, stop: StopToken) throws {
        if student != nil || environments != nil {
            throw ValidationError(
                "--student and --environments: a multi-task actor plays the table of the learner's network policy")
        }
        let problem = try TasksOptions.problem(configuration)
        let offsets = problem.tasks.stateOffsets
        let settings = try actorConfiguration()
        logger.info("task \(k): \(problem.taskEnvironmentIdentity(k)), teacher server \(teacherServer)")
        let acting = TabularActing(
            environment: problem.tasks.environment(startingIn: k), seed: settings.seed,
            task: offsets[k]..<offsets[k + 1])
        var actor = Actor(
            acting: acting, environmentIdentity: problem.environmentIdentity, configuration: settings,
            sender: .starting(role: .actor, id: name), logger: logger, stop: stop)
        try runRole(logger) {
            try actor.run()
            return actor.gaveUp
        }
    }

    private var name: String { id ?? "actor-\(ProcessInfo.processInfo.hostName)-\(getpid())" }

    /// The settings of the flags.
    private func actorConfiguration() throws -> ActorConfiguration {
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
        return settings
    }

    /// A network actor on `environments` copies of `prototype`.
    /// A network actor on the environments of a remote environment server (`--env
    /// remote:tcp://HOST:PORT`). A failed request to the server (it died, or answered an error)
    /// stops the actor, which then exits 1 with the reason.
    private func runRemote(_ configuration: RunConfiguration, logger: Logger, stop: StopToken) throws {
        let configured = configuration.student.isTabular ? nil : configuration.student.architecture
        guard let student = student ?? configured else {
            throw ValidationError(
                "--env remote needs --student: the learner's network architecture (e.g. --student mlp:64,64)")
        }
        let prototype = try remoteEnvironment(configuration.environment)
        let client = prototype.client
        let watcher = Thread {
            while !stop.isRequested {
                if client.failure != nil {
                    stop.request()
                    return
                }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        watcher.start()
        try runNetwork(prototype: prototype, student: student, logger: logger, stop: stop)
        if let failure = client.failure {
            logger.critical("the remote environment failed: \(failure.description)")
            throw ExitCode(1)
        }
    }

    private func runNetwork<Env: ObservedEnvironment>(
        prototype: Env, student: String, logger: Logger, stop: StopToken
    ) throws {
        let settings = try actorConfiguration()
        let count = environments ?? Self.defaultEnvironments
        let acting = try validating {
            try NetworkActing(
                environments: [Env](repeating: prototype, count: count), architecture: student,
                seed: settings.seed, maxMessageBytes: settings.maxMessageBytes)
        }
        logger.info(
            "network actor",
            metadata: [
                "env": "\(acting.spec)", "student": "\(acting.architecture)", "environments": "\(count)",
                "max_query_rows": "\(acting.maxQueryRows)",
            ])
        var actor = Actor(
            acting: acting, environmentIdentity: acting.description.name, configuration: settings,
            sender: .starting(role: .actor, id: name), logger: logger, stop: stop)
        try runRole(logger) {
            try actor.run()
            return actor.gaveUp
        }
    }
}
