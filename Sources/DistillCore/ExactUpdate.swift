/// Exact expectations for tabular MDPs (METHODS.md §4).
public enum ExactUpdate {
    /// The control policy's table `q_θ(a|s)` over all states.
    public static func controlTable(_ control: ControlPolicy, policy: StudentPolicy, teacher: Teacher) -> [Double] {
        let student = policy.stateTable()
        let uniform = 1 / Double(policy.actionCount)
        return (0..<student.count).map {
            control.probability(student: student[$0], teacher: teacher.probabilities[$0], uniform: uniform)
        }
    }

    /// The exact expected update of one episode, `E[Σ_t (−w ∇ℓ(s_t) + ρ_t ∇log π_θ(a_t|s_t)(Ĝ_t − b(s_t)))]`:
    ///
    ///     Σ_s d_μ(s) [ Σ_a q(a|s) ∇log π_θ(a|s) (Q̂(s,a) − b(s)) − w(s) ∇ℓ(s) ],
    ///     d_μ = ρ0ᵀ(I − P_μ)⁻¹,  Q̂(s,a) = x̄(s,a) + Σ_{s'} P(s'|s,a) (ȳ(s') + γ V̂(s')),  V̂ = Σ_a q Q̂,
    ///
    /// with `x` and `y` the pseudo-reward parts of ``ownStepReward(_:_:slot:nextSlot:nextIsLive:action:reward:policy:row:nextRow:discount:)``
    /// and `ȳ(s') = Σ_a q(a|s') y(s',a)` (exp. entropy's next-action term taken in expectation).
    /// `behaviour` (default: the control policy) sets the state distribution: it is the exact
    /// expectation of the sampled estimator with importance weights that do not clip. Student
    /// values for gates, baselines and TD bootstraps default to the exact `V_{π_θ}`.
    public static func expectedUpdate(
        _ mdp: TabularMDP, teacher: Teacher, parameters: StudentParameters, rule: UpdateRule, context: UpdateContext,
        behaviour: [Double]? = nil
    ) throws -> [Double] {
        let na = mdp.actionCount
        let n = mdp.stateCount
        precondition(parameters.stateCount == n && parameters.actionCount == na, "student shape does not match the MDP")
        precondition(teacher.stateCount == n && teacher.actionCount == na, "teacher shape does not match the MDP")
        if rule.loss.needsActionValues && teacher.actionValues == nil {
            throw DistillError(
                .invalidConfiguration, "loss \(rule.loss) needs teacher Q-values; teacher \(teacher.identity) has none")
        }
        let policy = StudentPolicy(parameters)
        let q = controlTable(context.control, policy: policy, teacher: teacher)
        let mu = behaviour ?? q
        precondition(mu.count == n * na, "behaviour table has the wrong size")
        let d = try PolicyEvaluation.visits(mdp, policy: mu)
        var studentValues = context.studentValues
        if rule.needsStudentValues && studentValues == nil {
            studentValues = try PolicyEvaluation.values(mdp, policy: policy.stateTable())
        }
        let sv = studentValues ?? []
        let o = TabularTeacherOutputs(teacher)
        let gamma = context.discount
        func row(_ s: Int) -> Int { Int(policy.rowOfState[s]) }

        // x̄(s,a): expected own-step pseudo-reward; ȳ(s): expected next-action part.
        var xBar = [Double](repeating: 0, count: n * na)
        var yBar = [Double](repeating: 0, count: n)
        for s in 0..<n where !mdp.isTerminal[s] {
            if rule.pseudoReward == .nextTeacherLogProbability {
                for a in 0..<na { yBar[s] += q[s * na + a] * teacher.logProbabilities[s * na + a] }
            }
            for a in 0..<na {
                let i = s * na + a
                var total = 0.0
                for k in Int(mdp.outcomeOffsets[i])..<Int(mdp.outcomeOffsets[i + 1]) {
                    let next = Int(mdp.outcomeNext[k])
                    total +=
                        mdp.outcomeProbability[k]
                        * ownStepReward(
                            rule, o, slot: s, nextSlot: next, nextIsLive: !mdp.isTerminal[next], action: a,
                            reward: mdp.outcomeReward[k], policy: policy, row: row(s), nextRow: row(next),
                            discount: gamma)
                }
                xBar[i] = total
            }
        }
        // Q̂(s,a).
        var qHat = [Double](repeating: 0, count: n * na)
        var continuation = [Double](repeating: 0, count: n)  // what follows arriving in s'
        switch rule.returnEstimate {
        case .monteCarlo:
            var signal = [Double](repeating: 0, count: n)
            for s in 0..<n where !mdp.isTerminal[s] {
                for a in 0..<na {
                    let i = s * na + a
                    var next = xBar[i]
                    for k in Int(mdp.outcomeOffsets[i])..<Int(mdp.outcomeOffsets[i + 1]) {
                        next += mdp.outcomeProbability[k] * yBar[Int(mdp.outcomeNext[k])]
                    }
                    signal[s] += q[i] * next
                }
            }
            let vHat = try PolicyEvaluation.discountedSum(mdp, policy: q, perStateSignal: signal)
            for s in 0..<n where !mdp.isTerminal[s] { continuation[s] = yBar[s] + gamma * vHat[s] }
        case .bootstrapTeacherValue:
            for s in 0..<n where !mdp.isTerminal[s] { continuation[s] = yBar[s] + gamma * teacher.values[s] }
        case .bootstrapStudentValue:
            for s in 0..<n where !mdp.isTerminal[s] { continuation[s] = yBar[s] + gamma * sv[s] }
        case .bootstrapZero:
            continuation = yBar
        }
        for s in 0..<n where !mdp.isTerminal[s] {
            for a in 0..<na {
                let i = s * na + a
                var total = xBar[i]
                for k in Int(mdp.outcomeOffsets[i])..<Int(mdp.outcomeOffsets[i + 1]) {
                    total += mdp.outcomeProbability[k] * continuation[Int(mdp.outcomeNext[k])]
                }
                qHat[i] = total
            }
        }
        var acc = UpdateAccumulator(rowCount: parameters.rowCount, actionCount: na)
        for s in 0..<n where !mdp.isTerminal[s] && d[s] != 0 {
            let r = row(s)
            if rule.hasScoreTerm {
                let b = rule.subtractsBaseline ? sv[s] : 0
                for a in 0..<na where q[s * na + a] != 0 {
                    acc.addScore(row: r, action: a, weight: d[s] * q[s * na + a] * (qHat[s * na + a] - b))
                }
            }
            if rule.loss != .none {
                let w = stepLossWeight(rule, o, slot: s, studentValue: rule.gatesLossOnValue ? sv[s] : nil)
                if w != 0 {
                    LossKernel.addNegativeGradient(
                        rule.loss, o, slot: s, policy: policy, row: r, weight: d[s] * w, into: &acc)
                }
            }
        }
        return acc.finish(policy: policy, perEpisode: false)
    }
}

/// The gradient-field check of METHODS.md §4: the Jacobian `J` of an update field is symmetric
/// iff the field is (locally) a gradient.
public enum GradientField {
    /// `J[i][j] = ∂f_i/∂θ_j` by central differences with step `h`, row-major `n × n`.
    public static func jacobian(
        at theta: [Double], step h: Double = 1e-5, _ f: ([Double]) throws -> [Double]
    ) rethrows
        -> [Double]
    {
        let n = theta.count
        var j = [Double](repeating: 0, count: n * n)
        var point = theta
        for c in 0..<n {
            point[c] = theta[c] + h
            let plus = try f(point)
            point[c] = theta[c] - h
            let minus = try f(point)
            point[c] = theta[c]
            precondition(plus.count == n, "field must map n parameters to n components")
            for r in 0..<n { j[r * n + c] = (plus[r] - minus[r]) / (2 * h) }
        }
        return j
    }

    /// `‖J − Jᵀ‖_F / ‖J‖_F` (0 for a zero Jacobian).
    public static func asymmetry(_ j: [Double], size n: Int) -> Double {
        var diff = 0.0
        var norm = 0.0
        for r in 0..<n {
            for c in 0..<n {
                let x = j[r * n + c]
                let y = j[c * n + r]
                diff += (x - y) * (x - y)
                norm += x * x
            }
        }
        return norm == 0 ? 0 : (diff / norm).squareRoot()
    }

    /// The asymmetry of the exact expected update's Jacobian at `parameters`.
    public static func expectedUpdateAsymmetry(
        _ mdp: TabularMDP, teacher: Teacher, parameters: StudentParameters, rule: UpdateRule, context: UpdateContext,
        step h: Double = 1e-5
    ) throws -> Double {
        let j = try jacobian(at: parameters.logits, step: h) { theta in
            var p = parameters
            p.logits = theta
            return try ExactUpdate.expectedUpdate(mdp, teacher: teacher, parameters: p, rule: rule, context: context)
        }
        return asymmetry(j, size: parameters.logits.count)
    }
}

/// Exact metrics of a student (METHODS.md §4, Fig. 3 and Fig. 5 columns).
public struct ExactMetrics: Sendable, Hashable, Codable {
    /// Expected discounted return of `π_θ` from `ρ0`.
    public var studentReturn: Double
    /// `E_{π_θ}[Σ_t H×(π(s_t)‖π_θ(s_t))]`.
    public var crossEntropyUnderStudent: Double
    /// `E_π[Σ_t H×(π(s_t)‖π_θ(s_t))]` (∞ when the teacher's episodes need not end).
    public var crossEntropyUnderTeacher: Double
    /// `E_uniform[Σ_t H×(π(s_t)‖π_θ(s_t))]`.
    public var crossEntropyUnderUniform: Double

    /// Computes all four by policy evaluation; the teacher must be a distribution in every state.
    public init(_ mdp: TabularMDP, teacher: Teacher, parameters: StudentParameters) throws {
        let policy = StudentPolicy(parameters)
        let student = policy.stateTable()
        studentReturn = try PolicyEvaluation.expectedReturn(mdp, policy: student)
        let o = TabularTeacherOutputs(teacher)
        let h = (0..<mdp.stateCount).map { s in
            mdp.isTerminal[s]
                ? 0 : LossKernel.value(.crossEntropy, o, slot: s, policy: policy, row: Int(policy.rowOfState[s]))
        }
        func expected(_ z: [Double]) throws -> Double {
            let d = try PolicyEvaluation.visits(mdp, policy: z)
            return zip(d, h).reduce(0) { $0 + $1.0 * $1.1 }
        }
        // A teacher (or, with γ = 1, any policy) may loop forever: its expected sum is then infinite.
        func orInfinity(_ z: [Double]) throws -> Double {
            do {
                return try expected(z)
            } catch let error as DistillError where error.code == .singularSystem {
                return .infinity
            }
        }
        crossEntropyUnderStudent = try orInfinity(student)
        crossEntropyUnderTeacher = try orInfinity(teacher.probabilities)
        crossEntropyUnderUniform = try orInfinity(
            [Double](repeating: 1 / Double(mdp.actionCount), count: student.count))
    }
}

/// Monte-Carlo estimates of the quantities of ``ExactMetrics`` from `episodes` rollouts under each
/// policy z (the sampled equivalents; each field is a mean over episodes).
public struct SampledMetrics: Sendable, Hashable, Codable {
    /// Mean discounted return of the student's episodes.
    public var studentReturn: Double
    /// Mean `Σ_t H×(π(s_t)‖π_θ(s_t))` over the student's episodes.
    public var crossEntropyUnderStudent: Double
    /// The same over the teacher's episodes.
    public var crossEntropyUnderTeacher: Double
    /// The same over uniform episodes.
    public var crossEntropyUnderUniform: Double

    /// Rolls out `episodes` episodes under the student, the teacher and the uniform policy.
    public init(
        _ mdp: TabularMDP, teacher: Teacher, parameters: StudentParameters, episodes: Int, maxSteps: Int = 10_000,
        rng: inout Xoshiro256StarStar
    ) {
        precondition(episodes > 0, "need at least one episode")
        let policy = StudentPolicy(parameters)
        let o = TabularTeacherOutputs(teacher)
        var buffer = EpisodeBuffer()
        func run(_ control: ControlPolicy) -> (ret: Double, h: Double) {
            var ret = 0.0
            var h = 0.0
            for _ in 0..<episodes {
                collectEpisode(
                    mdp, policy: policy, teacher: teacher, control: control, maxSteps: maxSteps, rng: &rng,
                    into: &buffer)
                var discount = 1.0
                for t in 0..<buffer.length {
                    ret += discount * buffer.reward(t)
                    discount *= mdp.discount
                    let s = Int(buffer.state(t))
                    h += LossKernel.value(.crossEntropy, o, slot: s, policy: policy, row: Int(policy.rowOfState[s]))
                }
            }
            return (ret / Double(episodes), h / Double(episodes))
        }
        let student = run(.student)
        studentReturn = student.ret
        crossEntropyUnderStudent = student.h
        crossEntropyUnderTeacher = run(.teacher).h
        crossEntropyUnderUniform = run(.uniform).h
    }
}
