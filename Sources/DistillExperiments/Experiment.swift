import DistillCore
import Foundation

/// The experiments of `distill experiment`: one per figure of Czarnecki et al. (2019), and
/// Rusu et al.'s (2016) comparison of distillation losses.
public enum ExperimentName: String, Sendable, Hashable, Codable, CaseIterable {
    /// Fig. 2: on-policy distill+R cycles, n-distill+R converges.
    case fig2
    /// Fig. 3: student-, teacher- and uniform-driven distillation of Q-learning teachers.
    case fig3
    /// Fig. 4: entropy-regularised vs its expected form as |A| grows.
    case fig4
    /// Fig. 5: noisy teachers, methods that use the teacher's value.
    case fig5
    /// Fig. 6: the chain with an optimal and an adversarial teacher.
    case fig6
    /// Rusu et al. 2016: KL(τ), NLL and MSE teacher distillation from Q-values.
    case rusu
    /// Schmitt et al. 2018: kickstarting vs from scratch and the distillation rules, network students.
    case kickstart
    /// Rusu et al. 2016: students with 1/4, 1/16, 1/64 of a network teacher's parameters.
    case compression
    /// A privileged teacher (the state) and a student that sees a K×K window.
    case privileged
    /// Issue 13, correction 7: Fig. 4 over step × baseline × bare/+R × |A| ∈ {40, 400}.
    case fig4Sweep = "fig4-sweep"
    /// Issue 13, item 5: the paper's findings (Figs. 2, 5, 6) with a network student.
    case faFindings = "fa-findings"
    /// Issue 13, item 3: one student distilled from K teachers of K gridworlds (Rusu et al. 2016, §4.3).
    case multitask
}

/// What sets an experiment's size: the CLI's `--mdps`, `--iterations`, `--seed`, `--quick`.
public struct ExperimentParameters: Sendable, Hashable, Codable {
    /// Which experiment.
    public var name: ExperimentName
    /// MDPs (gridworld seeds) per curve; for fig2 and fig6, whose MDP is fixed, sampling seeds per curve.
    public var mdps: Int
    /// Optimisation steps per run.
    public var iterations: Int
    /// The first seed: MDP k uses seed + k for the gridworld, its teacher and its sampling.
    public var seed: UInt64
    /// The reduced preset (fewer panels, MDPs and iterations; what CI runs).
    public var quick: Bool
    /// The SGD step on the logits, for experiments that take one (fig2: the paper's 0.014 by
    /// default, the fast 0.5 in the quick preset); nil keeps the experiment's own.
    public var step: Double? = nil

    /// Creates parameters.
    public init(
        name: ExperimentName, mdps: Int, iterations: Int, seed: UInt64 = 0, quick: Bool = false, step: Double? = nil
    ) {
        self.name = name
        self.mdps = mdps
        self.iterations = iterations
        self.seed = seed
        self.quick = quick
        self.step = step
    }

    /// The paper's settings (full) or the CI preset (quick), overridable by the caller.
    public static func preset(_ name: ExperimentName, quick: Bool) -> ExperimentParameters {
        let (mdps, iterations): (Int, Int)
        switch (name, quick) {
        case (.fig2, false): (mdps, iterations) = (20, 20_000)
        case (.fig2, true): (mdps, iterations) = (8, 4_000)
        case (.fig3, false): (mdps, iterations) = (1_000, 30_000)
        case (.fig3, true): (mdps, iterations) = (6, 800)
        case (.fig4, false): (mdps, iterations) = (1_000, 30_000)
        case (.fig4, true): (mdps, iterations) = (6, 400)
        case (.fig5, false): (mdps, iterations) = (1_000, 30_000)
        case (.fig5, true): (mdps, iterations) = (10, 2_000)
        case (.fig6, false): (mdps, iterations) = (100, 3_000)
        case (.fig6, true): (mdps, iterations) = (10, 400)
        case (.rusu, false): (mdps, iterations) = (1_000, 30_000)
        case (.rusu, true): (mdps, iterations) = (8, 800)
        case (.kickstart, false): (mdps, iterations) = (5, 3_000)
        case (.kickstart, true): (mdps, iterations) = (4, 300)
        case (.compression, false): (mdps, iterations) = (5, 3_000)
        case (.compression, true): (mdps, iterations) = (4, 300)
        case (.privileged, false): (mdps, iterations) = (10, 3_000)
        case (.privileged, true): (mdps, iterations) = (4, 400)
        case (.fig4Sweep, false): (mdps, iterations) = (10, 30_000)
        case (.fig4Sweep, true): (mdps, iterations) = (3, 300)
        case (.faFindings, false): (mdps, iterations) = (20, 3_000)
        case (.faFindings, true): (mdps, iterations) = (5, 400)
        case (.multitask, false): (mdps, iterations) = (5, 3_000)
        case (.multitask, true): (mdps, iterations) = (4, 200)
        }
        // fig2's quick preset keeps the fast step (several periods in 4,000 iterations); the full
        // default is the paper's (period ≈ 4,400 iterations).
        let step: Double? = name == .fig2 ? (quick ? Experiment.fig2FastStep : Experiment.fig2PaperStep) : nil
        return ExperimentParameters(name: name, mdps: mdps, iterations: iterations, quick: quick, step: step)
    }

    /// Checks ranges; the message says what to change.
    public func validate() throws {
        guard mdps >= 1 else {
            throw DistillError(.invalidConfiguration, "--mdps must be at least 1, got \(mdps)")
        }
        guard iterations >= 1 else {
            throw DistillError(.invalidConfiguration, "--iterations must be at least 1, got \(iterations)")
        }
        if let step, !(step > 0 && step.isFinite) {
            throw DistillError(.invalidConfiguration, "--step must be a positive number, got \(step)")
        }
    }
}

/// A quantity recorded at every evaluation point of a run (exact, by policy evaluation).
public enum Metric: String, Sendable, Hashable, Codable, CaseIterable {
    /// Expected discounted return of the student from the start distribution.
    case studentReturn = "return"
    /// The same for the teacher (constant in a run; the reference line).
    case teacherReturn = "teacher_return"
    /// `E_{π_θ}[Σ_t KL(π(s_t)‖π_θ(s_t))]` (Fig. 3, first column).
    case klUnderStudent = "kl_student"
    /// `E_π[Σ_t KL(π(s_t)‖π_θ(s_t))]`.
    case klUnderTeacher = "kl_teacher"
    /// `E_uniform[Σ_t KL(π(s_t)‖π_θ(s_t))]`.
    case klUnderUniform = "kl_uniform"
    /// Fig. 2: `π_θ(R|s0)`.
    case rightAtStart = "p_right_s0"
    /// Fig. 2: `π_θ(R|sL) = π_θ(R|sR)` (one shared parameter).
    case rightAtSecond = "p_right_sl_sr"
    /// Mean KL(π‖π_θ) per state visited by the student (exact on a gridworld, sampled on CartPole).
    case klPerState = "kl_per_state"
    /// Multi-task: the mean over tasks of the student's share of the task's teacher's return,
    /// `(R − R_uniform) / (R_teacher − R_uniform)` (0 = chance, 1 = the teacher).
    case teacherShareMean = "teacher_share_mean"
    /// Multi-task: the geometric mean over tasks of that share, each floored at 1 % (Rusu's summary).
    case teacherShareGeometricMean = "teacher_share_geomean"
    /// Multi-task: the mean exact return on the held-out gridworlds, played without a teacher.
    case heldOutReturn = "held_out_return"

    /// An axis label.
    public var label: String {
        switch self {
        case .studentReturn: "expected return of the student"
        case .teacherReturn: "expected return of the teacher"
        case .klUnderStudent: "E_student[Σ_t KL(π‖π_θ)]"
        case .klUnderTeacher: "E_teacher[Σ_t KL(π‖π_θ)]"
        case .klUnderUniform: "E_uniform[Σ_t KL(π‖π_θ)]"
        case .rightAtStart: "π_θ(R | s0)"
        case .rightAtSecond: "π_θ(R | sL) = π_θ(R | sR)"
        case .klPerState: "KL(π‖π_θ) per state under the student"
        case .teacherShareMean: "share of the teacher's return over chance, mean over tasks"
        case .teacherShareGeometricMean: "share of the teacher's return over chance, geometric mean"
        case .heldOutReturn: "expected return on held-out gridworlds"
        }
    }
}

/// How a run's teacher is made.
public enum TeacherRecipe: String, Sendable, Hashable, Codable {
    /// `configuration.teacher.build(for:)`.
    case configuration
    /// Fig. 4 (ours): Q-learning on the 4-action gridworld of the same seed, its greedy values backed up
    /// one step to the extra stay-put actions, policy ε-greedy over all |A| actions. Q-learning on
    /// the many-action MDP itself barely leaves the start cell (its ε-exploration picks a movement
    /// action 4 times in |A|), so it makes no teacher at |A| ≥ 400.
    case liftedFromFourActions = "lifted-from-4-actions"
}

/// One training run of an experiment: a curve of a panel on one MDP (or sampling seed).
public struct RunSpec: Sendable, Hashable, Codable {
    /// File-safe unique name, also the per-run CSV's name.
    public var id: String
    /// The panel (e.g. `T=0.01`, `|A|=400`, `25% noise, MC student`).
    public var panel: String
    /// The curve within the panel (e.g. a method or a control policy).
    public var curve: String
    /// The MDP (or seed) index, 0-based; runs of different curves with equal index are paired.
    public var replicate: Int
    /// The run.
    public var configuration: TrainingConfiguration
    /// How its teacher is built.
    public var teacherRecipe: TeacherRecipe = .configuration
    /// A network student (or CartPole): then `configuration` gives the method, iterations and seeds.
    public var network: NetworkRunSpec?
}

/// One panel of the figure: a run panel's curves for one metric.
public struct PlotCell: Sendable, Hashable, Codable {
    /// The run panel whose curves are drawn.
    public var panel: String
    /// The metric on the y axis.
    public var metric: Metric
    /// The panel title.
    public var title: String
    /// A metric drawn as a dashed reference (the teacher's return).
    public var reference: Metric?
    /// Logarithmic y axis.
    public var logY = false
}

/// The figure's layout (rows of panels), written as plot.json for the plotting program.
public struct PlotLayout: Sendable, Hashable, Codable {
    /// The figure title.
    public var title: String
    /// Rows of panels.
    public var rows: [[PlotCell]]
    /// The x axis label.
    public var xLabel = "iteration (optimisation step of the student)"
    /// Logarithmic x axis.
    public var logX = false
}

/// An experiment: its runs, where they are evaluated, what is recorded, how it is drawn and judged.
public struct Experiment: Sendable {
    /// The parameters it was made from.
    public let parameters: ExperimentParameters
    /// A one-line description.
    public let title: String
    /// Every run, MDP-major (runs of one MDP are adjacent so a worker reuses the MDP's teacher).
    public let runs: [RunSpec]
    /// Iterations after which the metrics are taken (0 = the initial student), ascending.
    public let evaluationIterations: [Int]
    /// The recorded metrics.
    public let metrics: [Metric]
    /// The figure.
    public let layout: PlotLayout
    /// What the paper found, for findings.md.
    public let paperFinding: String
    let judge: @Sendable (ExperimentResults) -> [Finding]

    /// The findings of `results` (complete or partial), with numbers and a verdict.
    public func findings(_ results: ExperimentResults) -> [Finding] { judge(results) }

    /// The run with index `i` belongs to shard `shard` of `count` when `i % count == shard`:
    /// a deterministic split into disjoint shares that together are all runs.
    public func runs(shard: Int, of count: Int) -> [RunSpec] {
        precondition(count >= 1 && shard >= 0 && shard < count, "shard \(shard) of \(count) is out of range")
        return runs.enumerated().filter { $0.offset % count == shard }.map(\.element)
    }
}

/// A list of evaluation points: 0, about `logPoints` log-spaced and `linearPoints` evenly spaced
/// iterations up to `iterations` (always included).
public func evaluationGrid(iterations: Int, logPoints: Int, linearPoints: Int) -> [Int] {
    var points: Set<Int> = [0, iterations]
    if logPoints > 0 {
        for k in 0...logPoints {
            let x = Foundation.pow(Double(iterations), Double(k) / Double(logPoints))
            points.insert(min(iterations, max(1, Int(x.rounded()))))
        }
    }
    if linearPoints > 0 {
        for k in 1...linearPoints { points.insert(iterations * k / linearPoints) }
    }
    return points.sorted()
}
