// Multi-task distillation on the cluster (issue 12, item 7; Rusu et al. 2016 §4.3): one learner
// trains one network student from K teachers of K gridworlds. Each task has its own teacher server;
// each actor is assigned one task and plays only its episodes, asking its task's teacher.
//
//   teacher server k   `distill teacher --task k`: task k's teacher on task k's states, its identity
//                      qualified by the task ("task k: q-learning(…)")
//   actor              `distill actor --task k`: the union of the K gridworlds (one state space, the
//                      union's ids on the wire), episodes starting in task k only; queries to its
//                      teacher translated to the task's own state ids
//   learner            a `TabularNetworkLearnerModel` with `TaskTeachers`: the network student over
//                      the union, told its task by a one-hot input or by choosing its head; every
//                      unroll's states must lie in the task of the teacher it names; exact returns
//                      per task in tasks.csv
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
        return try student.makeStudent(
            architecture, inputShape: shape, actionCount: tasks.environment.mdp.actionCount, method: method,
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
