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
