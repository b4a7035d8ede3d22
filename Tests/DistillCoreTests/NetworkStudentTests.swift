import DistillCore
import DistillNN
import Foundation
import Testing

/// The network student through the one learning step (FUNCTION-APPROXIMATION.md §1): the rules
/// write per-step logit-space updates, the network back-propagates them.
@Suite("network students")
struct NetworkStudentTests {
    /// The one-hot observation of every state, `[states × states]`.
    static func oneHot(_ states: Int) -> [Float] {
        var table = [Float](repeating: 0, count: states * states)
        for s in 0..<states { table[s * states + s] = 1 }
        return table
    }

    /// A `linear` network on one-hot states, all weights zero and the logits bias frozen: the
    /// tabular student in network form.
    static func tabularNetwork(
        states: Int, actions: Int, kind: OptimiserKind, learningRate: Double
    ) throws
        -> NetworkStudent
    {
        let network = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: "linear"), inputShape: [states], actionCount: actions, seed: 1)
        network.parameters = [Float](repeating: 0, count: network.parameterCount)
        return try NetworkStudent(
            network: network,
            optimizer: NetworkOptimizer(kind, learningRate: learningRate, parameterCount: network.parameterCount),
            observations: oneHot(states), frozen: ["logits.bias"])
    }

    /// For every method: the same episodes through the tabular student and through a linear
    /// network on one-hot states give the same logits (to float32 rounding).
    @Test("linear on one-hot with no bias is the tabular student", arguments: Method.allCases)
    func linearOneHotIsTabular(method: Method) throws {
        let problem = try RandomProblem(seed: 21, states: 5, actions: 3, discount: 0.95)
        let environment = Environment(name: "random", mdp: problem.mdp)
        var spec = MethodSpec()
        spec.method = method
        spec.episodesPerIteration = 4
        spec.learningRate = 0.05
        spec.maxEpisodeSteps = 60
        var tabular = try LearnerState<TabularStudent>(method: spec, teacherKind: nil, environment: environment)
        var network = try LearnerState(
            method: spec, teacherKind: nil, environment: environment,
            student: try Self.tabularNetwork(
                states: problem.mdp.stateCount, actions: 3, kind: .sgd, learningRate: spec.learningRate))
        var rng = Xoshiro256StarStar(seed: 3)
        var buffer = EpisodeBuffer()
        for _ in 0..<25 {
            for _ in 0..<spec.episodesPerIteration {
                collectEpisode(
                    problem.mdp, policy: tabular.student.policy, teacher: problem.teacher, control: tabular.control,
                    maxSteps: spec.maxEpisodeSteps, rng: &rng, into: &buffer)
                let episode = Trajectory(buffer, teacher: problem.teacher)
                tabular.accumulate(episode)
                network.accumulate(episode)
            }
            tabular.applyUpdate()
            network.applyUpdate()
        }
        let expected = tabular.student.parameters.logits
        let got = network.student.logitTable().map(Double.init)
        let gap = zip(expected, got).map { abs($0 - $1) / max(1, abs($0)) }.max()!
        #expect(gap < 1e-4, "\(method.rawValue): largest relative logit difference \(gap)")
        #expect(expected.contains { abs($0) > 1e-3 }, "the student learned something")
    }

    /// For a network student (an MLP on one-hot states, weights scaled up so that its policy is far
    /// from uniform) on a small random MDP: the Monte-Carlo mean of the sampled update, in logit
    /// space at each state, is the exact expected update of the tabular student with the
    /// network's logits, within a Bonferroni-corrected 99 % band.
    @Test(
        "the sampled update through a network has the exact expected update as its mean",
        arguments: [
            Method.nDistillR, .onPolicyDistill, .teacherVReward, .klRegularised, .vGated, .expEntropyRegularised,
        ])
    func monteCarloMeanIsTheExactUpdate(method: Method) throws {
        var problem = try RandomProblem(seed: 31, states: 4, actions: 3, discount: 0.9)
        let states = problem.mdp.stateCount
        let network = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: "mlp:16/tanh"), inputShape: [states], actionCount: 3, seed: 5)
        network.parameters = network.parameters.map { $0 * 40 }
        let student = try NetworkStudent(
            network: network, optimizer: .sgd(SGD(learningRate: 0.1)), observations: Self.oneHot(states))
        problem.student = student.tabularParameters
        #expect(problem.student.policyTable().contains { $0 < 0.2 }, "a policy far from uniform")
        let rule = method.rule
        let context = try EstimatorTests.contextFor(problem, rule: rule, control: method.defaultControl)
        let exact = try ExactUpdate.expectedUpdate(
            problem.mdp, teacher: problem.teacher, parameters: problem.student, rule: rule, context: context)
        let policy = StudentPolicy(problem.student)
        var rng = Xoshiro256StarStar(seed: 77)
        var buffer = EpisodeBuffer()
        var moments = RunningMoments(size: exact.count)
        for _ in 0..<8_000 {
            collectEpisode(
                problem.mdp, policy: policy, teacher: problem.teacher, control: context.control, maxSteps: 10_000,
                rng: &rng, into: &buffer)
            moments.add(
                student.logitSpaceUpdate(TabularEpisode(buffer, teacher: problem.teacher), rule: rule, context: context)
            )
        }
        let bad = outsideConfidenceBand(mean: moments.mean, standardError: moments.standardError, exact: exact)
        #expect(bad.isEmpty, "\(method.rawValue): \(bad)")
        #expect(exact.contains { abs($0) > 1e-3 }, "a non-trivial expected update")
    }
}
