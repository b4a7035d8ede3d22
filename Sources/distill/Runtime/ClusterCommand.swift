import ArgumentParser
import DistillCore
import DistillRuntime
import DistillWire
import Foundation

/// `distill cluster`: the main job.
struct ClusterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Run a local cluster (teacher server, learner, N actors as processes) distilling a teacher.",
        discussion: """
            Starts one teacher server, one learner and --actors actors as separate processes on \
            loopback, prints progress every second (env steps/s, student and teacher return, KL, \
            parameter version, policy lag), restarts a role that crashes (the learner from its \
            checkpoint), and stops everything cleanly when the learner has learned from --steps \
            environment steps, on Ctrl-C, or on SIGTERM (exit 0 in all three cases).

            An --out that already holds a run is refused unless --resume is given; one directory \
            holds one run at a time (OUT/.lock).

            Leaves in --out: config.json (give it to roles on other machines with --config), \
            metrics.csv, summary.json (student vs teacher return, KL, throughput, lag), \
            checkpoints/, logs/ (one log per process) and learning_curves.png (needs matplotlib: \
            scripts/setup --plots; `distill plot OUT` draws it later).

            Examples:
              distill cluster
              distill cluster --env gridworld --teacher q-learning --method n-distill+R --actors 4 --steps 2000000
              distill cluster --env chain --teacher adversarial --method teacher-v-reward --steps 200000 --out runs/chain
              distill cluster --write-config run.json --env gridworld --seed 3   # for roles on other machines
              distill cluster --env cartpole --teacher-file teacher.safetensors --student mlp:64,64 \\
                --method on-policy-distill --optimiser adam --learning-rate 0.001 --actors 2 --steps 400000
              distill cluster --env gridworld --grid-size 10 --tasks 1,2 --student mlp:64/heads:2 \\
                --method teacher-distill-kl --control teacher --optimiser adam --learning-rate 0.01 --actors 2
              distill cluster --config runs/chain/config.json --out runs/chain-again   # the same run again
              distill cluster --out runs/chain --resume --steps 400000                 # continue a run
            """)

    @OptionGroup(title: "Problem (or --config)") var environment: EnvironmentOptions
    @OptionGroup(title: "Problem (or --config)") var teacher: TeacherOptions
    @OptionGroup(title: "Problem (or --config)") var method: MethodOptions
    @OptionGroup(title: "Problem (or --config)") var tasks: TasksOptions

    @Option(
        help: ArgumentHelp(
            "Run configuration (OUT/config.json of a run, or --write-config FILE); replaces the environment, "
                + "teacher and method flags, so a run is reproduced exactly.", valueName: "file"))
    var config: String?

    @Flag(
        help:
            "Continue the run in --out from its newest checkpoint (same configuration); without it an existing run is refused."
    )
    var resume = false

    @Option(help: "Number of actor processes.")
    var actors = 4

    @Option(
        help: ArgumentHelp(
            "A network student (e.g. mlp:64,64): on cartpole, acrobot, mountaincar the teacher is a --teacher-file "
                + "network; on a gridworld (--observation) the actors play its published table; with --tasks one "
                + "head (the task as input) or heads:K.", valueName: "architecture"))
    var student: String?

    @Option(help: TasksOptions.observationHelp)
    var observation: String?

    @Option(help: "Environment steps to learn from.")
    var steps: Int64 = 2_000_000

    @Option(help: ArgumentHelp("Output directory (default: runs/cluster-DATE-TIME).", valueName: "dir"))
    var out: String?

    @Option(help: "Seed of actor k's sampling is this plus k (default: --seed × 1000 + 1).")
    var actorSeed: UInt64?

    @Option(help: "Seconds between progress lines.")
    var progressInterval = LauncherConfiguration.defaultProgressIntervalSeconds

    @Option(help: "Extra learner flags, e.g. --learner-flags='--publish-every 5 --unroll-steps 500'.")
    var learnerFlags: String = ""

    @Option(help: "Extra actor flags, e.g. --actor-flags='--max-in-flight 2'.")
    var actorFlags: String = ""

    @Option(help: ArgumentHelp("Write the run configuration to this file and exit.", valueName: "file"))
    var writeConfig: String?

    @Flag(help: "Do not draw learning_curves.png.")
    var noPlot = false

    func validate() throws {
        try OperatorInput.atLeast(actors, 1, "--actors")
        try OperatorInput.positive(steps, "--steps")
        guard progressInterval > 0 else { throw ValidationError("--progress-interval must be positive") }
    }

    func run() throws {
        var configuration: RunConfiguration
        do {
            configuration =
                try config.map { try RunConfiguration.read(from: $0) }
                ?? RoleOptions.resolve(environment: environment, teacher: teacher, method: method)
        } catch let error as RuntimeError {
            throw ValidationError(error.description)
        }
        if let student {
            guard config == nil || configuration.student.architecture == student else {
                throw ValidationError(
                    "--student \(student) differs from the --config file's student "
                        + "'\(configuration.student.architecture)': leave --student out")
            }
            if config == nil {
                configuration.student = StudentSpec(architecture: student, seed: configuration.environment.seed)
            }
            if tasks.tasks == nil && configuration.tasks == nil {
                try validating { try configuration.student.validate() }
            }
        }
        try tasks.apply(to: &configuration, observation: observation, fromConfig: config != nil)
        let taskCount = configuration.tasks?.seeds.count ?? 0
        if taskCount > 0 && actors < taskCount {
            throw ValidationError(
                "--actors \(actors): a multi-task run needs at least one actor per task (\(taskCount) tasks)")
        }
        // Build once here so a bad flag fails before any process starts.
        let environmentName = try Self.checkProblem(configuration)
        if let writeConfig {
            let file = URL(fileURLWithPath: writeConfig)
            do {
                try FileManager.default.createDirectory(
                    at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data((try configuration.json(pretty: true) + "\n").utf8).write(to: file)
            } catch {
                throw RunRefusal("--write-config: cannot write \(file.path): \(error.localizedDescription)")
            }
            emit("wrote \(writeConfig): give it to each role with --config \(writeConfig)")
            return
        }
        let output = URL(fileURLWithPath: out ?? Self.defaultOutput())
        do {
            try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        } catch {
            throw ValidationError("--out: cannot create \(output.path): \(error.localizedDescription)")
        }
        try RunDirectory.lock(output, command: "distill cluster")
        let configFile = output.appendingPathComponent("config.json")
        let stored = try? String(contentsOf: configFile, encoding: .utf8)
        let checkpoint = RunDirectory.latestCheckpoint(output.appendingPathComponent("checkpoints"))
        if stored != nil || checkpoint != nil {
            let what = checkpoint.map(RunDirectory.describe) ?? "no checkpoint yet"
            guard resume else {
                throw RunRefusal(
                    "distill cluster: \(output.path) already holds a run (\(what)); add --resume to continue it, "
                        + "or give another --out")
            }
            let differences = RunDirectory.sameConfiguration(
                stored: checkpoint?.configurationJSON ?? stored ?? "", current: configuration)
            guard differences.isEmpty else {
                throw RunRefusal(
                    "distill cluster --resume: \(output.path) was run with another configuration: "
                        + differences.joined(separator: ", ")
                        + "; resume it with --config \(configFile.path) --resume, or give another --out")
            }
            emit("resuming the run in \(output.path) from \(what) (--resume)")
        } else if resume {
            emit("--resume: \(output.path) holds no run yet; starting one")
        }
        if stored == nil { try Data((try configuration.json(pretty: true) + "\n").utf8).write(to: configFile) }
        emit(
            "distill cluster: \(environmentName), teacher \(configuration.teacher.kind.rawValue), "
                + "\(configuration.method.method.rawValue), \(actors) actors, \(steps) steps -> \(output.path)")

        var launcherConfiguration = LauncherConfiguration(
            binary: URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath(),
            problemArguments: ["--config", configFile.path],
            // About 200 metrics rows per run, however fast it goes: a readable learning curve.
            // --resume: this command decided above; a restarted learner resumes its checkpoint.
            learnerArguments: [
                "--steps", String(steps), "--metrics-every-steps", String(max(steps / 200, 1000)), "--resume",
            ]
                + learnerFlags.split(separator: " ").map(String.init),
            actorArguments: actorFlags.split(separator: " ").map(String.init), actors: actors,
            actorSeed: actorSeed ?? (environment.seed &* 1000 &+ 1), outputDirectory: output)
        launcherConfiguration.progressIntervalSeconds = progressInterval
        launcherConfiguration.tasks = taskCount
        let started = RoleOptions.start(role: "launcher", level: .info)
        var launcher = Launcher(
            configuration: launcherConfiguration, logger: started.logger, stop: started.stop,
            progress: { emit($0) })
        do {
            try launcher.run()
        } catch let error as RuntimeError {
            let lines =
                ["distill cluster: \(error.description)"] + CommandLineDriver.environmentOrigins(of: error.description)
            FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
            throw ExitCode(1)
        }
        if !noPlot { LearningCurves.draw(runDirectory: output, report: { emit($0) }) }
        Self.printSummary(output)
    }

    /// Checks that `configuration` builds (a tabular environment with its tabular student, or an
    /// environment without a tabular MDP with a network student and a network teacher file) and
    /// returns the environment's name.
    static func checkProblem(_ configuration: RunConfiguration) throws -> String {
        let kind = configuration.environment.kind
        if configuration.tasks != nil {
            guard !configuration.student.isTabular else {
                throw ValidationError(
                    "--tasks: a multi-task run trains a network student: give --student mlp:64 (the task as input) "
                        + "or --student mlp:64/heads:\(configuration.tasks?.seeds.count ?? 2) (one head per task)")
            }
            let problem = try TasksOptions.problem(configuration)
            _ = try validating { try problem.student(configuration.student, method: configuration.method) }
            _ = try validating { try problem.teacher(task: 0, configuration.teacher) }
            return "\(problem.count) tasks (\(problem.tasks.tasks.map(\.name).joined(separator: ", ")))"
        }
        if kind.isTabular {
            try checkMemory(configuration.environment)
            let environment = try buildEnvironment(configuration)
            if !configuration.student.isTabular {
                _ = try validating {
                    try configuration.student.buildNetwork(for: environment, method: configuration.method)
                }
            }
            return environment.name
        }
        guard !configuration.student.isTabular else {
            throw ValidationError(
                "\(kind.rawValue) has no tabular MDP: give the cluster a network student, e.g. --student mlp:64,64")
        }
        guard configuration.teacher.kind == .file, configuration.teacher.path != nil
        else {
            throw ValidationError(
                "\(kind.rawValue): the teacher server serves a network teacher file: give --teacher-file NET.safetensors "
                    + "(make one with distill train --env \(kind.rawValue) --method actor-critic --student mlp:64,64 --out DIR)"
            )
        }
        if let path = configuration.teacher.path, !FileManager.default.isReadableFile(atPath: path) {
            throw ValidationError("--teacher-file: cannot read '\(path)' (missing or unreadable)")
        }
        if kind == .remote { return try remoteEnvironment(configuration.environment).description.name }
        var observed = ObservedEnvironmentSpec()
        observed.kind = try validating { try ObservedEnvironmentSpec.Kind.named(kind.rawValue) }
        return try validating { try observed.build() }.description.name
    }

    static func defaultOutput() -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return "runs/cluster-\(formatter.string(from: Date()))"
    }

    static func printSummary(_ output: URL) {
        let file = output.appendingPathComponent("summary.json")
        let summary: RunSummary
        do {
            summary = try RunSummary.read(file)
        } catch {
            emit("no summary: \(error)")
            return
        }
        func number(_ value: Double?) -> String { value.map { String(format: "%.4g", $0) } ?? "n/a" }
        emit("summary (\(file.path)):")
        emit(
            "  student return \(number(summary.studentReturn)), teacher return \(number(summary.teacherReturn)), "
                + "ratio \(number(summary.studentToTeacherReturn))")
        emit(
            "  KL per episode \(number(summary.klPerEpisode)), env steps \(summary.envSteps), "
                + "\(number(summary.envStepsPerSecond)) steps/s")
        emit(
            "  policy lag mean \(number(summary.meanPolicyLag)), max \(number(summary.maxPolicyLag)); "
                + "updates \(summary.updates), version \(summary.version)")
        for task in summary.tasks ?? [] {
            emit(
                "  task \(task.task): student return \(number(task.studentReturn)), teacher \(number(task.teacherReturn)), "
                    + "uniform \(number(task.uniformReturn)), share of the teacher \(number(task.teacherShare)) "
                    + "(\(task.environment))")
        }
    }
}
