import DistillCore
import Testing

/// The one-step bootstrapped return (the TD(1) student of Fig. 5) against its definition: with the
/// true value of the Monte-Carlo pseudo-return as the critic, bootstrapping must change nothing in
/// expectation, `E[x_t + y_{t+1} + γV(s_{t+1}) | s_t, a_t] = E[Ĝ_t | s_t, a_t]`.
@Suite struct BootstrappedReturnTests {
    /// `V(s) = Σ_a q(a|s) Σ_s' P(s'|s,a) [r + ȳ(s') + γV(s')]` with `ȳ(s') = Σ_a' q(a'|s') log π(a'|s')`:
    /// exp-entropy-regularised+R's pseudo-return (Table 1: r̂_i = log π(a_{i+1}|s_{i+1}), plus R),
    /// computed from the MDP's tables, not from the update code.
    static func expEntropyPseudoValue(_ problem: RandomProblem) throws -> [Double] {
        let mdp = problem.mdp
        let n = mdp.stateCount
        let na = mdp.actionCount
        let q = problem.student.policyTable()
        var yBar = [Double](repeating: 0, count: n)
        for s in 0..<n where !mdp.isTerminal[s] {
            for a in 0..<na { yBar[s] += q[s * na + a] * problem.teacher.logProbabilities[s * na + a] }
        }
        var signal = [Double](repeating: 0, count: n)
        for s in 0..<n where !mdp.isTerminal[s] {
            for a in 0..<na {
                let i = s * na + a
                for k in Int(mdp.outcomeOffsets[i])..<Int(mdp.outcomeOffsets[i + 1]) {
                    signal[s] +=
                        q[i] * mdp.outcomeProbability[k] * (mdp.outcomeReward[k] + yBar[Int(mdp.outcomeNext[k])])
                }
            }
        }
        return try PolicyEvaluation.discountedSum(mdp, policy: q, perStateSignal: signal)
    }

    @Test(arguments: [Method.expEntropyRegularisedR, .onPolicyDistillR, .entropyRegularisedR])
    func bootstrappingFromTheTrueValueLeavesTheExpectedUpdateUnchanged(method: Method) throws {
        for (seed, discount) in [(UInt64(31), 1.0), (32, 0.9)] {
            let problem = try RandomProblem(seed: seed, discount: discount)
            let monteCarlo = method.rule
            var bootstrapped = monteCarlo
            bootstrapped.returnEstimate = .bootstrapStudentValue
            var context = UpdateContext(discount: discount, control: method.defaultControl)
            let mc = try ExactUpdate.expectedUpdate(
                problem.mdp, teacher: problem.teacher, parameters: problem.student, rule: monteCarlo, context: context)
            context.studentValues =
                method == .expEntropyRegularisedR
                ? try Self.expEntropyPseudoValue(problem)
                : try Self.ownStepPseudoValue(problem, rule: monteCarlo, control: method.defaultControl)
            let td = try ExactUpdate.expectedUpdate(
                problem.mdp, teacher: problem.teacher, parameters: problem.student, rule: bootstrapped,
                context: context)
            let scale = mc.map(abs).max() ?? 1
            let gap = zip(mc, td).map { abs($0 - $1) }.max() ?? 0
            #expect(gap <= 1e-9 * max(scale, 1), "\(method.rawValue) γ = \(discount): max gap \(gap), scale \(scale)")
        }
    }

    /// The sampled TD(1) estimator matches its exact expectation (with the next-action term).
    @Test func sampledBootstrappedExpEntropyMatchesItsExpectation() throws {
        let problem = try RandomProblem(seed: 33, discount: 0.9)
        var rule = Method.expEntropyRegularisedR.rule
        rule.returnEstimate = .bootstrapStudentValue
        var context = UpdateContext(discount: 0.9, control: .student)
        context.studentValues = try Self.expEntropyPseudoValue(problem)
        let exact = try ExactUpdate.expectedUpdate(
            problem.mdp, teacher: problem.teacher, parameters: problem.student, rule: rule, context: context)
        let m = EstimatorTests.sampled(problem, rule: rule, context: context, behaviourPolicy: nil, seed: 3301)
        let bad = outsideConfidenceBand(mean: m.mean, standardError: m.standardError, exact: exact)
        #expect(bad.isEmpty, "\(bad)")
    }

    /// For rules whose pseudo-reward is all in the own step (`y ≡ 0`), the value of the pseudo-return
    /// under the control policy, from the same tables: `V = Σ_a q Σ_s' P [x(s,a,s') + γV(s')]`, where
    /// x is the rule's own-step reward (environment reward, plus log π(a|s) for entropy-regularised).
    static func ownStepPseudoValue(
        _ problem: RandomProblem, rule: UpdateRule, control: ControlPolicy
    ) throws
        -> [Double]
    {
        let mdp = problem.mdp
        let n = mdp.stateCount
        let na = mdp.actionCount
        let q = problem.student.policyTable()
        precondition(control == .student, "the helper evaluates under the student")
        var signal = [Double](repeating: 0, count: n)
        for s in 0..<n where !mdp.isTerminal[s] {
            for a in 0..<na {
                let i = s * na + a
                let own = rule.pseudoReward == .teacherLogProbability ? problem.teacher.logProbabilities[i] : 0
                for k in Int(mdp.outcomeOffsets[i])..<Int(mdp.outcomeOffsets[i + 1]) {
                    signal[s] += q[i] * mdp.outcomeProbability[k] * (mdp.outcomeReward[k] + own)
                }
            }
        }
        return try PolicyEvaluation.discountedSum(mdp, policy: q, perStateSignal: signal)
    }
}
