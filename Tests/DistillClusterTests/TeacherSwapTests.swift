import DistillRuntime
import DistillTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Swapping teacher servers")
struct TeacherSwapTests {
    @Test func swapTeacherMovesEveryActorWithoutRestartsAndMetricsShowTheSwitch() async throws {
        let out = Roles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: out) }
        let seen = try await onOwnThread {
            () -> (before: String, after: String, pids: [Int32], reply: [String], summary: Data?) in
            // Two servers of two different teachers of the same environment.
            let (first, firstEndpoint) = try Roles.teacher()
            let second = try ChildProcess(
                ["teacher"] + Array(Roles.problem.prefix(6)) + ["--teacher", "uniform", "--bind", "tcp://127.0.0.1:*"])
            let secondEndpoint = try second.endpoint("teacher")
            let learner = try Roles.learner(extra: ["--out", out.path])
            let actors = try (0..<2).map {
                try Roles.actor(learner: learner.control, teacher: firstEndpoint, id: "actor-\($0)")
            }
            defer { for process in actors + [first, second, learner.process] { process.stop() } }
            Roles.waitUntil(timeout: 30) { Roles.number(Roles.status(learner.control), \.version) > 20 }
            let before = Roles.status(learner.control)?.teacherID ?? ""
            let pids = actors.map(\.pid)

            let control = try ChildProcess([
                "control", "swap-teacher", "--learner", learner.control, "--run-dir", out.path, "--to", secondEndpoint,
            ])
            _ = control.waitForExit()
            Roles.waitUntil(timeout: 20) {
                (Roles.status(learner.control)?.teacherID ?? "").hasPrefix("uniform")
            }
            let after = Roles.status(learner.control)?.teacherID ?? ""
            learner.process.send(signal: SIGTERM)
            _ = learner.process.waitForExit()
            let stillRunning = actors.filter(\.isRunning).map(\.pid)
            return (
                before, after, stillRunning == pids ? pids : [], control.output,
                try? Data(contentsOf: out.appendingPathComponent("summary.json"))
            )
        }
        #expect(seen.before.hasPrefix("optimal"), "\(seen.before)")
        #expect(seen.after.hasPrefix("uniform"), "\(seen.after)")
        #expect(seen.pids.count == 2, "the actors were not restarted")
        #expect(seen.reply.contains { $0.contains("accepted") })
        let data = try #require(seen.summary)
        let teachers = try RecordCoding.decode(RunSummary.self, from: data, what: "summary.json").teachers.map(
            \.teacherID)
        #expect(
            teachers.count == 2 && teachers[0].hasPrefix("optimal") && teachers[1].hasPrefix("uniform"), "\(teachers)")
    }
}
