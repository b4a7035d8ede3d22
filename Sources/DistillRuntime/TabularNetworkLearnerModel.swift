// A network student on a tabular MDP in the cluster: a gridworld observed as one-hot vectors,
// images or windows (`distill learner --env gridworld --student conv:8x3/mlp:64 --observation
// image`), or the union of K gridworlds of a multi-task run (Multitask.swift). The observation is
// a function of the state, so actors send state ids as in a tabular run, and the learner publishes
// the network's logits at every state: tabular actors play exactly the network's policy without
// running it, and the network is trained on the learner through the one learning step
// (`NetworkStudent` on the rendered observations, with the tabular critic).

import DistillCore
import DistillNN
import DistillWire
import Foundation

/// The tasks of a multi-task run as its learner checks and measures them: each task's teacher's
/// identity (what its unrolls must name) and the exact returns of its teacher and of chance.
public struct TaskTeachers: Sendable {
    /// The tasks.
    public let problem: MultitaskProblem
    /// Task k's teacher's identity, as its unrolls must name it.
    public let identities: [String]
    let teacherReturns: [Double]
    let uniformReturns: [Double]

    /// The teachers `teachers` of `problem`'s tasks (one per task, with distinct identities).
    public init(problem: MultitaskProblem, teachers: [Teacher]) throws {
        guard teachers.count == problem.count else {
            throw RuntimeError("\(teachers.count) teachers for \(problem.count) tasks", code: .invalidInput)
        }
        identities = teachers.map(\.identity)
        guard Set(identities).count == teachers.count else {
            throw RuntimeError("two tasks' teachers have one identity: \(identities)", code: .invalidInput)
        }
        self.problem = problem
        do {
            teacherReturns = try zip(teachers, problem.tasks.tasks).map {
                try PolicyEvaluation.expectedReturn($1.mdp, policy: $0.probabilities)
            }
            uniformReturns = try problem.tasks.tasks.map {
                let na = $0.mdp.actionCount
                return try PolicyEvaluation.expectedReturn(
                    $0.mdp, policy: [Double](repeating: 1 / Double(na), count: $0.mdp.stateCount * na))
            }
        } catch let error as DistillError {
            throw RuntimeError(error.message, code: .invalidInput)
        }
    }

    /// Why `unroll` may not be learned from: it names none of the task teachers, or visits states
    /// outside the task of the teacher it names; nil when it lies in its teacher's task.
    func misassignment(of unroll: Unroll) -> String? {
        guard let k = identities.firstIndex(of: unroll.teacherID) else {
            return "teacher '\(unroll.teacherID)' is none of this run's \(identities.count) task teachers "
                + "(\(identities.joined(separator: "; "))): start each actor with --task K and task K's "
                + "teacher server"
        }
        let range = problem.tasks.stateOffsets[k]..<problem.tasks.stateOffsets[k + 1]
        if let s = unroll.observations.first(where: { !range.contains(Int($0)) }) {
            return "the unroll names task \(k)'s teacher but visits state \(s) of task "
                + "\(problem.tasks.task(ofState: Int(s))): an actor's --task and its --teacher-server must be one task's"
        }
        return nil
    }

    /// Each task's returns, from the union's state values under the student's policy (the union's
    /// values at task k's states are task k's own: no transition leaves a task).
    func returns(values: [Double]?) -> [TaskReturn] {
        problem.tasks.tasks.indices.map { k in
            let task = problem.tasks.tasks[k]
            let offset = problem.tasks.stateOffsets[k]
            let studentReturn = values.map { values in
                (0..<task.mdp.stateCount).reduce(0.0) { $0 + task.mdp.startDistribution[$1] * values[offset + $1] }
            }
            return TaskReturn(
                task: k, environment: problem.taskEnvironmentIdentity(k), teacher: identities[k],
                studentReturn: studentReturn, teacherReturn: teacherReturns[k], uniformReturn: uniformReturns[k])
        }
    }

    /// The mean of the teachers' returns (the union's teacher's return: each task weighs 1/K).
    var meanTeacherReturn: Double { teacherReturns.reduce(0, +) / Double(teacherReturns.count) }
}

/// A network student on a tabular MDP: actors send state ids (as a tabular run's), the parameters
/// on the wire are the network's logits at every state, returns are exact. With `tasks`, the MDP
/// is the union of a multi-task run's gridworlds and every unroll must lie in the task of the
/// teacher it names.
public struct TabularNetworkLearnerModel: LearnerModel {
    /// The checks of Hellos and unrolls a tabular run makes (state ids, sizes, plausible rewards
    /// and values), and its environment.
    let tabular: TabularLearnerModel
    /// The tasks of a multi-task run; nil for a run of one environment.
    public let tasks: TaskTeachers?
    /// The student's architecture (for logs; actors play the published table).
    public let architecture: String

    /// The model of a network student of `architecture` on `learner`'s tabular environment (the
    /// union of the tasks' gridworlds when `tasks` is given).
    public init(learner: LearnerProblem, tasks: TaskTeachers? = nil, architecture: String) throws {
        var problem = learner
        if let tasks { problem.environment = tasks.problem.tasks.environment }
        tabular = try TabularLearnerModel(problem)
        self.tasks = tasks
        self.architecture = architecture
    }

    /// The environment (a multi-task run's union).
    public var environment: Environment { tabular.environment }
    public var environmentIdentity: String { tabular.environmentIdentity }
    public var discount: Double { tabular.discount }
    public var actionCount: Int { tabular.actionCount }
    public var observationSize: Int { 0 }
    public var maxEpisodeSteps: Int { tabular.maxEpisodeSteps }
    public var teachersPerTask: Bool { tasks != nil }

    public func mismatch(of hello: Hello, from sender: Sender) -> String? { tabular.mismatch(of: hello, from: sender) }

    /// Nothing beyond a tabular run's: actors play the published table of the network's policy.
    public func welcomeExtras() -> (spec: WireEnvironmentSpec?, architecture: String) { (nil, "") }

    public func incompatibility(of unroll: Unroll) -> String? {
        tabular.incompatibility(of: unroll) ?? tasks?.misassignment(of: unroll)
    }

    public func forEachEpisode(of unroll: Unroll, _ body: (UnrollEpisode) -> Void) {
        tabular.forEachEpisode(of: unroll, body)
    }

    /// `Σ_t KL(π_teacher(s_t) ‖ π_θ(s_t))` with one forward of the episode's observations.
    public func sampledKL(_ episode: UnrollEpisode, student: NetworkStudent) -> Double {
        let size = student.network.inputSize
        var rows = [Float]()
        rows.reserveCapacity(episode.length * size)
        for t in 0..<episode.length {
            let s = episode.state(t)
            rows += student.observations[(s * size)..<((s + 1) * size)]
        }
        let logits = student.network.forward(rows, batch: episode.length).logits
        return teacherKL(episode, logits: logits, actionCount: actionCount)
    }

    /// The network's logits at every state, `[states, actions]`: a tabular actor's parameters,
    /// whose softmax is the network's policy exactly.
    public func parameters(of student: NetworkStudent, version: UInt64, envSteps: UInt64) -> Parameters {
        Parameters(
            version: version, values: Tensor(shape: [student.stateCount, actionCount], values: student.logitTable()),
            envSteps: envSteps)
    }

    public func hasDiverged(_ student: NetworkStudent) -> Bool {
        student.network.parameters.contains { !$0.isFinite }
    }

    public func teacherExpectation(needsQValues: Bool) -> TeacherExpectation {
        tabular.teacherExpectation(needsQValues: needsQValues)
    }

    public func snapshot(of state: LearnerState<NetworkStudent>) -> LearnerSnapshot { state.snapshot }

    public func restore(_ snapshot: LearnerSnapshot, into state: inout LearnerState<NetworkStudent>) throws {
        try state.restore(from: snapshot)
    }

    /// The exact return of the network's policy (warm-started from the previous row's values)
    /// and the reference teacher's; a multi-task run's union return is the mean of the tasks'
    /// returns, and each task's go into `cache.tasks`.
    public func metricsReturns(of student: NetworkStudent, cache: inout ReturnsCache) -> Returns {
        let mdp = environment.mdp
        let values = cache.stateValues(mdp, policy: student.stateTable())
        guard let tasks else { return (startReturn(mdp, values), cache.teacherReturn(mdp, tabular.referenceTeacher)) }
        cache.tasks = tasks.returns(values: values)
        return (startReturn(mdp, values), tasks.meanTeacherReturn)
    }

    public func finalReturns(of student: NetworkStudent, cache: inout ReturnsCache) -> Returns {
        metricsReturns(of: student, cache: &cache)
    }

    /// Never called: the core refuses a replay when it is created.
    public static func replay(_ episode: UnrollEpisode, into core: inout LearnerCore<TabularNetworkLearnerModel>) {
        preconditionFailure("a network student on a tabular environment has no replay memory on the cluster")
    }
}

extension LearnerCore where Model == TabularNetworkLearnerModel {
    /// A core at version 0 with `student` (fresh weights from the run's seed) and the tabular
    /// critic over the environment's states.
    ///
    /// - Throws: `RuntimeError` when the method does not build a learning state for this student,
    ///   or the problem asks for a replay memory.
    public init(
        model: Model, student: NetworkStudent, problem: LearnerProblem, configuration: LearnerConfiguration,
        seed: UInt64
    ) throws {
        guard problem.replay == nil else {
            throw RuntimeError(
                "a network student on a gridworld learns from each episode once on the cluster: drop the --replay-* "
                    + "options", code: .invalidInput)
        }
        let mdp = model.environment.mdp
        let state: LearnerState<NetworkStudent>
        do {
            state = try LearnerState(
                method: problem.method, teacherKind: problem.teacherKind, discount: mdp.discount,
                stateCount: mdp.stateCount, actionCount: mdp.actionCount, student: student,
                kickstart: model.tasks == nil ? problem.kickstart : nil, bound: .standard, seed: seed)
        } catch let error as DistillError {
            throw RuntimeError(error.message)
        }
        self.init(model: model, state: state, problem: problem, configuration: configuration)
    }
}
