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

    /// Creates a configuration.
    public init(environment: EnvironmentSpec, teacher: TeacherSpec, method: MethodSpec) {
        self.environment = environment
        self.teacher = teacher
        self.method = method
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
