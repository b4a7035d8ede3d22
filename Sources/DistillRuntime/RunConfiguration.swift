import DistillCore
import DistillWire
import Foundation

/// The problem every role of a run must agree on: environment, teacher and method. Written once
/// (by `distill cluster`, or by hand) and given to each role with `--config FILE`, so a cluster
/// spread over machines builds exactly the same environment and teacher everywhere.
public struct RunConfiguration: Codable, Sendable, Equatable {
    /// The environment, with its seed (and the MDP itself when it came from a file).
    public var environment: EnvironmentSpec
    /// The teacher the teacher server serves (and the learner's reference for metrics).
    public var teacher: TeacherSpec
    /// The update rule, control policy, schedules and optimiser.
    public var method: MethodSpec
    /// The student: tabular (the default), or a network that actors and the learner build
    /// from the same architecture and seed (on environments without a tabular MDP).
    public var student: StudentSpec
    /// A multi-task run's gridworlds (one teacher server per task, actors assigned to tasks), or
    /// nil for a run of one environment.
    public var tasks: TasksSpec?

    /// Creates a configuration.
    public init(
        environment: EnvironmentSpec, teacher: TeacherSpec, method: MethodSpec, student: StudentSpec = StudentSpec()
    ) {
        self.environment = environment
        self.teacher = teacher
        self.method = method
        self.student = student
    }

    private enum CodingKeys: String, CodingKey {
        case environment, teacher, method, student, tasks
    }

    /// Reads a configuration; one written before networks joined the cluster has no `student`
    /// and is the tabular run it always was.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        environment = try container.decode(EnvironmentSpec.self, forKey: .environment)
        teacher = try container.decode(TeacherSpec.self, forKey: .teacher)
        method = try container.decode(MethodSpec.self, forKey: .method)
        student = try container.decodeIfPresent(StudentSpec.self, forKey: .student) ?? StudentSpec()
        tasks = try container.decodeIfPresent(TasksSpec.self, forKey: .tasks)
    }

    /// Writes a configuration; a tabular run's JSON stays what it was before networks (no
    /// `student`), so its checkpoints and `--resume` keep matching.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(environment, forKey: .environment)
        try container.encode(teacher, forKey: .teacher)
        try container.encode(method, forKey: .method)
        if !student.isTabular { try container.encode(student, forKey: .student) }
        try container.encodeIfPresent(tasks, forKey: .tasks)
    }

    /// Canonical JSON (sorted keys): byte-for-byte equal for equal configurations.
    public func json(pretty: Bool = false) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted] : [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// Reads a configuration file written by `json()`.
    public static func read(from path: String) throws -> RunConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RuntimeError("--config: cannot read '\(path)' (missing or unreadable)", code: .fileAccess)
        }
        do {
            return try JSONDecoder().decode(RunConfiguration.self, from: data)
        } catch {
            throw RuntimeError(
                "--config: '\(path)' is not a run configuration (\(error)); write one with "
                    + "`distill cluster --write-config FILE` or copy OUT/config.json of a run", code: .invalidInput)
        }
    }

    /// The string actors present in Hello and the learner checks: the environment's name and
    /// size, and a hash of its full specification (so two seeds never pass for one another).
    public static func environmentIdentity(_ spec: EnvironmentSpec, _ environment: Environment) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let hex = String(Checksum.fnv1a64(bytes: (try? encoder.encode(spec)) ?? Data()), radix: 16)
        return "\(environment.name) [\(environment.mdp.stateCount) states, \(environment.mdp.actionCount) actions, "
            + "spec \(String(repeating: "0", count: 16 - hex.count) + hex)]"
    }
}
