import DistillCore
import Testing

/// Every sampled estimator against its exact expectation (METHODS.md §4 as the oracle).
@Suite struct EstimatorTests {
    static let episodes = 12_000

    /// Samples `episodes` episodes under `behaviour` (a student policy or the control policy) and
    /// returns the per-episode update's mean and standard error.
    static func sampled(
        _ problem: RandomProblem, rule: UpdateRule, context: UpdateContext, behaviourPolicy: StudentPolicy?,
        seed: UInt64
    ) -> RunningMoments {
        let policy = StudentPolicy(problem.student)
        var rng = Xoshiro256StarStar(seed: seed)
        var buffer = EpisodeBuffer()
        var moments = RunningMoments(size: problem.student.logits.count)
        var acc = UpdateAccumulator(rowCount: problem.student.rowCount, actionCount: problem.student.actionCount)
        for _ in 0..<episodes {
            if let behaviourPolicy {
                collectEpisode(
                    problem.mdp, policy: behaviourPolicy, teacher: problem.teacher, control: .student, maxSteps: 10_000,
                    rng: &rng, into: &buffer)
            } else {
                collectEpisode(
                    problem.mdp, policy: policy, teacher: problem.teacher, control: context.control, maxSteps: 10_000,
                    rng: &rng, into: &buffer)
            }
            accumulateSampledUpdate(
                TabularEpisode(buffer, teacher: problem.teacher), policy: policy, rule: rule, context: context,
                into: &acc)
            moments.add(acc.finish(policy: policy))
        }
        return moments
    }

    static func contextFor(
        _ problem: RandomProblem, rule: UpdateRule, control: ControlPolicy, clipping: VTraceClipping = .init()
    ) throws -> UpdateContext {
        var context = UpdateContext(discount: problem.mdp.discount, control: control, clipping: clipping)
        if rule.needsStudentValues {
            context.studentValues = try PolicyEvaluation.values(problem.mdp, policy: problem.student.policyTable())
        }
        return context
    }

    @Test(arguments: Method.allCases)
    func sampledUpdateMatchesExactExpectationOnPolicy(method: Method) throws {
        for seed in [UInt64(11), 12, 13] {
            let problem = try RandomProblem(seed: seed, discount: seed == 12 ? 0.9 : 1)
            let rule = method.rule
            let context = try Self.contextFor(problem, rule: rule, control: method.defaultControl)
            let exact = try ExactUpdate.expectedUpdate(
                problem.mdp, teacher: problem.teacher, parameters: problem.student, rule: rule, context: context)
            let streamSeed = seed &* 1000 &+ UInt64(Method.allCases.firstIndex(of: method)!)
            let m = Self.sampled(problem, rule: rule, context: context, behaviourPolicy: nil, seed: streamSeed)
            let bad = outsideConfidenceBand(mean: m.mean, standardError: m.standardError, exact: exact)
            #expect(bad.isEmpty, "\(method.rawValue), MDP seed \(seed): \(bad)")
        }
    }

    @Test(arguments: Method.allCases)
    func importanceWeightedUpdateMatchesExactExpectationUnderStaleBehaviour(method: Method) throws {
        let problem = try RandomProblem(seed: 21)
        var stale = problem.student
        for i in 0..<stale.logits.count { stale.logits[i] *= -0.5 }
        let rule = method.rule
        // Large clips: nothing clips, so the estimator's expectation is exact.
        let context = try Self.contextFor(
            problem, rule: rule, control: method.defaultControl == .teacher ? .mixture(beta: 0.5) : .student,
            clipping: VTraceClipping(rhoBar: 1e9, cBar: 1e9))
        let exact = try ExactUpdate.expectedUpdate(
            problem.mdp, teacher: problem.teacher, parameters: problem.student, rule: rule, context: context,
            behaviour: stale.policyTable())
        let m = Self.sampled(
            problem, rule: rule, context: context, behaviourPolicy: StudentPolicy(stale),
            seed: 99 &+ UInt64(Method.allCases.firstIndex(of: method)!))
        let bad = outsideConfidenceBand(mean: m.mean, standardError: m.standardError, exact: exact)
        #expect(bad.isEmpty, "\(method.rawValue): \(bad)")
    }

    @Test(arguments: [ControlPolicy.teacher, .uniform, .mixture(beta: 0.3)])
    func sampledUpdateMatchesExactExpectationUnderOtherControlPolicies(control: ControlPolicy) throws {
        let problem = try RandomProblem(seed: 31)
        for method in [Method.nDistillR, .onPolicyDistill, .expEntropyRegularised, .klRegularisedR] {
            let rule = method.rule
            let context = try Self.contextFor(problem, rule: rule, control: control)
            let exact = try ExactUpdate.expectedUpdate(
                problem.mdp, teacher: problem.teacher, parameters: problem.student, rule: rule, context: context)
            let m = Self.sampled(problem, rule: rule, context: context, behaviourPolicy: nil, seed: 5)
            let bad = outsideConfidenceBand(mean: m.mean, standardError: m.standardError, exact: exact)
            #expect(bad.isEmpty, "\(method.rawValue) under \(control): \(bad)")
        }
    }

    @Test func networkTrajectoryPathGivesTheSameUpdateAsTheTabularPath() throws {
        let problem = try RandomProblem(seed: 41)
        let policy = StudentPolicy(problem.student)
        var rng = Xoshiro256StarStar(seed: 3)
        var buffer = EpisodeBuffer()
        for method in Method.allCases {
            let rule = method.rule
            let context = try Self.contextFor(problem, rule: rule, control: .student)
            collectEpisode(
                problem.mdp, policy: policy, teacher: problem.teacher, control: .student, maxSteps: 100, rng: &rng,
                into: &buffer)
            var a = UpdateAccumulator(rowCount: problem.student.rowCount, actionCount: 3)
            var b = a
            accumulateSampledUpdate(
                TabularEpisode(buffer, teacher: problem.teacher), policy: policy, rule: rule, context: context, into: &a
            )
            accumulateSampledUpdate(
                trajectory: Trajectory(buffer, teacher: problem.teacher), policy: policy, rule: rule, context: context,
                into: &b)
            let x = a.finish(policy: policy)
            let y = b.finish(policy: policy)
            for i in 0..<x.count {
                #expect(abs(x[i] - y[i]) <= 1e-9 * (1 + abs(x[i])), "\(method.rawValue) coordinate \(i)")
            }
        }
    }

    @Test(arguments: [Method.onPolicyDistillR, .nDistillR, .nDistill])
    func tiedStudentSampledUpdateMatchesExactExpectationOnFig2(method: Method) throws {
        let env = Environments.fig2()
        let teacher = Teachers.fig2()
        var student = StudentParameters(rowOfState: env.tiedRows!, rowCount: 2, actionCount: 2)
        student.setRow(0, probabilities: [0.7, 0.3])
        student.setRow(1, probabilities: [0.4, 0.6])
        let problem = RandomProblem(mdp: env.mdp, teacher: teacher, student: student)
        let rule = method.rule(distillationLoss: .agreement(scale: 4))
        let context = UpdateContext(discount: 1, control: .student)
        let exact = try ExactUpdate.expectedUpdate(
            env.mdp, teacher: teacher, parameters: student, rule: rule, context: context)
        let m = Self.sampled(problem, rule: rule, context: context, behaviourPolicy: nil, seed: 17)
        let bad = outsideConfidenceBand(mean: m.mean, standardError: m.standardError, exact: exact)
        #expect(bad.isEmpty, "\(method.rawValue): \(bad)")
    }
}
