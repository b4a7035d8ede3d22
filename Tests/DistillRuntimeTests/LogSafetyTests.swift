import DistillRuntime
import DistillTestSupport
import DistillWire
import Foundation
import Logging
import Testing

/// Finding 7 of issue 10: a peer cannot forge, garble or flood log lines.
@Suite("Log lines peers can reach")
struct LogSafetyTests {
    @Test func controlCharactersAreEscapedAndPlainTextIsLeftAlone() {
        #expect(logSafe("actor-7") == "actor-7")
        #expect(logSafe("café ✓") == "café ✓")
        #expect(logSafe("a\nb\rc\td") == #"a\nb\rc\td"#)
        #expect(logSafe("\u{1B}[2J\u{0}\u{7F}\u{85}") == #"\u{1B}[2J\u{0}\u{7F}\u{85}"#)
        #expect(logSafe("x\u{2028}y\u{202E}z") == #"x\u{2028}y\u{202E}z"#)
    }

    /// Captures what an `EscapingLogHandler` passes on.
    final class Capture: @unchecked Sendable {
        let lock = NSLock()
        var events: [(String, Logger.Metadata?)] = []
    }

    struct CapturingHandler: LogHandler {
        let capture: Capture
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            capture.lock.withLock { capture.events.append((event.message.description, event.metadata)) }
        }
    }

    @Test func theHandlerEscapesMessagesAndMetadata() {
        let capture = Capture()
        let logger = Logger(label: "test") { _ in EscapingLogHandler(CapturingHandler(capture: capture)) }
        let id = "evil\n2026-01-01T00:00:00+0000 critical distill.learner : stop requested by operator"
        logger.info("actor '\(id)' joined", metadata: ["id": "\(id)", "list": .array([.string("a\rb")])])
        let (message, metadata) = capture.events[0]
        #expect(!message.contains("\n"))
        #expect(message.contains(#"evil\n2026"#))
        #expect(metadata?["id"]?.description.contains("\n") == false)
        #expect(metadata?["list"]?.description.contains("\r") == false)
    }

    @Test func aThrottleLogsABurstThenPowersOfTwoPerKind() {
        var throttle = LogThrottle(burst: 10)
        let logged = (1...1000).compactMap { throttle.admit("refused a client", "line \($0)") }
        // 1...10, then 16, 32, ..., 512.
        #expect(logged.count == 10 + 6)
        #expect(logged.last?.contains("512 times so far") == true)
        #expect(throttle.admit("another kind", "first") == "first")
    }

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
