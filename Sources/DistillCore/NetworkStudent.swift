import DistillNN
import Foundation

/// The optimisers a network student steps with (DistillNN's; every step descends).
public enum NetworkOptimizer: Sendable {
    /// Plain SGD.
    case sgd(SGD)
    /// Adam.
    case adam(Adam)
    /// RMSProp (Rusu et al. 2016 trained with it).
    case rmsprop(RMSProp)

    /// The optimiser `kind` over `parameterCount` parameters with step size `learningRate` and
    /// DistillNN's other defaults (those of the tabular ``Optimiser``).
    public init(_ kind: OptimiserKind, learningRate: Double, parameterCount: Int) {
        switch kind {
        case .sgd: self = .sgd(SGD(learningRate: Float(learningRate)))
        case .adam: self = .adam(Adam(parameterCount: parameterCount, learningRate: Float(learningRate)))
        case .rmsprop: self = .rmsprop(RMSProp(parameterCount: parameterCount, learningRate: Float(learningRate)))
        }
    }

    /// One descent step of `parameters` along `gradients`.
    public mutating func step(parameters: inout [Float], gradients: [Float]) {
        switch self {
        case .sgd(var o):
            o.step(parameters: &parameters, gradients: gradients)
            self = .sgd(o)
        case .adam(var o):
            o.step(parameters: &parameters, gradients: gradients)
            self = .adam(o)
        case .rmsprop(var o):
            o.step(parameters: &parameters, gradients: gradients)
            self = .rmsprop(o)
        }
    }

    /// The checkpointable state.
    public var state: OptimizerState {
        switch self {
        case .sgd(let o): o.exportState()
        case .adam(let o): o.exportState()
        case .rmsprop(let o): o.exportState()
        }
    }
}

/// A network student on an environment with a tabular MDP underneath (the paper's gridworlds
/// observed as one-hot vectors, images or windows): its policy at state `s` is
/// `softmax(f_θ(o(s)))` for the observation `o(s)` the environment renders there.
///
/// The update rules are the tabular student's, unchanged (FUNCTION-APPROXIMATION.md §1): for each
/// episode the network's logits at the episode's observations stand in for the table's rows, the
/// rule writes its per-step logit-space update `g_t` there, and the network back-propagates
/// `−g_t` (a loss to descend). So a `linear` network on one-hot states whose logits bias is frozen
/// is the tabular student (to float32 rounding), and the sampled update's mean is the exact
/// expected update wherever the exact one exists.
///
/// The critic is either the learning state's tabular one (indexed by state; the default on a
/// tabular-backed environment, so that a linear network on one-hot states stays the tabular
/// student for every rule), or the network's own value head (``Critic/valueHead``; the only one on
/// environments without a state id, such as CartPole): the rules then read `V̂_θ(o_t)` from the head
/// and the head descends `½ w (V̂_θ(o_t) − y_t)²` towards the critic's target `y_t` (Monte Carlo or
/// one-step TD, bootstrapped at a time limit), with `w` the method's critic weight.
///
/// Episodes that carry their own observations (``ObservingEpisode``, collected on an observed
/// environment) are read as such; others are read through the observation table by state id.
///
/// It owns a network (a class that keeps its last activations): one thread at a time.
public struct NetworkStudent: Student, @unchecked Sendable {
    /// The network.
    public let network: PolicyValueNetwork
    /// The optimiser.
    public private(set) var optimizer: NetworkOptimizer
    /// The observation of every state, row-major `[states × inputSize]`.
    public let observations: [Float]
    /// Parameter tensors that never change (their gradients are dropped), e.g. `logits.bias`.
    public let frozen: Set<String>
    /// Episodes whose gradients `network.gradients` holds.
    public private(set) var pendingEpisodes = 0
    /// Which critic the rules read.
    public let critic: Critic

    /// The critic of a network student.
    public enum Critic: Sendable, Hashable {
        /// The learning state's table, indexed by state id.
        case table
        /// The network's value head, trained towards `target` with weight `weight`.
        case valueHead(target: TabularCritic.Target, weight: Double)
    }

    /// A student with `network`, reading `observations` (`[states × network.inputSize]`; empty
    /// when no tabular environment is underneath and every episode brings its observations).
    public init(
        network: PolicyValueNetwork, optimizer: NetworkOptimizer, observations: [Float], frozen: Set<String> = [],
        critic: Critic = .table
    ) throws {
        guard observations.count % network.inputSize == 0 else {
            throw DistillError(
                .invalidConfiguration,
                "\(observations.count) observation scalars are not whole observations of \(network.inputSize)")
        }
        if case .valueHead(_, let weight) = critic, !(weight > 0 && weight.isFinite) {
            throw DistillError(.invalidConfiguration, "the value head's weight must be positive, got \(weight)")
        }
        self.critic = critic
        let names = Set(network.parameterTensors.map(\.name))
        if let unknown = frozen.subtracting(names).first {
            throw DistillError(
                .invalidConfiguration,
                "no parameter tensor \"\(unknown)\" to freeze (the network has \(names.sorted()))")
        }
        self.network = network
        self.optimizer = optimizer
        self.observations = observations
        self.frozen = frozen
        network.zeroGradients()
    }

    /// Number of states with an observation.
    public var stateCount: Int { observations.count / network.inputSize }
    /// Number of actions.
    public var actionCount: Int { network.actionCount }

    /// The logits at every state, `[states × actions]` (one batched forward pass).
    public func logitTable() -> [Float] {
        network.forward(observations, batch: stateCount).logits
    }

    /// The logits at every state as a tabular student's parameters (softmax of them is the
    /// network's policy there).
    public var tabularParameters: StudentParameters {
        StudentParameters(
            rowOfState: (0..<stateCount).map { Int32($0) }, rowCount: stateCount, actionCount: actionCount,
            logits: logitTable().map { Double($0) })
    }

    /// `π_θ(·|s)` for every state.
    public func stateTable() -> [Double] { tabularParameters.policyTable() }

    /// Whether the network's value head is the critic (the learning state then keeps no table).
    public var ownsCritic: Bool { critic != .table }

    /// Forwards the episode's observations, lets the rule write its per-step update into a table
    /// with one row per step, and back-propagates it (with the value head's error when it is the
    /// critic).
    public mutating func accumulate<E: EpisodeView>(_ episode: E, rule: UpdateRule, context: UpdateContext) {
        let (ascent, values) = stepUpdates(episode, rule: rule, context: context)
        var valueGradient = [Float](repeating: 0, count: episode.length + 1)
        if case .valueHead(let target, let weight) = critic {
            let targets = Self.valueTargets(episode, values: values, target: target, discount: context.discount)
            for t in 0..<episode.length { valueGradient[t] = Float(weight * (Double(values[t]) - targets[t])) }
        }
        network.backward(logitGradient: ascent.map { Float(-$0) }, valueGradient: valueGradient)
        pendingEpisodes += 1
    }

    /// The critic's targets `y_t` for `t < T`: the discounted return (Monte Carlo) or
    /// `r_t + γ V̂(o_{t+1})` (TD); the tail after a truncated (not terminated) episode is `V̂(o_T)`.
    public static func valueTargets<E: EpisodeView>(
        _ episode: E, values: [Float], target: TabularCritic.Target, discount: Double
    ) -> [Double] {
        let length = episode.length
        var targets = [Double](repeating: 0, count: length)
        var g = episode.terminated ? 0 : Double(values[length])
        for t in stride(from: length - 1, through: 0, by: -1) {
            let next = t + 1 == length && episode.terminated ? 0 : Double(values[t + 1])
            g = episode.reward(t) + discount * g
            targets[t] = target == .monteCarlo ? g : episode.reward(t) + discount * next
        }
        return targets
    }

    /// The rule's update of `episode` in logit space, summed per state (`[states × actions]`): what
    /// a tabular student with this network's logits would add to its table. Nothing is learned.
    public func logitSpaceUpdate<E: EpisodeView>(_ episode: E, rule: UpdateRule, context: UpdateContext) -> [Double] {
        let ascent = stepUpdates(episode, rule: rule, context: context).ascent
        let na = actionCount
        var table = [Double](repeating: 0, count: stateCount * na)
        for t in 0...episode.length {
            let s = episode.state(t)
            for a in 0..<na { table[s * na + a] += ascent[t * na + a] }
        }
        return table
    }

    /// The per-step ascent directions `g_t` of `episode` (`[(T+1) × actions]`), with the network's
    /// logits at the episode's observations in place of a table's rows, and the value head's
    /// outputs there (the forward pass is kept for a `backward`).
    private func stepUpdates<E: EpisodeView>(
        _ episode: E, rule: UpdateRule, context: UpdateContext
    ) -> (ascent: [Double], values: [Float]) {
        let rows = episode.length + 1
        let n = network.inputSize
        let na = network.actionCount
        let batch: [Float]
        if let observed = episode as? any ObservingEpisode {
            precondition(observed.observationRows.count == rows * n, "one observation of \(n) per step and the last")
            batch = observed.observationRows
        } else {
            var rowsOfStates = [Float]()
            rowsOfStates.reserveCapacity(rows * n)
            for t in 0..<rows {
                let s = episode.state(t)
                rowsOfStates.append(contentsOf: observations[(s * n)..<(s * n + n)])
            }
            batch = rowsOfStates
        }
        let (logits, values) = network.forward(batch, batch: rows)
        let perStep = StudentParameters(
            rowOfState: (0..<rows).map { Int32($0) }, rowCount: rows, actionCount: na,
            logits: logits.map { Double($0) })
        let policy = StudentPolicy(perStep)
        var stepContext = context
        if ownsCritic {
            stepContext.studentValues = rule.needsStudentValues ? values.map { Double($0) } : nil
        } else if let tableValues = context.studentValues {
            stepContext.studentValues = (0..<rows).map { tableValues[episode.state($0)] }
        }
        var accumulator = UpdateAccumulator(rowCount: rows, actionCount: na)
        accumulateSampledUpdate(
            StepIndexedEpisode(episode), policy: policy, rule: rule, context: stepContext, into: &accumulator)
        return (accumulator.finish(policy: policy, perEpisode: false), values)
    }

    /// Adds, as one pending unit, the gradient of the minibatch's mean loss
    /// `(w/B) Σ_k ℓ(π_θ(·|o_k), teacher at o_k)` over the memory's rows `slots` (Rusu et al. 2016's
    /// supervised step; `loss` is KL(τ), NLL, MSE or the cross-entropy). Each row's logit gradient is
    /// the rules' own (``LossKernel/addNegativeGradient(_:_:slot:policy:row:weight:into:)``),
    /// back-propagated through the network; the value head gets no gradient.
    public mutating func accumulateSupervised(
        _ memory: ReplayMemory, slots: [Int], loss: DistillationLoss, weight: Double
    ) {
        precondition(!slots.isEmpty, "a minibatch needs at least one row")
        precondition(
            memory.observationSize == network.inputSize && memory.actionCount == actionCount,
            "the memory's rows are not this network's observations and actions")
        let rows = slots.count
        let na = actionCount
        let logits = network.forward(memory.observations(slots), batch: rows).logits
        let policy = StudentPolicy(
            StudentParameters(
                rowOfState: (0..<rows).map { Int32($0) }, rowCount: rows, actionCount: na,
                logits: logits.map { Double($0) }))
        var accumulator = UpdateAccumulator(rowCount: rows, actionCount: na)
        let w = weight / Double(rows)
        for (k, slot) in slots.enumerated() {
            LossKernel.addNegativeGradient(
                loss, memory, slot: slot, policy: policy, row: k, weight: w, into: &accumulator)
        }
        let ascent = accumulator.finish(policy: policy, perEpisode: false)
        network.backward(
            logitGradient: ascent.map { Float(-$0) }, valueGradient: [Float](repeating: 0, count: rows))
        pendingEpisodes += 1
    }

    /// Applies the mean of the pending gradients with the optimiser, unless `bound` refuses it.
    public mutating func applyPending(bound: ParameterBound?) -> UpdateOutcome {
        defer {
            network.zeroGradients()
            pendingEpisodes = 0
        }
        guard pendingEpisodes > 0 else { return .applied(norm: 0) }
        let scale = 1 / Float(pendingEpisodes)
        var gradients = network.gradients
        for p in network.parameterTensors where frozen.contains(p.name) {
            for i in p.offset..<(p.offset + p.count) { gradients[i] = 0 }
        }
        var squared = 0.0
        for i in gradients.indices {
            gradients[i] *= scale
            squared += Double(gradients[i]) * Double(gradients[i])
        }
        guard squared.isFinite else { return .refused(reason: "the update is not finite") }
        var proposed = network.parameters
        var stepped = optimizer
        stepped.step(parameters: &proposed, gradients: gradients)
        if let bound, let bad = proposed.firstIndex(where: { !bound.admits(Double($0)) }) {
            return .refused(
                reason: "the update would set parameter \(bad) to \(proposed[bad]) (bound ±\(bound.magnitude))")
        }
        network.parameters = proposed
        optimizer = stepped
        return .applied(norm: squared.squareRoot())
    }
}

/// An episode that brings the observation of each of its steps and of its last state, row-major
/// `[(T+1) × observation size]` (collected on an observed environment, where there is no state id).
public protocol ObservingEpisode: EpisodeView {
    /// The observations `o_0 … o_T`.
    var observationRows: [Float] { get }
}

/// An episode whose "state" at step `t` is `t`: the rules then read the student's row `t` (its
/// outputs at the step's observation) and the critic's entry `t`; everything else is the episode's.
struct StepIndexedEpisode<Base: EpisodeView>: EpisodeView {
    let base: Base
    init(_ base: Base) { self.base = base }
    var length: Int { base.length }
    var terminated: Bool { base.terminated }
    func state(_ t: Int) -> Int { t }
    func action(_ t: Int) -> Int { base.action(t) }
    func reward(_ t: Int) -> Double { base.reward(t) }
    func behaviourProbability(_ t: Int) -> Double { base.behaviourProbability(t) }
    func teacherProbability(_ slot: Int, _ action: Int) -> Double { base.teacherProbability(slot, action) }
    func teacherLogProbability(_ slot: Int, _ action: Int) -> Double { base.teacherLogProbability(slot, action) }
    func teacherValue(_ slot: Int) -> Double { base.teacherValue(slot) }
    func teacherActionValue(_ slot: Int, _ action: Int) -> Double { base.teacherActionValue(slot, action) }
}

/// Which student a run trains: `tabular` (one row of logits per state) or a network
/// (`linear`, `mlp:64,64`, `conv:16x3,32x3/mlp:256`: the grammar of docs/networks.md) reading an
/// observation of each state (`one-hot`, `image`, `window:K`, `state-id`: docs/environments.md).
public struct StudentSpec: Sendable, Hashable, Codable {
    /// `tabular`, or a network architecture.
    public var architecture = "tabular"
    /// What a network student observes of each state.
    public var observation = "one-hot"
    /// Seed of the network's initial weights.
    public var seed: UInt64 = 0

    /// The tabular student.
    public init() {}

    /// A student of `architecture` observing `observation`.
    public init(architecture: String, observation: String = "one-hot", seed: UInt64 = 0) {
        self.architecture = architecture
        self.observation = observation
        self.seed = seed
    }

    /// Whether this is the tabular student.
    public var isTabular: Bool { architecture == "tabular" }

    /// Checks the architecture and observation strings, with errors that show the grammar.
    public func validate() throws {
        guard !isTabular else { return }
        _ = try parsedArchitecture()
        _ = try ObservationKind(parsing: observation)
    }

    /// The architecture, or an error that shows the grammar.
    func parsedArchitecture() throws -> NetworkArchitecture {
        precondition(!isTabular, "a network student needs a network architecture")
        let parsed: NetworkArchitecture
        do {
            parsed = try NetworkArchitecture(parsing: architecture)
        } catch let error as NetworkError {
            throw DistillError(.invalidConfiguration, "--student: \(error.message)")
        }
        // One head per task needs tasks to choose from: only the multitask experiment has them.
        guard parsed.heads == 1 else {
            throw DistillError(
                .invalidConfiguration,
                "--student \(architecture): a network with one head per task needs a task label on every observation; "
                    + "here there is one task (use it in `distill experiment multitask`, or leave out /heads:\(parsed.heads))"
            )
        }
        return parsed
    }

    /// A network student of `architecture` reading `inputShape`, optimised as `method` says, its
    /// weights drawn from this spec's seed.
    public func makeStudent(
        _ architecture: NetworkArchitecture, inputShape: [Int], actionCount: Int, method: MethodSpec,
        observations: [Float], critic: NetworkStudent.Critic
    ) throws -> NetworkStudent {
        let network: PolicyValueNetwork
        do {
            network = try PolicyValueNetwork(
                architecture: architecture, inputShape: inputShape, actionCount: actionCount, seed: seed)
        } catch let error as NetworkError {
            throw DistillError(.invalidConfiguration, "--student \(self.architecture): \(error.message)")
        }
        return try NetworkStudent(
            network: network,
            optimizer: NetworkOptimizer(
                method.optimiser, learningRate: method.learningRate, parameterCount: network.parameterCount),
            observations: observations, critic: critic)
    }

    /// The network student for `environment`, optimised as `method` says. Convolutions read
    /// images as `[height, width, channels]`: the environment's `[channels, height, width]` planes
    /// are transposed for them.
    public func buildNetwork(for environment: Environment, method: MethodSpec) throws -> NetworkStudent {
        let architecture = try parsedArchitecture()
        let observed = try TabularObservedEnvironment(
            environment, observation: try ObservationKind(parsing: observation))
        let environmentShape = observed.description.observation.shape
        if !architecture.convolutions.isEmpty && environmentShape.count != 3 {
            throw DistillError(
                .invalidConfiguration,
                "--student \(self.architecture) has convolutions, which need an image observation (image or window:K), not \(observation)"
            )
        }
        let shape = ObservationLayout.networkShape(architecture, environmentShape: environmentShape)
        let table = ObservationLayout.networkInput(
            observed.observationTable(), environmentShape: environmentShape, architecture: architecture)
        return try makeStudent(
            architecture, inputShape: shape, actionCount: environment.mdp.actionCount, method: method,
            observations: table, critic: .table)
    }
}

extension NetworkOptimizer {
    /// Restores `state` (as `state` exported it); throws, changing nothing, when it is another
    /// optimiser's or another size's.
    public mutating func importState(_ state: OptimizerState) throws {
        switch self {
        case .sgd(var o):
            try o.importState(state)
            self = .sgd(o)
        case .adam(var o):
            try o.importState(state)
            self = .adam(o)
        case .rmsprop(var o):
            try o.importState(state)
            self = .rmsprop(o)
        }
    }
}

extension NetworkStudent {
    /// Puts back a checkpoint's parameters and optimiser state; throws, changing nothing, when
    /// they do not fit this network and optimiser (its gradients and pending episodes are cleared).
    public mutating func restore(parameters: [Float], optimizerState: OptimizerState) throws {
        guard parameters.count == network.parameterCount else {
            throw DistillError(
                .invalidConfiguration,
                "it holds \(parameters.count) parameters, this run's \(network.architecture.description) student has \(network.parameterCount)"
            )
        }
        guard parameters.allSatisfy(\.isFinite) else {
            throw DistillError(.invalidConfiguration, "its parameters are not finite")
        }
        var restored = optimizer
        do {
            try restored.importState(optimizerState)
        } catch let error as NetworkError {
            throw DistillError(.invalidConfiguration, "its optimiser state does not fit: \(error.message)")
        }
        network.parameters = parameters
        network.zeroGradients()
        optimizer = restored
        pendingEpisodes = 0
    }
}
