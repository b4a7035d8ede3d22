import DistillCore
import DistillNN
import Foundation
import Testing

/// Issue 12, item 9: a tabular student exported as the `linear` network on one-hot states is the
/// same policy, and `distill eval`'s sampled return estimates the exact one.
@Suite("Tabular students as network files")
struct TabularStudentNetworkTests {
    static func environment(_ kind: EnvironmentSpec.Kind, size: Int = 6) throws -> Environment {
        var spec = EnvironmentSpec()
        spec.kind = kind
        spec.gridworld.size = size
        spec.seed = 3
        return try spec.build()
    }

    /// Logits drawn from a seeded generator, so that the policy is far from uniform.
    static func parameters(for environment: Environment, seed: UInt64) -> StudentParameters {
        var parameters = Trainer.initialStudent(for: environment)
        var rng = Xoshiro256StarStar(seed: seed)
        parameters.logits = parameters.logits.map { _ in 6 * rng.unitInterval() - 3 }
        return parameters
    }

    @Test(arguments: [EnvironmentSpec.Kind.gridworld, .fig2, .chain])
    func theFileReadAtEveryOneHotStateIsTheTable(kind: EnvironmentSpec.Kind) throws {
        let environment = try Self.environment(kind)
        let parameters = Self.parameters(for: environment, seed: 7)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tabular-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: file) }
        try TabularStudentNetwork.save(parameters, environment: environment, to: file)
        let teacher = try NetworkTeacher.load(from: file)
        #expect(teacher.network.architecture.description == "linear")
        let read = try teacher.table(for: environment, observation: .oneHot)
        let table = parameters.policyTable()
        let worst = zip(read.probabilities, table).map { abs($0 - $1) }.max()!
        #expect(worst < 1e-6, "float32 logits change π by \(worst)")
        let exact = try PolicyEvaluation.expectedReturn(environment.mdp, policy: table)
        let exported = try PolicyEvaluation.expectedReturn(environment.mdp, policy: read.probabilities)
        #expect(abs(exact - exported) < 1e-5 * max(1, abs(exact)))
        // The value head holds V_π by exact evaluation.
        let values = try PolicyEvaluation.values(environment.mdp, policy: table)
        let heads = teacher.network.forward(
            try TabularObservedEnvironment(environment, observation: .oneHot).observationTable(),
            batch: environment.mdp.stateCount
        ).values
        #expect(zip(heads, values).allSatisfy { abs(Double($0) - $1) < 1e-4 * max(1, abs($1)) })
    }

    @Test func aTableOfAnotherEnvironmentIsRefused() throws {
        let environment = try Self.environment(.gridworld)
        let other = try Self.environment(.chain)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tabular-\(UUID().uuidString).safetensors")
        #expect(throws: DistillError.self) {
            try TabularStudentNetwork.save(Self.parameters(for: other, seed: 1), environment: environment, to: file)
        }
    }

    @Test func theSampledReturnEstimatesTheExactReturn() throws {
        let environment = try Self.environment(.gridworld)
        let policy = Self.parameters(for: environment, seed: 11).policyTable()
        let exact = try PolicyEvaluation.expectedReturn(environment.mdp, policy: policy)
        let estimate = TabularPolicyReport.sampledReturn(
            environment.mdp, policy: policy, episodes: 20_000, maxSteps: 10_000, seed: 5)
        // 1.96 s/√n is the 95 % half-width: 2.5 of them is a 4.9σ bound.
        #expect(
            abs(estimate.mean - exact) < 2.5 * estimate.halfWidth,
            "\(estimate.mean) ± \(estimate.halfWidth) vs \(exact)")
        #expect(estimate.episodes == 20_000)
    }

    @Test func theGreedyPathFollowsTheMostProbableActionAndOutcome() throws {
        // The chain: states 0…2T, start in the middle, both ends terminal; action 1 moves right.
        let environment = try Self.environment(.chain)
        let mdp = environment.mdp
        let na = mdp.actionCount
        var policy = [Double](repeating: 0, count: mdp.stateCount * na)
        for s in 0..<mdp.stateCount { policy[s * na + na - 1] = 1 }
        let start = mdp.startDistribution.firstIndex { $0 > 0 }!
        let path = TabularPolicyReport.greedyPath(mdp, policy: policy, from: start, maxSteps: 100)
        #expect(path.first == start)
        #expect(mdp.isTerminal[path.last!])
        for (s, next) in zip(path, path.dropFirst()) {
            let best = mdp.outcomes(state: s, action: na - 1).max { $0.probability < $1.probability }!
            #expect(best.next == next)
        }
    }
}
