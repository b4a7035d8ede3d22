import ArgumentParser
import DistillCore
import DistillRuntime
import DistillWire
import Foundation
import Logging

/// `--config` and `--log-level`, shared by the role commands.
struct RoleOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Run configuration (OUT/config.json of a run, or `distill cluster --write-config FILE`); "
                + "replaces the environment, teacher and method flags.", valueName: "file"))
    var config: String?

    @Option(help: "Log level.")
    var logLevel: Logger.Level = .info

    @Option(help: "Largest message accepted, in bytes; a peer sending more is disconnected.")
    var maxMessageBytes = WireCodec.defaultMaxMessageBytes

    @Option(
        help: ArgumentHelp(
            "This process's CURVE key pair (distill keys generate): encrypts every socket.", valueName: "file"))
    var curveKey: String?

    @Option(help: ArgumentHelp("Servers: admit only the clients whose public keys this file lists.", valueName: "file"))
    var curveAllow: String?

    @Option(
        help: ArgumentHelp(
            "Exit with status \(giveUpExitCode) after this many seconds without the peers this role works with "
                + "(actor: no message from the learner; learner: no live actor, after its final checkpoint and "
                + "summary; teacher: no query); 0 = wait for them forever.", valueName: "seconds"))
    var giveUpAfter = 0.0

    /// The CURVE configuration of the flags, or nil without --curve-key.
    func curve() throws -> CurveConfiguration? {
        guard let curveKey else {
            if curveAllow != nil { throw ValidationError("--curve-allow needs --curve-key (this server's key pair)") }
            return nil
        }
        return CurveConfiguration(
            keyPair: try KeyFiles.keyPair(curveKey, flag: "--curve-key"),
            allowedClients: try curveAllow.map { try KeyFiles.allowList($0, flag: "--curve-allow") })
    }

    func validate() throws {
        try OperatorInput.atLeast(maxMessageBytes, 1024, "--max-message-bytes")
        guard giveUpAfter.isFinite, giveUpAfter >= 0 else {
            throw ValidationError(
                "--give-up-after must be a number of seconds >= 0 (0: never give up), got \(giveUpAfter)")
        }
    }

    /// Installs the stop-signal handlers and the stderr log handler; returns the role's logger
    /// and the stop token the signals set.
    func start(role: String) -> (logger: Logger, stop: StopToken) { Self.start(role: role, level: logLevel) }

    /// As `start(role:)`, for commands without these options.
    static func start(role: String, level: Logger.Level) -> (logger: Logger, stop: StopToken) {
        let stop = StopSignal.install()
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            // Peers put strings in log lines (ids, endpoints, their error messages): one log
            // call stays one line whatever they contain.
            return EscapingLogHandler(handler)
        }
        return (Logger(label: "distill.\(role)"), stop)
    }

    /// The run configuration: from --config, or else from the flags.
    func resolve(
        environment: EnvironmentOptions, teacher: TeacherOptions?, method: MethodOptions?
    ) throws -> RunConfiguration {
        if let config { return try RunConfiguration.read(from: config) }
        return try Self.resolve(environment: environment, teacher: teacher, method: method)
    }

    /// The run configuration from the flags.
    static func resolve(
        environment: EnvironmentOptions, teacher: TeacherOptions?, method: MethodOptions?
    ) throws -> RunConfiguration {
        let environmentSpec = try environment.spec()
        let teacherSpec: TeacherSpec
        if !environmentSpec.kind.isTabular {
            teacherSpec = try teacher?.observedSpec(environment: environmentSpec.kind) ?? TeacherSpec()
        } else {
            teacherSpec =
                try teacher?.spec(defaultSeed: environment.seed) {
                    try checkMemory(environmentSpec)
                    return try validating { try environmentSpec.build() }
                } ?? TeacherSpec()
        }
        let methodSpec = try method?.spec() ?? MethodSpec()
        return RunConfiguration(environment: environmentSpec, teacher: teacherSpec, method: methodSpec)
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Builds the environment and teacher of a configuration, with errors a person can act on.
func buildEnvironment(_ configuration: RunConfiguration) throws -> Environment {
    try checkMemory(configuration.environment)
    return try validating { try configuration.environment.build() }
}

/// Refuses, before anything is allocated, an environment too large for this machine's memory.
func checkMemory(_ spec: EnvironmentSpec) throws {
    do {
        try MemoryBudget.check(spec)
    } catch let error as RuntimeError {
        throw ValidationError(error.description)
    }
}

func buildTeacher(_ configuration: RunConfiguration, for environment: Environment) throws -> Teacher {
    try validating { try configuration.teacher.build(for: environment) }
}

/// The exit status of a role that gave up on its peers (`--give-up-after`): EX_TEMPFAIL of
/// sysexits.h, "try again later". Cluster engines see a failed task and end the job.
let giveUpExitCode: Int32 = 75

/// Runs a role loop, turning its errors into a message and a non-zero exit. `body` returns
/// why the role gave up on its peers, if it did: that exits with `giveUpExitCode`.
func runRole(_ logger: Logger, _ body: () throws -> String?) throws {
    let gaveUp: String?
    do {
        gaveUp = try body()
    } catch let error as RuntimeError {
        let origins = CommandLineDriver.environmentOrigins(of: error.description)
        logger.critical("\(([error.description] + origins).joined(separator: " "))")
        throw ExitCode(1)
    }
    if let gaveUp {
        logger.critical("gave up: \(gaveUp) (--give-up-after); exiting with status \(giveUpExitCode)")
        throw ExitCode(giveUpExitCode)
    }
}

/// `--tasks`: a multi-task run's gridworlds (docs/networks.md, "Multi-task on the cluster").
struct TasksOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Multi-task run: the gridworlds' seeds, task 0 first (e.g. 1,2), one network student for all, one "
                + "teacher server per task, each actor assigned one task (--task).", valueName: "seeds"))
    var tasks: String?

    /// The help of `--observation` (learner and cluster).
    static let observationHelp = ArgumentHelp(
        "What a network student observes of each gridworld state: one-hot (default), image, state-id, "
            + "window:K, … (with --tasks the default is image).", valueName: "kind")

    /// The seeds of --tasks, or nil without it.
    func seeds() throws -> [UInt64]? {
        guard let tasks else { return nil }
        let parts = tasks.split(separator: ",", omittingEmptySubsequences: false)
        let seeds = parts.compactMap { UInt64($0.trimmingCharacters(in: .whitespaces)) }
        guard seeds.count == parts.count, seeds.count >= 2 else {
            throw ValidationError(
                "--tasks takes two or more gridworld seeds separated by commas (e.g. 1,2), got '\(tasks)'")
        }
        return seeds
    }

    /// Puts --tasks and --observation into `configuration` (a --config run's stay; the flags must
    /// then agree): the student is told its task as its architecture says (one head: the task as
    /// input; heads:K: one head per task); `observation` is what a network student observes of a
    /// gridworld (default one-hot, image in a multi-task run).
    func apply(to configuration: inout RunConfiguration, observation: String?, fromConfig: Bool = false) throws {
        if let seeds = try seeds() {
            if let configured = configuration.tasks, configured.seeds != seeds {
                throw ValidationError(
                    "--tasks \(tasks ?? "") differs from the --config file's tasks \(configured.seeds): leave --tasks out"
                )
            }
            if configuration.tasks == nil {
                let label: MultitaskGridworlds.TaskLabel
                if configuration.student.isTabular {
                    label = .input  // actors and teachers play tables; the learner refuses a tabular student
                } else {
                    label = try validating {
                        try TasksSpec.label(for: configuration.student.architecture, tasks: seeds.count)
                    }
                    if observation == nil { configuration.student.observation = "image" }
                }
                configuration.tasks = TasksSpec(seeds: seeds, label: label)
            }
        }
        if let observation {
            guard !configuration.student.isTabular, configuration.environment.kind.isTabular else {
                throw ValidationError(
                    "--observation is what a network student observes of a gridworld's states: give --student ARCH "
                        + "on a tabular environment")
            }
            if fromConfig && configuration.student.observation != observation {
                throw ValidationError(
                    "--observation \(observation) differs from the --config file's '\(configuration.student.observation)': "
                        + "leave it out")
            }
            configuration.student.observation = observation
        }
        if !configuration.student.isTabular && configuration.environment.kind.isTabular {
            _ = try validating { try ObservationKind(parsing: configuration.student.observation) }
        }
    }

    /// The multi-task problem of `configuration`, with errors a person can act on.
    static func problem(_ configuration: RunConfiguration) throws -> MultitaskProblem {
        try checkMemory(configuration.environment)
        return try validating { try MultitaskProblem(configuration) }
    }

    /// Checks `--task K` against a multi-task `configuration` (required there, refused elsewhere).
    static func task(_ task: Int?, _ configuration: RunConfiguration) throws -> Int? {
        guard let tasks = configuration.tasks else {
            if task != nil {
                throw ValidationError(
                    "--task picks one task of a multi-task run: give the run's --tasks (or its --config)")
            }
            return nil
        }
        guard let task else {
            throw ValidationError(
                "this is a multi-task run of \(tasks.seeds.count) gridworlds: give --task K (0 to \(tasks.seeds.count - 1))"
            )
        }
        guard (0..<tasks.seeds.count).contains(task) else {
            throw ValidationError("--task \(task): this run's tasks are 0 to \(tasks.seeds.count - 1)")
        }
        return task
    }
}
