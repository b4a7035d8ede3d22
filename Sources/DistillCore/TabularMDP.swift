/// One possible result of taking an action: the next state, its probability and the reward.
public struct Outcome: Sendable, Hashable, Codable {
    /// The next state id.
    public var next: Int
    /// The probability of this outcome, in (0, 1].
    public var probability: Double
    /// The reward received on this transition.
    public var reward: Double

    /// Creates an outcome.
    public init(next: Int, probability: Double, reward: Double) {
        self.next = next
        self.probability = probability
        self.reward = reward
    }
}

/// The result of one environment step.
public struct StepResult: Sendable, Hashable {
    /// The next state (the observation is the state id).
    public var next: Int32
    /// The reward of the transition.
    public var reward: Double
    /// Whether `next` is terminal, i.e. the episode ended.
    public var terminal: Bool

    /// Creates a step result.
    public init(next: Int32, reward: Double, terminal: Bool) {
        self.next = next
        self.reward = reward
        self.terminal = terminal
    }
}

/// A finite episodic MDP (METHODS.md §1): states, actions, start distribution `ρ0`, transition
/// outcomes `(s', P(s'|s,a), r(s,a,s'))`, terminal (absorbing) states and discount `γ`.
///
/// Outcomes are stored flat (compressed rows indexed by `s·|A| + a`) so that a step touches only
/// the few next states of one cell. Terminal states have no outcomes: an episode ends on entering
/// one. Observation = state id.
public struct TabularMDP: Sendable {
    /// Number of states `|S|`, terminal ones included.
    public let stateCount: Int
    /// Number of actions `|A|`.
    public let actionCount: Int
    /// Discount `γ` in [0, 1].
    public let discount: Double
    /// Start distribution `ρ0` over states (zero on terminal states).
    public let startDistribution: [Double]
    /// Whether each state is terminal (absorbing, episode over).
    public let isTerminal: [Bool]
    /// Offsets into the outcome arrays: outcomes of `(s, a)` are `offsets[s·|A|+a] ..< offsets[s·|A|+a+1]`.
    public let outcomeOffsets: [Int32]
    /// Next state of each outcome.
    public let outcomeNext: [Int32]
    /// Probability of each outcome.
    public let outcomeProbability: [Double]
    /// Running sum of probabilities within each `(s, a)` (for inverse-CDF sampling).
    public let outcomeCumulative: [Double]
    /// Reward of each outcome.
    public let outcomeReward: [Double]
    /// Running sum of `ρ0` over ``startStates`` (for sampling start states).
    public let startCumulative: [Double]
    /// The states with `ρ0(s) > 0`, in increasing order.
    public let startStates: [Int32]

    /// Creates an MDP from per-(state, action) outcome lists; used by the built-in environments.
    ///
    /// - Precondition: sizes agree, probabilities are non-negative and sum to 1 for every action of
    ///   every non-terminal state, and `ρ0` is a distribution over non-terminal states. Use
    ///   ``MDPDescription/validated()`` for untrusted input.
    public init(
        stateCount: Int, actionCount: Int, discount: Double, startDistribution: [Double], isTerminal: [Bool],
        outcomes: (_ state: Int, _ action: Int) -> [Outcome]
    ) {
        precondition(stateCount > 0 && actionCount > 0, "an MDP needs at least one state and one action")
        precondition(
            startDistribution.count == stateCount,
            "start distribution has \(startDistribution.count) entries, expected \(stateCount)")
        precondition(
            isTerminal.count == stateCount, "terminal flags have \(isTerminal.count) entries, expected \(stateCount)")
        precondition(discount >= 0 && discount <= 1, "discount must be in [0, 1], got \(discount)")
        self.stateCount = stateCount
        self.actionCount = actionCount
        self.discount = discount
        self.startDistribution = startDistribution
        self.isTerminal = isTerminal
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(stateCount * actionCount + 1)
        var next: [Int32] = []
        var probability: [Double] = []
        var cumulative: [Double] = []
        var reward: [Double] = []
        for s in 0..<stateCount {
            for a in 0..<actionCount {
                if !isTerminal[s] {
                    let list = outcomes(s, a)
                    var total = 0.0
                    for o in list where o.probability > 0 {
                        precondition(
                            o.next >= 0 && o.next < stateCount,
                            "state \(s) action \(a): next state \(o.next) out of range")
                        total += o.probability
                        next.append(Int32(o.next))
                        probability.append(o.probability)
                        cumulative.append(total)
                        reward.append(o.reward)
                    }
                    precondition(abs(total - 1) < 1e-9, "state \(s) action \(a): probabilities sum to \(total)")
                    cumulative[cumulative.count - 1] = 1
                }
                offsets.append(Int32(next.count))
            }
        }
        outcomeOffsets = offsets
        outcomeNext = next
        outcomeProbability = probability
        outcomeCumulative = cumulative
        outcomeReward = reward
        var running = 0.0
        var startCum: [Double] = []
        var starts: [Int32] = []
        for (s, p) in startDistribution.enumerated() {
            precondition(p >= 0, "start probability of state \(s) is negative")
            precondition(p == 0 || !isTerminal[s], "start distribution puts mass on terminal state \(s)")
            if p > 0 {
                running += p
                startCum.append(running)
                starts.append(Int32(s))
            }
        }
        precondition(abs(running - 1) < 1e-9, "start distribution sums to \(running)")
        startCum[startCum.count - 1] = 1
        startCumulative = startCum
        startStates = starts
    }

    /// The outcomes of taking `action` in `state` (empty for terminal states).
    public func outcomes(state: Int, action: Int) -> [Outcome] {
        let i = state * actionCount + action
        return (Int(outcomeOffsets[i])..<Int(outcomeOffsets[i + 1])).map {
            Outcome(next: Int(outcomeNext[$0]), probability: outcomeProbability[$0], reward: outcomeReward[$0])
        }
    }

    /// Samples a start state from `ρ0`.
    @inlinable
    public func reset<G: RandomNumberGenerator>(_ rng: inout G) -> Int32 {
        let u = rng.unitInterval()
        var k = 0
        while k < startStates.count - 1 && startCumulative[k] <= u { k += 1 }
        return startStates[k]
    }

    /// Samples one transition from `state` under `action`.
    ///
    /// - Precondition: `state` is not terminal.
    @inlinable
    public func step<G: RandomNumberGenerator>(_ state: Int32, _ action: Int, _ rng: inout G) -> StepResult {
        precondition(!isTerminal[Int(state)], "step from terminal state \(state)")
        let i = Int(state) * actionCount + action
        let u = rng.unitInterval()
        var k = Int(outcomeOffsets[i])
        let end = Int(outcomeOffsets[i + 1]) - 1
        while k < end && outcomeCumulative[k] <= u { k += 1 }
        let next = outcomeNext[k]
        return StepResult(next: next, reward: outcomeReward[k], terminal: isTerminal[Int(next)])
    }

    /// The expected reward `r̄(s,a) = Σ_{s'} P(s'|s,a) r(s,a,s')`.
    public func expectedReward(state: Int, action: Int) -> Double {
        let i = state * actionCount + action
        var total = 0.0
        for k in Int(outcomeOffsets[i])..<Int(outcomeOffsets[i + 1]) {
            total += outcomeProbability[k] * outcomeReward[k]
        }
        return total
    }

    /// A description of this MDP that encodes to the documented JSON schema.
    public var jsonDescription: MDPDescription {
        MDPDescription(
            stateCount: stateCount, actionCount: actionCount, discount: discount, start: startDistribution,
            terminal: isTerminal,
            transitions: (0..<stateCount).map { s in
                (0..<actionCount).map { a in
                    outcomes(state: s, action: a).map {
                        MDPDescription.Transition(next: $0.next, probability: $0.probability, reward: $0.reward)
                    }
                }
            })
    }
}

/// The JSON form of a tabular MDP (schema in README.md, "File formats").
///
/// ```json
/// {"stateCount": 3, "actionCount": 2, "discount": 1.0,
///  "start": [1, 0, 0], "terminal": [false, false, true],
///  "transitions": [[[{"next": 1, "probability": 1, "reward": 0}], [{"next": 2, "probability": 1, "reward": 1}]],
///                  [[{"next": 2, "probability": 1, "reward": -1}], [{"next": 0, "probability": 1, "reward": 0}]],
///                  [[], []]]}
/// ```
public struct MDPDescription: Sendable, Hashable, Codable {
    /// One outcome of a transition.
    public struct Transition: Sendable, Hashable, Codable {
        /// The next state id.
        public var next: Int
        /// Its probability.
        public var probability: Double
        /// The reward of this outcome.
        public var reward: Double

        /// Creates a transition outcome.
        public init(next: Int, probability: Double, reward: Double) {
            self.next = next
            self.probability = probability
            self.reward = reward
        }
    }

    /// Number of states.
    public var stateCount: Int
    /// Number of actions.
    public var actionCount: Int
    /// Discount γ in [0, 1].
    public var discount: Double
    /// Start distribution over states.
    public var start: [Double]
    /// Terminal flag per state.
    public var terminal: [Bool]
    /// `transitions[s][a]` lists the outcomes of action `a` in state `s` (empty for terminal states).
    public var transitions: [[[Transition]]]

    /// Creates a description.
    public init(
        stateCount: Int, actionCount: Int, discount: Double, start: [Double], terminal: [Bool],
        transitions: [[[Transition]]]
    ) {
        self.stateCount = stateCount
        self.actionCount = actionCount
        self.discount = discount
        self.start = start
        self.terminal = terminal
        self.transitions = transitions
    }

    /// Checks every field and builds the MDP; the error names the field, state and action at fault.
    public func validated() throws -> TabularMDP {
        func bad(_ m: String) -> DistillError { DistillError(.invalidDescription, m) }
        guard stateCount > 0 else { throw bad("stateCount must be positive, got \(stateCount)") }
        guard actionCount > 0 else { throw bad("actionCount must be positive, got \(actionCount)") }
        guard discount.isFinite, discount >= 0, discount <= 1 else {
            throw bad("discount must be in [0, 1], got \(discount)")
        }
        guard start.count == stateCount else {
            throw bad("start has \(start.count) entries, expected stateCount = \(stateCount)")
        }
        guard terminal.count == stateCount else {
            throw bad("terminal has \(terminal.count) entries, expected stateCount = \(stateCount)")
        }
        guard transitions.count == stateCount else {
            throw bad("transitions has \(transitions.count) rows, expected one per state (\(stateCount))")
        }
        var startTotal = 0.0
        for (s, p) in start.enumerated() {
            guard p.isFinite else { throw bad("start[state \(s)] is \(p), expected a finite probability") }
            guard p >= 0 else { throw bad("start[state \(s)] is negative (\(p))") }
            if p > 0 && terminal[s] { throw bad("start[state \(s)] puts mass on a terminal state") }
            startTotal += p
        }
        guard abs(startTotal - 1) <= 1e-6 else { throw bad("start probabilities sum to \(startTotal), expected 1") }
        for s in 0..<stateCount {
            if terminal[s] { continue }
            guard transitions[s].count == actionCount else {
                throw bad(
                    "transitions[state \(s)] has \(transitions[s].count) actions, expected actionCount = \(actionCount)"
                )
            }
            for a in 0..<actionCount {
                var total = 0.0
                for (k, o) in transitions[s][a].enumerated() {
                    let place = "transitions[state \(s)][action \(a)][outcome \(k)]"
                    guard o.next >= 0 && o.next < stateCount else {
                        throw bad("\(place).next is \(o.next), expected a state id in 0..<\(stateCount)")
                    }
                    guard o.probability.isFinite else { throw bad("\(place).probability is \(o.probability)") }
                    guard o.probability >= 0 else { throw bad("\(place).probability is negative (\(o.probability))") }
                    guard o.reward.isFinite else { throw bad("\(place).reward is \(o.reward)") }
                    total += o.probability
                }
                guard abs(total - 1) <= 1e-6 else {
                    throw bad("transitions[state \(s)][action \(a)]: probabilities sum to \(total), expected 1")
                }
            }
        }
        let normalised = transitions
        return TabularMDP(
            stateCount: stateCount, actionCount: actionCount, discount: discount,
            startDistribution: start.map { $0 / startTotal }, isTerminal: terminal
        ) { s, a in
            let list = normalised[s][a]
            let total = list.reduce(0) { $0 + $1.probability }
            return list.map { Outcome(next: $0.next, probability: $0.probability / total, reward: $0.reward) }
        }
    }
}
