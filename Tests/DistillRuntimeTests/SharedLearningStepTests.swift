import DistillCore
import DistillRuntime
import DistillWire
import Foundation
import Testing

/// `distill train` and the learner role step one ``LearnerState``: the same episodes in the same
/// order give the same parameters through the trainer's tabular fast path and through the
/// learner's path (float32 unrolls read by ``UnrollEpisode``, kickstarting mixed per step).
@Suite("one learning step for train and the learner")
struct SharedLearningStepTests {
    /// A gridworld, its main teacher and two further kickstarting teachers (q-learning, optimal,
    /// uniform), as `distill train` builds them.
    static func problem(
        method: Method, kickstart: Bool
    ) throws -> (TrainingConfiguration, Environment, Teacher, [Teacher]) {
        var configuration = TrainingConfiguration()
        configuration.environment.kind = .gridworld
        configuration.environment.gridworld.size = 6
        configuration.environment.seed = 4
        configuration.method.method = method
        configuration.method.episodesPerIteration = 4
        // SGD: Adam's normalisation would turn float32 rounding in a gradient that is zero in
        // float64 into a full step, which tells nothing about the two paths.
        configuration.method.optimiser = .sgd
        configuration.method.learningRate = 0.01
        configuration.evaluateEvery = 0
        configuration.seed = 11
        if kickstart {
            configuration.teacher.kickstartTeachers = [.optimal, .uniform]
            configuration.teacher.kickstartWeights = [0.5, 0.25]
        }
        let environment = try configuration.environment.build()
        let teacher = try configuration.teacher.build(for: environment)
        let further = try configuration.teacher.buildKickstartTeachers(for: environment)
        return (configuration, environment, teacher, further)
    }

    /// The unroll an actor sends for `episode` with `teacher`'s outputs (float32 on the wire).
    static func unroll(_ episode: EpisodeBuffer, teacher: Teacher) -> Unroll {
        let na = teacher.actionCount
        let states = episode.states
        var probabilities: [Float] = []
        var values: [Float] = []
        var q: [Float] = []
        for s in states {
            probabilities += (0..<na).map { Float(teacher.probabilities[Int(s) * na + $0]) }
            values.append(Float(teacher.values[Int(s)]))
            if let table = teacher.actionValues { q += (0..<na).map { Float(table[Int(s) * na + $0]) } }
        }
        return Unroll(
            sequence: 1, parameterVersion: 0, teacherID: teacher.identity, teacherVersion: 1, actionCount: na,
            episodeLengths: [UInt32(episode.length)], episodeTerminated: [episode.terminated], observations: states,
            actions: episode.actions, rewards: episode.rewards.map(Float.init),
            behaviourProbabilities: episode.behaviour.map(Float.init),
            teacherProbabilities: Tensor(shape: [states.count, na], values: probabilities), teacherValues: values,
            teacherQValues: q.isEmpty ? .empty : Tensor(shape: [states.count, na], values: q))
    }

    /// A teacher whose every output is a float32 number (probabilities in eighths, values and
    /// Q-values in quarters), so that the wire changes none of them.
    static func dyadicTeacher(_ environment: Environment, seed: UInt64, name: String) -> Teacher {
        var rng = Xoshiro256StarStar(seed: seed)
        let (ns, na) = (environment.mdp.stateCount, environment.mdp.actionCount)
        var probabilities: [Double] = []
        for _ in 0..<ns {
            var eighths = [Int](repeating: 1, count: na)
            for _ in 0..<(8 - na) { eighths[Int.random(in: 0..<na, using: &rng)] += 1 }
            probabilities += eighths.map { Double($0) / 8 }
        }
        let values = (0..<ns).map { _ in Double(Int.random(in: -8...8, using: &rng)) / 4 }
        let q = (0..<(ns * na)).map { _ in Double(Int.random(in: -8...8, using: &rng)) / 4 }
        return Teacher(
            identity: name, stateCount: ns, actionCount: na, probabilities: probabilities, values: values,
            actionValues: q)
    }

    /// Runs `iterations` trainer steps and, alongside, a learner-side state fed the same
    /// episodes as unrolls (with the main teacher's outputs only: the learner mixes in the
    /// further teachers itself); returns both parameter vectors.
    static func bothPaths(
        _ configuration: TrainingConfiguration, environment: Environment, teacher: Teacher, further: [Teacher],
        learnerMixes: Bool = true, iterations: Int = 30
    ) throws -> (train: [Double], learner: [Double]) {
        var trainer = try Trainer(configuration, environment: environment, teacher: teacher, kickstartTeachers: further)
        var learner = try LearnerState<TabularStudent>(
            method: configuration.method, teacherKind: configuration.teacher.kind, environment: environment,
            kickstart: learnerMixes
                ? try KickstartTeachers(teachers: further, weights: configuration.teacher.kickstartWeights) : nil,
            bound: .standard)
        // The trainer's episodes, regenerated from its generator and policy before each step.
        var rng = Xoshiro256StarStar(seed: configuration.seed)
        var buffer = EpisodeBuffer()
        for _ in 0..<iterations {
            let (stepTeacher, _) = Kickstarting.apply(
                trainer.state.rule, teacher: teacher, further: further,
                weights: configuration.teacher.kickstartWeights)
            for _ in 0..<configuration.method.episodesPerIteration {
                collectEpisode(
                    environment.mdp, policy: trainer.state.student.policy, teacher: stepTeacher,
                    control: trainer.state.control, maxSteps: configuration.method.maxEpisodeSteps, rng: &rng,
                    into: &buffer)
                UnrollEpisode.withEpisodes(of: unroll(buffer, teacher: teacher)) { episodes in
                    for episode in episodes { learner.accumulate(episode) }
                }
            }
            #expect(learner.updateDue)
            guard case .applied = learner.applyUpdate() else {
                Issue.record("the learner refused a legitimate update")
                return ([], [])
            }
            _ = try trainer.runIteration()
        }
        #expect(trainer.rng == rng, "the regenerated episodes are the trainer's own")
        #expect(learner.updates == trainer.iteration)
        #expect(Int(learner.environmentSteps) == trainer.totalEnvironmentSteps)
        return (trainer.parameters.logits, learner.student.parameters.logits)
    }

    /// With inputs the wire carries exactly (a uniform control, so that behaviour probabilities
    /// are quarters; dyadic teachers; the gridworld's rewards), both paths give the SAME
    /// parameters, bit for bit, for every method.
    @Test("bit-identical parameters for every method", arguments: Method.allCases)
    func identicalParameters(method: Method) throws {
        var (configuration, environment, _, _) = try Self.problem(method: method, kickstart: false)
        configuration.method.control = .uniform
        // Short episodes: a uniform walk's n-distill pseudo-returns over hundreds of steps would
        // take the logits past the learner's parameter bound within these 30 updates.
        configuration.method.maxEpisodeSteps = 40
        #expect(environment.mdp.outcomeReward.allSatisfy { Double(Float($0)) == $0 })
        let teacher = Self.dyadicTeacher(environment, seed: 1, name: "dyadic-main")
        var further: [Teacher] = []
        if method.rule(distillationLoss: .crossEntropy, rusuTemperature: 0.01).loss == .crossEntropy {
            further = [
                Self.dyadicTeacher(environment, seed: 2, name: "dyadic-2"),
                Self.dyadicTeacher(environment, seed: 3, name: "dyadic-3"),
            ]
            configuration.teacher.kickstartWeights = [0.5, 0.25]
        }
        let (train, learner) = try Self.bothPaths(
            configuration, environment: environment, teacher: teacher, further: further)
        #expect(!train.isEmpty && train == learner, "largest difference \(Self.maxDifference(train, learner))")
        #expect(train.contains { abs($0) > 1e-3 }, "the student learned something")
    }

    static func maxDifference(_ a: [Double], _ b: [Double]) -> Double {
        zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
    }

    /// On the student's own episodes with a Q-learning teacher, float32 rounding on the wire is
    /// the only difference. (n-distill+R is left out here: its update depends so strongly on the
    /// parameters, through the next-state losses summed over the episode, that rounding grows
    /// ×5–10 per update; the bit-identical test above covers it.)
    @Test(
        "same episodes, same parameters up to float32 rounding",
        arguments: [
            (Method.kickstarting, true), (.kickstarting, false), (.vGated, false), (.teacherVReward, false),
        ])
    func sameParameters(method: Method, kickstart: Bool) throws {
        let (configuration, environment, teacher, further) = try Self.problem(method: method, kickstart: kickstart)
        let (train, learner) = try Self.bothPaths(
            configuration, environment: environment, teacher: teacher, further: further)
        #expect(train.count == learner.count && !train.isEmpty)
        // Float32 on the wire (teacher outputs, behaviour probabilities) is the only difference.
        let gap = Self.maxDifference(train, learner)
        #expect(gap < 1e-5, "largest parameter difference \(gap)")
        #expect(train.contains { abs($0) > 1e-2 }, "the student learned something")
    }

    /// The tests above compare the learner's mixture (``KickstartEpisode``, per step) with the
    /// trainer's (``Kickstarting/apply(_:teacher:further:weights:)``, a table), production code on
    /// both sides; this one checks it against the formula, worked out by hand:
    /// `π̄ = (λ π + Σ_k λ_k π_k) / Λ` and `V̄` alike, `Λ = λ + Σ_k λ_k`, and with no reward and a
    /// zero critic, one episode's SGD step is `α Λ Σ_t (π̄(s_t) − π_θ(s_t))` on the row of `s_t`.
    @Test("the learner mixes the further teachers' outputs as the formula says (worked by hand)")
    func mixtureMatchesTheFormulaByHand() throws {
        // Three states (0 and 1 live, 2 terminal), two actions; every output is dyadic, so that
        // the unroll's float32 changes nothing.
        func teacher(_ name: String, _ probabilities: [Double], _ values: [Double]) -> Teacher {
            Teacher(identity: name, stateCount: 3, actionCount: 2, probabilities: probabilities, values: values)
        }
        let main = teacher("main", [0.125, 0.875, 0.5, 0.5, 0.5, 0.5], [1, -0.5, 0])
        let first = teacher("first", [0.75, 0.25, 0.25, 0.75, 0.5, 0.5], [0.25, 2, 0])
        let second = teacher("second", [0.5, 0.5, 1, 0, 0.5, 0.5], [-1, 0.75, 0])
        // λ = 1/2 (the main teacher's), λ_1 = 1/4, λ_2 = 1: Λ = 7/4. By hand:
        //   π̄(0) = (1/16 + 3/16 + 1/2, 7/16 + 1/16 + 1/2) / (7/4) = (3/7, 4/7)
        //   π̄(1) = (1/4 + 1/16 + 1, 1/4 + 3/16 + 0) / (7/4)       = (3/4, 1/4)
        //   V̄(0) = (1/2 + 1/16 − 1) / (7/4) = −1/4,   V̄(1) = (−1/4 + 1/2 + 3/4) / (7/4) = 4/7
        let total = 1.75
        let mixed: [[Double]] = [[3.0 / 7, 4.0 / 7], [0.75, 0.25]]
        let mixedValues = [-0.25, 4.0 / 7]
        var method = MethodSpec()
        method.method = .kickstarting
        method.lambda = .constant(0.5)
        method.optimiser = .sgd
        method.learningRate = 0.5
        method.episodesPerIteration = 1
        // π_θ(0) = (1/4, 3/4), π_θ(1) = π_θ(2) = (1/2, 1/2).
        var parameters = StudentParameters(stateCount: 3, actionCount: 2)
        parameters.logits[1] = log(3)
        let student = TabularStudent(parameters: parameters, optimiser: Optimiser(kind: .sgd, learningRate: 0.5))
        let policy: [[Double]] = [[0.25, 0.75], [0.5, 0.5]]
        let further = try KickstartTeachers(teachers: [first, second], weights: [0.25, 1])
        var learner = try LearnerState<TabularStudent>(
            method: method, teacherKind: nil, discount: 0.9, stateCount: 3, actionCount: 2, student: student,
            kickstart: further)
        #expect(learner.effectiveRule.lossWeight == total)
        // s = 0, 1, 0, then the terminal state; no reward, so only the distillation term moves θ.
        let episode = EpisodeBuffer(
            states: [0, 1, 0, 2], actions: [1, 0, 1], rewards: [0, 0, 0], behaviour: [0.75, 0.5, 0.75],
            terminated: true)
        let unroll = Self.unroll(episode, teacher: main)
        // What the learner reads: the mixture per step.
        UnrollEpisode.withEpisodes(of: unroll) { episodes in
            let view = KickstartEpisode(episodes[0], mainWeight: 0.5, further: further)
            for t in 0..<episode.length {
                let s = Int(episode.state(t))
                for a in 0..<2 {
                    #expect(abs(view.teacherProbability(t, a) - mixed[s][a]) < 1e-12, "π̄(\(a)|\(s)) at step \(t)")
                }
                #expect(abs(view.teacherValue(t) - mixedValues[s]) < 1e-12, "V̄(\(s)) at step \(t)")
            }
        }
        // What the learner learns: one episode, one SGD step.
        UnrollEpisode.withEpisodes(of: unroll) { episodes in
            for episode in episodes { learner.accumulate(episode) }
        }
        #expect(learner.updateDue)
        guard case .applied = learner.applyUpdate() else {
            Issue.record("the learner refused the update")
            return
        }
        var expected = parameters.logits
        for t in 0..<episode.length {
            let s = Int(episode.state(t))
            for a in 0..<2 { expected[s * 2 + a] += 0.5 * total * (mixed[s][a] - policy[s][a]) }
        }
        // Row 0: θ += ½·2·(7/4)·(3/7 − 1/4, 4/7 − 3/4) = ±5/16; row 1: ½·(7/4)·(±1/4) = ±7/32.
        #expect(abs(expected[0] - 0.3125) < 1e-12 && abs(expected[2] - 0.21875) < 1e-12)
        let learned = learner.student.parameters.logits
        #expect(
            Self.maxDifference(learned, expected) < 1e-12, "learned \(learned), by hand \(expected)")
    }

    @Test("a learner that forgot the further kickstarting teachers is told apart")
    func forgottenTeachersDiffer() throws {
        let (configuration, environment, teacher, further) = try Self.problem(method: .kickstarting, kickstart: true)
        let (train, learner) = try Self.bothPaths(
            configuration, environment: environment, teacher: teacher, further: further, learnerMixes: false)
        #expect(Self.maxDifference(train, learner) > 1e-2)
    }
}
