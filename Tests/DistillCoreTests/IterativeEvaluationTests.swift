import DistillCore
import Testing

@Suite("Iterative policy evaluation")
struct IterativeEvaluationTests {
    @Test func gaussSeidelSweepsAgreeWithTheDenseBellmanSolve() throws {
        var rng = Xoshiro256StarStar(seed: 7)
        let environments = [try Environments.gridworld(seed: 1), try Environments.chain()]
        for environment in environments {
            let mdp = environment.mdp
            // A random stochastic policy, so every action's outcomes matter.
            var policy = [Double](repeating: 0, count: mdp.stateCount * mdp.actionCount)
            for s in 0..<mdp.stateCount {
                let weights = (0..<mdp.actionCount).map { _ in Double.random(in: 0.05...1, using: &rng) }
                let total = weights.reduce(0, +)
                for a in 0..<mdp.actionCount { policy[s * mdp.actionCount + a] = weights[a] / total }
            }
            let dense = try PolicyEvaluation.values(mdp, policy: policy)
            let iterative = try #require(PolicyEvaluation.iterativeValues(mdp, policy: policy, tolerance: 1e-12))
            let gap = zip(dense, iterative).map { abs($0 - $1) }.max() ?? 0
            #expect(gap < 1e-8, "\(environment.name): largest gap \(gap)")
        }
    }
}
