import DistillRuntime
import DistillTestSupport
import Foundation
import Testing

/// Roles run by hand tell what they are doing (issue 14): an actor whose learner does not answer
/// backs off (1, 2, 4, 8, 16 s between Hellos) and says what to check, instead of saying hello once
/// a second forever without a hint; a learner prints a progress line every few seconds.
@Suite("roles run by hand report", .serialized)
struct ActorBackoffTests {
    @Test func aLearnerRunByHandPrintsProgressLines() async throws {
        let stderr = try await onOwnThread { () -> String in
            let (teacher, teacherEndpoint) = try Roles.teacher()
            let learner = try Roles.learner(extra: ["--progress-interval", "0.5"])
            let actor = try Roles.actor(learner: learner.control, teacher: teacherEndpoint, id: "a1")
            defer { for process in [actor, teacher, learner.process] { process.stop() } }
            Roles.waitUntil(timeout: 60) { Roles.number(Roles.status(learner.control), \.version) > 0 }
            Thread.sleep(forTimeInterval: 1.5)
            learner.process.stop()
            return learner.process.standardError
        }
        let lines = stderr.split(separator: "\n").filter { $0.contains("progress: version") }
        #expect(lines.count >= 2, "\(stderr.suffix(2000))")
        #expect(
            lines.last.map { $0.contains("env steps") && $0.contains("exact return") && $0.contains("updates") } == true
        )
    }

    @Test func anActorAgainstNothingBacksOffAndSaysWhatToCheck() async throws {
        let stderr = try await onOwnThread { () -> String in
            // Port 9 (discard): nothing listens there on this machine.
            let actor = try ChildProcess(
                ["actor"] + Roles.problem.prefix(6) + [
                    "--learner", "tcp://127.0.0.1:9", "--teacher-server", "tcp://127.0.0.1:9", "--id", "lonely",
                ])
            Thread.sleep(forTimeInterval: 8.5)
            actor.stop()
            return actor.standardError
        }
        let lines = stderr.split(separator: "\n").filter { $0.contains("no answer from the learner") }
        // Hellos at 0, 1, 3 and 7 s: three unanswered ones logged in 8.5 s (a fixed second: eight).
        #expect((2...4).contains(lines.count), "\(lines.count) lines:\n\(lines.joined(separator: "\n"))")
        #expect(lines.first?.contains("next hello in 2 s") == true)
        #expect(lines.dropFirst().first?.contains("next hello in 4 s") == true)
        #expect(stderr.contains("Check that the learner runs") && stderr.contains("distill probe"))
    }
}
