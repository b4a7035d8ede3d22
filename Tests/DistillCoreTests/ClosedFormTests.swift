import DistillCore
import Foundation
import Testing

/// Closed forms: derivatives, V-trace by hand, dynamic programming.
@Suite struct ClosedFormTests {
    @Test func crossEntropyGradientWithRespectToLogitsIsStudentMinusTeacher() throws {
        let problem = try RandomProblem(seed: 7)
        let o = TabularTeacherOutputs(problem.teacher)
        for s in 0..<4 {
            var acc = UpdateAccumulator(rowCount: problem.student.rowCount, actionCount: 3)
            let policy = StudentPolicy(problem.student)
            LossKernel.addNegativeGradient(.crossEntropy, o, slot: s, policy: policy, row: s, weight: 1, into: &acc)
            let negative = acc.finish(policy: policy, perEpisode: false)
            let pi = problem.teacher.probabilities(state: s)
            let piTheta = problem.student.probabilities(state: s)
            for a in 0..<3 {
                // ∂H×/∂z = π_θ − π, so the accumulated −∂ℓ/∂z is π − π_θ.
                #expect(abs(-negative[s * 3 + a] - (piTheta[a] - pi[a])) < 1e-12)
            }
        }
    }

    @Test(arguments: [
        DistillationLoss.crossEntropy, .reverseCrossEntropy, .agreement(scale: 4), .rusuKL(temperature: 0.7), .rusuMSE,
    ])
    func lossGradientsMatchCentralDifferences(loss: DistillationLoss) throws {
        let problem = try RandomProblem(seed: 8)
        let o = TabularTeacherOutputs(problem.teacher)
        let s = 2
        var acc = UpdateAccumulator(rowCount: problem.student.rowCount, actionCount: 3)
        LossKernel.addNegativeGradient(
            loss, o, slot: s, policy: StudentPolicy(problem.student), row: s, weight: 1, into: &acc)
        let analytic = acc.finish(policy: StudentPolicy(problem.student), perEpisode: false)
        for a in 0..<3 {
            let h = 1e-5
            var plus = problem.student
            plus.logits[s * 3 + a] += h
            var minus = problem.student
            minus.logits[s * 3 + a] -= h
            let fd =
                (LossKernel.value(loss, o, slot: s, policy: StudentPolicy(plus), row: s)
                    - LossKernel.value(loss, o, slot: s, policy: StudentPolicy(minus), row: s)) / (2 * h)
            #expect(
                abs(-analytic[s * 3 + a] - fd) < 1e-7, "\(loss) action \(a): analytic \(-analytic[s * 3 + a]) vs \(fd)")
        }
    }

    @Test func vTraceCorrectedReturnsOnAHandWorkedExample() {
        // Steps with ratios q/μ = 0.625, 2, 1 and ρ̄ = c̄ = 1: c = (0.625, 1, 1), γ = 0.5, r = (1, 2, 4).
        // Ĝ2 = 4; Ĝ1 = 2 + c2·γ·Ĝ2 = 4; Ĝ0 = 1 + c1·γ·Ĝ1 = 1 + 1·0.5·4 = 3.
        let w = [(0.5, 0.8), (0.5, 0.25), (0.5, 0.5)].map {
            VTrace.weights(target: $0.0, behaviour: $0.1, clipping: .init())
        }
        #expect(w.map(\.rho) == [0.625, 1, 1])
        #expect(w.map(\.c) == [0.625, 1, 1])
        let g = VTrace.correctedReturns(own: [1, 2, 4], nextAction: [0, 0, 0], traces: w.map(\.c), discount: 0.5)
        #expect(g == [3, 4, 4])
        let wide = VTrace.weights(target: 0.5, behaviour: 0.25, clipping: .init(rhoBar: 10, cBar: 10, lambda: 0.5))
        #expect(wide.rho == 2 && wide.c == 1)
    }

    @Test func clippedSampledUpdateOnAHandWorkedTrajectory() {
        // Uniform two-action student on states 0, 1; state 2 terminal. Trajectory:
        // (s0, a0=0, r=1, μ=0.8), (s1, a1=1, r=2, μ=0.25), (s0, a2=1, r=4, μ=0.5), end in s2; γ = 0.5.
        let trajectory = Trajectory(
            actionCount: 2, observations: [0, 1, 0, 2], actions: [0, 1, 1], rewards: [1, 2, 4],
            behaviourProbabilities: [0.8, 0.25, 0.5],
            teacherProbabilities: [Double](repeating: 0.5, count: 8), teacherValues: [0, 0, 0, 0], end: .terminated)
        let student = StudentParameters(stateCount: 3, actionCount: 2)
        let policy = StudentPolicy(student)
        let rule = UpdateRule(addsReward: true)
        func update(_ clipping: VTraceClipping) -> [Double] {
            var acc = UpdateAccumulator(rowCount: 3, actionCount: 2)
            accumulateSampledUpdate(
                trajectory: trajectory, policy: policy, rule: rule,
                context: UpdateContext(discount: 0.5, control: .student, clipping: clipping), into: &acc)
            return acc.finish(policy: policy)
        }
        // ρ̄ = c̄ = 1: Ĝ = (3, 4, 4), ρ = (0.625, 1, 1). Row 0: 0.625·3·(½, −½) + 4·(−½, ½); row 1: 4·(−½, ½).
        let clipped = update(.init())
        #expect(zip(clipped, [-1.0625, 1.0625, -2, 2, 0, 0]).allSatisfy { abs($0 - $1) < 1e-12 }, "\(clipped)")
        // ρ̄ = c̄ = 10 (no clipping): c1 = ρ1 = 2, Ĝ0 = 1 + 2·0.5·4 = 5. Row 0: 0.625·5·(½, −½) + 4·(−½, ½); row 1: 8·(−½, ½).
        let unclipped = update(.init(rhoBar: 10, cBar: 10))
        #expect(zip(unclipped, [-0.4375, 0.4375, -4, 4, 0, 0]).allSatisfy { abs($0 - $1) < 1e-12 }, "\(unclipped)")
    }

    @Test func valueIterationIsOptimalOnTheChain() throws {
        let env = try Environments.chain(halfLength: 5, discount: 0.99)
        let teacher = try Teachers.optimal(env.mdp)
        for s in 1..<10 {
            // Optimal: always R; from cell s the +1 is entered after 10 − s moves.
            #expect(teacher.probabilities(state: s) == [0, 1])
            #expect(abs(teacher.values[s] - pow(0.99, Double(10 - s - 1))) < 1e-9)
        }
        #expect(abs(try PolicyEvaluation.expectedReturn(env.mdp, policy: teacher.probabilities) - pow(0.99, 4)) < 1e-9)
        let adversarial = try Teachers.adversarial(env.mdp)
        #expect(adversarial.probabilities(state: 5) == [1, 0])
        #expect(adversarial.values == teacher.values)
    }

    @Test func policyEvaluationAgreesWithMonteCarlo() throws {
        let problem = try RandomProblem(seed: 9, discount: 0.95)
        let exact = try PolicyEvaluation.values(problem.mdp, policy: problem.teacher.probabilities)
        var rng = Xoshiro256StarStar(seed: 4)
        let n = 20_000
        let mc = PolicyEvaluation.monteCarloValues(
            problem.mdp, policy: problem.teacher.probabilities, rollouts: n, rng: &rng)
        // Returns here are bounded by |r| ≤ 1 over a geometric number of steps: their std is
        // below 3, so the 99.9 % band (Bonferroni over 4 states) is 3.9·3/√n.
        for s in 0..<4 {
            #expect(abs(mc[s] - exact[s]) < 3.9 * 3 / Double(n).squareRoot(), "state \(s): \(mc[s]) vs \(exact[s])")
        }
    }

    @Test func exactMetricsMatchTheirDefinitionsOnFig2() throws {
        // Student uniform on fig2: return = ½(−1.5) + ½(−1.5) = −1.5 (γ = 1).
        let env = Environments.fig2()
        let teacher = try Teachers.uniform(env.mdp)
        let metrics = try ExactMetrics(
            env.mdp, teacher: teacher, parameters: StudentParameters(stateCount: 4, actionCount: 2))
        #expect(abs(metrics.studentReturn + 1.5) < 1e-12)
        // Two decisions per episode, each with H×(uniform‖uniform) = log 2.
        #expect(abs(metrics.crossEntropyUnderStudent - 2 * log(2)) < 1e-12)
        #expect(abs(metrics.crossEntropyUnderUniform - 2 * log(2)) < 1e-12)
    }

    @Test func kickstartingWithSeveralTeachersEqualsOneMixtureTeacher() throws {
        let a = try RandomProblem(seed: 51)
        let b = try RandomProblem(seed: 52)
        let teacherB = Teacher(
            identity: "b", stateCount: 5, actionCount: 3, probabilities: b.teacher.probabilities,
            values: b.teacher.values)
        let (mixed, total) = Kickstarting.combine([a.teacher, teacherB], weights: [0.3, 0.9])
        let policy = StudentPolicy(a.student)
        var separate = UpdateAccumulator(rowCount: 5, actionCount: 3)
        var combined = separate
        for s in 0..<4 {
            LossKernel.addNegativeGradient(
                .crossEntropy, TabularTeacherOutputs(a.teacher), slot: s, policy: policy, row: s, weight: 0.3,
                into: &separate)
            LossKernel.addNegativeGradient(
                .crossEntropy, TabularTeacherOutputs(teacherB), slot: s, policy: policy, row: s, weight: 0.9,
                into: &separate)
            LossKernel.addNegativeGradient(
                .crossEntropy, TabularTeacherOutputs(mixed), slot: s, policy: policy, row: s, weight: total,
                into: &combined)
        }
        let x = separate.finish(policy: policy)
        let y = combined.finish(policy: policy)
        #expect(zip(x, y).allSatisfy { abs($0 - $1) < 1e-12 })
    }

    @Test func schedulesFollowTheirFormulas() {
        #expect(Schedule.constant(0.5).value(at: 100) == 0.5)
        #expect(Schedule.linear(start: 1, end: 0, steps: 10).value(at: 5) == 0.5)
        #expect(Schedule.linear(start: 1, end: 0, steps: 10).value(at: 50) == 0)
        #expect(abs(Schedule.exponential(initial: 2, decay: 0.5).value(at: 3) - 0.25) < 1e-15)
    }
}

/// Sampled metrics estimate the exact ones.
@Suite struct MetricTests {
    @Test func sampledMetricsAgreeWithExactMetrics() throws {
        let problem = try RandomProblem(seed: 61, discount: 0.9)
        let exact = try ExactMetrics(problem.mdp, teacher: problem.teacher, parameters: problem.student)
        var rng = Xoshiro256StarStar(seed: 8)
        let n = 40_000
        let sampled = SampledMetrics(
            problem.mdp, teacher: problem.teacher, parameters: problem.student, episodes: n, rng: &rng)
        // Per-episode sums here have standard deviation below 4 (short episodes, |r| ≤ 1, H× ≤ 3):
        // a 4.5σ band (Bonferroni over 4 quantities at 99.9 %) is 4.5·4/√n.
        let band = 4.5 * 4 / Double(n).squareRoot()
        #expect(abs(sampled.studentReturn - exact.studentReturn) < band)
        #expect(abs(sampled.crossEntropyUnderStudent - exact.crossEntropyUnderStudent) < band)
        #expect(abs(sampled.crossEntropyUnderTeacher - exact.crossEntropyUnderTeacher) < band)
        #expect(abs(sampled.crossEntropyUnderUniform - exact.crossEntropyUnderUniform) < band)
    }
}

/// The expected updates of Fig. 2 against their derivation by hand (Appendix C setting).
@Suite struct Fig2ClosedFormTests {
    // With p = π(R|s0), u = π(R|sL) = π(R|sR): J = (1−p)(−1−u) + p(−3u), and the loss is
    // ℓ(sR) = −4u, reached with probability p. For a two-logit row, ∂/∂z_R = −∂/∂z_L.
    //   on-policy-distill+R: ∂J/∂p·p(1−p) = p(1−p)(1−2u);  (∂J/∂u + 4p)·u(1−u) = u(1−u)(2p−1)
    //   n-distill+R adds ∂(4pu)/∂p = 4u for s0:          p(1−p)(1+2u);  u(1−u)(2p−1)
    @Test(arguments: [(Method.onPolicyDistillR, false), (.nDistillR, true)])
    func fig2ExpectedUpdateMatchesTheSigmoidDerivation(method: Method, corrected: Bool) throws {
        let env = Environments.fig2()
        let (p, u) = (0.3, 0.6)
        var student = StudentParameters(rowOfState: env.tiedRows!, rowCount: 2, actionCount: 2)
        student.setRow(0, probabilities: [1 - p, p])
        student.setRow(1, probabilities: [1 - u, u])
        let update = try ExactUpdate.expectedUpdate(
            env.mdp, teacher: Teachers.fig2(), parameters: student,
            rule: method.rule(distillationLoss: .agreement(scale: 4)),
            context: UpdateContext(discount: 1, control: .student))
        let s0 = p * (1 - p) * (corrected ? 1 + 2 * u : 1 - 2 * u)
        let shared = u * (1 - u) * (2 * p - 1)
        let expected = [-s0, s0, -shared, shared]
        #expect(zip(update, expected).allSatisfy { abs($0 - $1) < 1e-12 }, "\(update) vs \(expected)")
    }
}

/// Episode ends: terminal next states carry no pseudo-reward, truncated ones keep their teacher outputs.
@Suite struct EpisodeEndTests {
    static func nDistillUpdate(end: EpisodeEnd) -> [Double] {
        // Two states, two actions, uniform student. One step s0 --a=1--> s1 with teacher π(·|s1) = (0.8, 0.2)
        // and π(·|s0) = (0.5, 0.5).
        let trajectory = Trajectory(
            actionCount: 2, observations: [0, 1], actions: [1], rewards: [0], behaviourProbabilities: [0.5],
            teacherProbabilities: [0.5, 0.5, 0.8, 0.2], teacherValues: [0, 0], end: end)
        let student = StudentParameters(stateCount: 2, actionCount: 2)
        let policy = StudentPolicy(student)
        var acc = UpdateAccumulator(rowCount: 2, actionCount: 2)
        accumulateSampledUpdate(
            trajectory: trajectory, policy: policy, rule: Method.nDistill.rule,
            context: UpdateContext(discount: 1, control: .student), into: &acc)
        return acc.finish(policy: policy)
    }

    @Test func truncatedEpisodeUsesTheLossOfItsLastState() {
        // Ĝ0 = −H×(π(s1)‖π_θ(s1)) = −log 2 (uniform student); score (e_1 − ½) Ĝ0; ℓ(s0) gradient π − π_θ = 0.
        let g = -log(2.0)
        let u = Self.nDistillUpdate(end: .truncated)
        #expect(zip(u, [-0.5 * g, 0.5 * g, 0, 0]).allSatisfy { abs($0 - $1) < 1e-12 }, "\(u)")
    }

    @Test func terminatedEpisodeHasNoPseudoRewardAtTheEnd() {
        let u = Self.nDistillUpdate(end: .terminated)
        #expect(u.allSatisfy { abs($0) < 1e-12 }, "\(u)")
    }
}

/// Kickstarting with several teachers is the sum of its parts.
@Suite struct KickstartingTests {
    @Test func severalTeachersGiveTheSumOfTheirDistillationTermsPlusTheReturnGradient() throws {
        let a = try RandomProblem(seed: 71)
        let b = try RandomProblem(seed: 72)
        let second = Teacher(
            identity: "b", stateCount: a.mdp.stateCount, actionCount: 3, probabilities: b.teacher.probabilities,
            values: b.teacher.values)
        var rule = Method.kickstarting.rule
        rule.lossWeight = 0.7
        let (mixed, combinedRule) = Kickstarting.apply(rule, teacher: a.teacher, further: [second], weights: [0.4])
        let context = UpdateContext(discount: 1, control: .student)
        func exact(_ teacher: Teacher, _ r: UpdateRule) throws -> [Double] {
            try ExactUpdate.expectedUpdate(a.mdp, teacher: teacher, parameters: a.student, rule: r, context: context)
        }
        var distill = Method.onPolicyDistill.rule
        distill.lossWeight = 0.7
        let first = try exact(a.teacher, distill)
        distill.lossWeight = 0.4
        let other = try exact(second, distill)
        let reward = try exact(a.teacher, UpdateRule(addsReward: true))
        let combined = try exact(mixed, combinedRule)
        for i in 0..<combined.count {
            #expect(abs(combined[i] - (first[i] + other[i] + reward[i])) < 1e-12, "coordinate \(i)")
        }
    }
}
