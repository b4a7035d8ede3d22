import DistillCore
import Testing

/// The single-process trainer.
@Suite struct TrainerTests {
    @Test func sampledNDistillOnTheChainRecoversTheOptimalTeachersReturn() throws {
        var config = TrainingConfiguration()
        config.environment.kind = .chain
        config.teacher.kind = .optimal
        config.method.method = .nDistillR
        config.method.learningRate = 0.5
        config.iterations = 300
        config.evaluateEvery = 300
        var trainer = try Trainer(config)
        var steps = 0
        var last: IterationRecord?
        for _ in 0..<config.iterations {
            let r = try trainer.runIteration()
            steps += r.environmentSteps
            // Every chain episode takes at least 5 moves from the middle to an end.
            #expect(r.episodes == config.method.episodesPerIteration && r.environmentSteps >= 5 * r.episodes)
            last = r
        }
        #expect(last!.totalEnvironmentSteps == steps)
        // The optimal return from the middle of a T = 5 chain is γ⁴ ≈ 0.961.
        #expect(last!.exact!.studentReturn > 0.9, "\(last!.exact!)")
    }

    @Test func exactAndAdamTrainingRunsForEveryMethodOnASmallMDP() throws {
        for method in Method.allCases {
            var config = TrainingConfiguration()
            config.environment.kind = .random
            config.teacher.kind = .optimal
            config.method.method = method
            config.method.optimiser = .adam
            config.method.learningRate = 0.05
            config.iterations = 20
            config.evaluateEvery = 20
            for exact in [false, true] {
                config.exact = exact
                var trainer = try Trainer(config)
                var last: IterationRecord?
                for _ in 0..<config.iterations { last = try trainer.runIteration() }
                #expect(
                    last!.exact!.studentReturn.isFinite && trainer.parameters.logits.allSatisfy(\.isFinite),
                    "\(method.rawValue)")
            }
        }
    }

    @Test func mixtureControlAnnealsBeta() throws {
        var config = TrainingConfiguration()
        config.environment.kind = .chain
        config.teacher.kind = .optimal
        config.method.method = .onPolicyDistill
        config.method.control = .mixture
        config.method.beta = .linear(start: 1, end: 0, steps: 4)
        config.evaluateEvery = 0
        var trainer = try Trainer(config)
        let betas = try (0..<5).map { _ in try trainer.runIteration().beta! }
        #expect(betas == [1, 0.75, 0.5, 0.25, 0])
    }
}

/// The trainer's exact SGD path for every method follows `θ ← θ + α·u_ref(θ)` with the reference
/// update (its control policy, rule, discount and λ schedule wired as configured).
@Suite struct TrainerReferenceTests {
    @Test(arguments: Method.allCases)
    func exactSGDTrainingFollowsTheReferenceUpdate(method: Method) throws {
        let p = ReferenceProblem(seed: 31, discount: 0.95)
        var config = TrainingConfiguration()
        config.method.method = method
        config.method.optimiser = .sgd
        config.method.learningRate = 0.3
        config.method.lambda = .linear(start: 1, end: 0.25, steps: 3)
        config.exact = true
        config.iterations = 3
        config.evaluateEvery = 0
        var trainer = try Trainer(config, environment: Environment(name: "reference", mdp: p.mdp), teacher: p.teacher)
        var theta = trainer.parameters
        var o = Reference.Options()
        o.control = Reference.defaultControl(method)
        for k in 0..<3 {
            _ = try trainer.runIteration()
            o.lossWeight = config.method.lambda.value(at: k)
            let u = Reference.expectedUpdate(
                method, mdp: p.mdp, teacher: p.teacher, student: theta, discount: 0.95, options: o)
            for i in 0..<u.count { theta.logits[i] += 0.3 * u[i] }
            #expect(
                relativeDistance(trainer.parameters.logits, theta.logits) <= 1e-9,
                "\(method.rawValue) iteration \(k + 1): \(trainer.parameters.logits) vs \(theta.logits)")
        }
        #expect(theta.logits.contains { abs($0) > 1e-6 }, "\(method.rawValue): training did not move")
    }
}
