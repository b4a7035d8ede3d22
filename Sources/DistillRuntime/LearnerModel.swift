// What a learner trains (issue 12, item 4): the one protocol core (`LearnerCore`) and the one
// shell (`Learner`) serve a tabular student on state ids and a network student on observation
// tensors. Everything that differs between the two — which actors fit, how an unroll becomes
// episodes, what the parameters on the wire are, what a checkpoint holds, what a new teacher
// must answer — is a `LearnerModel`; the actor table, liveness, authorization, swaps, credit
// and publication stay in one place.

import DistillCore
import DistillNN
import DistillWire
import Foundation
import Logging

/// The part of a learner that depends on its student: which peers fit, how unrolls become the
/// episodes the one learning step (`LearnerState`) reads, the parameters actors receive, and
/// what a checkpoint holds.
public protocol LearnerModel: Sendable {
    /// The student the learning step trains.
    associatedtype Trainee: Student
    /// An episode of a decoded unroll, as the rules read it.
    associatedtype Episode: EpisodeView

    /// Identifies the environment; actors and teachers must present the same string.
    var environmentIdentity: String { get }
    /// The discount of the episode returns in metrics (tabular: the MDP's, as its exact returns;
    /// network: 1, as gymnasium and `distill eval` report returns).
    var discount: Double { get }
    /// The number of actions.
    var actionCount: Int { get }
    /// Numbers per observation on the wire (0 for state ids), for the unroll budget.
    var observationSize: Int { get }
    /// The longest episode an actor sends (actors cut longer ones).
    var maxEpisodeSteps: Int { get }

    /// Why an actor's or client's `hello` belongs to another run, or nil when it fits.
    func mismatch(of hello: Hello, from sender: Sender) -> String?
    /// What a Welcome tells an actor beyond the ports, teacher and parameters.
    func welcomeExtras() -> (spec: WireEnvironmentSpec?, architecture: String)
    /// Why `unroll` cannot be learned from in this run (shape, environment, plausibility), or nil.
    func incompatibility(of unroll: Unroll) -> String?
    /// Calls `body` with each episode of `unroll` (checked by `incompatibility(of:)` first).
    func forEachEpisode(of unroll: Unroll, _ body: (Episode) -> Void)
    /// `Σ_t KL(π_teacher(s_t) ‖ π_θ(s_t))` of `episode` under `student` (Fig. 3's metric).
    func sampledKL(_ episode: Episode, student: Trainee) -> Double
    /// The student's parameters as actors receive them.
    func parameters(of student: Trainee, version: UInt64, envSteps: UInt64) -> Parameters
    /// Whether the student's parameters are no longer all finite.
    func hasDiverged(_ student: Trainee) -> Bool
    /// What a new teacher must answer before a swap.
    func teacherExpectation(needsQValues: Bool) -> TeacherExpectation
    /// The learning state as a checkpoint holds it.
    func snapshot(of state: LearnerState<Trainee>) -> LearnerSnapshot
    /// Restores a checkpoint; throws, changing nothing, when it does not fit.
    func restore(_ snapshot: LearnerSnapshot, into state: inout LearnerState<Trainee>) throws
    /// The student's and the reference teacher's return for a metrics row: exact where the MDP is
    /// known (warm-started from `cache`), else NaN (the row's sampled episode return stands in).
    func metricsReturns(of student: Trainee, cache: inout ReturnsCache) -> Returns
    /// The returns summary.json reports at the end of a run (tabular: the exact ones; network:
    /// a sampled evaluation of the student, when the learner can run the environment itself).
    func finalReturns(of student: Trainee, cache: inout ReturnsCache) -> Returns
    /// Rusu's setting: stores `episode`'s rows in `core`'s replay memory and applies the
    /// minibatch updates the replay ratio now owes (only models whose cores accept a replay).
    static func replay(_ episode: Episode, into core: inout LearnerCore<Self>)
    /// True when each task has its own teacher and the model checks every unroll's teacher
    /// against its states (a multi-task run): the core then keeps no single current teacher, trusts
    /// no teacher on first use, and refuses swaps.
    var teachersPerTask: Bool { get }
}

extension LearnerModel {
    /// One teacher for the whole run (every model but the multi-task one).
    public var teachersPerTask: Bool { false }
}

/// `Σ_t KL(π_teacher(·|s_t) ‖ softmax(logits_t))` over the episode's steps, `logits` holding one
/// row of `actionCount` per step (from the first; further rows are ignored).
func teacherKL<E: EpisodeView>(_ episode: E, logits: [Float], actionCount na: Int) -> Double {
    var kl = 0.0
    for t in 0..<episode.length {
        var largest = -Double.infinity
        for a in 0..<na { largest = max(largest, Double(logits[t * na + a])) }
        var sum = 0.0
        for a in 0..<na { sum += Foundation.exp(Double(logits[t * na + a]) - largest) }
        let logNormaliser = largest + Foundation.log(sum)
        for a in 0..<na {
            let p = episode.teacherProbability(t, a)
            if p > 0 { kl += p * (Foundation.log(p) - (Double(logits[t * na + a]) - logNormaliser)) }
        }
    }
    return kl
}

/// The expected return from `mdp`'s start distribution given its state values; NaN without them.
func startReturn(_ mdp: TabularMDP, _ values: [Double]?) -> Double {
    values.map { zip(mdp.startDistribution, $0).reduce(0) { $0 + $1.0 * $1.1 } } ?? .nan
}

/// The student's and the reference teacher's return, as metrics and summaries report them.
public typealias Returns = (student: Double, teacher: Double?)

/// What a learner keeps between metrics rows to compute returns quickly.
public struct ReturnsCache: Sendable {
    /// The reference teacher's return, once computed.
    var teacher: Double?
    /// The student's state values of the last row (a warm start for the next evaluation).
    var values: [Double]?
    /// Each task's returns at the last row (a multi-task run's; empty otherwise).
    public internal(set) var tasks: [TaskReturn] = []

    /// An empty cache.
    public init() {}

    /// The state values of `policy` on `mdp`, warm-started from the previous row's (a few sparse
    /// sweeps, not a dense solve; a dense solve when the sweeps do not settle) and kept for the next
    /// row; nil when neither gives them.
    mutating func stateValues(_ mdp: TabularMDP, policy: [Double]) -> [Double]? {
        values =
            PolicyEvaluation.iterativeValues(mdp, policy: policy, initial: values, tolerance: 1e-7)
            ?? (try? PolicyEvaluation.values(mdp, policy: policy))
        return values
    }

    /// `teacher`'s exact return on `mdp`, computed once (nil without a teacher).
    mutating func teacherReturn(_ mdp: TabularMDP, _ teacher: Teacher?) -> Double? {
        if self.teacher == nil, let teacher {
            self.teacher = (try? PolicyEvaluation.expectedReturn(mdp, policy: teacher.probabilities)) ?? .nan
        }
        return self.teacher
    }
}

// MARK: - Tabular

/// A tabular student on a tabular MDP: actors send state ids, the parameters are the logit table.
public struct TabularLearnerModel: LearnerModel {
    /// The environment.
    public let environment: Environment
    /// Identifies it (the string actors present).
    public let environmentIdentity: String
    /// What an unroll's rewards and teacher outputs may be.
    let bounds: PlausibleOutputs
    /// The method's rule reads the teacher's Q-values.
    let needsActionValues: Bool
    let methodName: String
    public let maxEpisodeSteps: Int
    let referenceTeacher: Teacher?

    /// The model of `problem`; throws when it has no tabular environment.
    public init(_ problem: LearnerProblem) throws {
        guard let environment = problem.environment else {
            throw RuntimeError(
                "a tabular student needs an environment with a tabular MDP; give a network student with --student",
                code: .invalidInput)
        }
        self.environment = environment
        referenceTeacher = problem.referenceTeacher
        maxEpisodeSteps = problem.method.maxEpisodeSteps
        environmentIdentity = problem.environmentIdentity
        bounds = PlausibleOutputs(environment, maxEpisodeSteps: problem.method.maxEpisodeSteps)
        needsActionValues = problem.method.rule(at: 0, teacherKind: problem.teacherKind).loss.needsActionValues
        methodName = problem.method.method.rawValue
    }

    public var discount: Double { environment.mdp.discount }
    public var actionCount: Int { environment.mdp.actionCount }
    public var observationSize: Int { 0 }

    public func mismatch(of hello: Hello, from sender: Sender) -> String? {
        let mdp = environment.mdp
        guard
            hello.environment != environmentIdentity || hello.stateCount != mdp.stateCount
                || hello.actionCount != mdp.actionCount
        else { return nil }
        return "this learner runs \(environmentIdentity) (\(mdp.stateCount) states, \(mdp.actionCount) "
            + "actions), \(sender.role) '\(sender.id)' runs \(hello.environment) "
            + "(\(hello.stateCount) states, \(hello.actionCount) actions): start it with the same --env flags"
    }

    public func welcomeExtras() -> (spec: WireEnvironmentSpec?, architecture: String) { (nil, "") }

    public func incompatibility(of unroll: Unroll) -> String? {
        let mdp = environment.mdp
        // A protocol-2 unroll of an observed environment has no state ids to read: refused here,
        // before `UnrollEpisode` would index its empty `observations`.
        guard unroll.observationTensor.isEmpty else {
            return "the unroll carries observation tensors of shape \(unroll.observationTensor.rowShape); this learner "
                + "trains a tabular student on \(environmentIdentity) and reads state ids"
        }
        guard unroll.actionCount == mdp.actionCount else {
            return "the unroll has \(unroll.actionCount) actions, this learner's environment has \(mdp.actionCount)"
        }
        if let bad = unroll.observations.first(where: { Int($0) >= mdp.stateCount }) {
            return "the unroll visits state \(bad), this learner's environment has \(mdp.stateCount) states"
        }
        if let problem = bounds.implausibility(of: unroll) { return problem }
        if needsActionValues && unroll.teacherQValues.isEmpty {
            return "method \(methodName) needs the teacher's Q-values; teacher '\(unroll.teacherID)' sends none"
        }
        return nil
    }

    public func forEachEpisode(of unroll: Unroll, _ body: (UnrollEpisode) -> Void) {
        UnrollEpisode.withEpisodes(of: unroll) { episodes in
            for episode in episodes { body(episode) }
        }
    }

    public func sampledKL(_ episode: UnrollEpisode, student: TabularStudent) -> Double {
        let policy = student.policy
        let na = actionCount
        var kl = 0.0
        for t in 0..<episode.length {
            let row = Int(policy.rowOfState[episode.state(t)]) * na
            for a in 0..<na {
                let p = episode.teacherProbability(t, a)
                if p > 0 { kl += p * (Foundation.log(p) - policy.logProbabilities[row + a]) }
            }
        }
        return kl
    }

    public func parameters(of student: TabularStudent, version: UInt64, envSteps: UInt64) -> Parameters {
        Parameters(
            version: version,
            values: Tensor(
                shape: [student.parameters.rowCount, student.parameters.actionCount],
                values: student.parameters.float32Logits()),
            envSteps: envSteps)
    }

    public func hasDiverged(_ student: TabularStudent) -> Bool {
        student.parameters.logits.contains { !$0.isFinite }
    }

    public func teacherExpectation(needsQValues: Bool) -> TeacherExpectation {
        TeacherExpectation(
            environment: environmentIdentity, stateCount: environment.mdp.stateCount, actionCount: actionCount,
            needsQValues: needsQValues)
    }

    public func snapshot(of state: LearnerState<TabularStudent>) -> LearnerSnapshot { state.snapshot }

    public func restore(_ snapshot: LearnerSnapshot, into state: inout LearnerState<TabularStudent>) throws {
        try state.restore(from: snapshot)
    }

    public func metricsReturns(of student: TabularStudent, cache: inout ReturnsCache) -> Returns {
        let mdp = environment.mdp
        let teacher = cache.teacherReturn(mdp, referenceTeacher)
        return (startReturn(mdp, cache.stateValues(mdp, policy: student.stateTable())), teacher)
    }

    public func finalReturns(of student: TabularStudent, cache: inout ReturnsCache) -> Returns {
        metricsReturns(of: student, cache: &cache)
    }

    /// Never called: a tabular core refuses a replay when it is created.
    public static func replay(_ episode: UnrollEpisode, into core: inout LearnerCore<TabularLearnerModel>) {
        preconditionFailure("a tabular learner has no replay memory")
    }
}

// MARK: - Network

/// A network student on observations: actors send observation tensors of `spec`, the parameters
/// are the network's flat float32 vector with its architecture and checksum.
public struct NetworkLearnerModel: LearnerModel {
    /// The environment as the network and the wire see it.
    public let description: EnvironmentDescription
    /// Its wire form (name, observation shape and dtype, actions).
    public let spec: WireEnvironmentSpec
    /// The student's architecture (`mlp:64,64`, …) as actors must present it.
    public let architecture: String
    /// Identifies the environment (the string actors present).
    public let environmentIdentity: String
    /// The longest episode an actor may send (the environment's time limit, else the method's cap).
    public let maxEpisodeSteps: Int
    let needsActionValues: Bool
    let methodName: String
    /// The teacher's mean return (an evaluation by whoever started the learner), for metrics.
    public var teacherReturn: Double?
    /// Evaluates a student's mean return by running the environment (nil when the learner cannot
    /// run it itself, as for a remote environment).
    public var evaluate: (@Sendable (PolicyValueNetwork) -> Double)?

    /// The model of a `student` network learning on `description` with `method`.
    public init(
        description: EnvironmentDescription, environmentIdentity: String, architecture: String, method: MethodSpec
    ) {
        self.description = description
        spec = WireEnvironmentSpec(description)
        self.architecture = architecture
        self.environmentIdentity = environmentIdentity
        maxEpisodeSteps = description.maxEpisodeSteps ?? method.maxEpisodeSteps
        needsActionValues = method.rule(at: 0, teacherKind: nil).loss.needsActionValues
        methodName = method.method.rawValue
    }

    public var discount: Double { 1 }
    public var actionCount: Int { description.actionCount }
    public var observationSize: Int { description.observation.count }

    public func mismatch(of hello: Hello, from sender: Sender) -> String? {
        let who = "\(sender.role) '\(sender.id)'"
        guard hello.environment == environmentIdentity else {
            return "this learner trains a network on \(environmentIdentity), \(who) runs \(hello.environment): "
                + "start it with the same --env flags"
        }
        // Control clients (distill control) say the environment only; actors say what they observe and act with.
        guard sender.role == .actor else { return nil }
        guard let theirs = hello.environmentSpec, theirs == spec else {
            let theirs = hello.environmentSpec.map { "\($0)" } ?? "no observation spec (a tabular actor)"
            return "this learner trains on \(spec), \(who) sends \(theirs): start it with the same --env flags"
        }
        guard hello.architecture == architecture else {
            return "this learner trains a '\(architecture)' student, \(who) acts with '\(hello.architecture)': "
                + "start it with --student \(architecture)"
        }
        return nil
    }

    public func welcomeExtras() -> (spec: WireEnvironmentSpec?, architecture: String) { (spec, architecture) }

    public func incompatibility(of unroll: Unroll) -> String? {
        let tensor = unroll.observationTensor
        guard !tensor.isEmpty else {
            return "the unroll carries state ids; this learner trains a network on \(spec): send observations"
        }
        guard tensor.rowShape == spec.observationShape, tensor.dtype == spec.observationDType,
            unroll.actionCount == spec.actionCount
        else {
            return "the unroll's observations are \(tensor.rowShape) \(tensor.dtype) with \(unroll.actionCount) "
                + "actions; this learner trains on \(spec)"
        }
        if let long = unroll.episodeLengths.first(where: { Int($0) > maxEpisodeSteps }) {
            return "the unroll has an episode of \(long) steps; episodes here end by \(maxEpisodeSteps)"
        }
        if let problem = implausibility(of: unroll) { return problem }
        if needsActionValues && unroll.teacherQValues.isEmpty {
            return "method \(methodName) needs the teacher's Q-values; teacher '\(unroll.teacherID)' sends none"
        }
        return nil
    }

    /// Rewards outside the environment's range, or observations and teacher outputs that are not finite.
    func implausibility(of unroll: Unroll) -> String? {
        let range = description.rewardRange
        if let i = unroll.rewards.firstIndex(where: { !PlausibleOutputs.within(Double($0), range.min...range.max) }) {
            return "reward \(unroll.rewards[i]) at step \(i) is outside \(description.name)'s range "
                + "[\(range.min), \(range.max)]"
        }
        // On the raw bytes: the decode into floats happens once, for the episodes.
        if unroll.observationTensor.hasNonFiniteElement {
            return "the unroll's observations are not all finite"
        }
        if unroll.teacherValues.contains(where: { !$0.isFinite })
            || unroll.teacherQValues.values.contains(where: { !$0.isFinite })
        {
            return "the unroll's teacher values are not all finite"
        }
        return nil
    }

    public func forEachEpisode(of unroll: Unroll, _ body: (ObservedEpisode) -> Void) {
        guard let episodes = try? ObservedUnroll.episodes(of: unroll, spec: spec) else { return }
        for episode in episodes { body(episode) }
    }

    public func sampledKL(_ episode: ObservedEpisode, student: NetworkStudent) -> Double {
        let logits = student.network.forward(episode.observationRows, batch: episode.length + 1).logits
        return teacherKL(episode, logits: logits, actionCount: actionCount)
    }

    public func parameters(of student: NetworkStudent, version: UInt64, envSteps: UInt64) -> Parameters {
        NetworkParameters.parameters(of: student.network, version: version, envSteps: envSteps)
    }

    public func hasDiverged(_ student: NetworkStudent) -> Bool {
        student.network.parameters.contains { !$0.isFinite }
    }

    public func teacherExpectation(needsQValues: Bool) -> TeacherExpectation {
        var expectation = TeacherExpectation(
            environment: environmentIdentity, stateCount: 0, actionCount: actionCount, needsQValues: needsQValues)
        expectation.observationSpec = spec
        return expectation
    }

    public func snapshot(of state: LearnerState<NetworkStudent>) -> LearnerSnapshot { state.snapshot }

    public func restore(_ snapshot: LearnerSnapshot, into state: inout LearnerState<NetworkStudent>) throws {
        try state.restore(from: snapshot)
    }

    public func metricsReturns(of student: NetworkStudent, cache: inout ReturnsCache) -> Returns {
        (.nan, teacherReturn)
    }

    public func finalReturns(of student: NetworkStudent, cache: inout ReturnsCache) -> Returns {
        (evaluate?(student.network) ?? .nan, teacherReturn)
    }

    public static func replay(_ episode: ObservedEpisode, into core: inout LearnerCore<NetworkLearnerModel>) {
        guard let spec = core.problem.replay, var memory = core.replayMemory else { return }
        core.replayMemory = nil  // one owner while rows are appended (no copy of the buffers)
        let size = core.model.observationSize
        let na = core.model.actionCount
        for t in 0..<episode.length {
            let rows = (t * na)..<((t + 1) * na)
            memory.append(
                observation: episode.observationRows[(t * size)..<((t + 1) * size)],
                probabilities: episode.teacherProbabilities[rows],
                logProbabilities: episode.teacherLogProbabilities[rows],
                value: episode.teacherValues[t],
                actionValues: memory.hasActionValues ? episode.teacherActionValues[rows] : nil)
            if memory.count >= spec.batchSize { core.replayCredit += spec.updatesPerStep }
        }
        core.state.countEnvironmentSteps(episode.length)
        let rule = core.state.effectiveRule
        while core.replayCredit >= 1 {
            core.replayCredit -= 1
            let slots = memory.sample(spec.batchSize, using: &core.state.rng)
            core.state.withStudent {
                $0.accumulateSupervised(memory, slots: slots, loss: rule.loss, weight: rule.lossWeight)
            }
            core.applyUpdate()
        }
        core.replayMemory = memory
    }
}

// MARK: - Cores of each model

extension LearnerCore where Model == TabularLearnerModel {
    /// A core of a tabular run at version 0 with a fresh student.
    ///
    /// - Throws: `RuntimeError` when the method does not build a learning state.
    public init(problem: LearnerProblem, configuration: LearnerConfiguration) throws {
        guard problem.replay == nil else {
            throw RuntimeError(
                "a replay memory (--replay-size) holds a network student's observations; this run trains a tabular "
                    + "student: drop the --replay-* options", code: .invalidInput)
        }
        let model = try TabularLearnerModel(problem)
        let state: LearnerState<TabularStudent>
        do {
            state = try LearnerState(
                method: problem.method, teacherKind: problem.teacherKind, environment: model.environment,
                kickstart: problem.kickstart, bound: .standard)
        } catch let error as DistillError {
            throw RuntimeError(error.message)
        }
        self.init(model: model, state: state, problem: problem, configuration: configuration)
    }
}

extension LearnerCore where Model == NetworkLearnerModel {
    /// A core of a network run at version 0 with `student` (fresh weights from the run's seed).
    ///
    /// - Throws: `RuntimeError` when the method does not build a learning state for this student.
    public init(
        model: Model, student: NetworkStudent, problem: LearnerProblem, configuration: LearnerConfiguration,
        seed: UInt64
    ) throws {
        let state: LearnerState<NetworkStudent>
        do {
            state = try LearnerState(
                method: problem.method, teacherKind: nil, discount: model.description.discount, stateCount: 0,
                actionCount: model.actionCount, student: student, bound: .standard, seed: seed)
        } catch let error as DistillError {
            throw RuntimeError(error.message)
        }
        self.init(model: model, state: state, problem: problem, configuration: configuration)
        if let replay = problem.replay {
            do {
                try replay.check(problem.method)
                replayMemory = try ReplayMemory(
                    capacity: replay.capacity, observationSize: model.observationSize, actionCount: model.actionCount,
                    hasActionValues: self.state.rule.loss.needsActionValues)
            } catch let error as DistillError {
                throw RuntimeError(error.message, code: .invalidInput)
            }
        }
    }
}

extension Learner where Model == TabularLearnerModel {
    /// A learner of a tabular run that runs until `stop` is requested (or its step limit);
    /// resumes from the newest checkpoint in `checkpointDirectory` if any.
    public convenience init(
        problem: LearnerProblem, configuration: LearnerConfiguration, sender: Sender, logger: Logger, stop: StopToken
    ) throws {
        try self.init(
            core: LearnerCore(problem: problem, configuration: configuration), sender: sender, logger: logger,
            stop: stop)
    }
}

// MARK: - The replay memory in checkpoints

extension LearnerCore {
    /// The replay memory's rows and the credit they owe, as a checkpoint keeps them; nil without
    /// a replay memory.
    public var replayRows: ReplayRows? {
        guard let memory = replayMemory else { return nil }
        let rows = memory.storedRows
        return ReplayRows(
            capacity: memory.capacity, appended: UInt64(memory.appended), observationSize: memory.observationSize,
            actionCount: memory.actionCount, observations: rows.observations, probabilities: rows.probabilities,
            logProbabilities: rows.logProbabilities, values: rows.values, actionValues: rows.actionValues,
            credit: replayCredit)
    }

    /// Puts back a checkpoint's replay rows; returns why they were left out (this run has no
    /// replay memory, or one of another capacity or row shape), or nil when restored.
    public mutating func restoreReplay(_ rows: ReplayRows) -> String? {
        guard let memory = replayMemory else {
            return "this run has no replay memory (--replay-size)"
        }
        guard rows.capacity == memory.capacity else {
            return "the checkpoint's memory holds \(rows.capacity) rows, this run's --replay-size is \(memory.capacity)"
        }
        do {
            replayMemory = try ReplayMemory(
                capacity: memory.capacity, observationSize: memory.observationSize, actionCount: memory.actionCount,
                hasActionValues: memory.hasActionValues, appended: Int(clamping: rows.appended),
                rows: (rows.observations, rows.probabilities, rows.logProbabilities, rows.values, rows.actionValues))
        } catch let error as DistillError {
            return error.message
        } catch {
            return "\(error)"
        }
        replayCredit = rows.credit
        return nil
    }
}
