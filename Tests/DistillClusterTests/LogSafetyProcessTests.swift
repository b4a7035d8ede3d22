import DistillRuntime
import DistillTestSupport
import DistillWire
import Foundation
import Testing

/// Finding 7 of issue 10 against a real learner process: a peer cannot forge, garble or flood
/// its log lines (the escaping and the throttle in-process: `LogSafetyTests`).
@Suite("Log lines peers can reach, real learner")
struct LogSafetyProcessTests {
    /// A real learner, and a client whose id carries a newline and an escape sequence and whose
    /// Hellos name another environment, 200 times. Before: each Hello logged a forged line.
    @Test func aForgedIdCannotForgeOrFloodTheLearnersLog() async throws {
        let stderr = try await onOwnThread { () -> String in
            let learner = try Roles.learner()
            defer { learner.process.stop() }
            let forged = "x\n2026-01-01T00:00:00+0000 critical distill.learner : FORGED\u{1B}[2J"
            let sender = Sender.starting(role: .actor, id: forged)
            let context = try ZMQContext()
            let socket = try ZMQSocket(context: context, type: .dealer, lingerMilliseconds: 0)
            defer { socket.close() }
            try socket.connect(learner.control)
            let hello = Hello(environment: "another", stateCount: 3, actionCount: 2, teacherEndpoint: "")
            for _ in 0..<200 { try socket.send(WireCodec().encode(Envelope(sender: sender, message: .hello(hello)))) }
            // Wait until the learner answered them all (one error reply each).
            var answers = 0
            var poller = ZMQPoller()
            poller.add(socket)
            let deadline = Date().addingTimeInterval(20)
            while answers < 200 && Date() < deadline {
                if try !poller.poll(timeoutMilliseconds: 100)[0].isEmpty {
                    while try socket.receive(dontWait: true) != nil { answers += 1 }
                }
            }
            learner.process.stop()
            return learner.process.standardError
        }
        let lines = stderr.split(separator: "\n")
        #expect(!lines.contains { $0.contains("FORGED") && !$0.contains("refused a client") }, "\(stderr.suffix(2000))")
        #expect(!stderr.contains("\u{1B}"))
        let refusals = lines.filter { $0.contains("refused a client") }.count
        #expect(refusals >= 1 && refusals <= 10 + 5, "\(refusals) refusal lines for 200 Hellos")
    }
}
