import DistillRuntime
import DistillTestSupport
import DistillWire
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Real `distill` role processes on 127.0.0.1 for the multi-process tests, and ways to watch
/// them through the learner's status. Every call blocks: use them inside `onOwnThread`.
enum Roles {
    /// The problem every test cluster runs: a small seeded gridworld and its optimal teacher.
    static let problem = ["--env", "gridworld", "--seed", "1", "--grid-size", "10", "--teacher", "optimal"]

    static func teacher(bind: String = "tcp://127.0.0.1:*", extra: [String] = []) throws -> (ChildProcess, String) {
        let process = try ChildProcess(["teacher"] + problem + ["--bind", bind] + extra)
        return (process, try process.endpoint("teacher"))
    }

    static func learner(
        control: String = "tcp://127.0.0.1:*", unrolls: String = "tcp://127.0.0.1:*",
        params: String = "tcp://127.0.0.1:*", extra: [String] = []
    ) throws -> (process: ChildProcess, control: String, unrolls: String, params: String) {
        let process = try ChildProcess(
            ["learner"] + problem + [
                "--bind-control", control, "--bind-unrolls", unrolls, "--bind-params", params, "--metrics-interval",
                "0.2",
            ] + extra)
        return (
            process, try process.endpoint("control"), try process.endpoint("unrolls"),
            try process.endpoint("parameters")
        )
    }

    static func actor(learner: String, teacher: String, id: String, extra: [String] = []) throws -> ChildProcess {
        try ChildProcess(
            ["actor"] + Array(problem.prefix(6)) + ["--learner", learner, "--teacher-server", teacher, "--id", id]
                + extra)
    }

    /// The learner's status, or nil when it does not answer within a second.
    static func status(_ control: String, timeoutMilliseconds: Int = 1000) -> LearnerStatus? {
        guard let client = try? ControlClient(learner: control, sender: .starting(role: .tool, id: "test")) else {
            return nil
        }
        return try? client.status(timeoutMilliseconds: timeoutMilliseconds)
    }

    /// A count of the status as a number, or -1 without a status.
    static func number<Count: BinaryInteger>(_ status: LearnerStatus?, _ field: KeyPath<LearnerStatus, Count>) -> Double
    {
        status.map { Double($0[keyPath: field]) } ?? -1
    }

    /// A count of the status that may be null, or -1 without a status or a value.
    static func number<Count: BinaryInteger>(
        _ status: LearnerStatus?, _ field: KeyPath<LearnerStatus, Count?>
    ) -> Double {
        status?[keyPath: field].map { Double($0) } ?? -1
    }

    /// A number of the status that may be null, or -1 without a status or a value.
    static func number(_ status: LearnerStatus?, _ field: KeyPath<LearnerStatus, Double?>) -> Double {
        status?[keyPath: field] ?? -1
    }

    /// The status entry of actor `id`.
    static func actorStatus(_ status: LearnerStatus?, _ id: String) -> LearnerStatus.Actor? {
        status?.actor(id)
    }

    /// The summary.json in `directory`, or nil when there is none or it does not decode.
    static func summary(in directory: URL) -> RunSummary? {
        try? RunSummary.read(directory.appendingPathComponent("summary.json"))
    }

    /// Polls `condition` every 50 ms; returns the seconds it took, or nil after `timeout`.
    @discardableResult
    static func waitUntil(timeout: Double, _ condition: () -> Bool) -> Double? {
        let start = Date()
        while Date().timeIntervalSince(start) < timeout {
            if condition() { return Date().timeIntervalSince(start) }
            usleep(50_000)
        }
        return nil
    }

    /// A fresh temporary directory.
    static func temporaryDirectory() -> URL { DistillTestSupport.temporaryDirectory() }
}
