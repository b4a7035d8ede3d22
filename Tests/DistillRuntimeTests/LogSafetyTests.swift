import DistillRuntime
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
}
