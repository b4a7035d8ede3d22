import DistillCore
import DistillRuntime
import DistillWire

/// The small run the unroll and checkpoint targets learn in: a 5×5 gridworld (seed 4) with the
/// optimal teacher, as `distill cluster --grid-size 5 --seed 4 --teacher optimal` builds it.
public struct FuzzProblem: Sendable {
    /// The environment.
    public let environment: Environment
    /// Its optimal teacher (with Q-values).
    public let teacher: Teacher
    /// The episode cap the learner's plausibility bounds are computed with.
    public static let maxEpisodeSteps = 100

    /// The problem, built once per process.
    public static let shared: FuzzProblem = {
        do {
            return try FuzzProblem()
        } catch {
            fatalError("cannot build the fuzzing problem: \(error)")
        }
    }()

    private init() throws {
        var configuration = TrainingConfiguration()
        configuration.environment.kind = .gridworld
        configuration.environment.gridworld.size = 5
        configuration.environment.seed = 4
        configuration.teacher.kind = .optimal
        environment = try configuration.environment.build()
        teacher = try configuration.teacher.build(for: environment)
    }

    /// The method an input is learned with, chosen by the unroll itself so that one corpus covers
    /// every rule: `sequence` picks the method, `parameterVersion` the optimiser and the batch size.
    public func method(for unroll: Unroll) -> MethodSpec {
        method(unroll.sequence, unroll.parameterVersion)
    }

    /// The method numbered `a` (modulo the number of methods), optimiser and batch size from `b`.
    public func method(_ a: UInt64, _ b: UInt64) -> MethodSpec {
        var method = MethodSpec()
        method.method = Method.allCases[Int(a % UInt64(Method.allCases.count))]
        method.optimiser = OptimiserKind.allCases[Int(b % 2)]
        method.episodesPerIteration = Int(b / 2 % 3) + 1
        method.maxEpisodeSteps = Self.maxEpisodeSteps
        return method
    }

    /// A fresh learner state as the learner role makes it (bound `.standard`).
    public func learnerState(_ method: MethodSpec) throws -> LearnerState<TabularStudent> {
        try LearnerState<TabularStudent>(
            method: method, teacherKind: .optimal, environment: environment, bound: .standard)
    }

    /// A fresh learner core as the learner role makes it for `method` (no CURVE, no run token:
    /// every unroll's sender is admitted, as on a plain-TCP cluster).
    public func learnerCore(_ method: MethodSpec) throws -> LearnerCore<TabularLearnerModel> {
        let problem = LearnerProblem(
            environment: environment, environmentIdentity: "gridworld-5", method: method, teacherKind: .optimal,
            referenceTeacher: teacher, unrollSteps: 100, configurationJSON: "{}")
        var core = try LearnerCore(
            problem: problem, configuration: LearnerConfiguration(bindUnrolls: "", bindParameters: "", bindControl: ""))
        core.start(now: 0)
        return core
    }

    /// `count` episodes of the initial student under `method`'s control policy, as the unroll an
    /// actor sends with the teacher's outputs (float32), its `sequence` and `parameterVersion`
    /// chosen by the caller.
    public func unroll(
        episodes count: Int, sequence: UInt64, parameterVersion: UInt64, seed: UInt64, withQ: Bool = true
    ) throws -> Unroll {
        var probe = Unroll(
            sequence: sequence, parameterVersion: parameterVersion, teacherID: "optimal", teacherVersion: 1,
            actionCount: 1, episodeLengths: [], episodeTerminated: [], observations: [], actions: [], rewards: [],
            behaviourProbabilities: [], teacherProbabilities: .empty, teacherValues: [])
        let state = try learnerState(method(for: probe))
        let na = teacher.actionCount
        var rng = Xoshiro256StarStar(seed: seed)
        var buffer = EpisodeBuffer()
        var probabilities: [Float] = []
        var values: [Float] = []
        var q: [Float] = []
        for _ in 0..<count {
            collectEpisode(
                environment.mdp, policy: state.student.policy, teacher: teacher, control: state.control,
                maxSteps: 30, rng: &rng, into: &buffer)
            for s in buffer.states {
                probabilities += (0..<na).map { Float(teacher.probabilities[Int(s) * na + $0]) }
                values.append(Float(teacher.values[Int(s)]))
                if let table = teacher.actionValues { q += (0..<na).map { Float(table[Int(s) * na + $0]) } }
            }
            probe.episodeLengths.append(UInt32(buffer.length))
            probe.episodeTerminated.append(buffer.terminated)
            probe.observations += buffer.states
            probe.actions += buffer.actions
            probe.rewards += buffer.rewards.map(Float.init)
            probe.behaviourProbabilities += buffer.behaviour.map(Float.init)
        }
        let rows = probe.observations.count
        probe.actionCount = na
        probe.teacherProbabilities = Tensor(shape: [rows, na], values: probabilities)
        probe.teacherValues = values
        probe.teacherQValues = withQ && !q.isEmpty ? Tensor(shape: [rows, na], values: q) : .empty
        return probe
    }
}
