// Multi-task distillation on the cluster (issue 12, item 7; Rusu et al. 2016 §4.3): one learner
// trains one network student from K teachers of K gridworlds. Each task has its own teacher server;
// each actor is assigned one task and plays only its episodes, asking its task's teacher.
//
//   teacher server k   `distill teacher --task k`: task k's teacher on task k's states, its identity
//                      qualified by the task ("task k: q-learning(…)")
//   actor              `distill actor --task k`: the union of the K gridworlds (one state space, the
//                      union's ids on the wire), episodes starting in task k only; queries to its
//                      teacher translated to the task's own state ids
//   learner            a `MultitaskLearnerModel`: the network student over the union, told its task
//                      by a one-hot input or by choosing its head; every unroll's states must lie in
//                      the task of the teacher it names; exact returns per task in tasks.csv
//
// A gridworld's observation is a function of its state, so the wire carries state ids and the learner
// publishes the network's logits at every state of the union: the actors play exactly the network's
// policy without running it (its forward is the learner's, once per publication).

import DistillCore
import DistillNN
import DistillWire
import Foundation

/// What makes a run multi-task (`RunConfiguration.tasks`): the gridworlds, all with the run's
/// environment knobs, and how the student is told its task.
public struct TasksSpec: Codable, Sendable, Hashable {
    /// The gridworlds' seeds, task 0 first.
    public var seeds: [UInt64]
    /// How the network student is told its task: `input` (a one-hot task id after the
    /// observation) or `head-selector` (one head per task, `…/heads:K`).
    public var label: MultitaskGridworlds.TaskLabel

    /// The tasks `seeds`, the student told its task by `label`.
    public init(seeds: [UInt64], label: MultitaskGridworlds.TaskLabel) {
        self.seeds = seeds
        self.label = label
    }

    /// The label an architecture implies: one head per task reads a head selector, one head reads
    /// the task as input.
    public static func label(for architecture: String, tasks: Int) throws -> MultitaskGridworlds.TaskLabel {
        let parsed: NetworkArchitecture
        do { parsed = try NetworkArchitecture(parsing: architecture) } catch let error as NetworkError {
            throw DistillError(.invalidConfiguration, "--student \(architecture): \(error.message)")
        }
        switch parsed.heads {
        case 1: return .input
        case tasks: return .headSelector
        default:
            throw DistillError(
                .invalidConfiguration,
                "--student \(architecture) has \(parsed.heads) heads for \(tasks) tasks: give one head (the task "
                    + "as input) or heads:\(tasks) (one head per task)")
        }
    }
}

/// A multi-task run's problem, as every role builds it from the run configuration: the K
/// gridworlds and their union, the identities actors and teachers present, each task's teacher
/// and the student.
public struct MultitaskProblem: Sendable {
    /// The run's tasks.
    public let spec: TasksSpec
    /// The gridworlds and their union.
    public let tasks: MultitaskGridworlds
    /// Task k's environment spec (the run's, with task k's seed).
    public let taskSpecs: [EnvironmentSpec]
    /// The union's identity: what actors present in Hello (names, sizes and a hash of every
    /// task's spec, so two runs with other seeds never pass for one another).
    public let environmentIdentity: String

    /// The problem of `configuration`; throws `DistillError` (with what to change) unless it is a
    /// multi-task run of at least two gridworlds with one action count and discount.
    public init(_ configuration: RunConfiguration) throws {
        guard let spec = configuration.tasks else {
            throw DistillError(.invalidConfiguration, "not a multi-task run: give the gridworlds' seeds with --tasks")
        }
        guard configuration.environment.kind == .gridworld else {
            throw DistillError(
                .invalidConfiguration,
                "--tasks: the tasks are gridworlds (--env gridworld with its knobs), not \(configuration.environment.kind.rawValue)"
            )
        }
        guard spec.seeds.count >= 2 else {
            throw DistillError(
                .invalidConfiguration,
                "--tasks needs at least two gridworld seeds (e.g. --tasks 1,2), got \(spec.seeds)")
        }
        guard Set(spec.seeds).count == spec.seeds.count else {
            throw DistillError(.invalidConfiguration, "--tasks \(spec.seeds): each gridworld seed once")
        }
        guard spec.label != .none else {
            throw DistillError(
                .invalidConfiguration, "a multi-task student must be told its task (input or head-selector)")
        }
        let specs = spec.seeds.map { seed -> EnvironmentSpec in
            var task = configuration.environment
            task.seed = seed
            return task
        }
        self.spec = spec
        taskSpecs = specs
        tasks = try MultitaskGridworlds(try specs.map { try $0.build() })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let hashed = (try? encoder.encode(specs)) ?? Data()
        let hex = String(Checksum.fnv1a64(bytes: hashed), radix: 16)
        let mdp = tasks.environment.mdp
        environmentIdentity =
            "\(tasks.environment.name) [\(mdp.stateCount) states, \(mdp.actionCount) actions, "
            + "spec \(String(repeating: "0", count: 16 - hex.count) + hex)]"
    }

    /// The number of tasks.
    public var count: Int { tasks.tasks.count }

    /// Task `k`'s environment identity (what its teacher server states in its replies).
    public func taskEnvironmentIdentity(_ k: Int) -> String {
        RunConfiguration.environmentIdentity(taskSpecs[k], tasks.tasks[k])
    }

    /// The identity task `k`'s teacher server gives `teacher`: so the learner can tell which task's
    /// targets an unroll carries, whatever kind of teacher each task has.
    public static func teacherIdentity(task k: Int, _ teacher: String) -> String { "task \(k): \(teacher)" }

    /// Task `k`'s teacher: `teacher` built on task k's gridworld with task k's seed (as the
    /// `multitask` experiment builds them), named for its task.
    public func teacher(task k: Int, _ teacher: TeacherSpec) throws -> Teacher {
        guard teacher.kind != .file else {
            throw DistillError(
                .invalidConfiguration,
                "a multi-task run builds one teacher per gridworld from --teacher (q-learning, optimal, …); a "
                    + "teacher file fits one gridworld")
        }
        guard teacher.kickstartTeachers.isEmpty else {
            throw DistillError(
                .invalidConfiguration,
                "a multi-task run has one teacher per task: leave out the further kickstarting teachers")
        }
        var spec = teacher
        spec.seed = self.spec.seeds[k]
        var built = try spec.build(for: tasks.tasks[k])
        built.identity = Self.teacherIdentity(task: k, built.identity)
        return built
    }

    /// The network student of `student` (architecture, observation, seed) over the union, reading
    /// the task as this run's label says, optimised as `method` says, with the tabular critic.
    public func student(_ student: StudentSpec, method: MethodSpec) throws -> NetworkStudent {
        let label = try TasksSpec.label(for: student.architecture, tasks: count)
        guard label == spec.label else {
            throw DistillError(
                .invalidConfiguration,
                "--student \(student.architecture) reads the task as \(label.rawValue), the run says \(spec.label.rawValue)"
            )
        }
        let architecture = try NetworkArchitecture(parsing: student.architecture)
        let observation = try ObservationKind(parsing: student.observation)
        let rendered = try TabularObservedEnvironment(tasks.tasks[0], observation: observation)
        if !architecture.convolutions.isEmpty && rendered.description.observation.shape.count != 3 {
            throw DistillError(
                .invalidConfiguration,
                "--student \(student.architecture) has convolutions, which need an image observation (image or "
                    + "window:K), not \(student.observation)")
        }
        let (rows, shape) = try tasks.observationTable(observation, label: spec.label, architecture: architecture)
        let network: PolicyValueNetwork
        do {
            network = try PolicyValueNetwork(
                architecture: architecture, inputShape: shape, actionCount: tasks.environment.mdp.actionCount,
                seed: student.seed)
        } catch let error as NetworkError {
            throw DistillError(.invalidConfiguration, "--student \(student.architecture): \(error.message)")
        }
        return try NetworkStudent(
            network: network,
            optimizer: NetworkOptimizer(
                method.optimiser, learningRate: method.learningRate, parameterCount: network.parameterCount),
            observations: rows, critic: .table)
    }
}

/// One task's returns in a metrics row and in summary.json: exact, by policy evaluation of the
/// task's gridworld under the student's policy there.
public struct TaskReturn: Codable, Sendable, Hashable {
    /// The task's index.
    public var task: Int
    /// Its gridworld.
    public var environment: String
    /// Its teacher's identity.
    public var teacher: String
    /// The student's exact expected return on it; null when not finite.
    @NullWhenAbsent public var studentReturn: Double? = nil
    /// The teacher's.
    public var teacherReturn: Double
    /// The uniform random policy's.
    public var uniformReturn: Double
    /// `(student − uniform) / (teacher − uniform)`: 1 for the teacher, 0 for chance (null when
    /// the teacher is no better than chance).
    @NullWhenAbsent public var teacherShare: Double? = nil

    enum CodingKeys: String, CodingKey, CaseIterable {
        case task, environment, teacher
        case studentReturn = "student_return"
        case teacherReturn = "teacher_return"
        case uniformReturn = "uniform_return"
        case teacherShare = "teacher_share"
    }

    /// A task's returns.
    public init(
        task: Int, environment: String, teacher: String, studentReturn: Double?, teacherReturn: Double,
        uniformReturn: Double
    ) {
        self.task = task
        self.environment = environment
        self.teacher = teacher
        self.studentReturn = studentReturn?.finiteOrNil
        self.teacherReturn = teacherReturn
        self.uniformReturn = uniformReturn
        if let student = studentReturn?.finiteOrNil, teacherReturn > uniformReturn + 1e-9 {
            teacherShare = (student - uniformReturn) / (teacherReturn - uniformReturn)
        }
    }
}

/// A network student over the union of K gridworlds, each task with its own teacher: actors send
/// the union's state ids (as a tabular run's), each unroll names its task's teacher, and the
/// parameters on the wire are the network's logits at every state.
public struct MultitaskLearnerModel: LearnerModel {
    /// The union's checks of Hellos and unrolls (state ids, sizes, plausible rewards and values).
    let union: TabularLearnerModel
    /// The tasks.
    public let problem: MultitaskProblem
    /// Task k's teacher's identity, as its unrolls must name it.
    public let teacherIdentities: [String]
    /// The student's architecture (for logs and checkpoints; actors play the published table).
    public let architecture: String
    let teacherReturns: [Double]
    let uniformReturns: [Double]

    /// The model of `problem` with the learner's `learner` problem (its environment the union)
    /// and each task's teacher; throws when a teacher does not fit its task.
    public init(problem: MultitaskProblem, learner: LearnerProblem, teachers: [Teacher], architecture: String) throws {
        guard teachers.count == problem.count else {
            throw RuntimeError("\(teachers.count) teachers for \(problem.count) tasks", code: .invalidInput)
        }
        var check = learner
        check.environment = problem.tasks.environment
        union = try TabularLearnerModel(check)
        self.problem = problem
        self.architecture = architecture
        teacherIdentities = teachers.map(\.identity)
        guard Set(teacherIdentities).count == teachers.count else {
            throw RuntimeError("two tasks' teachers have one identity: \(teacherIdentities)", code: .invalidInput)
        }
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

    public var environmentIdentity: String { union.environmentIdentity }
    public var discount: Double { union.discount }
    public var actionCount: Int { union.actionCount }
    public var observationSize: Int { 0 }
    public var maxEpisodeSteps: Int { union.maxEpisodeSteps }
    public var teachersPerTask: Bool { true }

    public func mismatch(of hello: Hello, from sender: Sender) -> String? { union.mismatch(of: hello, from: sender) }

    /// Nothing beyond a tabular run's: actors play the published table of the network's policy.
    public func welcomeExtras() -> (spec: WireEnvironmentSpec?, architecture: String) { (nil, "") }

    public func incompatibility(of unroll: Unroll) -> String? {
        if let problem = union.incompatibility(of: unroll) { return problem }
        guard let k = teacherIdentities.firstIndex(of: unroll.teacherID) else {
            return "teacher '\(unroll.teacherID)' is none of this run's \(teacherIdentities.count) task teachers "
                + "(\(teacherIdentities.joined(separator: "; "))): start each actor with --task K and task K's "
                + "teacher server"
        }
        let range = problem.tasks.stateOffsets[k]..<problem.tasks.stateOffsets[k + 1]
        if let s = unroll.observations.first(where: { !range.contains(Int($0)) }) {
            return "the unroll names task \(k)'s teacher but visits state \(s) of task "
                + "\(problem.tasks.task(ofState: Int(s))): an actor's --task and its --teacher-server must be one task's"
        }
        return nil
    }

    public func forEachEpisode(of unroll: Unroll, _ body: (UnrollEpisode) -> Void) {
        union.forEachEpisode(of: unroll, body)
    }

    public func sampledKL(_ episode: UnrollEpisode, student: NetworkStudent) -> Double {
        let size = student.network.inputSize
        var rows = [Float]()
        rows.reserveCapacity(episode.length * size)
        for t in 0..<episode.length {
            let s = episode.state(t)
            rows += student.observations[(s * size)..<((s + 1) * size)]
        }
        let logits = student.network.forward(rows, batch: episode.length).logits
        let na = actionCount
        var kl = 0.0
        for t in 0..<episode.length {
            var largest = -Double.infinity
            for a in 0..<na { largest = max(largest, Double(logits[t * na + a])) }
            var sum = 0.0
            for a in 0..<na { sum += Foundation.exp(Double(logits[t * na + a]) - largest) }
            let logNormaliser = largest + Foundation.log(sum)
            for a in 0..<na {
                let p = episode.teacherProbability(t, a)
                if p > 0 { kl += p * (Foundation.log(p) - (Double(logits[t * na + a]) - logNormaliser)) }
            }
        }
        return kl
    }

    /// The network's logits at every state of the union, `[states, actions]`: a tabular actor's
    /// parameters, whose softmax is the network's policy exactly.
    public func parameters(of student: NetworkStudent, version: UInt64, envSteps: UInt64) -> Parameters {
        Parameters(
            version: version, values: Tensor(shape: [student.stateCount, actionCount], values: student.logitTable()),
            envSteps: envSteps)
    }

    public func hasDiverged(_ student: NetworkStudent) -> Bool {
        student.network.parameters.contains { !$0.isFinite }
    }

    public func teacherExpectation(needsQValues: Bool) -> TeacherExpectation {
        union.teacherExpectation(needsQValues: needsQValues)
    }

    public func snapshot(of state: LearnerState<NetworkStudent>) -> LearnerSnapshot { state.snapshot }

    public func restore(_ snapshot: LearnerSnapshot, into state: inout LearnerState<NetworkStudent>) throws {
        try state.restore(from: snapshot)
    }

    /// The union's exact return (the mean of the tasks' returns: an episode plays each task with
    /// probability 1/K) and the teachers' mean; each task's returns go into `cache.tasks`.
    public func metricsReturns(of student: NetworkStudent, cache: inout ReturnsCache) -> Returns {
        let mdp = problem.tasks.environment.mdp
        let policy = student.stateTable()
        // Warm-started from the previous row's values. The union's values at task k's states are
        // task k's own (no transition leaves a task), so one evaluation gives every task's return.
        let values =
            PolicyEvaluation.iterativeValues(mdp, policy: policy, initial: cache.values, tolerance: 1e-7)
            ?? (try? PolicyEvaluation.values(mdp, policy: policy))
        cache.values = values
        let teacherMean = teacherReturns.reduce(0, +) / Double(teacherReturns.count)
        cache.tasks = problem.tasks.tasks.indices.map { k in
            let task = problem.tasks.tasks[k]
            let offset = problem.tasks.stateOffsets[k]
            let studentReturn = values.map { values in
                (0..<task.mdp.stateCount).reduce(0.0) { $0 + task.mdp.startDistribution[$1] * values[offset + $1] }
            }
            return TaskReturn(
                task: k, environment: problem.taskEnvironmentIdentity(k), teacher: teacherIdentities[k],
                studentReturn: studentReturn, teacherReturn: teacherReturns[k], uniformReturn: uniformReturns[k])
        }
        guard let values else { return (.nan, teacherMean) }
        return (zip(mdp.startDistribution, values).reduce(0) { $0 + $1.0 * $1.1 }, teacherMean)
    }

    public func finalReturns(of student: NetworkStudent, cache: inout ReturnsCache) -> Returns {
        metricsReturns(of: student, cache: &cache)
    }

    /// Never called: a multi-task core refuses a replay when it is created.
    public static func replay(_ episode: UnrollEpisode, into core: inout LearnerCore<MultitaskLearnerModel>) {
        preconditionFailure("a multi-task learner has no replay memory")
    }
}

extension LearnerCore where Model == MultitaskLearnerModel {
    /// A core of a multi-task run at version 0 with `student` (fresh weights from the run's seed).
    ///
    /// - Throws: `RuntimeError` when the method does not build a learning state for this student,
    ///   or the problem asks for a replay memory.
    public init(
        model: Model, student: NetworkStudent, problem: LearnerProblem, configuration: LearnerConfiguration,
        seed: UInt64
    ) throws {
        guard problem.replay == nil else {
            throw RuntimeError(
                "a multi-task run learns from each episode once: drop the --replay-* options", code: .invalidInput)
        }
        let mdp = model.problem.tasks.environment.mdp
        let state: LearnerState<NetworkStudent>
        do {
            state = try LearnerState(
                method: problem.method, teacherKind: problem.teacherKind, discount: mdp.discount,
                stateCount: mdp.stateCount, actionCount: mdp.actionCount, student: student, bound: .standard,
                seed: seed)
        } catch let error as DistillError {
            throw RuntimeError(error.message)
        }
        self.init(model: model, state: state, problem: problem, configuration: configuration)
    }
}
