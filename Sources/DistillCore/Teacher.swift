import Foundation

/// The floor applied to teacher probabilities before taking their logarithm (ours): methods whose
/// pseudo-reward is `log π(a|s)` need a finite value where a greedy teacher puts zero mass.
public let teacherLogProbabilityFloor = 1e-8

/// A tabular teacher (METHODS.md §6): per state its action probabilities `π(·|s)`, its value
/// `V_π(s)` and, for Q-based teachers, the action values `Q(s,·)` that Rusu's losses need.
public struct Teacher: Sendable {
    /// A human-readable identity, e.g. `q-learning(T=0.01,seed=3)`.
    public var identity: String
    /// Number of states.
    public let stateCount: Int
    /// Number of actions.
    public let actionCount: Int
    /// `π(a|s)` row-major.
    public let probabilities: [Double]
    /// `log max(π(a|s), floor)` row-major (``teacherLogProbabilityFloor``).
    public let logProbabilities: [Double]
    /// `V_π(s)` (exact or estimated), zero on terminal states.
    public var values: [Double]
    /// `Q(s,a)` row-major, when the teacher has action values.
    public let actionValues: [Double]?
    /// `actionValues` or empty, for pinning without an optional copy in the hot path.
    @usableFromInline let actionValueTable: [Double]

    /// Creates a teacher from tables.
    ///
    /// - Precondition: sizes agree. Probabilities are not checked here (the fig2 teacher is not a
    ///   distribution); use ``TeacherDescription/validated(for:)`` for untrusted input.
    public init(
        identity: String, stateCount: Int, actionCount: Int, probabilities: [Double], values: [Double],
        actionValues: [Double]? = nil
    ) {
        precondition(
            probabilities.count == stateCount * actionCount,
            "teacher policy has \(probabilities.count) entries, expected \(stateCount * actionCount)")
        precondition(values.count == stateCount, "teacher values have \(values.count) entries, expected \(stateCount)")
        precondition(
            actionValues == nil || actionValues!.count == stateCount * actionCount, "teacher Q has the wrong size")
        self.identity = identity
        self.stateCount = stateCount
        self.actionCount = actionCount
        self.probabilities = probabilities
        self.logProbabilities = probabilities.map { Foundation.log(max($0, teacherLogProbabilityFloor)) }
        self.values = values
        self.actionValues = actionValues
        self.actionValueTable = actionValues ?? []
    }

    /// `π(·|s)` as an array.
    public func probabilities(state: Int) -> [Double] {
        Array(probabilities[(state * actionCount)..<((state + 1) * actionCount)])
    }

    /// The same policy with `V_π` replaced by a Monte-Carlo estimate from `rollouts` episodes per
    /// state (the paper uses 100).
    public func withMonteCarloValues(_ mdp: TabularMDP, rollouts: Int, rng: inout Xoshiro256StarStar) -> Teacher {
        var t = self
        t.values = PolicyEvaluation.monteCarloValues(mdp, policy: probabilities, rollouts: rollouts, rng: &rng)
        t.identity += "+mc-values(\(rollouts))"
        return t
    }

    /// The description that encodes to the documented teacher-file JSON schema.
    public var jsonDescription: TeacherDescription {
        TeacherDescription(
            identity: identity, stateCount: stateCount, actionCount: actionCount,
            policy: (0..<stateCount).map { probabilities(state: $0) }, values: values,
            q: actionValues.map { q in (0..<stateCount).map { Array(q[($0 * actionCount)..<(($0 + 1) * actionCount)]) }
            })
    }
}

/// `softmax(x / T)` of a row; `T = 0` is the greedy limit (ties share the mass equally).
public func softmax(_ x: [Double], temperature: Double = 1) -> [Double] {
    precondition(temperature >= 0, "temperature must be non-negative")
    let m = x.max() ?? 0
    if temperature == 0 {
        let best = x.map { $0 == m ? 1.0 : 0.0 }
        let k = best.reduce(0, +)
        return best.map { $0 / k }
    }
    let e = x.map { Foundation.exp(($0 - m) / temperature) }
    let z = e.reduce(0, +)
    return e.map { $0 / z }
}

/// Settings of the tabular Q-learning teacher (METHODS.md §6; learning rate and steps are ours).
public struct QLearningConfiguration: Sendable, Hashable, Codable {
    /// Exploration ε of the ε-greedy behaviour (paper: 0.1).
    public var epsilon: Double = 0.1
    /// Step size of the Q update (default 0.1, ours).
    public var learningRate: Double = 0.1
    /// Number of environment steps of training (default 200 000, ours).
    public var steps: Int = 200_000
    /// Policy temperature T: `π = softmax(Q/T)`, T = 0 greedy (Fig. 3 uses 0, 0.01, 0.1).
    public var temperature: Double = 0.01
    /// Episode cap during training (ours).
    public var maxEpisodeSteps: Int = 10_000

    /// The documented defaults.
    public init() {}
}

/// Builders of the teachers of METHODS.md §6.
public enum Teachers {
    /// Tabular Q-learning with ε-greedy behaviour; the policy is `softmax(Q/T)`, `V_π` exact.
    public static func qLearning(
        _ mdp: TabularMDP, _ config: QLearningConfiguration = .init(), seed: UInt64
    ) throws
        -> Teacher
    {
        guard config.epsilon >= 0, config.epsilon <= 1 else {
            throw DistillError(.invalidConfiguration, "epsilon must be in [0, 1]")
        }
        guard config.learningRate > 0, config.learningRate <= 1 else {
            throw DistillError(.invalidConfiguration, "Q-learning rate must be in (0, 1]")
        }
        guard config.steps >= 0 else {
            throw DistillError(.invalidConfiguration, "Q-learning steps must be non-negative")
        }
        guard config.temperature >= 0 else {
            throw DistillError(.invalidConfiguration, "temperature must be non-negative")
        }
        var rng = Xoshiro256StarStar(seed: seed)
        let na = mdp.actionCount
        var q = [Double](repeating: 0, count: mdp.stateCount * na)
        var s = mdp.reset(&rng)
        var episodeSteps = 0
        for _ in 0..<config.steps {
            let row = Int(s) * na
            var a: Int
            if rng.unitInterval() < config.epsilon {
                a = Int(rng.next() % UInt64(na))
            } else {
                a = 0
                var ties = 1.0
                for b in 1..<max(1, na) {
                    if q[row + b] > q[row + a] {
                        a = b
                        ties = 1
                    } else if q[row + b] == q[row + a] {
                        ties += 1
                        if rng.unitInterval() * ties < 1 { a = b }
                    }
                }
            }
            let step = mdp.step(s, a, &rng)
            var target = step.reward
            if !step.terminal {
                var best = -Double.infinity
                for b in 0..<na { best = max(best, q[Int(step.next) * na + b]) }
                target += mdp.discount * best
            }
            q[row + a] += config.learningRate * (target - q[row + a])
            episodeSteps += 1
            if step.terminal || episodeSteps >= config.maxEpisodeSteps {
                s = mdp.reset(&rng)
                episodeSteps = 0
            } else {
                s = step.next
            }
        }
        var policy: [Double] = []
        for st in 0..<mdp.stateCount {
            policy += softmax(Array(q[(st * na)..<((st + 1) * na)]), temperature: config.temperature)
        }
        let values = try PolicyEvaluation.values(mdp, policy: policy)
        return Teacher(
            identity: "q-learning(T=\(config.temperature),steps=\(config.steps),seed=\(seed))",
            stateCount: mdp.stateCount,
            actionCount: na, probabilities: policy, values: values, actionValues: q)
    }

    /// The optimal teacher: value iteration, greedy policy (ties shared), `V = V*`, `Q = Q*`.
    public static func optimal(_ mdp: TabularMDP) throws -> Teacher {
        let q = PolicyEvaluation.optimalActionValues(mdp)
        let na = mdp.actionCount
        var policy: [Double] = []
        for s in 0..<mdp.stateCount { policy += greedy(Array(q[(s * na)..<((s + 1) * na)])) }
        return Teacher(
            identity: "optimal", stateCount: mdp.stateCount, actionCount: na, probabilities: policy,
            values: try PolicyEvaluation.values(mdp, policy: policy), actionValues: q)
    }

    /// The adversarial teacher of Sec. 4.2: always the worst action (`argmin Q*`, the first on ties;
    /// on `chain` always L), but with the *optimal* teacher's value function.
    public static func adversarial(_ mdp: TabularMDP) throws -> Teacher {
        let best = try optimal(mdp)
        let q = best.actionValues!
        let na = mdp.actionCount
        var policy = [Double](repeating: 0, count: mdp.stateCount * na)
        for s in 0..<mdp.stateCount {
            var worst = 0
            for a in 1..<max(1, na) where q[s * na + a] < q[s * na + worst] { worst = a }
            policy[s * na + worst] = 1
        }
        return Teacher(
            identity: "adversarial", stateCount: mdp.stateCount, actionCount: na, probabilities: policy,
            values: best.values, actionValues: q)
    }

    /// A noisy teacher (Fig. 5): in a `fraction` of the non-terminal states the base teacher visits
    /// (expected visits > 0), its most probable action swaps probability (and Q value) with a
    /// uniformly random other action. `V_π` is re-evaluated exactly for the noisy policy.
    public static func noisy(_ base: Teacher, fraction: Double, mdp: TabularMDP, seed: UInt64) throws -> Teacher {
        guard fraction >= 0, fraction <= 1 else {
            throw DistillError(.invalidConfiguration, "noise fraction must be in [0, 1], got \(fraction)")
        }
        let na = mdp.actionCount
        guard na >= 2 else { throw DistillError(.invalidConfiguration, "a noisy teacher needs at least 2 actions") }
        let d = try PolicyEvaluation.visits(mdp, policy: base.probabilities)
        var visited = (0..<mdp.stateCount).filter { !mdp.isTerminal[$0] && d[$0] > 1e-12 }
        var rng = Xoshiro256StarStar(seed: seed)
        visited.shuffle(using: &rng)
        let flips = Int((fraction * Double(visited.count)).rounded())
        var policy = base.probabilities
        var q = base.actionValues
        for s in visited.prefix(flips) {
            let row = s * na
            var top = 0
            for a in 1..<na where policy[row + a] > policy[row + top] { top = a }
            var other = Int(rng.next() % UInt64(na - 1))
            if other >= top { other += 1 }
            policy.swapAt(row + top, row + other)
            q?.swapAt(row + top, row + other)
        }
        return Teacher(
            identity: "noisy(\(base.identity),fraction=\(fraction),seed=\(seed))", stateCount: mdp.stateCount,
            actionCount: na,
            probabilities: policy, values: try PolicyEvaluation.values(mdp, policy: policy), actionValues: q)
    }

    /// The uniform teacher, with its exact value and action values.
    public static func uniform(_ mdp: TabularMDP) throws -> Teacher {
        let policy = [Double](repeating: 1 / Double(mdp.actionCount), count: mdp.stateCount * mdp.actionCount)
        let v = try PolicyEvaluation.values(mdp, policy: policy)
        return Teacher(
            identity: "uniform", stateCount: mdp.stateCount, actionCount: mdp.actionCount, probabilities: policy,
            values: v,
            actionValues: PolicyEvaluation.actionValues(mdp, stateValues: v))
    }

    /// The zero-value teacher: uniform policy, `V ≡ 0` (for `TD + V_0`, Sec. 4.1).
    public static func zeroValue(_ mdp: TabularMDP) -> Teacher {
        Teacher(
            identity: "zero-value", stateCount: mdp.stateCount, actionCount: mdp.actionCount,
            probabilities: [Double](repeating: 1 / Double(mdp.actionCount), count: mdp.stateCount * mdp.actionCount),
            values: [Double](repeating: 0, count: mdp.stateCount))
    }

    /// The Fig. 2 "teacher": it expresses itself only in `sR`, preferring R. Used with the
    /// ``DistillationLoss/agreement(scale:)`` loss `ℓ(θ|s) = −4·Σ_a π(a|s) π_θ(a|s)`, which is
    /// `−4 π_θ(R|sR)` in `sR` and zero elsewhere because the teacher rows of s0 and sL are zero.
    public static func fig2() -> Teacher {
        Teacher(
            identity: "fig2", stateCount: 4, actionCount: 2, probabilities: [0, 0, 0, 0, 0, 1, 0, 0],
            values: [0, 0, 0, 0])
    }

    static func greedy(_ row: [Double]) -> [Double] { softmax(row, temperature: 0) }
}

/// The JSON form of a teacher table (schema in README.md, "File formats").
///
/// ```json
/// {"identity": "my-teacher", "stateCount": 3, "actionCount": 2,
///  "policy": [[0.9, 0.1], [0.5, 0.5], [0.5, 0.5]], "values": [0.4, -0.2, 0], "q": [[1, 0], [0, 0], [0, 0]]}
/// ```
/// `identity` and `q` are optional.
public struct TeacherDescription: Sendable, Hashable, Codable {
    /// Identity string (optional).
    public var identity: String?
    /// Number of states (must match the MDP).
    public var stateCount: Int
    /// Number of actions (must match the MDP).
    public var actionCount: Int
    /// `policy[s][a] = π(a|s)`; each row sums to 1.
    public var policy: [[Double]]
    /// `values[s] = V_π(s)`.
    public var values: [Double]
    /// Optional `q[s][a] = Q(s,a)`.
    public var q: [[Double]]?

    /// Creates a description.
    public init(
        identity: String?, stateCount: Int, actionCount: Int, policy: [[Double]], values: [Double], q: [[Double]]?
    ) {
        self.identity = identity
        self.stateCount = stateCount
        self.actionCount = actionCount
        self.policy = policy
        self.values = values
        self.q = q
    }

    /// Checks the table against `mdp` and builds the teacher; errors name the field and state.
    public func validated(for mdp: TabularMDP) throws -> Teacher {
        func bad(_ m: String) -> DistillError { DistillError(.invalidDescription, m) }
        guard stateCount == mdp.stateCount else {
            throw bad("stateCount is \(stateCount), but the MDP has \(mdp.stateCount) states")
        }
        guard actionCount == mdp.actionCount else {
            throw bad("actionCount is \(actionCount), but the MDP has \(mdp.actionCount) actions")
        }
        guard policy.count == stateCount else {
            throw bad("policy has \(policy.count) rows, expected one per state (\(stateCount))")
        }
        guard values.count == stateCount else {
            throw bad("values has \(values.count) entries, expected one per state (\(stateCount))")
        }
        for s in 0..<stateCount {
            guard policy[s].count == actionCount else {
                throw bad("policy[state \(s)] has \(policy[s].count) entries, expected actionCount = \(actionCount)")
            }
            var total = 0.0
            for (a, p) in policy[s].enumerated() {
                guard p.isFinite else { throw bad("policy[state \(s)][action \(a)] is \(p), expected a probability") }
                guard p >= 0 else { throw bad("policy[state \(s)][action \(a)] is negative (\(p))") }
                total += p
            }
            guard abs(total - 1) <= 1e-6 else { throw bad("policy[state \(s)] sums to \(total), expected 1") }
            guard values[s].isFinite else { throw bad("values[state \(s)] is \(values[s]), expected a finite number") }
        }
        if let q {
            guard q.count == stateCount else {
                throw bad("q has \(q.count) rows, expected one per state (\(stateCount))")
            }
            for s in 0..<stateCount {
                guard q[s].count == actionCount else {
                    throw bad("q[state \(s)] has \(q[s].count) entries, expected actionCount = \(actionCount)")
                }
                for (a, x) in q[s].enumerated() where !x.isFinite {
                    throw bad("q[state \(s)][action \(a)] is \(x), expected a finite number")
                }
            }
        }
        return Teacher(
            identity: identity ?? "file", stateCount: stateCount, actionCount: actionCount,
            probabilities: policy.flatMap { row in
                let t = row.reduce(0, +)
                return row.map { $0 / t }
            },
            values: values, actionValues: q?.flatMap { $0 })
    }
}
