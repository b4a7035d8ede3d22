import Foundation

/// The per-step auxiliary loss `ℓ(π_θ, s_t)` of eq. 1 (short-term alignment).
public enum DistillationLoss: Sendable, Hashable, Codable {
    /// No loss.
    case none
    /// `H×(π(s)‖π_θ(s)) = −Σ_a π(a|s) log π_θ(a|s)`; `∂ℓ/∂z = π_θ − π` (Table 1, distillation).
    case crossEntropy
    /// `H×(π_θ(s)‖π(s)) = −Σ_a π_θ(a|s) log π(a|s)` (Table 1, exp. entropy regularised).
    case reverseCrossEntropy
    /// `−κ Σ_a π(a|s) π_θ(a|s)`: Fig. 2's `ℓ(θ|sR) = −4 π_θ(R|sR)` with κ = 4 and the fig2 teacher.
    case agreement(scale: Double)
    /// Rusu et al. 2016 `KL(softmax(Q/τ) ‖ softmax(z_θ))`.
    case rusuKL(temperature: Double)
    /// Rusu et al. 2016 `−log π_θ(argmax_a Q(s,a) | s)`.
    case rusuNLL
    /// Rusu et al. 2016 `‖Q(s,·) − z_θ(s,·)‖²` (regression of logits on Q-values).
    case rusuMSE

    /// Whether the loss reads the teacher's Q-values.
    public var needsActionValues: Bool {
        switch self {
        case .rusuKL, .rusuNLL, .rusuMSE: true
        default: false
        }
    }
}

/// The pseudo-reward `r̂_i` of eq. 1 (long-term alignment), before the optional `+R`.
public enum PseudoReward: String, Sendable, Hashable, Codable {
    /// `r̂ = 0`.
    case none
    /// `r̂_i = log π(a_i|s_i)` (entropy regularised).
    case teacherLogProbability
    /// `r̂_i = −ℓ(s_{i+1})`, zero if `s_{i+1}` is terminal (N-distill, Theorem 2).
    case negativeNextLoss
    /// `r̂_i = log π(a_{i+1}|s_{i+1})`, zero if `s_{i+1}` is terminal (exp. entropy regularised).
    case nextTeacherLogProbability
    /// `r̂_i = γ V_π(s_{i+1}) − V_π(s_i)` (Sec. 4.2 shaping; `teacher-v-reward` adds `r_i` too).
    case teacherValueShaping
    /// `r̂_i = log π(a_i|s_i) − log π_θ(a_i|s_i)` (KL-regularised RL toward the teacher, Fig. 5).
    case klRegularised
}

/// What multiplies the score `∇log π_θ(a_t|s_t)`.
public enum ReturnEstimate: String, Sendable, Hashable, Codable {
    /// The (off-policy corrected) pseudo-return `R̂_t = Σ_{i≥t} γ^{i−t} r̂_i`.
    case monteCarlo
    /// One step bootstrapped from the teacher: `r̂_t + γ V_π(s_{t+1})` (TD + V_π, Sec. 4.1).
    case bootstrapTeacherValue
    /// One step bootstrapped from the student critic: `r̂_t + γ V̂_{π_θ}(s_{t+1})` (TD(1) actor-critic).
    case bootstrapStudentValue
    /// One step, nothing to bootstrap from: `r̂_t` (TD + V_0, Sec. 4.1).
    case bootstrapZero
}

/// An update rule `(ℓ, r̂, return estimate)` of METHODS.md §2; the control policy is chosen
/// separately (``ControlPolicy``).
public struct UpdateRule: Sendable, Hashable, Codable {
    /// The auxiliary loss ℓ.
    public var loss: DistillationLoss
    /// The weight of ℓ (kickstarting's λ; 1 otherwise).
    public var lossWeight: Double
    /// `v-gated`: multiply ℓ by `1[V_π(s) > V̂_{π_θ}(s)]` (Prop. 2).
    public var gatesLossOnValue: Bool
    /// The pseudo-reward.
    public var pseudoReward: PseudoReward
    /// `+R`: add the environment reward `r_i` to `r̂_i`.
    public var addsReward: Bool
    /// What multiplies the score function.
    public var returnEstimate: ReturnEstimate
    /// Subtract the student critic `V̂_{π_θ}(s_t)` from the return (variance only, on-policy).
    public var subtractsBaseline: Bool

    /// Creates a rule.
    public init(
        loss: DistillationLoss = .none, lossWeight: Double = 1, gatesLossOnValue: Bool = false,
        pseudoReward: PseudoReward = .none, addsReward: Bool = false, returnEstimate: ReturnEstimate = .monteCarlo,
        subtractsBaseline: Bool = false
    ) {
        self.loss = loss
        self.lossWeight = lossWeight
        self.gatesLossOnValue = gatesLossOnValue
        self.pseudoReward = pseudoReward
        self.addsReward = addsReward
        self.returnEstimate = returnEstimate
        self.subtractsBaseline = subtractsBaseline
    }

    /// Whether the rule reads the student critic `V̂_{π_θ}`.
    public var needsStudentValues: Bool {
        gatesLossOnValue || subtractsBaseline || returnEstimate == .bootstrapStudentValue
    }

    /// A compact description, e.g. `ℓ = crossEntropy ×1, r̂ = negativeNextLoss + r, return = monteCarlo`.
    public var summary: String {
        var parts = ["ℓ = \(loss) ×\(lossWeight)\(gatesLossOnValue ? " ×1[V_π > V_θ]" : "")"]
        parts.append("r̂ = \(pseudoReward.rawValue)\(addsReward ? " + r" : "")")
        parts.append("return = \(returnEstimate.rawValue)\(subtractsBaseline ? " − V̂_θ(s)" : "")")
        return parts.joined(separator: ", ")
    }

    /// Whether the rule has a score-function (REINFORCE) term at all.
    public var hasScoreTerm: Bool {
        returnEstimate != .monteCarlo || addsReward || pseudoReward != .none
    }
}

/// The control policy `q_θ` that generates trajectories (METHODS.md §1).
public enum ControlPolicy: Sendable, Hashable, Codable {
    /// The student `π_θ`.
    case student
    /// The teacher `π`.
    case teacher
    /// Uniform over actions.
    case uniform
    /// DAgger-style mixture `β·π + (1−β)·π_θ`.
    case mixture(beta: Double)

    /// `q_θ(a|s)` from the student's, the teacher's and the uniform probability of the action.
    @inlinable
    public func probability(student: Double, teacher: Double, uniform: Double) -> Double {
        switch self {
        case .student: student
        case .teacher: teacher
        case .uniform: uniform
        case .mixture(let beta): beta * teacher + (1 - beta) * student
        }
    }

    /// The CLI name (`student`, `teacher`, `uniform`, `mixture`).
    public var name: String {
        switch self {
        case .student: "student"
        case .teacher: "teacher"
        case .uniform: "uniform"
        case .mixture: "mixture"
        }
    }
}

/// A schedule for a coefficient over optimisation steps (kickstarting's λ, the mixture's β).
///
/// JSON: `{"constant": 0.5}`, `{"linear": {"from": 1, "to": 0, "steps": 1000}}`,
/// `{"exponential": {"initial": 1, "decay": 0.999}}`; a bare number is a constant. The form
/// Swift synthesised before (`{"constant": {"_0": 0.5}}`, `{"linear": {"start", "end", "steps"}}`)
/// is still read.
public enum Schedule: Sendable, Hashable, Codable {
    /// Always `value`.
    case constant(Double)
    /// From `start` linearly to `end` over `steps` steps, then `end`.
    case linear(start: Double, end: Double, steps: Int)
    /// `initial · decay^step`.
    case exponential(initial: Double, decay: Double)

    private enum Kind: String, CodingKey { case constant, linear, exponential }
    private enum Field: String, CodingKey { case from, to, steps, initial, decay, start, end, _0 }

    public init(from decoder: any Decoder) throws {
        if let single = try? decoder.singleValueContainer(), let value = try? single.decode(Double.self) {
            self = .constant(value)
            return
        }
        let container = try decoder.container(keyedBy: Kind.self)
        guard let kind = container.allKeys.first, container.allKeys.count == 1 else {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription:
                        "a schedule is one of {\"constant\": x}, {\"linear\": {...}}, {\"exponential\": {...}}"
                ))
        }
        switch kind {
        case .constant:
            if let value = try? container.decode(Double.self, forKey: .constant) {
                self = .constant(value)
            } else {
                let old = try container.nestedContainer(keyedBy: Field.self, forKey: .constant)
                self = .constant(try old.decode(Double.self, forKey: ._0))
            }
        case .linear:
            let fields = try container.nestedContainer(keyedBy: Field.self, forKey: .linear)
            let from =
                try fields.decodeIfPresent(Double.self, forKey: .from) ?? fields.decode(Double.self, forKey: .start)
            let to = try fields.decodeIfPresent(Double.self, forKey: .to) ?? fields.decode(Double.self, forKey: .end)
            self = .linear(start: from, end: to, steps: try fields.decode(Int.self, forKey: .steps))
        case .exponential:
            let fields = try container.nestedContainer(keyedBy: Field.self, forKey: .exponential)
            self = .exponential(
                initial: try fields.decode(Double.self, forKey: .initial),
                decay: try fields.decode(Double.self, forKey: .decay))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Kind.self)
        switch self {
        case .constant(let value): try container.encode(value, forKey: .constant)
        case .linear(let start, let end, let steps):
            var fields = container.nestedContainer(keyedBy: Field.self, forKey: .linear)
            try fields.encode(start, forKey: .from)
            try fields.encode(end, forKey: .to)
            try fields.encode(steps, forKey: .steps)
        case .exponential(let initial, let decay):
            var fields = container.nestedContainer(keyedBy: Field.self, forKey: .exponential)
            try fields.encode(initial, forKey: .initial)
            try fields.encode(decay, forKey: .decay)
        }
    }

    /// The coefficient at optimisation step `step` (0-based).
    public func value(at step: Int) -> Double {
        switch self {
        case .constant(let v): return v
        case .linear(let a, let b, let n):
            if n <= 0 || step >= n { return b }
            return a + (b - a) * Double(step) / Double(n)
        case .exponential(let a, let d): return a * Foundation.pow(d, Double(step))
        }
    }
}

/// The methods accepted by `--method`: Table 1 of the paper with their `+R` forms, and the
/// methods beyond it listed in METHODS.md §2.
public enum Method: String, Sendable, Hashable, Codable, CaseIterable {
    /// Teacher distill: `q = π`, `ℓ = H×(π‖π_θ)`, `r̂ = 0` (Table 1; Rusu et al. 2016).
    case teacherDistill = "teacher-distill"
    /// Teacher distill with Rusu's `KL(softmax(Q/τ)‖π_θ)`.
    case teacherDistillKL = "teacher-distill-kl"
    /// Teacher distill with Rusu's NLL of the teacher's greedy action.
    case teacherDistillNLL = "teacher-distill-nll"
    /// Teacher distill with Rusu's MSE between Q and logits.
    case teacherDistillMSE = "teacher-distill-mse"
    /// On-policy distill: `q = π_θ`, `ℓ = H×(π‖π_θ)`, `r̂ = 0` (Table 1; not a gradient field, Thm 1).
    case onPolicyDistill = "on-policy-distill"
    /// On-policy distill + R.
    case onPolicyDistillR = "on-policy-distill+R"
    /// Entropy regularised: `ℓ = 0`, `r̂_i = log π(a_i|s_i)` (Table 1).
    case entropyRegularised = "entropy-regularised"
    /// Entropy regularised + R.
    case entropyRegularisedR = "entropy-regularised+R"
    /// N-distill: `ℓ = H×(π‖π_θ)`, `r̂_i = −H×(π(s_{i+1})‖π_θ(s_{i+1}))` (Table 1, Thm 2).
    case nDistill = "n-distill"
    /// N-distill + R.
    case nDistillR = "n-distill+R"
    /// Exp. entropy regularised: `ℓ = H×(π_θ‖π)`, `r̂_i = log π(a_{i+1}|s_{i+1})` (Table 1, Sec. 3.3).
    case expEntropyRegularised = "exp-entropy-regularised"
    /// Exp. entropy regularised + R.
    case expEntropyRegularisedR = "exp-entropy-regularised+R"
    /// Teacher V reward: `r̂_i = r_i + γV_π(s_{i+1}) − V_π(s_i)` (Sec. 4.2).
    case teacherVReward = "teacher-v-reward"
    /// Kickstarting (Schmitt et al. 2018): on-policy distill + R with ℓ weighted by λ_k.
    case kickstarting
    /// On-policy distill + R + V cond. (Prop. 2): `ℓ = H×(π‖π_θ)·1[V_π(s) > V_{π_θ}(s)]`.
    case vGated = "v-gated"
    /// TD + V_π (Sec. 4.1): `∇log π_θ(a_t|s_t)(r_t + γV_π(s_{t+1}) − b(s_t))`.
    case tdTeacherV = "td-teacher-v"
    /// TD + V_0 (Sec. 4.1): `∇log π_θ(a_t|s_t)(r_t − b(s_t))`.
    case tdZeroV = "td-zero-v"
    /// KL-regularised RL toward the teacher: `r̂_i = log π(a_i|s_i) − log π_θ(a_i|s_i)` (Fig. 5).
    case klRegularised = "kl-regularised"
    /// KL-regularised + R.
    case klRegularisedR = "kl-regularised+R"
    /// Plain policy gradient on `r` with a student-critic baseline, no teacher (MC returns).
    case baseline
    /// Actor-critic with TD(1) returns `r_t + γV̂_{π_θ}(s_{t+1})` and a critic baseline, no teacher.
    case actorCritic = "actor-critic"

    /// The update rule of the method (with the default cross-entropy distillation loss; see
    /// ``rule(distillationLoss:rusuTemperature:)`` for fig2's agreement loss and Rusu's τ).
    public var rule: UpdateRule { rule() }

    /// The update rule, with `distillationLoss` replacing `H×(π‖π_θ)` where the method uses it.
    public func rule(distillationLoss: DistillationLoss = .crossEntropy, rusuTemperature: Double = 0.01) -> UpdateRule {
        let d = distillationLoss
        switch self {
        case .teacherDistill: return UpdateRule(loss: d)
        case .teacherDistillKL: return UpdateRule(loss: .rusuKL(temperature: rusuTemperature))
        case .teacherDistillNLL: return UpdateRule(loss: .rusuNLL)
        case .teacherDistillMSE: return UpdateRule(loss: .rusuMSE)
        case .onPolicyDistill: return UpdateRule(loss: d)
        case .onPolicyDistillR, .kickstarting: return UpdateRule(loss: d, addsReward: true)
        case .entropyRegularised: return UpdateRule(pseudoReward: .teacherLogProbability)
        case .entropyRegularisedR: return UpdateRule(pseudoReward: .teacherLogProbability, addsReward: true)
        case .nDistill: return UpdateRule(loss: d, pseudoReward: .negativeNextLoss)
        case .nDistillR: return UpdateRule(loss: d, pseudoReward: .negativeNextLoss, addsReward: true)
        case .expEntropyRegularised:
            return UpdateRule(loss: .reverseCrossEntropy, pseudoReward: .nextTeacherLogProbability)
        case .expEntropyRegularisedR:
            return UpdateRule(loss: .reverseCrossEntropy, pseudoReward: .nextTeacherLogProbability, addsReward: true)
        case .teacherVReward: return UpdateRule(pseudoReward: .teacherValueShaping, addsReward: true)
        case .vGated: return UpdateRule(loss: d, gatesLossOnValue: true, addsReward: true)
        case .tdTeacherV: return UpdateRule(addsReward: true, returnEstimate: .bootstrapTeacherValue)
        case .tdZeroV: return UpdateRule(addsReward: true, returnEstimate: .bootstrapZero)
        case .klRegularised: return UpdateRule(pseudoReward: .klRegularised)
        case .klRegularisedR: return UpdateRule(pseudoReward: .klRegularised, addsReward: true)
        case .baseline: return UpdateRule(addsReward: true, subtractsBaseline: true)
        case .actorCritic:
            return UpdateRule(addsReward: true, returnEstimate: .bootstrapStudentValue, subtractsBaseline: true)
        }
    }

    /// The control policy of Table 1: the teacher for teacher distillation, the student otherwise.
    public var defaultControl: ControlPolicy {
        switch self {
        case .teacherDistill, .teacherDistillKL, .teacherDistillNLL, .teacherDistillMSE: .teacher
        default: .student
        }
    }

    /// Table 1's "is ∇?" column where the paper states it (nil where it does not).
    public var isGradientFieldPerPaper: Bool? {
        switch self {
        case .teacherDistill, .entropyRegularised, .entropyRegularisedR, .nDistill, .nDistillR, .expEntropyRegularised,
            .expEntropyRegularisedR, .teacherVReward:
            true
        case .onPolicyDistill, .onPolicyDistillR: false
        default: nil
        }
    }
}

/// Kickstarting with several teachers (Schmitt et al. 2018). Because `H×(p‖q)` is linear in `p`,
/// `Σ_k λ_k H×(π_k‖π_θ) = Λ·H×(π̄‖π_θ)` with `Λ = Σ_k λ_k` and `π̄ = Σ_k λ_k π_k / Λ`: several
/// teachers are exactly one mixture teacher with loss weight `Λ`.
public enum Kickstarting {
    /// The teacher and rule of one optimisation step: with further teachers, the mixture of the main
    /// teacher (weight `rule.lossWeight`, its λ) and the others (their λ), and the rule's λ replaced
    /// by `Λ`. Without further teachers, the inputs unchanged.
    public static func apply(
        _ rule: UpdateRule, teacher: Teacher, further: [Teacher], weights: [Double]
    ) -> (teacher: Teacher, rule: UpdateRule) {
        guard !further.isEmpty else { return (teacher, rule) }
        precondition(rule.loss == .crossEntropy, "several kickstarting teachers need the cross-entropy loss")
        let (mixed, total) = combine([teacher] + further, weights: [rule.lossWeight] + weights)
        var r = rule
        r.lossWeight = total
        return (mixed, r)
    }

    /// The mixture teacher `π̄` (values mixed the same way) and the total weight `Λ`.
    public static func combine(_ teachers: [Teacher], weights: [Double]) -> (teacher: Teacher, lossWeight: Double) {
        precondition(!teachers.isEmpty && teachers.count == weights.count, "need one weight per teacher")
        precondition(weights.allSatisfy { $0 >= 0 }, "kickstarting weights must be non-negative")
        let total = weights.reduce(0, +)
        let first = teachers[0]
        guard total > 0 else { return (first, 0) }
        var p = [Double](repeating: 0, count: first.probabilities.count)
        var v = [Double](repeating: 0, count: first.stateCount)
        for (t, w) in zip(teachers, weights) {
            precondition(t.probabilities.count == p.count, "kickstarting teachers must share the MDP")
            for i in 0..<p.count { p[i] += w / total * t.probabilities[i] }
            for i in 0..<v.count { v[i] += w / total * t.values[i] }
        }
        let name = zip(teachers, weights).map { "\($1)×\($0.identity)" }.joined(separator: "+")
        return (
            Teacher(
                identity: "kickstart(\(name))", stateCount: first.stateCount, actionCount: first.actionCount,
                probabilities: p, values: v), total
        )
    }
}
