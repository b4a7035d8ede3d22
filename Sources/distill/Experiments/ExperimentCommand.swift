import ArgumentParser
import DistillCore
import DistillExperiments
import DistillRuntime
import Foundation

extension ExperimentName: ExpressibleByArgument {}

/// `--shard I/M`: this machine's share of the runs.
struct Shard: Sendable {
    let index: Int
    let count: Int

    /// Parses `I/M` with `0 ≤ I < M`; the error says what is expected.
    init(parsing argument: String) throws {
        let parts = argument.split(separator: "/")
        guard parts.count == 2, let i = Int(parts[0]), let m = Int(parts[1]), m >= 1, i >= 0, i < m else {
            throw ValidationError(
                "--shard \(argument): expected I/M with 0 ≤ I < M, e.g. --shard 0/4 … --shard 3/4 for 4 machines (a Slurm array task: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)"
            )
        }
        index = i
        count = m
    }
}

/// `distill experiment`: reproduces one figure of the paper.
struct ExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract:
            "Reproduce a figure of Czarnecki et al. (2019) (fig2–fig6), Rusu et al.'s loss comparison (rusu), or a network-student experiment (kickstart, compression, privileged, multitask).",
        discussion: """
            One ITERATION is one optimisation step of the tabular student, as in `distill train`: \
            collect 8 episodes with the control policy (to the episode's end) and apply the method's \
            sampled update averaged over them (SGD, learning rate 0.1). fig2 also runs the paper's \
            exact version: one expected update per iteration (--step, default 0.014 on the logits = \
            0.028 on the paper's sigmoid parameter, the step whose period matches the figure; --quick \
            keeps the fast 0.5 = 1 on the sigmoid parameter). Metrics (return, KL = E_z[Σ_t KL(π‖π_θ)]) are exact, by \
            policy evaluation, at ~30–80 points per run.

            The experiments (paper settings by default; --quick is the reduced preset CI runs):
              fig2  Fig. 2's MDP and tied sigmoid student: on-policy-distill+R vs n-distill+R, exact and \
            sampled (--mdps sampling seeds, default 20; 20,000 iterations). Finding: oscillation period, step of convergence.
              fig3  20×20 gridworlds, Q-learning teachers T ∈ {0, 0.01, 0.1}, on-policy distillation \
            (ℓ = H×) driven by the student, the teacher or the uniform policy (1,000 MDPs, 30,000 \
            iterations). Finding: iterations to 95% of the way to the teacher's return, and per MDP to 99% \
            and 99.9% of it ("full teacher performance"), and their ratios.
              fig4  |A| ∈ {4, 40, 400, 4000} (4 move, the rest stay put): on-policy-distill, \
            entropy-regularised, exp-entropy-regularised (1,000 MDPs, 30,000). Finding: final return per method per |A|.
              fig5  greedy Q-learning teacher with 0/15/25% of its visited states flipped, V_π from 100 \
            rollouts; MC and TD(1) students; 7 methods (1,000 MDPs, 30,000). Finding: final return per method.
              fig6  the chain (T = 5) with the optimal and the adversarial teacher; 7 methods (--mdps \
            seeds, default 100; 3,000 iterations). Finding: final return per method and teacher.
              rusu  teacher distillation of a Q-learning teacher (T = 0.01) with Rusu's KL (τ = 0.01), \
            NLL and MSE (1,000 MDPs, 30,000). Finding: final return and KL per loss.
              fig4-sweep  fig4's sensitivity: SGD step ∈ {0.001, 0.003, 0.01, 0.03, 0.1} (or --step) × {no \
            baseline, student critic as baseline} × {on-policy-distill, entropy-regularised, \
            exp-entropy-regularised and their +R forms} × |A| ∈ {40, 400} (10 MDPs, 30,000; --only \
            selects panels). Finding: the settings, if any, with the paper's ordering.
              fa-findings  the paper's findings with network students: Fig. 2's MDP (mlp:16 on one-hot, \
            --step), Fig. 5's 25%-noisy teacher (mlp:64 on images; --quick: one-hot), Fig. 6's \
            adversarial chain (mlp:16 on one-hot) (20 seeds, 3,000). Finding: cycling, paired return differences.
              kickstart  network students (Adam, 8 episodes per update) from scratch (actor-critic), \
            kickstarting (λ 1 → 0 over half the run), n-distill+R, teacher-v-reward, on-policy-distill+R, on CartPole \
            (teacher mlp:64,64) and gridworld images (teacher conv:8x3/mlp:64), a same-size and a smaller \
            student; teachers trained by actor-critic inside the experiment and kept in OUT/teachers (--mdps \
            student seeds, default 5; 3,000). Finding: env steps to 90% of the teacher, final return.
              compression  students with ~1/4, 1/16, 1/64 of a 2×256 teacher's parameters (CartPole, \
            gridworld one-hot) and of a conv teacher (gridworld images), the teacher's logits read as Q \
            (τ = 0.01); KL, NLL, MSE and n-distill on fresh teacher- and student-driven episodes, and KL, \
            NLL, MSE in Rusu's setting (the teacher's gameplay through a replay memory, minibatches of 64, one \
            update per 4 steps) (5 seeds; 3,000). Finding: share of the teacher's return and KL per state.
              privileged  a Q-learning teacher on the state, mlp:64 students on a K×K window (K = 3, 5, \
            7): on-policy-distill, n-distill+R, teacher-v-reward, kickstarting, against the exact \
            window-aliased tabular policy gradient (10 MDPs; 3,000).
              multitask  one student distilled (KL, τ = 0.01, teacher-driven) from the Q-learning teachers of 10 \
            gridworlds seen as images (conv:8x3/mlp:64): the task as 10 input planes, or one head per task \
            (…/heads:10); against one student per task and a multi-task actor-critic from scratch; 10 held-out \
            gridworlds played without a teacher (--mdps families of gridworlds, default 5; 3,000). Finding: mean \
            and geometric mean share of each teacher's return, held-out return.
            --quick: fig2 8 seeds × 4,000 at step 0.5; fig3 6 MDPs × 800; fig4 |A| ∈ {4, 400}, 6 × 400; fig5 25% \
            noise, MC student, 4 methods, 10 × 2,000; fig6 10 × 400; rusu 8 × 800; \
            fig4-sweep |A| = 40, steps 0.01 and 0.1, no baseline, 3 × 300; fa-findings 5 × 400; kickstart gridworld one-hot \
            (mlp:64 teacher and student), scratch and kickstarting, 4 seeds × 300; compression gridworld one-hot, \
            mlp:64,64 teacher, 1/4 student, 4 × 300; privileged K = 5, 4 MDPs × 400; multitask 3 tasks and 3 held-out 10×10 \
            gridworlds, mlp:64, 4 families × 200. Chain episodes are capped at 1,000 steps.

            Where the paper is silent the choice is ours: SGD 0.1 and 8 episodes per update; the \
            gridworld's unpublished cell probabilities (README); fig4's teacher (Q-learning on the \
            4-action gridworld, its values backed up to the stay-put actions, ε-greedy with ε = 0.1: \
            Q-learning on |A| = 4000 itself never leaves the start cell); fig5's TD(1) student (score term \
            r̂_t + γV̂(s_{t+1}) − V̂(s_t) with a TD critic); fig6's iterations and seed count.

            Output in --out (default runs/experiment-NAME[-quick]): runs/<id>.csv per run, \
            aggregate.csv (mean, sd, 95% CI with Student t, per panel, curve, metric, iteration), \
            findings.md and findings.json (each finding with numbers and reproduced yes/no, also \
            printed), figure.png (needs matplotlib: scripts/setup --plots). A progress line with an \
            ETA goes to stderr. Runs already on disk are skipped: rerun the same command to resume.

            Fan-out over machines: each machine runs `--shard I/M` (every M-th run, disjoint, \
            together complete) into a shared --out; then one `--aggregate-only` merges them (see \
            deploy/slurm/experiment-array.sbatch). Within a machine runs go to --workers threads.

            Examples:
              distill experiment fig2 --quick
              distill experiment fig3 --mdps 30 --iterations 3000 --out runs/fig3-small
              distill experiment fig5 --shard 3/16 --out /shared/fig5      # machine 3 of 16
              distill experiment fig5 --aggregate-only --out /shared/fig5  # after all shards
            """)

    @Argument(
        help:
            "fig2, fig3, fig4, fig5, fig6, rusu, fig4-sweep, fa-findings, kickstart, compression, privileged or multitask."
    )
    var name: ExperimentName

    @Option(help: "MDPs per curve (fig2, fig6: sampling seeds per curve). Default: the paper's (or --quick's).")
    var mdps: Int?

    @Option(help: "Iterations (optimisation steps) per run. Default: the paper's (or --quick's).")
    var iterations: Int?

    @Option(
        help: ArgumentHelp(
            "fig2's SGD step on the logits (default: the paper's 0.014; --quick: the fast 0.5).", valueName: "step"))
    var step: Double?

    @Option(help: "First seed: MDP k uses seed + k for its gridworld, teacher and sampling.")
    var seed: UInt64 = 0

    @Flag(help: "The reduced preset that CI runs.")
    var quick = false

    @Option(
        help: ArgumentHelp(
            "Output directory (default runs/experiment-NAME, -quick appended with --quick).", valueName: "dir"))
    var out: String?

    @Option(name: .customLong("workers"), help: "Worker threads (default: all cores).")
    var workerCount: Int?

    /// --workers, or every core (not a printed default: help must not depend on the machine).
    var workers: Int { workerCount ?? ProcessInfo.processInfo.activeProcessorCount }

    @Option(
        name: .customLong("shard"),
        help: ArgumentHelp("Run only share I of M (0 ≤ I < M): runs whose index mod M is I.", valueName: "I/M"))
    var shardText: String?

    var shard: Shard? { shardText.flatMap { try? Shard(parsing: $0) } }

    @Option(
        name: .customLong("only"),
        help: ArgumentHelp(
            "Run only the runs whose panel contains TEXT (repeatable: every TEXT), e.g. --only '|A|=40,' --only 'SGD 0.1,'.",
            valueName: "text"))
    var onlyPanels: [String] = []

    @Flag(help: "Run nothing: merge the runs in --out into aggregate.csv, findings and the figure.")
    var aggregateOnly = false

    @Flag(help: "Do not draw figure.png.")
    var noPlot = false

    @Flag(help: "No progress line.")
    var quiet = false

    func validate() throws {
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1, got \(workers)") }
        if let mdps, mdps < 1 { throw ValidationError("--mdps must be at least 1, got \(mdps)") }
        if let iterations, iterations < 1 {
            throw ValidationError("--iterations must be at least 1, got \(iterations)")
        }
        if let shardText { _ = try Shard(parsing: shardText) }
        if aggregateOnly && shardText != nil {
            throw ValidationError("--aggregate-only merges all shards: drop --shard")
        }
    }

    func run() throws {
        let directory = URL(fileURLWithPath: out ?? "runs/experiment-\(name.rawValue)\(quick ? "-quick" : "")")
        var parameters = ExperimentParameters.preset(name, quick: quick)
        if let mdps { parameters.mdps = mdps }
        if let iterations { parameters.iterations = iterations }
        if let step { parameters.step = step }
        parameters.seed = seed
        if aggregateOnly {
            guard let recorded = try validating({ try ExperimentDirectory.recorded(in: directory) }) else {
                throw ValidationError(
                    "\(directory.path) has no experiment.json: nothing to aggregate (give the --out of an experiment)")
            }
            guard recorded.name == name else {
                throw ValidationError(
                    "\(directory.path) holds \(ExperimentDirectory.describe(recorded)), not \(name.rawValue)")
            }
            parameters = recorded
        } else {
            try validating { try ExperimentDirectory.prepare(parameters, directory: directory) }
        }
        let experiment = try validating { try Experiment.make(parameters) }
        let label = ExperimentDirectory.describe(parameters)
        if !aggregateOnly {
            let share = (shard.map { experiment.runs(shard: $0.index, of: $0.count) } ?? experiment.runs).filter {
                run in
                onlyPanels.allSatisfy { run.panel.contains($0) }
            }
            if !quiet {
                emitError(
                    "experiment \(label): \(share.count) runs\(shard.map { " (shard \($0.index)/\($0.count) of \(experiment.runs.count))" } ?? ""), \(workers) workers, out \(directory.path)"
                )
            }
            let runner = ExperimentRunner(experiment: experiment, directory: directory, workers: workers)
            let printer = ProgressPrinter(name: name.rawValue, workers: workers, quiet: quiet)
            try validating { try runner.run(share) { printer.update($0) } }
        }
        let results = try validating { try ExperimentResults.load(experiment, directory: directory) }
        if (shard != nil || !onlyPanels.isEmpty) && results.count < experiment.runs.count {
            emit(
                "\(shard.map { "shard \($0.index)/\($0.count)" } ?? "the --only runs") done; \(results.count) of \(experiment.runs.count) runs are in \(directory.path). When every shard has finished: distill experiment \(name.rawValue) --aggregate-only --out \(directory.path)"
            )
            return
        }
        guard results.count > 0 else {
            throw ValidationError("\(directory.path)/runs holds no finished run of \(label): nothing to aggregate")
        }
        let findings = try validating { try ExperimentDirectory.summarise(results, directory: directory) }
        emit(
            "\(label): \(results.count) of \(experiment.runs.count) runs; aggregate: \(directory.appendingPathComponent("aggregate.csv").path)"
        )
        for f in findings {
            emit("[\(f.verdict)] \(f.name)\n  paper:    \(f.paper)\n  measured: \(f.measured)")
        }
        emit("findings: \(directory.appendingPathComponent("findings.md").path)")
        let events = directory.appendingPathComponent("tensorboard")
        try Self.writeEvents(results, to: events)
        emit("TensorBoard: one event file per run in \(events.path) (tensorboard --logdir \(events.path))")
        if !noPlot { ExperimentPlot.draw(directory: directory) { emit($0) } }
    }

    /// Every run's table as TensorBoard scalars, in `directory/RUN/events.out.tfevents.*`: a tag
    /// per column of runs/RUN.csv (iteration, env_steps, wall_seconds, each metric), the iteration
    /// as the step, the CSV's
    /// numbers (float32 in the event; non-finite cells have no event). Written anew at each
    /// aggregation, so a resumed or sharded experiment has one file per run. The tree is written
    /// in a private staging directory and then renamed into place: shards that aggregate at the
    /// same moment each put a whole tree there (the last one stays) instead of removing files
    /// from under one another.
    static func writeEvents(_ results: ExperimentResults, to directory: URL) throws {
        let manager = FileManager.default
        let staging = directory.deletingLastPathComponent().appendingPathComponent(
            ".\(directory.lastPathComponent)-\(getpid())-\(UUID().uuidString.prefix(8))")
        defer { try? manager.removeItem(at: staging) }
        do {
            for (id, table) in results.tables.sorted(by: { $0.key < $1.key }) {
                let writer = try EventFileWriter(directory: staging.appendingPathComponent(id))
                for (row, iteration) in table.iterations.enumerated() {
                    var scalars = [
                        ("iteration", Double(iteration)), ("env_steps", Double(table.environmentSteps[row])),
                        ("wall_seconds", table.wallSeconds[row]),
                    ]
                    for (metric, column) in zip(table.metrics, table.values) {
                        scalars.append((metric.rawValue, column[row]))
                    }
                    writer.append(step: Int64(iteration), scalars: scalars)
                }
            }
            try manager.createDirectory(at: staging, withIntermediateDirectories: true)
            // Another shard may put its tree in place between the removal and the rename: try again.
            for attempt in 1...5 {
                try? manager.removeItem(at: directory)
                do {
                    try manager.moveItem(at: staging, to: directory)
                    return
                } catch {
                    if attempt == 5 { throw error }
                }
            }
        } catch {
            throw RunRefusal("cannot write the TensorBoard files in \(directory.path): \(error)")
        }
    }
}

/// Writes a line to stderr.
func emitError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// The progress line: done/total runs, elapsed, ETA (at most one line a second, and the last).
final class ProgressPrinter: @unchecked Sendable {
    private let lock = NSLock()
    private var last = Date.distantPast
    let name: String
    let workers: Int
    let quiet: Bool

    init(name: String, workers: Int, quiet: Bool) {
        self.name = name
        self.workers = workers
        self.quiet = quiet
    }

    func update(_ p: ExperimentProgress) {
        guard !quiet else { return }
        lock.lock()
        defer { lock.unlock() }
        let finished = p.done + p.skipped == p.total
        guard finished || Date().timeIntervalSince(last) >= 1 else { return }
        last = Date()
        let eta = p.remaining.map { "ETA \(duration($0))" } ?? "ETA unknown"
        let resumed = p.skipped > 0 ? " (\(p.skipped) already on disk)" : ""
        emitError(
            "\(name): \(p.done + p.skipped)/\(p.total) runs\(resumed), \(String(format: "%.1f", 100 * Double(p.done + p.skipped) / Double(max(1, p.total))))%, \(duration(p.elapsed)) elapsed, \(finished ? "done" : eta)"
        )
    }
}

/// `1h02m`, `3m07s`, `12.4s`.
func duration(_ seconds: Double) -> String {
    if seconds < 60 { return String(format: "%.1fs", seconds) }
    let s = Int(seconds.rounded())
    if s < 3600 { return String(format: "%dm%02ds", s / 60, s % 60) }
    return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60)
}
