import ArgumentParser
import DistillCore
import DistillRuntime
import DistillWire
import Foundation
import Logging

/// `distill learner`: the learner process.
struct LearnerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "learner",
        abstract: "Apply the update rule to actors' trajectories and broadcast parameters.",
        discussion: """
            A --checkpoint-dir that holds a run is refused unless --resume is given (the same \
            configuration then continues from the newest checkpoint).

            Binds three sockets: unrolls (PULL), parameters (PUB) and control (ROUTER, the one \
            endpoint actors and `distill control` need), printing "endpoint NAME ENDPOINT" for \
            each. One update per --episodes-per-iteration episodes (as `distill train`, whatever the \
            unroll size), with V-trace weights for policy lag; parameters are published every --publish-every \
            updates or --publish-interval-ms, whichever comes first. With --checkpoint-dir (and --resume) it \
            resumes from the newest checkpoint (versions continue) and writes atomic checkpoints \
            periodically and at stop; with --out it writes metrics.csv and summary.json. SIGINT or \
            SIGTERM stop it cleanly (exit 0); with --give-up-after S it also stops cleanly, but with \
            exit status 75, once no actor has been alive for S seconds. Environment variables: \
            DISTILL_BIND_CONTROL, ...

            Examples:
              distill learner --env gridworld --seed 1 --method n-distill+R --checkpoint-dir ckpt --out run
              distill learner --config run/config.json --bind-control 'tcp://*:5559' --steps 2000000
            """)

    /// The single source of the defaults below (endpoints aside).
    static let defaults = LearnerConfiguration(bindUnrolls: "", bindParameters: "", bindControl: "")

    @OptionGroup(title: "Problem (or --config)") var environment: EnvironmentOptions
    @OptionGroup(title: "Problem (or --config)") var teacher: TeacherOptions
    @OptionGroup(title: "Problem (or --config)") var method: MethodOptions
    @OptionGroup(title: "Problem (or --config)") var tasks: TasksOptions
    @OptionGroup var role: RoleOptions

    @Option(help: "Endpoint of the unroll socket (PULL).")
    var bindUnrolls = "tcp://*:5557"

    @Option(help: "Endpoint of the parameter socket (PUB).")
    var bindParams = "tcp://*:5558"

    @Option(help: "Endpoint of the control socket (ROUTER): what actors and `distill control` connect to.")
    var bindControl = "tcp://*:5559"

    @Option(
        help: ArgumentHelp(
            "Checkpoint directory (one learner at a time: DIR/.lock); one holding a run needs --resume.",
            valueName: "dir"))
    var checkpointDir: String?

    @Flag(help: "Continue the run in --checkpoint-dir from its newest checkpoint (same configuration).")
    var resume = false

    @Option(help: ArgumentHelp("Directory for metrics.csv and summary.json.", valueName: "dir"))
    var out: String?

    @Option(help: "Stop after learning from this many environment steps (default: run until stopped).")
    var steps: Int64?

    @Option(
        help: ArgumentHelp(
            "A network student (mlp:64,64, conv:8x3/mlp:64, …; docs/networks.md), built from --seed: on cartpole, "
                + "acrobot or mountaincar actors must name the same one; on a gridworld they play its published table. "
                + "With --tasks: mlp:64 reads the task as input, mlp:64/heads:K has one head per task.",
            valueName: "architecture"))
    var student: String?

    @Option(help: TasksOptions.observationHelp)
    var observation: String?

    @Option(
        help: ArgumentHelp(
            "Episodes of the student's sampled evaluation in summary.json (network runs on a built-in environment).",
            valueName: "n"))
    var evaluationEpisodes = 100

    @Option(
        help: ArgumentHelp(
            "Network students: Rusu's setting, a replay memory of this many rows of the teacher's gameplay (methods "
                + "teacher-distill(-kl, -nll, -mse)); without it each episode is learned from once.", valueName: "rows")
    )
    var replaySize: Int?

    @Option(help: "Rows per minibatch drawn uniformly from the replay memory (default 32).")
    var replayBatch: Int?

    @Option(help: "Minibatch updates per environment step stored in the replay memory (default 0.25).")
    var replayRatio: Double?

    @Option(help: "Steps per unroll message (whole episodes); network batching only, learning is per episode batch.")
    var unrollSteps = ActorSettings.defaultUnrollSteps

    @Option(help: "Publish parameters after this many updates...")
    var publishEvery = LearnerCommand.defaults.publishEveryUpdates

    @Option(help: "...or this many milliseconds after the last publication.")
    var publishIntervalMs = LearnerCommand.defaults.publishIntervalMilliseconds

    @Option(help: "Seconds between periodic checkpoints.")
    var checkpointInterval = LearnerCommand.defaults.checkpointIntervalSeconds

    @Option(help: "Seconds between metrics rows...")
    var metricsInterval = LearnerCommand.defaults.metricsIntervalSeconds

    @Option(help: "...and a metrics row every this many env steps, whichever comes first.")
    var metricsEverySteps: Int64?

    @Option(help: "Seconds between progress lines in the log (--log-level info); 0: none.")
    var progressInterval = LearnerCommand.defaults.progressIntervalSeconds

    @Option(help: "Milliseconds of silence after which an actor is marked dead.")
    var actorTimeoutMs = LearnerCommand.defaults.actorTimeoutMilliseconds

    @Option(help: "Actor records kept at most (dead ones are forgotten after 20 × --actor-timeout-ms).")
    var maxActors = LearnerCommand.defaults.maxActors

    @Option(
        help: ArgumentHelp(
            "Megabytes all unroll connections together may make the learner hold; with the largest unroll "
                + "this run's actors send it caps the number of unroll connections (at least 16).",
            valueName: "MB"))
    var unrollQueueMb = LearnerCommand.defaults.unrollQueueBytes >> 20

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
    var swapWindow = LearnerCommand.defaults.swapWindowSeconds

    func validate() throws {
        try OperatorInput.atLeast(publishEvery, 1, "--publish-every")
        try OperatorInput.atLeast(publishIntervalMs, 1, "--publish-interval-ms")
        try OperatorInput.positive(checkpointInterval, "--checkpoint-interval")
        try OperatorInput.positive(metricsInterval, "--metrics-interval")
        guard progressInterval >= 0, progressInterval.isFinite else {
            throw ValidationError("--progress-interval must be 0 or positive, got \(progressInterval)")
        }
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
        try OperatorInput.atLeast(evaluationEpisodes, 2, "--evaluation-episodes")
    }

    /// One run per checkpoint directory, and an existing run only with --resume and the same
    /// configuration. Returns the configuration JSON the resumed checkpoints carry (it may be in an
    /// older but equivalent form), so the learner's own check and later checkpoints agree with it.
    func checkResume(_ configuration: RunConfiguration, logger: Logger) throws -> String? {
        guard let checkpointDir else { return nil }
        let directory = URL(fileURLWithPath: checkpointDir)
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try RunDirectory.lock(directory, command: "distill learner")
        guard let checkpoint = RunDirectory.latestCheckpoint(directory) else { return nil }
        let what = RunDirectory.describe(checkpoint)
        guard resume else {
            throw RunRefusal(
                "distill learner: \(directory.path) already holds a run (\(what)); add --resume to continue it, "
                    + "or give another --checkpoint-dir")
        }
        let differences = RunDirectory.sameConfiguration(stored: checkpoint.configurationJSON, current: configuration)
        guard differences.isEmpty else {
            throw RunRefusal(
                "distill learner --resume: \(directory.path) was run with another configuration: "
                    + differences.joined(separator: ", ")
                    + "; resume it with that run's --config FILE, or give another --checkpoint-dir")
        }
        logger.notice("resuming the run in \(directory.path) from \(what) (--resume)")
        return checkpoint.configurationJSON
    }

    func run() throws {
        let (logger, stop) = role.start(role: "learner")
        var configuration = try role.resolve(environment: environment, teacher: teacher, method: method)
        if let student {
            let flag = StudentSpec(architecture: student, seed: configuration.environment.seed)
            if role.config != nil && configuration.student.architecture != student {
                throw ValidationError(
                    "--student \(student) differs from the --config file's student "
                        + "'\(configuration.student.architecture)': leave --student out, or write another config")
            }
            if role.config == nil { configuration.student = flag }
        }
        try tasks.apply(to: &configuration, observation: observation, fromConfig: role.config != nil)
        if configuration.tasks != nil {
            try runMultitask(configuration, logger: logger, stop: stop)
            return
        }
        if !configuration.environment.kind.isTabular {
            try runNetwork(configuration, logger: logger, stop: stop)
            return
        }
        guard replaySize == nil else {
            throw ValidationError(
                "--replay-size: on the cluster a replay memory holds a network student's observations on cartpole, "
                    + "acrobot or mountaincar; a gridworld run learns from each episode once: leave it out")
        }
        let env = try buildEnvironment(configuration)
        let resumedJSON = try checkResume(configuration, logger: logger)
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
            configurationJSON: try resumedJSON ?? configuration.json())
        let settings = try settings()
        if !configuration.student.isTabular {
            // A network on the gridworld's rendered observations; actors play its published table.
            let student = try validating {
                try configuration.student.buildNetwork(for: env, method: configuration.method)
            }
            try runLearner(logger, stop) {
                try LearnerCore(
                    model: TabularNetworkLearnerModel(
                        learner: problem, architecture: student.network.architecture.description),
                    student: student, problem: problem, configuration: settings, seed: configuration.environment.seed)
            }
            return
        }
        try runLearner(logger, stop) { try LearnerCore(problem: problem, configuration: settings) }
    }

    /// Runs a learner around the core `makeCore` builds, until it stops (or gives up).
    private func runLearner<Model: LearnerModel>(
        _ logger: Logger, _ stop: StopToken, _ makeCore: () throws -> LearnerCore<Model>
    ) throws {
        try runRole(logger) {
            let learner = try Learner(
                core: makeCore(), sender: .starting(role: .learner, id: id), logger: logger, stop: stop)
            try learner.run()
            return learner.gaveUp
        }
    }

    /// Rusu's setting from the --replay-* flags, checked against `method`; nil without them.
    func replay(_ method: MethodSpec) throws -> ReplaySpec? {
        guard let replaySize else {
            guard replayBatch == nil && replayRatio == nil else {
                throw ValidationError(
                    "--replay-batch and --replay-ratio shape a replay memory: give its size with --replay-size N")
            }
            return nil
        }
        let spec = ReplaySpec(
            capacity: replaySize, batchSize: replayBatch ?? ReplaySpec.defaultBatchSize,
            updatesPerStep: replayRatio ?? ReplaySpec.defaultUpdatesPerStep)
        try validating { try spec.check(method) }
        return spec
    }

    /// The learner's settings from the flags.
    func settings() throws -> LearnerConfiguration {
        var settings = LearnerConfiguration(
            bindUnrolls: bindUnrolls, bindParameters: bindParams, bindControl: bindControl)
        settings.checkpointDirectory = checkpointDir.map { URL(fileURLWithPath: $0) }
        settings.outputDirectory = out.map { URL(fileURLWithPath: $0) }
        settings.maxEnvSteps = steps.map { UInt64($0) }
        settings.publishEveryUpdates = publishEvery
        settings.publishIntervalMilliseconds = publishIntervalMs
        settings.checkpointIntervalSeconds = checkpointInterval
        settings.metricsIntervalSeconds = metricsInterval
        settings.progressIntervalSeconds = progressInterval
        settings.metricsEverySteps = metricsEverySteps.map { UInt64($0) }
        settings.actorTimeoutMilliseconds = actorTimeoutMs
        settings.maxActors = maxActors
        settings.unrollQueueBytes = unrollQueueMb << 20
        settings.maxMessageBytes = role.maxMessageBytes
        settings.giveUpAfterSeconds = role.giveUpAfter
        settings.curve = try role.curve()
        settings.swapWindowSeconds = swapWindow
        settings.teacherKey = try teacherKey.map { try KeyFiles.publicKey($0, flag: "--teacher-key") }
        return settings
    }

    /// A multi-task run: one network student over the union of the tasks' gridworlds, each task's
    /// teacher built here too (for its identity, which every unroll must name, and its return).
    func runMultitask(_ configuration: RunConfiguration, logger: Logger, stop: StopToken) throws {
        guard !configuration.student.isTabular else {
            throw ValidationError(
                "--tasks: a multi-task run trains a network student: give --student mlp:64 (the task as input) or "
                    + "--student mlp:64/heads:\(configuration.tasks?.seeds.count ?? 2) (one head per task)")
        }
        guard replaySize == nil else {
            throw ValidationError("--replay-size: a multi-task run learns from each episode once; leave it out")
        }
        let tasks = try TasksOptions.problem(configuration)
        let student = try validating { try tasks.student(configuration.student, method: configuration.method) }
        let resumedJSON = try checkResume(configuration, logger: logger)
        let teachers = try (0..<tasks.count).map { k in
            try validating { try tasks.teacher(task: k, configuration.teacher) }
        }
        for (k, teacher) in teachers.enumerated() {
            logger.info("task \(k): \(tasks.taskEnvironmentIdentity(k)), teacher '\(teacher.identity)'")
        }
        let problem = LearnerProblem(
            environment: tasks.tasks.environment, environmentIdentity: tasks.environmentIdentity,
            method: configuration.method, teacherKind: configuration.teacher.kind, referenceTeacher: nil,
            unrollSteps: unrollSteps, configurationJSON: try resumedJSON ?? configuration.json())
        let settings = try settings()
        try runLearner(logger, stop) {
            try LearnerCore(
                model: TabularNetworkLearnerModel(
                    learner: problem, tasks: TaskTeachers(problem: tasks, teachers: teachers),
                    architecture: student.network.architecture.description),
                student: student, problem: problem, configuration: settings, seed: configuration.environment.seed)
        }
    }

    /// A network student on an environment without a tabular MDP (CartPole, Acrobot, MountainCar):
    /// the same learner, with a `NetworkLearnerModel`.
    func runNetwork(_ configuration: RunConfiguration, logger: Logger, stop: StopToken) throws {
        guard !configuration.student.isTabular else {
            throw ValidationError(
                "\(configuration.environment.kind.rawValue) has no tabular MDP: give the learner a network student, "
                    + "e.g. --student mlp:64,64 (and the actors the same)")
        }
        let resumedJSON = try checkResume(configuration, logger: logger)
        if configuration.environment.kind == .remote {
            // The learner reads the server's description only; it does not run episodes there (the
            // actors hold the server's environments), so summary.json has no evaluation: use
            // distill export and distill eval --env remote:… afterwards.
            try runNetwork(
                configuration, prototype: try remoteEnvironment(configuration.environment), evaluates: false,
                configurationJSON: try resumedJSON ?? configuration.json(), logger: logger, stop: stop)
            return
        }
        var observed = ObservedEnvironmentSpec()
        observed.kind = try validating {
            try ObservedEnvironmentSpec.Kind.named(configuration.environment.kind.rawValue)
        }
        let prototype = try validating { try observed.build() }
        try runNetwork(
            configuration, prototype: prototype, evaluates: true,
            configurationJSON: try resumedJSON ?? configuration.json(), logger: logger, stop: stop)
    }

    private func runNetwork<Env: ObservedEnvironment>(
        _ configuration: RunConfiguration, prototype: Env, evaluates: Bool, configurationJSON: String, logger: Logger,
        stop: StopToken
    ) throws {
        let description = prototype.description
        let student = try validating {
            try configuration.student.buildNetwork(for: description, method: configuration.method)
        }
        var model = NetworkLearnerModel(
            description: description, environmentIdentity: description.name,
            architecture: student.network.architecture.description, method: configuration.method)
        let episodes = evaluationEpisodes
        let seed = configuration.environment.seed
        if evaluates {
            model.evaluate = { network in
                ObservedTrainer<Env>.evaluate(network: network, prototype: prototype, episodes: episodes, seed: seed)
                    .mean
            }
        }
        if evaluates, !noReferenceTeacher, configuration.teacher.kind == .file, let path = configuration.teacher.path {
            let teacher = try validating { try NetworkTeacher.load(from: URL(fileURLWithPath: path)) }
            try validating { try teacher.check(against: description, observation: description.name) }
            model.teacherReturn =
                ObservedTrainer<Env>.evaluate(
                    prototype: prototype, episodes: episodes, seed: seed,
                    policy: { teacher.outputs(observations: $0, batch: $1).probabilities }
                ).mean
            logger.info(
                "teacher \(teacher.identity): mean return \(String(format: "%.2f", model.teacherReturn!)) over \(episodes) episodes"
            )
        }
        var problem = LearnerProblem(
            environment: nil, environmentIdentity: description.name, method: configuration.method, teacherKind: nil,
            referenceTeacher: nil, unrollSteps: unrollSteps, configurationJSON: configurationJSON)
        problem.replay = try replay(configuration.method)
        let settings = try settings()
        try runLearner(logger, stop) {
            try LearnerCore(
                model: model, student: student, problem: problem, configuration: settings,
                seed: configuration.environment.seed)
        }
    }
}
