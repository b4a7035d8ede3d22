import Foundation

/// A student the learning step can update: it turns the rule's per-step logit-space update of an
/// episode (METHODS.md eq. 1; FUNCTION-APPROXIMATION.md §1) into a pending change of its own
/// parameters, and applies the pending change with its optimiser.
///
/// The tabular student (``TabularStudent``) is the first conformer: it adds each step's update to
/// the row of the step's state. A network student back-propagates the same per-step updates
/// through its network; the rules do not change, the student kind does.
public protocol Student: Sendable {
    /// Number of actions.
    var actionCount: Int { get }
    /// Episodes accumulated into the pending update since it was last applied or discarded.
    var pendingEpisodes: Int { get }
    /// Adds the rule's sampled update of `episode` (read with the current parameters) to the
    /// pending update.
    mutating func accumulate<E: EpisodeView>(_ episode: E, rule: UpdateRule, context: UpdateContext)
    /// Applies the pending update (its mean over the pending episodes) with the optimiser, unless
    /// `bound` refuses it; the pending update is cleared either way.
    mutating func applyPending(bound: ParameterBound?) -> UpdateOutcome
    /// `π_θ(a|s)` for every state of the tabular environment underneath, row-major
    /// `[states × actions]` (exact evaluation).
    func stateTable() -> [Double]
    /// The student's logits at every state of the tabular environment underneath, as a table:
    /// its policy there, for collecting episodes and exact evaluation.
    var tabularParameters: StudentParameters { get }
    /// The policy of ``tabularParameters``, for collecting episodes (the tabular student keeps it
    /// cached).
    func tabularPolicy() -> StudentPolicy
    /// Adds the sampled update of an episode record whose teacher outputs are read from the
    /// tabular `teacher` by state id (`distill train`'s collection).
    mutating func accumulate(_ episode: EpisodeBuffer, teacher: Teacher, rule: UpdateRule, context: UpdateContext)
    /// Whether the student learns its own values (a network's value head): the learning state
    /// then keeps no tabular critic and the student reads and trains its own.
    var ownsCritic: Bool { get }
}

extension Student {
    /// A student reads the learning state's tabular critic unless it says otherwise.
    public var ownsCritic: Bool { false }

    /// The policy of ``tabularParameters``.
    public func tabularPolicy() -> StudentPolicy { StudentPolicy(tabularParameters) }

    /// The record read through ``TabularEpisode``.
    public mutating func accumulate(
        _ episode: EpisodeBuffer, teacher: Teacher, rule: UpdateRule, context: UpdateContext
    ) {
        accumulate(TabularEpisode(episode, teacher: teacher), rule: rule, context: context)
    }
}

/// What became of a pending update.
public enum UpdateOutcome: Sendable, Hashable {
    /// Applied; the Euclidean norm of the update direction.
    case applied(norm: Double)
    /// Not applied: it would have made a parameter non-finite or larger than the bound.
    case refused(reason: String)
}

/// The largest magnitude a student parameter may take after an update. An update that would make
/// any parameter non-finite or larger is refused (not applied) and counted as quarantined.
///
/// The default `1e4` is far beyond any useful softmax logit (`exp(−1e4)` is zero in Double), so a
/// legitimate run never meets it; an unroll with an absurd reward or a bit-flipped probability
/// does, and its damage stops at the bound.
public struct ParameterBound: Sendable, Hashable, Codable {
    /// The largest allowed `|θ_i|`.
    public var magnitude: Double

    /// The default bound, `1e4`.
    public static let standard = ParameterBound(magnitude: 1e4)

    /// A bound of `magnitude` (positive).
    public init(magnitude: Double) {
        precondition(magnitude > 0, "a parameter bound must be positive")
        self.magnitude = magnitude
    }

    /// Whether `value` is allowed.
    @inlinable public func admits(_ value: Double) -> Bool { value.isFinite && abs(value) <= magnitude }
}

/// The tabular (or tied-row) softmax student with its optimiser: ``StudentParameters``, the
/// per-version policy cache, the pending update and the optimiser state.
public struct TabularStudent: Student {
    /// The parameters.
    public private(set) var parameters: StudentParameters
    /// The policy of the current parameters.
    public private(set) var policy: StudentPolicy
    /// The optimiser and its state.
    public private(set) var optimiser: Optimiser
    /// The pending update.
    @usableFromInline var accumulator: UpdateAccumulator

    /// A student with `parameters`, optimised by `optimiser`.
    public init(parameters: StudentParameters, optimiser: Optimiser) {
        self.parameters = parameters
        self.optimiser = optimiser
        policy = StudentPolicy(parameters)
        accumulator = UpdateAccumulator(rowCount: parameters.rowCount, actionCount: parameters.actionCount)
    }

    /// Number of actions.
    public var actionCount: Int { parameters.actionCount }
    /// Episodes in the pending update.
    public var pendingEpisodes: Int { accumulator.episodes }

    /// Adds the sampled update of `episode` to the pending update.
    @inlinable
    public mutating func accumulate<E: EpisodeView>(_ episode: E, rule: UpdateRule, context: UpdateContext) {
        accumulateSampledUpdate(episode, policy: policy, rule: rule, context: context, into: &accumulator)
    }

    /// The fast path of `distill train`: the sampled update of an episode record whose teacher
    /// outputs are read from the tabular `teacher` by state id (same rule code).
    public mutating func accumulate(
        _ episode: EpisodeBuffer, teacher: Teacher, rule: UpdateRule, context: UpdateContext
    ) {
        accumulateSampledUpdate(
            episode: episode, teacher: teacher, policy: policy, rule: rule, context: context, into: &accumulator)
    }

    /// Applies the pending update; SGD touches only the rows the episodes visited.
    public mutating func applyPending(bound: ParameterBound?) -> UpdateOutcome {
        if optimiser.kind == .sgd && bound == nil {
            // Sparse fast path: only rows the episodes touched change.
            let squared = accumulator.applyStochasticGradientStep(
                learningRate: optimiser.learningRate, to: &parameters, policy: &policy)
            optimiser.stepCount += 1
            return .applied(norm: squared.squareRoot())
        }
        let touched = Array(accumulator.touchedRows)
        let update = accumulator.finish(policy: policy)
        return apply(update, rows: optimiser.kind == .sgd ? touched : nil, bound: bound)
    }

    /// Applies a full update direction (the exact expected update, or a caller's own).
    public mutating func apply(_ update: [Double], bound: ParameterBound? = nil) -> UpdateOutcome {
        accumulator.clear()
        return apply(update, rows: nil, bound: bound)
    }

    /// Applies `update`; `rows`, when given, are the only rows it can change (SGD).
    private mutating func apply(_ update: [Double], rows: [Int32]?, bound: ParameterBound?) -> UpdateOutcome {
        let norm = update.reduce(0) { $0 + $1 * $1 }.squareRoot()
        guard let bound else {
            optimiser.apply(update, to: &parameters)
            policy = StudentPolicy(parameters)
            return .applied(norm: norm)
        }
        var proposed = parameters
        var stepped = optimiser
        stepped.apply(update, to: &proposed)
        let na = parameters.actionCount
        let indices: [Int] =
            rows.map { rows in rows.flatMap { r in (Int(r) * na)..<(Int(r) * na + na) } }
            ?? Array(proposed.logits.indices)
        if let bad = indices.first(where: { !bound.admits(proposed.logits[$0]) }) {
            return .refused(
                reason:
                    "the update would set parameter \(bad) to \(proposed.logits[bad]) (bound ±\(bound.magnitude)); update norm \(norm)"
            )
        }
        parameters = proposed
        optimiser = stepped
        if let rows {
            for r in rows { policy.refresh(row: Int(r), from: parameters) }
        } else {
            policy = StudentPolicy(parameters)
        }
        return .applied(norm: norm)
    }

    /// `π_θ(·|s)` for every state.
    public func stateTable() -> [Double] { policy.stateTable() }
    /// The parameters themselves.
    public var tabularParameters: StudentParameters { parameters }
    /// The cached policy.
    public func tabularPolicy() -> StudentPolicy { policy }

    /// The untrained student of `environment` (``Trainer/initialStudent(for:)``) with the
    /// optimiser `method` names; throws on a learning rate that is not positive.
    public static func initial(for environment: Environment, method: MethodSpec) throws -> TabularStudent {
        guard method.learningRate > 0 && method.learningRate.isFinite else {
            throw DistillError(.invalidConfiguration, "learning rate must be positive, got \(method.learningRate)")
        }
        return TabularStudent(
            parameters: Trainer.initialStudent(for: environment),
            optimiser: Optimiser(kind: method.optimiser, learningRate: method.learningRate))
    }

    /// Replaces parameters and optimiser state (a resume); the pending update is dropped.
    public mutating func restore(parameters: StudentParameters, optimiser: Optimiser) {
        precondition(
            parameters.rowCount == self.parameters.rowCount && parameters.actionCount == self.parameters.actionCount,
            "restored parameters have another shape")
        self.parameters = parameters
        self.optimiser = optimiser
        policy = StudentPolicy(parameters)
        accumulator.clear()
    }
}

/// Kickstarting with several teachers (Schmitt et al. 2018): the main teacher's λ (the rule's,
/// scheduled) and a constant λ_k per further teacher; the step's teacher is their mixture and
/// the rule's λ their sum (``Kickstarting/apply(_:teacher:further:weights:)``).
public struct KickstartTeachers: Sendable {
    /// The further teachers (tabular, read by state id).
    public let teachers: [Teacher]
    /// Their constant weights λ_k.
    public let weights: [Double]

    /// Further teachers with one weight each (non-negative).
    public init(teachers: [Teacher], weights: [Double]) throws {
        guard teachers.count == weights.count else {
            throw DistillError(.invalidConfiguration, "give one kickstarting weight per further teacher")
        }
        guard weights.allSatisfy({ $0 >= 0 && $0.isFinite }) else {
            throw DistillError(.invalidConfiguration, "kickstarting weights must be finite and non-negative")
        }
        self.teachers = teachers
        self.weights = weights
    }
}

/// An episode whose teacher outputs are the kickstarting mixture of the episode's own teacher
/// (weight `mainWeight`) and further tabular teachers read by state id (weights `λ_k`), each
/// normalised by the total `Λ`: the same mixture ``Kickstarting/combine(_:weights:)`` builds
/// for tabular teachers, formed per step so that it works on outputs that came over the wire.
public struct KickstartEpisode<Base: EpisodeView>: EpisodeView {
    /// The episode.
    public let base: Base
    /// The further teachers.
    public let further: KickstartTeachers
    /// `λ_main / Λ`.
    @usableFromInline let mainShare: Double
    /// `λ_k / Λ`.
    @usableFromInline let shares: [Double]

    /// Mixes `base`'s teacher (weight `mainWeight`) with `further`; `Λ` must be positive.
    public init(_ base: Base, mainWeight: Double, further: KickstartTeachers) {
        let total = mainWeight + further.weights.reduce(0, +)
        precondition(total > 0, "kickstarting needs a positive total weight")
        self.base = base
        self.further = further
        mainShare = mainWeight / total
        shares = further.weights.map { $0 / total }
    }

    @inlinable public var length: Int { base.length }
    @inlinable public var terminated: Bool { base.terminated }
    @inlinable public func state(_ t: Int) -> Int { base.state(t) }
    @inlinable public func action(_ t: Int) -> Int { base.action(t) }
    @inlinable public func reward(_ t: Int) -> Double { base.reward(t) }
    @inlinable public func behaviourProbability(_ t: Int) -> Double { base.behaviourProbability(t) }
    @inlinable public func teacherProbability(_ slot: Int, _ action: Int) -> Double {
        let s = base.state(slot)
        var p = mainShare * base.teacherProbability(slot, action)
        for (k, teacher) in further.teachers.enumerated() {
            p += shares[k] * teacher.probabilities[s * teacher.actionCount + action]
        }
        return p
    }
    @inlinable public func teacherLogProbability(_ slot: Int, _ action: Int) -> Double {
        Foundation.log(max(teacherProbability(slot, action), teacherLogProbabilityFloor))
    }
    @inlinable public func teacherValue(_ slot: Int) -> Double {
        let s = base.state(slot)
        var v = mainShare * base.teacherValue(slot)
        for (k, teacher) in further.teachers.enumerated() { v += shares[k] * teacher.values[s] }
        return v
    }
    @inlinable public func teacherActionValue(_ slot: Int, _ action: Int) -> Double {
        preconditionFailure("kickstarting mixes cross-entropy losses, which read no Q-values")
    }
}

/// Everything a learner learns with, in one value: the student and its optimiser, the critic, the
/// schedules' position, the counters and the sampling generator. `distill train`, the learner role
/// and the experiments all step this one value; a checkpoint is its ``snapshot``.
///
/// One optimisation step is ``accumulate(_:)`` of `method.episodesPerIteration` episodes
/// (``updateDue`` then says so) followed by ``applyUpdate()``: the rule and the critic's values are
/// those of the batch's start, the critic learns from each episode as it is accumulated, and the
/// λ and β schedules advance once per applied update.
public struct LearnerState<S: Student>: Sendable {
    /// The method: rule, schedules, optimiser settings, critic settings, batch size.
    public let method: MethodSpec
    /// The configured teacher kind (some rules' defaults depend on it).
    public let teacherKind: TeacherSpec.Kind?
    /// `γ`.
    public let discount: Double
    /// Further kickstarting teachers, if any.
    public let kickstart: KickstartTeachers?
    /// Refuses updates that would leave parameters non-finite or beyond it; nil: no check (the
    /// single-process trainer, whose experiments count diverged runs).
    public var bound: ParameterBound?
    /// The student.
    public var student: S { storedStudent }
    @usableFromInline var storedStudent: S
    /// The student critic, for rules that need one.
    public var critic: TabularCritic? { storedCritic }
    @usableFromInline var storedCritic: TabularCritic?
    /// Updates applied (the schedules' step).
    public private(set) var updates = 0
    /// Updates refused by ``bound``.
    public private(set) var quarantined = 0
    /// Environment steps accumulated.
    public var environmentSteps: UInt64 { storedEnvironmentSteps }
    @usableFromInline var storedEnvironmentSteps: UInt64 = 0
    /// The sampling generator (for learners that collect their own episodes).
    public var rng: Xoshiro256StarStar
    /// λ set by an operator (replaces the schedule's from now on), or nil.
    public private(set) var lambdaOverride: Double?
    /// The rule of the batch being accumulated (the schedule's λ at ``updates``).
    public private(set) var rule: UpdateRule
    /// The control policy of the batch being accumulated.
    public private(set) var control: ControlPolicy
    /// The context of the batch being accumulated (the critic's values as the batch started).
    public private(set) var context: UpdateContext

    /// The range an operator's λ must lie in: beyond it one update overflows a student's logits.
    public static var lambdaRange: ClosedRange<Double> { 0...1000 }

    /// A fresh state for `student` on the tabular `environment`; the critic is created when the
    /// method's rule needs one (and the student does not learn its own values).
    public init(
        method: MethodSpec, teacherKind: TeacherSpec.Kind?, environment: Environment, student: S,
        kickstart: KickstartTeachers? = nil, bound: ParameterBound? = nil, seed: UInt64 = 0
    ) throws {
        try self.init(
            method: method, teacherKind: teacherKind, discount: environment.mdp.discount,
            stateCount: environment.mdp.stateCount, actionCount: environment.mdp.actionCount, student: student,
            kickstart: kickstart, bound: bound, seed: seed)
    }

    /// A fresh state for `student` on an environment with discount `discount`, `stateCount` states
    /// (0 when there is no tabular MDP underneath: the student must then learn its own values) and
    /// `actionCount` actions.
    public init(
        method: MethodSpec, teacherKind: TeacherSpec.Kind?, discount: Double, stateCount: Int, actionCount: Int,
        student: S, kickstart: KickstartTeachers? = nil, bound: ParameterBound? = nil, seed: UInt64 = 0
    ) throws {
        try method.validate()
        let rule = method.rule(at: 0, teacherKind: teacherKind)
        if let kickstart, !kickstart.teachers.isEmpty {
            guard rule.loss == .crossEntropy else {
                throw DistillError(
                    .invalidConfiguration,
                    "several kickstarting teachers combine cross-entropy losses; method \(method.method.rawValue) has \(rule.loss)"
                )
            }
            for t in kickstart.teachers where t.stateCount != stateCount || t.actionCount != actionCount {
                throw DistillError(
                    .invalidConfiguration,
                    "kickstarting teacher \(t.identity) has \(t.stateCount) states and \(t.actionCount) actions; the environment has \(stateCount) and \(actionCount)"
                )
            }
        }
        if rule.needsStudentValues && !student.ownsCritic && stateCount == 0 {
            throw DistillError(
                .invalidConfiguration,
                "method \(method.method.rawValue) needs a critic, and without state ids only a network's value head can be one"
            )
        }
        self.method = method
        self.teacherKind = teacherKind
        self.discount = discount
        self.kickstart = kickstart.flatMap { $0.teachers.isEmpty ? nil : $0 }
        self.bound = bound
        self.storedStudent = student
        self.rng = Xoshiro256StarStar(seed: seed)
        self.storedCritic =
            rule.needsStudentValues && !student.ownsCritic
            ? TabularCritic(
                stateCount: stateCount, learningRate: method.criticLearningRate, target: method.criticTarget) : nil
        self.rule = rule
        self.control = method.controlPolicy(at: 0)
        self.context = UpdateContext(discount: discount, control: control, clipping: method.clipping)
        refreshSchedules()
    }

    /// Whether the pending batch is complete (`method.episodesPerIteration` episodes).
    public var updateDue: Bool { student.pendingEpisodes >= method.episodesPerIteration }

    /// The rule as the update applies it: with kickstarting teachers, λ becomes the total `Λ`.
    public var effectiveRule: UpdateRule {
        guard let kickstart else { return rule }
        var r = rule
        r.lossWeight = rule.lossWeight + kickstart.weights.reduce(0, +)
        return r
    }

    /// Accumulates one episode whose teacher outputs came with it (over the wire, or from a
    /// trajectory), then lets the critic learn from it.
    @inlinable
    public mutating func accumulate<E: EpisodeView>(_ episode: E) {
        if let kickstart, effectiveRule.lossWeight > 0 {
            storedStudent.accumulate(
                KickstartEpisode(episode, mainWeight: rule.lossWeight, further: kickstart), rule: effectiveRule,
                context: context)
        } else {
            storedStudent.accumulate(episode, rule: effectiveRule, context: context)
        }
        learnCritic(from: episode)
        storedEnvironmentSteps += UInt64(episode.length)
    }

    /// Lets the critic learn from `episode` (after its update was accumulated with the batch's
    /// values).
    @inlinable
    public mutating func learnCritic<E: EpisodeView>(from episode: E) {
        guard storedCritic != nil else { return }
        let length = episode.length
        var states = [Int32](repeating: 0, count: length + 1)
        var rewards = [Double](repeating: 0, count: length)
        for t in 0..<length {
            states[t] = Int32(episode.state(t))
            rewards[t] = episode.reward(t)
        }
        states[length] = Int32(episode.state(length))
        storedCritic!.update(states: states, rewards: rewards, terminated: episode.terminated, discount: discount)
    }

    /// Applies the pending update (one optimisation step) and advances the schedules; a refused
    /// update leaves the parameters as they were and is counted in ``quarantined``.
    @discardableResult
    public mutating func applyUpdate() -> UpdateOutcome {
        finishStep(storedStudent.applyPending(bound: bound))
    }

    /// Counts an optimisation step's outcome and advances the schedules.
    private mutating func finishStep(_ outcome: UpdateOutcome) -> UpdateOutcome {
        switch outcome {
        case .applied: updates += 1
        case .refused: quarantined += 1
        }
        refreshSchedules()
        return outcome
    }

    /// Sets λ from now on (an operator's `set-lambda`); nil returns to the schedule.
    public mutating func setLambda(_ lambda: Double?) throws {
        if let lambda {
            guard rule.loss != .none else {
                throw DistillError(
                    .invalidConfiguration, "method \(method.method.rawValue) has no distillation term to weight")
            }
            guard Self.lambdaRange.contains(lambda) else {
                throw DistillError(
                    .invalidConfiguration,
                    "λ must lie in \(Self.lambdaRange.lowerBound)...\(Self.lambdaRange.upperBound), got \(lambda)")
            }
        }
        lambdaOverride = lambda
        refreshSchedules()
    }

    /// The rule, control policy and context for the next batch.
    private mutating func refreshSchedules() {
        rule = method.rule(at: updates, teacherKind: teacherKind)
        if let lambdaOverride { rule.lossWeight = lambdaOverride }
        control = method.controlPolicy(at: updates)
        context = UpdateContext(
            discount: discount, control: control, clipping: method.clipping,
            studentValues: rule.needsStudentValues ? critic?.values : nil)
    }

    /// Replaces the student (its own resume), the critic's values and the counters.
    public mutating func restore(student: S, criticValues: [Double]?, updates: Int, environmentSteps: UInt64) throws {
        if let criticValues, critic != nil {
            guard criticValues.count == critic!.values.count else {
                throw DistillError(
                    .invalidConfiguration,
                    "the saved critic has \(criticValues.count) values, this run's has \(critic!.values.count)")
            }
            storedCritic!.values = criticValues
        }
        guard updates >= 0 else { throw DistillError(.invalidConfiguration, "negative update count \(updates)") }
        self.storedStudent = student
        self.updates = updates
        self.storedEnvironmentSteps = environmentSteps
        refreshSchedules()
    }

    /// Exposes the student to a caller that collects episodes with it (the trainer's fast path
    /// accumulates through ``TabularStudent/accumulate(_:teacher:rule:context:)``).
    public mutating func withStudent<R>(_ body: (inout S) throws -> R) rethrows -> R { try body(&storedStudent) }

    /// Counts environment steps consumed outside ``accumulate(_:)`` (the trainer's fast path).
    public mutating func countEnvironmentSteps(_ steps: Int) { storedEnvironmentSteps += UInt64(steps) }
}

extension LearnerState where S == TabularStudent {
    /// A fresh tabular learner for `environment`: uniform logits (for `fig2` the tied student of
    /// ``Trainer/initialStudent(for:)``), the method's optimiser.
    public init(
        method: MethodSpec, teacherKind: TeacherSpec.Kind?, environment: Environment,
        kickstart: KickstartTeachers? = nil, bound: ParameterBound? = nil, seed: UInt64 = 0
    ) throws {
        try self.init(
            method: method, teacherKind: teacherKind, environment: environment,
            student: try TabularStudent.initial(for: environment, method: method), kickstart: kickstart, bound: bound,
            seed: seed)
    }

    /// The exact expected update of the current rule under `teacher` (mixed with the kickstarting
    /// teachers), applied as one optimisation step.
    @discardableResult
    public mutating func applyExactUpdate(_ mdp: TabularMDP, teacher: Teacher) throws -> UpdateOutcome {
        let (mixed, rule) = Kickstarting.apply(
            self.rule, teacher: teacher, further: kickstart?.teachers ?? [], weights: kickstart?.weights ?? [])
        // The exact update evaluates the student's own values exactly: no learned critic.
        var exact = context
        exact.studentValues = nil
        let update = try ExactUpdate.expectedUpdate(
            mdp, teacher: mixed, parameters: student.parameters, rule: rule, context: exact)
        return finishStep(storedStudent.apply(update, bound: bound))
    }
}

/// A ``LearnerState`` of a tabular student as plain numbers: what a checkpoint stores and a
/// resume restores (the method, teachers and environment come from the run's configuration).
public struct LearnerSnapshot: Sendable, Hashable, Codable {
    /// Parameter table shape `[rows, actions]`.
    public var shape: [Int]
    /// The logits, row-major.
    public var parameters: [Double]
    /// The optimiser's moments (Adam: first then second), or empty.
    public var optimiserState: [Double]
    /// The optimiser's step counter.
    public var optimiserSteps: UInt64
    /// The critic's values, or empty.
    public var critic: [Double]
    /// Environment steps learned from.
    public var environmentSteps: UInt64
    /// Updates applied.
    public var updates: UInt64
    /// The sampling generator's state.
    public var rngState: [UInt64]

    /// A snapshot from its parts.
    public init(
        shape: [Int], parameters: [Double], optimiserState: [Double], optimiserSteps: UInt64, critic: [Double],
        environmentSteps: UInt64, updates: UInt64, rngState: [UInt64]
    ) {
        self.shape = shape
        self.parameters = parameters
        self.optimiserState = optimiserState
        self.optimiserSteps = optimiserSteps
        self.critic = critic
        self.environmentSteps = environmentSteps
        self.updates = updates
        self.rngState = rngState
    }
}

extension LearnerState where S == TabularStudent {
    /// The state as plain numbers (a checkpoint's content).
    public var snapshot: LearnerSnapshot {
        let p = student.parameters
        let o = student.optimiser
        return LearnerSnapshot(
            shape: [p.rowCount, p.actionCount], parameters: p.logits, optimiserState: o.firstMoment + o.secondMoment,
            optimiserSteps: UInt64(o.stepCount), critic: critic?.values ?? [], environmentSteps: environmentSteps,
            updates: UInt64(updates), rngState: rng.words)
    }

    /// Restores a snapshot taken from a state of the same run; throws, changing nothing, when it
    /// does not fit (another shape, a critic of another size, non-finite numbers).
    public mutating func restore(from snapshot: LearnerSnapshot) throws {
        let p = student.parameters
        guard snapshot.shape == [p.rowCount, p.actionCount], snapshot.parameters.count == p.logits.count else {
            throw DistillError(
                .invalidConfiguration,
                "it holds \(snapshot.parameters.count) parameters of shape \(snapshot.shape), this run's student has \(p.logits.count) of shape [\(p.rowCount), \(p.actionCount)]"
            )
        }
        guard snapshot.parameters.allSatisfy(\.isFinite), snapshot.optimiserState.allSatisfy(\.isFinite) else {
            throw DistillError(.invalidConfiguration, "its parameters or optimiser state are not finite")
        }
        let moments = snapshot.optimiserState.count
        let expected: Int
        switch student.optimiser.kind {
        case .sgd: expected = 0
        case .adam: expected = 2 * p.logits.count
        case .rmsprop: expected = p.logits.count
        }
        guard moments == 0 || moments == expected else {
            throw DistillError(
                .invalidConfiguration,
                "its optimiser state has \(moments) numbers, expected 0 or \(expected) for \(student.optimiser.kind.rawValue)"
            )
        }
        guard snapshot.rngState.isEmpty || (snapshot.rngState.count == 4 && snapshot.rngState.contains { $0 != 0 })
        else {
            throw DistillError(
                .invalidConfiguration,
                "its generator state has \(snapshot.rngState.count) words, expected 4 (not all zero)")
        }
        guard snapshot.optimiserSteps <= UInt64(Int.max), snapshot.updates <= UInt64(Int.max) else {
            throw DistillError(
                .invalidConfiguration,
                "its counters (\(snapshot.updates) updates, \(snapshot.optimiserSteps) optimiser steps) are beyond any run"
            )
        }
        var parameters = p
        parameters.logits = snapshot.parameters
        var optimiser = student.optimiser
        let first = student.optimiser.kind == .adam ? moments / 2 : 0
        optimiser.firstMoment = Array(snapshot.optimiserState.prefix(first))
        optimiser.secondMoment = Array(snapshot.optimiserState.suffix(moments - first))
        optimiser.stepCount = Int(snapshot.optimiserSteps)
        var restored = student
        restored.restore(parameters: parameters, optimiser: optimiser)
        try restore(
            student: restored, criticValues: snapshot.critic.isEmpty ? nil : snapshot.critic,
            updates: Int(snapshot.updates), environmentSteps: snapshot.environmentSteps)
        if snapshot.rngState.count == 4 { rng = Xoshiro256StarStar(words: snapshot.rngState) }
    }
}

extension LearnerState where S == NetworkStudent {
    /// The state as plain numbers (a checkpoint's content): the network's flat parameters
    /// (float32, held exactly in float64), the optimiser's buffers concatenated in the order of
    /// their names, its step count, the tabular critic's values if there is one, the counters
    /// and the generator. The optimiser's kind and hyperparameters come from the run's configuration.
    public var snapshot: LearnerSnapshot {
        let optimizer = student.optimizer.state
        let buffers = optimizer.buffers.keys.sorted().flatMap { optimizer.buffers[$0]!.map(Double.init) }
        return LearnerSnapshot(
            shape: [student.network.parameterCount], parameters: student.network.parameters.map(Double.init),
            optimiserState: buffers, optimiserSteps: UInt64(optimizer.step), critic: critic?.values ?? [],
            environmentSteps: environmentSteps, updates: UInt64(updates), rngState: rng.words)
    }

    /// Restores a snapshot taken from a state of the same run; throws, changing nothing, when it
    /// does not fit (another network size or optimiser, non-float32 or non-finite numbers).
    public mutating func restore(from snapshot: LearnerSnapshot) throws {
        let count = student.network.parameterCount
        guard snapshot.shape == [count], snapshot.parameters.count == count else {
            throw DistillError(
                .invalidConfiguration,
                "it holds \(snapshot.parameters.count) parameters of shape \(snapshot.shape), this run's \(student.network.architecture.description) student has \(count)"
            )
        }
        let parameters = snapshot.parameters.map(Float.init)
        guard zip(parameters, snapshot.parameters).allSatisfy({ Double($0) == $1 }),
            snapshot.optimiserState.allSatisfy({ Double(Float($0)) == $0 })
        else {
            throw DistillError(.invalidConfiguration, "its parameters or optimiser state are not float32 numbers")
        }
        var optimizer = student.optimizer.state
        let names = optimizer.buffers.keys.sorted()
        guard snapshot.optimiserState.count == names.count * count else {
            throw DistillError(
                .invalidConfiguration,
                "its optimiser state has \(snapshot.optimiserState.count) numbers, expected \(names.count * count) for \(optimizer.kind)"
            )
        }
        for (k, name) in names.enumerated() {
            optimizer.buffers[name] = snapshot.optimiserState[(k * count)..<((k + 1) * count)].map(Float.init)
        }
        guard snapshot.optimiserSteps <= UInt64(Int.max), snapshot.updates <= UInt64(Int.max) else {
            throw DistillError(
                .invalidConfiguration,
                "its counters (\(snapshot.updates) updates, \(snapshot.optimiserSteps) optimiser steps) are beyond any run"
            )
        }
        optimizer.step = Int(snapshot.optimiserSteps)
        guard snapshot.rngState.isEmpty || (snapshot.rngState.count == 4 && snapshot.rngState.contains { $0 != 0 })
        else {
            throw DistillError(
                .invalidConfiguration,
                "its generator state has \(snapshot.rngState.count) words, expected 4 (not all zero)")
        }
        if let critic, !snapshot.critic.isEmpty, snapshot.critic.count != critic.values.count {
            throw DistillError(
                .invalidConfiguration,
                "the saved critic has \(snapshot.critic.count) values, this run's has \(critic.values.count)")
        }
        var restored = student
        try restored.restore(parameters: parameters, optimizerState: optimizer)
        try restore(
            student: restored, criticValues: snapshot.critic.isEmpty ? nil : snapshot.critic,
            updates: Int(snapshot.updates), environmentSteps: snapshot.environmentSteps)
        if snapshot.rngState.count == 4 { rng = Xoshiro256StarStar(words: snapshot.rngState) }
    }
}

/// What an episode's rewards and teacher outputs can be in an environment: the rewards its MDP
/// can give, and values no larger than the largest discounted sum of them over the episode cap.
/// The learner refuses unrolls outside these ranges (a reward of 3e38 is no reward this
/// environment gives; a value beyond the horizon's reach is no value of any policy).
public struct PlausibleOutputs: Sendable, Hashable {
    /// The smallest and largest reward of any transition (and 0).
    public let rewardRange: ClosedRange<Double>
    /// The largest `|V|` or `|Q|` any policy can have.
    public let valueMagnitude: Double

    /// The ranges of `environment` with episodes capped at `maxEpisodeSteps`.
    public init(_ environment: Environment, maxEpisodeSteps: Int) {
        let rewards = environment.mdp.outcomeReward
        let low = min(0, rewards.min() ?? 0)
        let high = max(0, rewards.max() ?? 0)
        rewardRange = low...high
        let gamma = environment.mdp.discount
        let cap = Double(max(1, maxEpisodeSteps))
        let horizon = gamma < 1 ? min(cap, (1 - Foundation.pow(gamma, cap)) / (1 - gamma)) : cap
        valueMagnitude = max(abs(low), abs(high)) * horizon
    }

    /// `x` within `range`, with float32 rounding (relative 1e-6) allowed.
    @inlinable
    public static func within(_ x: Double, _ range: ClosedRange<Double>) -> Bool {
        let slack = 1e-6 * max(1, abs(range.lowerBound), abs(range.upperBound))
        return x >= range.lowerBound - slack && x <= range.upperBound + slack
    }

    /// Why `rewards`, `values` or `actionValues` cannot come from this environment, or nil.
    public func implausibility(rewards: [Float], values: [Float], actionValues: [Float]) -> String? {
        if let i = rewards.firstIndex(where: { !Self.within(Double($0), rewardRange) }) {
            return
                "reward \(rewards[i]) at step \(i) is outside this environment's reward range [\(rewardRange.lowerBound), \(rewardRange.upperBound)]"
        }
        let valueRange = -valueMagnitude...valueMagnitude
        if let i = values.firstIndex(where: { !Self.within(Double($0), valueRange) }) {
            return
                "teacher value \(values[i]) at state \(i) is beyond ±\(valueMagnitude), the most any policy can return here"
        }
        if let i = actionValues.firstIndex(where: { !Self.within(Double($0), valueRange) }) {
            return
                "teacher Q-value \(actionValues[i]) (entry \(i)) is beyond ±\(valueMagnitude), the most any policy can return here"
        }
        return nil
    }
}
