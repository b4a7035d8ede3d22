import DistillNN
import Foundation

/// One episode collected on an observed environment: observations instead of state ids, the
/// teacher's outputs at each step and at the last observation (slot = step index).
public struct ObservedEpisode: ObservingEpisode, Sendable {
    /// `o_0 … o_T`, row-major.
    public var observationRows: [Float]
    /// `a_t`.
    public var actions: [Int32]
    /// `r_t`.
    public var rewards: [Double]
    /// `μ(a_t|o_t)`.
    public var behaviour: [Double]
    /// Whether `o_T` is terminal (false: cut by the time limit).
    public var terminated: Bool
    /// Number of actions.
    public let actionCount: Int
    /// `π(·|o_t)` for `t = 0…T`, row-major.
    public var teacherProbabilities: [Double]
    /// `log π(·|o_t)`.
    public var teacherLogProbabilities: [Double]
    /// `V_π(o_t)`.
    public var teacherValues: [Double]
    /// `Q(o_t, ·)`, or empty.
    public var teacherActionValues: [Double]

    /// An empty episode of an environment with `actionCount` actions.
    public init(actionCount: Int) {
        self.actionCount = actionCount
        observationRows = []
        actions = []
        rewards = []
        behaviour = []
        terminated = false
        teacherProbabilities = []
        teacherLogProbabilities = []
        teacherValues = []
        teacherActionValues = []
    }

    public var length: Int { actions.count }
    public func state(_ t: Int) -> Int { t }
    public func action(_ t: Int) -> Int { Int(actions[t]) }
    public func reward(_ t: Int) -> Double { rewards[t] }
    public func behaviourProbability(_ t: Int) -> Double { behaviour[t] }
    public func teacherProbability(_ slot: Int, _ action: Int) -> Double {
        teacherProbabilities[slot * actionCount + action]
    }
    public func teacherLogProbability(_ slot: Int, _ action: Int) -> Double {
        teacherLogProbabilities[slot * actionCount + action]
    }
    public func teacherValue(_ slot: Int) -> Double { teacherValues[slot] }
    public func teacherActionValue(_ slot: Int, _ action: Int) -> Double {
        precondition(!teacherActionValues.isEmpty, "this rule reads Q-values: give it a Q-network teacher")
        return teacherActionValues[slot * actionCount + action]
    }

    /// Appends the teacher's row `row` of `answer` (or the uniform policy, V = 0, without one).
    mutating func appendTeacher(_ answer: NetworkTeacher.Outputs?, row: Int) {
        let na = actionCount
        if let answer {
            teacherProbabilities.append(contentsOf: answer.probabilities[(row * na)..<(row * na + na)])
            teacherLogProbabilities.append(contentsOf: answer.logProbabilities[(row * na)..<(row * na + na)])
            teacherValues.append(answer.values[row])
            if let q = answer.actionValues { teacherActionValues.append(contentsOf: q[(row * na)..<(row * na + na)]) }
        } else {
            teacherProbabilities.append(contentsOf: repeatElement(1 / Double(na), count: na))
            teacherLogProbabilities.append(contentsOf: repeatElement(-Foundation.log(Double(na)), count: na))
            teacherValues.append(0)
        }
    }
}

/// A sampled return estimate: the mean of `episodes` undiscounted episode returns and the
/// half-width of its 95 % confidence interval (normal approximation, `1.96 s/√n`).
public struct ReturnEstimate95: Sendable, Hashable, Codable {
    /// The mean return.
    public var mean: Double
    /// Half-width of the 95 % interval.
    public var halfWidth: Double
    /// Episodes.
    public var episodes: Int

    /// The estimate from `returns` (at least one).
    public init(returns: [Double]) {
        precondition(!returns.isEmpty, "a return estimate needs episodes")
        let n = Double(returns.count)
        let m = returns.reduce(0, +) / n
        mean = m
        let variance = returns.count > 1 ? returns.reduce(0) { $0 + ($1 - m) * ($1 - m) } / (n - 1) : 0
        halfWidth = 1.96 * (variance / n).squareRoot()
        episodes = returns.count
    }
}

/// One iteration of ``ObservedTrainer``: one optimisation step over the episodes it collected.
public struct ObservedIterationResult: Sendable, Hashable {
    /// Iterations (applied or refused updates) so far.
    public var iteration: Int
    /// Environment steps of the episodes in this iteration's update.
    public var environmentSteps: Int
    /// Episodes in the update.
    public var episodes: Int
    /// Environment steps taken so far (by every environment of the batch).
    public var totalEnvironmentSteps: UInt64
    /// Mean undiscounted return of the update's episodes; nil when none ended (replay: the
    /// episodes that ended since the previous update, often none).
    public var sampledReturn: Double?
    /// Mean `Σ_t H×(π(·|o_t) ‖ π_θ(·|o_t))` over the update's episodes (with a teacher and at least
    /// one episode), else nil.
    public var sampledCrossEntropy: Double?
    /// λ of the update.
    public var lossWeight: Double
    /// β of the mixture control, if any.
    public var beta: Double?
    /// Norm of the applied update (0 when refused).
    public var updateNorm: Double
}

/// `distill train` on an environment without a tabular MDP underneath (CartPole, Acrobot,
/// MountainCar): `N` environments stepped together, one batched student forward per step (and one
/// teacher forward when there is a teacher), complete episodes (terminated, or cut by the time limit
/// and bootstrapped from the value head) fed to the one learning step (``LearnerState``) as they
/// end. Episodes that straddle an update were collected with the previous parameters: the rules'
/// V-trace weights correct for that lag, as in the cluster.
///
/// With a ``ReplaySpec`` (Rusu's setting) the teacher plays, every step's observations and teacher
/// outputs go into a ``ReplayMemory``, and an iteration is one supervised minibatch update from it
/// after as many new environment steps as the replay ratio asks.
public struct ObservedTrainer<Env: ObservedEnvironment>: @unchecked Sendable {
    /// The learning state (the network student with its value head as critic).
    public private(set) var state: LearnerState<NetworkStudent>
    /// The teacher, if the method has one.
    public let teacher: NetworkTeacher?
    /// The environments stepped together.
    public private(set) var batch: ObservedBatch<Env>
    /// A fresh environment (for evaluation).
    let prototype: Env
    /// Episodes in progress, one per environment.
    var running: [ObservedEpisode]
    /// Returns of the episodes in progress.
    var runningReturns: [Double]
    /// Cross-entropy sums of the episodes in progress.
    var runningCrossEntropy: [Double]
    /// Environment steps taken.
    public private(set) var totalEnvironmentSteps: UInt64 = 0
    /// Iterations done.
    public private(set) var iteration = 0
    /// Rusu's setting, or nil for the paper's on-policy path.
    public let replay: ReplaySpec?
    /// The memory of the teacher's gameplay (with ``replay``).
    public private(set) var memory: ReplayMemory?
    /// Minibatch updates owed to the environment steps stored (`updatesPerStep` per step stored
    /// once the memory holds a minibatch).
    var replayCredit = 0.0

    /// A trainer of `student` with `method` on `environments` (their count is the batch), reading
    /// `teacher` at every observation (nil for actor-critic and other rules without a teacher); with
    /// `replay`, in Rusu's setting.
    public init(
        method: MethodSpec, environments: [Env], student: NetworkStudent, teacher: NetworkTeacher?,
        seed: UInt64, replay: ReplaySpec? = nil
    ) throws {
        guard let first = environments.first else {
            throw DistillError(.invalidConfiguration, "training needs at least one environment")
        }
        let description = first.description
        guard student.network.inputSize == description.observation.count else {
            throw DistillError(
                .invalidConfiguration,
                "the student reads \(student.network.inputSize) numbers, \(description.name) observes \(description.observation.count)"
            )
        }
        guard student.actionCount == description.actionCount else {
            throw DistillError(
                .invalidConfiguration,
                "the student has \(student.actionCount) actions, \(description.name) has \(description.actionCount)")
        }
        let rule = method.rule(at: 0, teacherKind: nil)
        if teacher == nil && (rule.loss != .none || rule.pseudoReward != .none || method.controlUsesTeacher) {
            throw DistillError(
                .invalidConfiguration,
                "method \(method.method.rawValue) reads a teacher: give one with --teacher-file (a network teacher of \(description.name))"
            )
        }
        try teacher?.check(against: description, observation: description.name)
        if let teacher, rule.loss.needsActionValues, teacher.kind != .qValues {
            throw DistillError(
                .invalidConfiguration,
                "method \(method.method.rawValue) reads the teacher's Q-values; \(teacher.identity) is a \(teacher.kind.rawValue) teacher: give a q-values teacher file or another method"
            )
        }
        if let replay {
            try replay.check(method)
            memory = try ReplayMemory(
                capacity: replay.capacity, observationSize: description.observation.count,
                actionCount: description.actionCount, hasActionValues: teacher?.kind == .qValues)
        }
        self.replay = replay
        state = try LearnerState(
            method: method, teacherKind: nil, discount: description.discount, stateCount: 0,
            actionCount: description.actionCount, student: student, seed: seed)
        self.teacher = teacher
        prototype = first
        var root = Xoshiro256StarStar(seed: seed ^ 0x6F62_7365_7276_6564)
        batch = ObservedBatch(environments, seed: root.next())
        running = environments.map { _ in ObservedEpisode(actionCount: description.actionCount) }
        runningReturns = [Double](repeating: 0, count: environments.count)
        runningCrossEntropy = runningReturns
    }

    /// The environment's description.
    public var description: EnvironmentDescription { prototype.description }

    /// Steps the environments until the next update is applied, and returns what it was.
    public mutating func runIteration() -> ObservedIterationResult {
        if let replay { return runReplayIteration(replay) }
        var returns: [Double] = []
        var crossEntropies: [Double] = []
        var steps = 0
        let lossWeight = state.effectiveRule.lossWeight
        var beta: Double?
        if case .mixture(let b) = state.control { beta = b }
        while !state.updateDue {
            for finished in stepAll() {
                steps += finished.episode.length
                returns.append(finished.return)
                crossEntropies.append(finished.crossEntropy)
                state.accumulate(finished.episode)
            }
        }
        return finishIteration(
            state.applyUpdate(), steps: steps, returns: returns, crossEntropies: crossEntropies,
            lossWeight: lossWeight, beta: beta)
    }

    /// Rusu's setting: the teacher plays until the replay ratio owes an update (and the memory
    /// holds a minibatch), then one minibatch drawn uniformly from the memory is learned from.
    mutating func runReplayIteration(_ replay: ReplaySpec) -> ObservedIterationResult {
        var returns: [Double] = []
        var crossEntropies: [Double] = []
        var steps = 0
        let rule = state.effectiveRule
        while replayCredit < 1 {
            let before = totalEnvironmentSteps
            for finished in stepAll() {
                returns.append(finished.return)
                crossEntropies.append(finished.crossEntropy)
            }
            let taken = Int(totalEnvironmentSteps - before)
            steps += taken
            state.countEnvironmentSteps(taken)
        }
        replayCredit -= 1
        let slots = memory!.sample(replay.batchSize, using: &state.rng)
        let memory = self.memory!
        state.withStudent {
            $0.accumulateSupervised(memory, slots: slots, loss: rule.loss, weight: rule.lossWeight)
        }
        return finishIteration(
            state.applyUpdate(), steps: steps, returns: returns, crossEntropies: crossEntropies,
            lossWeight: rule.lossWeight, beta: nil)
    }

    private mutating func finishIteration(
        _ outcome: UpdateOutcome, steps: Int, returns: [Double], crossEntropies: [Double], lossWeight: Double,
        beta: Double?
    ) -> ObservedIterationResult {
        iteration += 1
        var norm = 0.0
        if case .applied(let n) = outcome { norm = n }
        let episodes = Double(returns.count)
        return ObservedIterationResult(
            iteration: iteration, environmentSteps: steps, episodes: returns.count,
            totalEnvironmentSteps: totalEnvironmentSteps,
            sampledReturn: returns.isEmpty ? nil : returns.reduce(0, +) / episodes,
            sampledCrossEntropy: teacher == nil || returns.isEmpty ? nil : crossEntropies.reduce(0, +) / episodes,
            lossWeight: lossWeight, beta: beta, updateNorm: norm)
    }

    /// One step of every environment; returns the episodes that ended (with their return and
    /// cross-entropy sum). All of them join the pending update, so an update may average a few
    /// more than `episodesPerIteration` episodes when several end on the same step.
    mutating func stepAll() -> [(episode: ObservedEpisode, return: Double, crossEntropy: Double)] {
        let n = batch.environments.count
        let na = description.actionCount
        let size = batch.observationCount
        let observations = batch.observations
        let logits = state.student.network.forward(observations, batch: n).logits
        let answer = teacher?.outputs(observations: observations, batch: n)
        var actions = [Int](repeating: 0, count: n)
        var studentRow = [Double](repeating: 0, count: na)
        for i in 0..<n {
            softmaxRow(logits, row: i, into: &studentRow)
            let teacherRow = answer.map { Array($0.probabilities[(i * na)..<(i * na + na)]) }
            let behaviour = (0..<na).map { a in
                state.control.probability(
                    student: studentRow[a], teacher: teacherRow?[a] ?? 1 / Double(na), uniform: 1 / Double(na))
            }
            let a = sample(behaviour)
            actions[i] = a
            if let answer, memory != nil {
                memory!.append(observation: observations[(i * size)..<((i + 1) * size)], outputs: answer, row: i)
                if memory!.count >= replay!.batchSize { replayCredit += replay!.updatesPerStep }
            }
            running[i].observationRows.append(contentsOf: observations[(i * size)..<((i + 1) * size)])
            running[i].actions.append(Int32(a))
            running[i].behaviour.append(behaviour[a])
            running[i].appendTeacher(answer, row: i)
            if let teacherRow {
                var h = 0.0
                for b in 0..<na where teacherRow[b] > 0 {
                    h -= teacherRow[b] * Foundation.log(max(studentRow[b], 1e-300))
                }
                runningCrossEntropy[i] += h
            }
        }
        batch.step(actions)
        totalEnvironmentSteps += UInt64(n)
        var ended: [Int] = []
        for i in 0..<n {
            running[i].rewards.append(batch.outcomes[i].reward)
            runningReturns[i] += batch.outcomes[i].reward
            if batch.outcomes[i].done { ended.append(i) }
        }
        guard !ended.isEmpty else { return [] }
        var finals = [Float]()
        finals.reserveCapacity(ended.count * size)
        for i in ended { finals.append(contentsOf: batch.finalObservations[(i * size)..<((i + 1) * size)]) }
        let finalAnswer = teacher?.outputs(observations: finals, batch: ended.count)
        var finished: [(ObservedEpisode, Double, Double)] = []
        for (k, i) in ended.enumerated() {
            var episode = running[i]
            episode.observationRows.append(contentsOf: finals[(k * size)..<((k + 1) * size)])
            episode.appendTeacher(finalAnswer, row: k)
            episode.terminated = batch.outcomes[i].terminated
            finished.append((episode, runningReturns[i], runningCrossEntropy[i]))
            running[i] = ObservedEpisode(actionCount: na)
            runningReturns[i] = 0
            runningCrossEntropy[i] = 0
        }
        return finished
    }

    /// Samples an action from `probabilities` with the learning state's generator.
    mutating func sample(_ probabilities: [Double]) -> Int {
        let u = state.rng.nextUnit()
        var cumulative = 0.0
        for (a, p) in probabilities.enumerated() {
            cumulative += p
            if u < cumulative { return a }
        }
        return probabilities.lastIndex { $0 > 0 } ?? 0
    }

    /// The student's sampled return over `episodes` fresh episodes from `seed` (its stochastic
    /// policy, as it trains), with a 95 % interval.
    public func evaluate(episodes: Int, seed: UInt64) -> ReturnEstimate95 {
        Self.evaluate(network: state.student.network, prototype: prototype, episodes: episodes, seed: seed)
    }

    /// The sampled return of `network`'s stochastic policy over `episodes` fresh episodes of
    /// copies of `prototype` from `seed`, with a 95 % interval.
    public static func evaluate(
        network: PolicyValueNetwork, prototype: Env, episodes: Int, seed: UInt64
    ) -> ReturnEstimate95 {
        evaluate(
            prototype: prototype, episodes: episodes, seed: seed,
            policy: { observations, count in
                let logits = network.forward(observations, batch: count).logits
                var rows = [Double](repeating: 0, count: count * network.actionCount)
                var row = [Double](repeating: 0, count: network.actionCount)
                for i in 0..<count {
                    softmaxRow(logits, row: i, into: &row)
                    for a in row.indices { rows[i * row.count + a] = row[a] }
                }
                return rows
            })
    }

    /// The sampled return of `policy` (probabilities `[B × A]` at `B` observations) over `episodes`
    /// episodes of copies of `prototype`, stepped together; with a 95 % interval.
    public static func evaluate(
        prototype: Env, episodes: Int, seed: UInt64, policy: ([Float], Int) -> [Double]
    ) -> ReturnEstimate95 {
        precondition(episodes > 0, "evaluate at least one episode")
        let na = prototype.description.actionCount
        let size = prototype.description.observation.count
        var environments = [Env](repeating: prototype, count: episodes)
        var root = Xoshiro256StarStar(seed: seed)
        var generators = (0..<episodes).map { _ in root.split() }
        var observations = [Float](repeating: 0, count: episodes * size)
        observations.withUnsafeMutableBufferPointer { all in
            for i in 0..<episodes {
                environments[i].reset(
                    rng: &generators[i], into: UnsafeMutableBufferPointer(rebasing: all[(i * size)..<((i + 1) * size)]))
            }
        }
        var returns = [Double](repeating: 0, count: episodes)
        var live = Array(0..<episodes)
        var sampler = root.split()
        while !live.isEmpty {
            var batch = [Float]()
            batch.reserveCapacity(live.count * size)
            for i in live { batch.append(contentsOf: observations[(i * size)..<((i + 1) * size)]) }
            let probabilities = policy(batch, live.count)
            var stillLive: [Int] = []
            observations.withUnsafeMutableBufferPointer { all in
                for (k, i) in live.enumerated() {
                    let u = sampler.nextUnit()
                    var cumulative = 0.0
                    var action = na - 1
                    for a in 0..<na {
                        cumulative += probabilities[k * na + a]
                        if u < cumulative {
                            action = a
                            break
                        }
                    }
                    let outcome = environments[i].step(
                        action, rng: &generators[i],
                        into: UnsafeMutableBufferPointer(rebasing: all[(i * size)..<((i + 1) * size)]))
                    returns[i] += outcome.reward
                    if !outcome.done { stillLive.append(i) }
                }
            }
            live = stillLive
        }
        return ReturnEstimate95(returns: returns)
    }
}

/// `softmax` of row `row` of `logits` (float32, `[B × A]`) into `out` (A entries), in Double.
@inlinable
public func softmaxRow(_ logits: [Float], row: Int, into out: inout [Double]) {
    let na = out.count
    var m = -Double.infinity
    for a in 0..<na { m = max(m, Double(logits[row * na + a])) }
    var z = 0.0
    for a in 0..<na {
        out[a] = Foundation.exp(Double(logits[row * na + a]) - m)
        z += out[a]
    }
    for a in 0..<na { out[a] /= z }
}

extension MethodSpec {
    /// Whether the control policy (at any point of its schedule) acts with the teacher.
    public var controlUsesTeacher: Bool {
        switch controlPolicy(at: 0) {
        case .teacher, .mixture: true
        case .student, .uniform: false
        }
    }
}

extension StudentSpec {
    /// The network student for an environment without a tabular MDP underneath (it reads the
    /// environment's own observation vector), with its value head as the critic.
    public func buildNetwork(for description: EnvironmentDescription, method: MethodSpec) throws -> NetworkStudent {
        let architecture = try parsedArchitecture()
        guard architecture.convolutions.isEmpty || description.observation.shape.count == 3 else {
            throw DistillError(
                .invalidConfiguration,
                "--student \(self.architecture) has convolutions; \(description.name) observes a vector of \(description.observation.count)"
            )
        }
        return try makeStudent(
            architecture, inputShape: description.observation.shape, actionCount: description.actionCount,
            method: method, observations: [],
            critic: .valueHead(target: method.criticTarget, weight: method.criticLearningRate))
    }
}
