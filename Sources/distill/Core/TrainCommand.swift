import ArgumentParser
import DistillCore
import DistillRuntime
import Foundation

/// `distill train`: the single-process reference trainer.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Train a tabular or network student with sampled (or exact) updates and write per-iteration metrics as CSV.",
        discussion: """
            Each iteration collects --episodes-per-iteration episodes with the control policy, applies \
            the method's sampled update averaged over those episodes (or, with --exact, the exact \
            expected update of one episode) and records: env steps consumed, the episodes' mean return \
            and Σ H×(π‖π_θ), and every --evaluate-every iterations the exact metrics (student return, \
            E_z[Σ H×] under student, teacher, uniform). Progress goes to stderr.

            A network student (--student linear, mlp:64,64, conv:16x3,32x3/mlp:256; docs/networks.md) \
            sees --observation of each state (one-hot, image, window:K, state-id; \
            docs/environments.md) and learns through the same update rules: they write their \
            logit-space update per step, the network back-propagates it. Its exact metrics read its \
            policy at every state's observation.

            Rusu's setting (--replay-size N; a network student, method teacher-distill, \
            teacher-distill-kl, -nll or -mse): the teacher plays, every step's observation and the \
            teacher's outputs there (π, log π, V, and Q for a q-values teacher) go into a replay \
            memory of N rows (a ring: the oldest row is overwritten), and each iteration is one \
            minibatch update: --replay-batch rows drawn uniformly, with replacement, from the \
            memory, the mean loss over them descended with the student's optimiser. --replay-ratio \
            is the number of minibatch updates per environment step stored (0.25: one update every \
            4 steps); updates start once the memory holds one minibatch. Without --replay-size, the \
            paper's path: fresh episodes of the control policy, each used once. Rules with a \
            score-function term cannot learn from stored states and are refused.

            --env remote:tcp://HOST:PORT trains on the environments of a remote environment server \
            (examples/env-server: any gymnasium id with discrete actions, e.g. MinAtar, Atari, MiniGrid \
            or your own; docs/remote-environments.md). Start it with --envs at least --environments plus \
            --evaluation-episodes.

            Output: with --out DIR, DIR/metrics.csv, DIR/config.json (the full configuration, \
            files embedded), the CSV's numbers as TensorBoard scalars (DIR/events.out.tfevents.*; \
            `tensorboard --logdir DIR`), and DIR/student.safetensors, a network teacher file (kind policy; \
            a tabular student as the linear network on one-hot states): --teacher-file reads it back, so a \
            student trained here can teach a smaller one, and `distill eval` evaluates it. Without --out, \
            the CSV goes to stdout.

            Examples:
              distill train --env fig2 --teacher fig2 --method n-distill+R --exact --learning-rate 0.5 --iterations 2000 --evaluate-every 500
              distill train --env gridworld --seed 3 --teacher q-learning --method n-distill+R --iterations 300 --out out/run1
              distill train --env chain --teacher adversarial --method teacher-v-reward --optimiser adam --learning-rate 0.05 --iterations 200
              distill train --env gridworld --method kickstarting --teacher q-learning --kickstart-teacher optimal --kickstart-weight 0.5 --iterations 100
              distill train --env gridworld --seed 3 --student mlp:64 --observation image --optimiser adam --learning-rate 0.003 --iterations 300 --out out/mlp
              distill train --env gridworld --seed 3 --teacher q-learning --method teacher-distill-kl --student mlp:16 --optimiser adam --learning-rate 0.01 --replay-size 20000 --replay-batch 64 --replay-ratio 0.25 --iterations 1000 --evaluate-every 250
              distill train --env remote:tcp://127.0.0.1:5560 --student mlp:64,64 --method actor-critic --optimiser adam --learning-rate 0.001 --critic-learning-rate 1 --evaluation-episodes 16
            """)

    @OptionGroup(title: "Problem (or --config)") var environment: EnvironmentOptions
    @OptionGroup(title: "Problem (or --config)") var teacher: TeacherOptions
    @OptionGroup(title: "Problem (or --config)") var method: MethodOptions

    @Option(
        help: ArgumentHelp(
            "Configuration to reproduce: OUT/config.json of a `distill train` run (everything, iterations and "
                + "seed too), or of a `distill cluster` run (its environment, teacher and method); replaces the "
                + "problem flags.", valueName: "file"))
    var config: String?

    /// The single source of the defaults below.
    static let defaults = TrainingConfiguration()

    @Option(help: "Number of optimisation steps.")
    var iterations = Train.defaults.iterations

    @Flag(help: "Use the exact expected update (tabular) instead of sampled episodes.")
    var exact = false

    @Option(help: "Compute exact metrics every this many iterations (and at the last); 0 = never.")
    var evaluateEvery = Train.defaults.evaluateEvery

    @Option(help: "Seed of the run's sampling (default: --seed).")
    var runSeed: UInt64?

    @Option(
        help: ArgumentHelp(
            "Directory for metrics.csv, config.json, student.safetensors and a TensorBoard event file (created if needed).",
            valueName: "dir"))
    var out: String?

    @Option(
        help: ArgumentHelp(
            "The student: tabular, or a network (linear, mlp:W,W[/tanh], conv:CxK,…[/mlp:W,…]; docs/networks.md).",
            valueName: "architecture"))
    var student = Train.defaults.student.architecture

    @Option(help: "What a network student observes of each state: one-hot, image, window:K (K odd) or state-id.")
    var observation = Train.defaults.student.observation

    @Option(help: "Environments stepped together on cartpole, acrobot or mountaincar (one batched forward per step).")
    var environments = Train.defaults.environments

    @Option(help: "Episodes of each sampled evaluation on cartpole, acrobot or mountaincar (mean return, 95 % CI).")
    var evaluationEpisodes = Train.defaults.evaluationEpisodes

    @Option(
        help: ArgumentHelp(
            "Rusu's setting: the teacher plays and a replay memory of this many rows keeps its outputs at every step; "
                + "an iteration is one minibatch update from it (supervised losses only). Default: off.",
            valueName: "rows"))
    var replaySize: Int?

    @Option(
        help: ArgumentHelp(
            "Rows per minibatch, drawn uniformly with replacement from the replay memory (default \(ReplaySpec.defaultBatchSize)).",
            valueName: "rows"))
    var replayBatch: Int?

    @Option(
        help: ArgumentHelp(
            "Minibatch updates per environment step stored in the replay memory (default \(ReplaySpec.defaultUpdatesPerStep): one update every 4 steps).",
            valueName: "updates"))
    var replayRatio: Double?

    @Flag(help: "No progress on stderr.")
    var quiet = false

    static let header =
        "iteration,env_steps,episodes,total_env_steps,sampled_return,sampled_cross_entropy,exact_return,"
        + "cross_entropy_student,cross_entropy_teacher,cross_entropy_uniform,lambda,beta,update_norm,wall_seconds"

    func validate() throws {
        guard iterations >= 0 else { throw ValidationError("--iterations must be non-negative") }
        guard evaluateEvery >= 0 else { throw ValidationError("--evaluate-every must be non-negative") }
        guard (1...65_536).contains(environments) else {
            throw ValidationError("--environments must be in 1...65536, got \(environments)")
        }
        guard (2...1_000_000).contains(evaluationEpisodes) else {
            throw ValidationError(
                "--evaluation-episodes must be in 2...1000000 (a CI needs two), got \(evaluationEpisodes)")
        }
    }

    /// The configuration: from --config (a train or a cluster run's config.json), else the flags.
    func configuration() throws -> TrainingConfiguration {
        var config = TrainingConfiguration()
        if let path = self.config {
            let data = try readInputFile(path, flag: "--config")
            if let trained = try? JSONDecoder().decode(TrainingConfiguration.self, from: data) { return trained }
            do {
                let run = try JSONDecoder().decode(RunConfiguration.self, from: data)
                (config.environment, config.teacher, config.method) = (run.environment, run.teacher, run.method)
                config.seed = runSeed ?? run.environment.seed
            } catch {
                throw ValidationError(
                    "--config: '\(path)' is neither a train nor a cluster run's config.json (\(error))")
            }
        } else {
            config.environment = try environment.spec()
            let environmentSpec = config.environment
            if environmentSpec.kind.isTabular {
                config.teacher = try teacher.spec(defaultSeed: environment.seed) {
                    try checkMemory(environmentSpec)
                    return try validating { try environmentSpec.build() }
                }
            } else {
                config.teacher = try teacher.observedSpec(environment: environmentSpec.kind)
            }
            config.method = try method.spec()
            config.seed = runSeed ?? environment.seed
        }
        config.iterations = iterations
        config.exact = exact
        config.evaluateEvery = evaluateEvery
        config.environments = environments
        config.evaluationEpisodes = evaluationEpisodes
        if self.config == nil {
            config.student = StudentSpec(architecture: student, observation: observation, seed: config.seed)
        }
        try validating { try config.student.validate() }
        if let replaySize {
            config.replay = ReplaySpec(
                capacity: replaySize, batchSize: replayBatch ?? ReplaySpec.defaultBatchSize,
                updatesPerStep: replayRatio ?? ReplaySpec.defaultUpdatesPerStep)
        } else if replayBatch != nil || replayRatio != nil {
            throw ValidationError(
                "--replay-batch and --replay-ratio shape a replay memory: give its size with --replay-size N (without it, the paper's on-policy path)"
            )
        }
        if let replay = config.replay {
            try validating { try replay.check(config.method) }
            guard !config.student.isTabular else {
                throw ValidationError(
                    "a replay memory trains a network student on minibatches of observations: give --student, e.g. mlp:64,64"
                )
            }
            guard !exact else { throw ValidationError("--exact and --replay-size exclude each other") }
        }
        if exact && !config.student.isTabular {
            throw ValidationError("--exact needs the tabular student (exact expected updates are per state)")
        }
        if !config.environment.kind.isTabular {
            guard !config.student.isTabular else {
                throw ValidationError(
                    "\(config.environment.kind.rawValue) has no states to tabulate: give a network student, e.g. --student mlp:64,64"
                )
            }
            guard !exact else {
                throw ValidationError(
                    "--exact needs a tabular environment; \(config.environment.kind.rawValue) has none")
            }
        }
        return config
    }

    func run() throws {
        let config = try configuration()
        if !config.environment.kind.isTabular {
            try trainObserved(config)
            return
        }
        // Also for a --config file: refuse a problem too large for this machine before allocating.
        try checkMemory(config.environment)
        let env = try validating { try config.environment.build() }
        let teach = try validating { try config.teacher.build(for: env) }
        let further = try validating { try config.teacher.buildKickstartTeachers(for: env) }
        if config.student.isTabular {
            var trainer = try validating {
                try Trainer(config, environment: env, teacher: teach, kickstartTeachers: further)
            }
            try train(&trainer, config, environment: env, teacher: teach)
            if let out {
                // The table as the linear network on one-hot states: `distill export` and `eval` read it.
                let file = URL(fileURLWithPath: out).appendingPathComponent("student.safetensors")
                try validating {
                    try TabularStudentNetwork.save(
                        trainer.parameters, environment: env, to: file,
                        metadata: [
                            "run.environment": env.name, "run.method": config.method.method.rawValue,
                            "run.iterations": "\(trainer.iteration)",
                        ])
                }
                if !quiet { FileHandle.standardError.write(Data("train: wrote \(file.path)\n".utf8)) }
            }
        } else {
            let student = try validating { try config.student.buildNetwork(for: env, method: config.method) }
            var trainer = try validating {
                try StudentTrainer(
                    config, environment: env, teacher: teach, kickstartTeachers: further, student: student)
            }
            try train(&trainer, config, environment: env, teacher: teach)
            if let out {
                let file = URL(fileURLWithPath: out).appendingPathComponent("student.safetensors")
                try validating { try trainer.saveStudentAsTeacher(to: file) }
                if !quiet { FileHandle.standardError.write(Data("train: wrote \(file.path)\n".utf8)) }
            }
        }
    }

    /// The metrics sink with `header` written: `--out`'s metrics.csv and a TensorBoard event file
    /// (after locking the directory and writing config.json), else stdout.
    func openMetrics(_ config: TrainingConfiguration, header: String) throws -> TrainMetrics {
        guard let out else { return TrainMetrics(csv: .standardOutput, header: header, events: nil) }
        let directory = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try RunDirectory.lock(directory, command: "distill train")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(config).write(to: directory.appendingPathComponent("config.json"))
        let path = directory.appendingPathComponent("metrics.csv").path
        guard FileManager.default.createFile(atPath: path, contents: nil),
            let handle = FileHandle(forWritingAtPath: path)
        else {
            throw ValidationError("--out: cannot write \(path)")
        }
        let events = try EventFileWriter(directory: directory)
        return TrainMetrics(csv: handle, header: header, events: events)
    }

    /// Runs the iterations of `trainer`, writing the CSV and progress.
    func train<S: Student>(
        _ trainer: inout StudentTrainer<S>, _ config: TrainingConfiguration, environment env: Environment,
        teacher teach: Teacher
    ) throws {
        let iterations = config.iterations
        let sink = try openMetrics(config, header: Self.header)
        defer { sink.close() }
        let started = Date()
        var lastProgress = started
        if !quiet {
            FileHandle.standardError.write(
                Data(
                    "train: \(env.name), teacher \(teach.identity), \(config.method.method.rawValue), \(iterations) iterations\(config.exact ? " (exact)" : "")\n"
                        .utf8))
        }
        func f(_ x: Double?) -> String { x.map { "\($0)" } ?? "" }
        for _ in 0..<iterations {
            let r = try validating { try trainer.runIteration() }
            let elapsed = Date().timeIntervalSince(started)
            let row = [
                "\(r.iteration)", "\(r.environmentSteps)", "\(r.episodes)", "\(r.totalEnvironmentSteps)",
                f(r.sampledReturn),
                f(r.sampledCrossEntropy), f(r.exact?.studentReturn), f(r.exact?.crossEntropyUnderStudent),
                f(r.exact?.crossEntropyUnderTeacher), f(r.exact?.crossEntropyUnderUniform), "\(r.lossWeight)",
                f(r.beta),
                "\(r.updateNorm)", String(format: "%.3f", elapsed),
            ]
            sink.write(row, step: r.iteration)
            if !quiet && (Date().timeIntervalSince(lastProgress) >= 1 || r.iteration == iterations) {
                lastProgress = Date()
                let ret =
                    r.exact.map { String(format: "exact return %.4f", $0.studentReturn) } ?? r.sampledReturn.map {
                        String(format: "sampled return %.4f", $0)
                    } ?? ""
                FileHandle.standardError.write(
                    Data(
                        "train: iteration \(r.iteration)/\(iterations), \(r.totalEnvironmentSteps) env steps, \(ret), \(String(format: "%.1f", elapsed)) s\n"
                            .utf8))
            }
        }
    }
}

/// Where `distill train` writes its rows: the CSV, and with --out the same numbers as TensorBoard
/// scalars (step: the iteration; tag: the column; an empty cell is left out).
struct TrainMetrics {
    private let csv: FileHandle
    private let columns: [String]
    private let events: EventFileWriter?

    /// Writes `header` to `csv`.
    init(csv: FileHandle, header: String, events: EventFileWriter?) {
        self.csv = csv
        self.columns = header.split(separator: ",").map(String.init)
        self.events = events
        csv.write(Data((header + "\n").utf8))
    }

    /// Writes one row of cells (in the header's order).
    func write(_ cells: [String], step: Int) {
        precondition(cells.count == columns.count, "a row of \(cells.count) cells for \(columns.count) columns")
        csv.write(Data((cells.joined(separator: ",") + "\n").utf8))
        // The scalars are the cells as written, so the two files agree to float32.
        let scalars = zip(columns, cells).compactMap { column, cell in Double(cell).map { (tag: column, value: $0) } }
        events?.append(step: Int64(step), scalars: scalars)
    }

    /// Closes the CSV file (not stdout).
    func close() {
        if events != nil { try? csv.close() }
    }
}
