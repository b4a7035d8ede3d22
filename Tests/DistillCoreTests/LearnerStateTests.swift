import DistillCore
import Foundation
import Testing

/// The one learning step's guards: implausible rewards and teacher outputs are recognised, an
/// update that would wreck the parameters is refused and leaves the student as it was, λ has a
/// range, and a snapshot restores the whole state.
@Suite("learner state: bounds, quarantine, snapshots")
struct LearnerStateTests {
    static func gridworld() throws -> (Environment, Teacher, MethodSpec) {
        var spec = EnvironmentSpec()
        spec.gridworld.size = 6
        spec.seed = 3
        let environment = try spec.build()
        let teacher = try TeacherSpec().build(for: environment)
        var method = MethodSpec()
        method.method = .nDistillR
        method.episodesPerIteration = 2
        return (environment, teacher, method)
    }

    /// Two of the student's own episodes with `teacher`'s outputs.
    static func episodes(
        _ environment: Environment, _ teacher: Teacher, policy: StudentPolicy, seed: UInt64
    )
        -> [Trajectory]
    {
        var rng = Xoshiro256StarStar(seed: seed)
        var buffer = EpisodeBuffer()
        return (0..<2).map { _ in
            collectEpisode(
                environment.mdp, policy: policy, teacher: teacher, control: .student, maxSteps: 200, rng: &rng,
                into: &buffer)
            return Trajectory(buffer, teacher: teacher)
        }
    }

    @Test("the gridworld's reward and value ranges, and a 3e38 reward outside them")
    func plausibleRanges() throws {
        let (environment, _, method) = try Self.gridworld()
        let bounds = PlausibleOutputs(environment, maxEpisodeSteps: method.maxEpisodeSteps)
        let rewards = environment.mdp.outcomeReward
        #expect(bounds.rewardRange.lowerBound == min(0, rewards.min()!))
        #expect(bounds.rewardRange.upperBound == max(0, rewards.max()!))
        // The largest reward's discounted sum over the episode cap.
        let largest = max(abs(rewards.min()!), abs(rewards.max()!))
        let gamma = environment.mdp.discount
        let horizon = (1 - pow(gamma, Double(method.maxEpisodeSteps))) / (1 - gamma)
        #expect(abs(bounds.valueMagnitude - largest * horizon) <= 1e-9 * bounds.valueMagnitude)
        #expect(bounds.implausibility(rewards: rewards.map(Float.init), values: [0, 1], actionValues: []) == nil)
        let message = try #require(bounds.implausibility(rewards: [0, 3e38], values: [], actionValues: []))
        #expect(message.contains("reward 3e+38 at step 1") && message.contains("reward range"))
        #expect(
            bounds.implausibility(rewards: [], values: [Float(bounds.valueMagnitude * 2)], actionValues: []) != nil)
        #expect(bounds.implausibility(rewards: [], values: [], actionValues: [-.greatestFiniteMagnitude]) != nil)
    }

    @Test("discounted horizon: |V| ≤ r_max·(1 − γ^cap)/(1 − γ)")
    func discountedHorizon() throws {
        let environment = try Environments.chain(halfLength: 3, discount: 0.9)
        let bounds = PlausibleOutputs(environment, maxEpisodeSteps: 20)
        let largest = environment.mdp.outcomeReward.map(abs).max()!
        #expect(abs(bounds.valueMagnitude - largest * (1 - pow(0.9, 20)) / 0.1) < 1e-12)
    }

    @Test("an update that would overflow the logits is refused and changes nothing")
    func quarantine() throws {
        let (environment, teacher, method) = try Self.gridworld()
        var state = try LearnerState<TabularStudent>(
            method: method, teacherKind: .qLearning, environment: environment, bound: .standard)
        // A few honest updates first.
        for seed in 0..<3 {
            for e in Self.episodes(environment, teacher, policy: state.student.policy, seed: UInt64(seed)) {
                state.accumulate(e)
            }
            guard case .applied = state.applyUpdate() else {
                Issue.record("an honest update was refused")
                return
            }
        }
        let before = state.student.parameters
        let returnBefore = try PolicyEvaluation.expectedReturn(environment.mdp, policy: state.student.stateTable())
        // The attack: one honest-looking episode whose reward is 3e38 (what passed the wire's
        // finiteness check before the plausibility check existed).
        var poisoned = Self.episodes(environment, teacher, policy: state.student.policy, seed: 99)
        poisoned[0].rewards[0] = 3e38
        for e in poisoned { state.accumulate(e) }
        guard case .refused(let reason) = state.applyUpdate() else {
            Issue.record("the poisoned update was applied")
            return
        }
        #expect(reason.contains("bound ±10000"))
        #expect(state.quarantined == 1 && state.updates == 3)
        #expect(state.student.parameters == before)
        let returnAfter = try PolicyEvaluation.expectedReturn(environment.mdp, policy: state.student.stateTable())
        #expect(returnAfter == returnBefore)
        // Learning goes on afterwards from honest episodes, with nothing of the refused batch left.
        for e in Self.episodes(environment, teacher, policy: state.student.policy, seed: 5) { state.accumulate(e) }
        var reference = try LearnerState<TabularStudent>(
            method: method, teacherKind: .qLearning, environment: environment, bound: .standard)
        try reference.restore(from: state.snapshot)
        for e in Self.episodes(environment, teacher, policy: reference.student.policy, seed: 5) {
            reference.accumulate(e)
        }
        guard case .applied = state.applyUpdate(), case .applied = reference.applyUpdate() else {
            Issue.record("an honest update after the refusal was refused")
            return
        }
        #expect(state.student.parameters == reference.student.parameters)
    }

    @Test("without a bound (distill train) the same update is applied: divergence is the user's to see")
    func noBoundInTrain() throws {
        let (environment, teacher, method) = try Self.gridworld()
        var state = try LearnerState<TabularStudent>(method: method, teacherKind: .qLearning, environment: environment)
        var poisoned = Self.episodes(environment, teacher, policy: state.student.policy, seed: 99)
        poisoned[0].rewards[0] = 3e38
        for e in poisoned { state.accumulate(e) }
        guard case .applied = state.applyUpdate() else {
            Issue.record("refused without a bound")
            return
        }
        #expect(state.student.parameters.logits.contains { abs($0) > 1e30 })
    }

    @Test("λ from an operator: in [0, 1000], and only for rules with a distillation term")
    func lambdaRange() throws {
        let (environment, _, method) = try Self.gridworld()
        var state = try LearnerState<TabularStudent>(method: method, teacherKind: .qLearning, environment: environment)
        try state.setLambda(0.25)
        #expect(state.rule.lossWeight == 0.25)
        #expect(throws: DistillError.self) { try state.setLambda(3.4e38) }
        #expect(throws: DistillError.self) { try state.setLambda(-1) }
        #expect(throws: DistillError.self) { try state.setLambda(.nan) }
        #expect(state.rule.lossWeight == 0.25, "a refused λ changes nothing")
        try state.setLambda(nil)
        #expect(state.rule.lossWeight == method.lambda.value(at: 0))
        var actorCritic = method
        actorCritic.method = .actorCritic
        var ac = try LearnerState<TabularStudent>(
            method: actorCritic, teacherKind: .qLearning, environment: environment)
        #expect(throws: DistillError.self) { try ac.setLambda(1) }
    }

    @Test("a snapshot restores parameters, optimiser moments, critic, counters and generator")
    func snapshotRoundTrip() throws {
        let (environment, teacher, base) = try Self.gridworld()
        var method = base
        method.method = .vGated  // has a critic
        method.optimiser = .adam
        method.learningRate = 0.05
        var state = try LearnerState<TabularStudent>(
            method: method, teacherKind: .qLearning, environment: environment, seed: 7)
        for seed in 0..<4 {
            for e in Self.episodes(environment, teacher, policy: state.student.policy, seed: UInt64(seed)) {
                state.accumulate(e)
            }
            state.applyUpdate()
        }
        _ = state.rng.next()
        let snapshot = state.snapshot
        #expect(snapshot.optimiserState.count == 2 * snapshot.parameters.count)
        #expect(snapshot.critic.contains { $0 != 0 })
        var restored = try LearnerState<TabularStudent>(
            method: method, teacherKind: .qLearning, environment: environment)
        try restored.restore(from: snapshot)
        #expect(restored.snapshot == snapshot)
        #expect(restored.student.parameters == state.student.parameters)
        #expect(restored.student.optimiser == state.student.optimiser)
        #expect(restored.critic == state.critic)
        #expect(restored.rng == state.rng)
        #expect(restored.rule == state.rule && restored.updates == 4)
        // The next update is the same from both.
        for e in Self.episodes(environment, teacher, policy: state.student.policy, seed: 50) {
            state.accumulate(e)
            restored.accumulate(e)
        }
        state.applyUpdate()
        restored.applyUpdate()
        #expect(restored.student.parameters == state.student.parameters)
    }

    @Test("a snapshot that does not fit is refused and changes nothing")
    func snapshotMismatch() throws {
        let (environment, _, method) = try Self.gridworld()
        var state = try LearnerState<TabularStudent>(method: method, teacherKind: .qLearning, environment: environment)
        let good = state.snapshot
        var wrongShape = good
        wrongShape.parameters.removeLast()
        var infinite = good
        infinite.parameters[0] = .infinity
        var badMoments = good
        badMoments.optimiserState = [1, 2, 3]
        var zeroRNG = good
        zeroRNG.rngState = [0, 0, 0, 0]
        var hugeCounter = good
        hugeCounter.updates = .max
        for bad in [wrongShape, infinite, badMoments, zeroRNG, hugeCounter] {
            #expect(throws: DistillError.self) { try state.restore(from: bad) }
            #expect(state.snapshot == good)
        }
    }
}

/// The tabular optimisers against their closed-form first steps.
@Suite("tabular optimisers: first steps in closed form")
struct TabularOptimiserTests {
    static let update: [Double] = [0.5, -2, 0, 1e-3]

    func firstStep(_ kind: OptimiserKind) -> [Double] {
        var parameters = StudentParameters(stateCount: 1, actionCount: 4)
        var optimiser = Optimiser(kind: kind, learningRate: 0.1)
        optimiser.apply(Self.update, to: &parameters)
        return parameters.logits
    }

    @Test func sgd() {
        #expect(firstStep(.sgd) == Self.update.map { 0.1 * $0 })
    }

    @Test func adam() {
        // m̂ = u, v̂ = u²: the first step is α·u/(|u| + ε).
        for (x, u) in zip(firstStep(.adam), Self.update) {
            #expect(abs(x - 0.1 * u / (abs(u) + 1e-8)) < 1e-15)
        }
    }

    @Test func rmsprop() {
        // s = (1 − 0.95)·u²: the first step is α·u/(√s + 0.01).
        for (x, u) in zip(firstStep(.rmsprop), Self.update) {
            #expect(abs(x - 0.1 * u / ((0.05 * u * u).squareRoot() + 0.01)) < 1e-15)
        }
    }

    @Test("an RMSProp learner's snapshot holds the mean square and restores it")
    func rmspropSnapshot() throws {
        let (environment, teacher, base) = try LearnerStateTests.gridworld()
        var method = base
        method.optimiser = .rmsprop
        var state = try LearnerState<TabularStudent>(method: method, teacherKind: .qLearning, environment: environment)
        for e in LearnerStateTests.episodes(environment, teacher, policy: state.student.policy, seed: 1) {
            state.accumulate(e)
        }
        state.applyUpdate()
        let snapshot = state.snapshot
        #expect(snapshot.optimiserState.count == snapshot.parameters.count)
        var restored = try LearnerState<TabularStudent>(
            method: method, teacherKind: .qLearning, environment: environment)
        try restored.restore(from: snapshot)
        #expect(restored.student.optimiser == state.student.optimiser)
    }
}
