import ArgumentParser
import DistillCore
import DistillRuntime
import DistillWire
import Foundation

/// `distill learner`: the learner process.
struct LearnerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "learner",
        abstract: "Apply the update rule to actors' trajectories and broadcast parameters.",
        discussion: """
            Binds three sockets: unrolls (PULL), parameters (PUB) and control (ROUTER, the one \
            endpoint actors and `distill control` need), printing "endpoint NAME ENDPOINT" for \
            each. One update per --episodes-per-iteration episodes (as `distill train`, whatever the \
            unroll size), with V-trace weights for policy lag; parameters are published every --publish-every \
            updates or --publish-interval-ms, whichever comes first. With --checkpoint-dir it \
            resumes from the newest checkpoint (versions continue) and writes atomic checkpoints \
            periodically and at stop; with --out it writes metrics.csv and summary.json. SIGINT or \
            SIGTERM stop it cleanly (exit 0); with --give-up-after S it also stops cleanly, but with \
            exit status 75, once no actor has been alive for S seconds. Environment variables: \
            DISTILL_BIND_CONTROL, ...

            Examples:
              distill learner --env gridworld --seed 1 --method n-distill+R --checkpoint-dir ckpt --out run
              distill learner --config run/config.json --bind-control 'tcp://*:5559' --steps 2000000
            """)

    @OptionGroup var environment: EnvironmentOptions
    @OptionGroup var teacher: TeacherOptions
    @OptionGroup var method: MethodOptions
    @OptionGroup var role: RoleOptions

    @Option(help: "Endpoint of the unroll socket (PULL).")
    var bindUnrolls = "tcp://*:5557"

    @Option(help: "Endpoint of the parameter socket (PUB).")
    var bindParams = "tcp://*:5558"

    @Option(help: "Endpoint of the control socket (ROUTER): what actors and `distill control` connect to.")
    var bindControl = "tcp://*:5559"

    @Option(help: ArgumentHelp("Checkpoint directory: resumed from when it holds one.", valueName: "dir"))
    var checkpointDir: String?

    @Option(help: ArgumentHelp("Directory for metrics.csv and summary.json.", valueName: "dir"))
    var out: String?

    @Option(help: "Stop after learning from this many environment steps (default: run until stopped).")
    var steps: Int64?

    @Option(help: "Steps per unroll message (whole episodes); network batching only, learning is per episode batch.")
    var unrollSteps = 1000

    @Option(help: "Publish parameters after this many updates...")
    var publishEvery = 1000

    @Option(help: "...or this many milliseconds after the last publication.")
    var publishIntervalMs = 20

    @Option(help: "Seconds between periodic checkpoints.")
    var checkpointInterval = 30.0

    @Option(help: "Seconds between metrics rows...")
    var metricsInterval = 1.0

    @Option(help: "...and a metrics row every this many env steps, whichever comes first.")
    var metricsEverySteps: Int64?

    @Option(help: "Milliseconds of silence after which an actor is marked dead.")
    var actorTimeoutMs = 3000

    @Option(help: "Actor records kept at most (dead ones are forgotten after 20 × --actor-timeout-ms).")
    var maxActors = 1024

    @Option(
        help: ArgumentHelp(
            "Megabytes all unroll connections together may make the learner hold; with the largest unroll "
                + "this run's actors send it caps the number of unroll connections (at least 16).",
            valueName: "MB"))
    var unrollQueueMb = 1024

    @Flag(help: "Do not build the teacher for the teacher-return metric (saves start-up time).")
    var noReferenceTeacher = false

    @Option(help: "This learner's id in its messages.")
    var id = "learner"

    @Option(
        help: ArgumentHelp(
            "With --curve-key: the teacher servers' CURVE public key, to check a teacher before a swap to it.",
            valueName: "file"))
    var teacherKey: String?

    @Option(
        help: ArgumentHelp(
            "After a swap, go back to the previous teacher if no unroll with the new one's targets arrives "
                + "within this many seconds.", valueName: "seconds"))
    var swapWindow = 10.0

    func validate() throws {
        try OperatorInput.atLeast(publishEvery, 1, "--publish-every")
        try OperatorInput.atLeast(publishIntervalMs, 1, "--publish-interval-ms")
        try OperatorInput.positive(checkpointInterval, "--checkpoint-interval")
        try OperatorInput.positive(metricsInterval, "--metrics-interval")
        try OperatorInput.atLeast(unrollSteps, 1, "--unroll-steps")
        try OperatorInput.atLeast(actorTimeoutMs, 100, "--actor-timeout-ms")
        try OperatorInput.positive(steps, "--steps")
        try OperatorInput.positive(metricsEverySteps, "--metrics-every-steps")
        try OperatorInput.atLeast(maxActors, 1, "--max-actors")
        try OperatorInput.atLeast(unrollQueueMb, 1, "--unroll-queue-mb")
        guard unrollQueueMb <= 1 << 20 else {
            throw ValidationError("--unroll-queue-mb must be at most \(1 << 20) (1 TB), got \(unrollQueueMb)")
        }
        for (value, flag) in [
            (bindUnrolls, "--bind-unrolls"), (bindParams, "--bind-params"), (bindControl, "--bind-control"),
        ] {
            try OperatorInput.endpoint(value, flag: flag)
        }
        try OperatorInput.positive(swapWindow, "--swap-window")
    }

    func run() throws {
        let logger = role.start(role: "learner")
        let configuration = try role.resolve(environment: environment, teacher: teacher, method: method)
        let env = try buildEnvironment(configuration)
        let reference = noReferenceTeacher ? nil : try buildTeacher(configuration, for: env)
        // Further kickstarting teachers are tabular: the learner builds them and mixes their
        // outputs into each step's, as `distill train` does.
        let further = try validating {
            try KickstartTeachers(
                teachers: configuration.teacher.buildKickstartTeachers(for: env),
                weights: configuration.teacher.kickstartWeights)
        }
        let problem = LearnerProblem(
            environment: env, environmentIdentity: RunConfiguration.environmentIdentity(configuration.environment, env),
            method: configuration.method, teacherKind: configuration.teacher.kind, referenceTeacher: reference,
            kickstart: further,
            unrollSteps: unrollSteps,
            configurationJSON: try configuration.json())
        var settings = LearnerConfiguration(
            bindUnrolls: bindUnrolls, bindParameters: bindParams, bindControl: bindControl)
        settings.checkpointDirectory = checkpointDir.map { URL(fileURLWithPath: $0) }
        settings.outputDirectory = out.map { URL(fileURLWithPath: $0) }
        settings.maxEnvSteps = steps.map { UInt64($0) }
        settings.publishEveryUpdates = publishEvery
        settings.publishIntervalMilliseconds = publishIntervalMs
        settings.checkpointIntervalSeconds = checkpointInterval
        settings.metricsIntervalSeconds = metricsInterval
        settings.metricsEverySteps = metricsEverySteps.map { UInt64($0) }
        settings.actorTimeoutMilliseconds = actorTimeoutMs
        settings.maxActors = maxActors
        settings.unrollQueueBytes = unrollQueueMb << 20
        settings.maxMessageBytes = role.maxMessageBytes
        settings.giveUpAfterSeconds = role.giveUpAfter
        settings.curve = try role.curve()
        settings.swapWindowSeconds = swapWindow
        settings.teacherKey = try teacherKey.map { try KeyFiles.publicKey($0, flag: "--teacher-key") }
        try runRole(logger) {
            let learner = try Learner(
                problem: problem, configuration: settings, sender: .starting(role: .learner, id: id), logger: logger)
            try learner.run()
            return learner.gaveUp
        }
    }
}
