import DistillTestSupport
import DistillWire
import Foundation
import Testing

/// What the test process saw of a link, checked after the blocking part ends.
struct LinkReport: Sendable {
    var childStatus: Int32?
    var childOutput: [String] = []
    var childErrors = ""
    var received: [UInt64] = []
    var errorReplies: [String] = []

    var summary: String { childOutput.first { $0.hasPrefix("summary") } ?? "no summary; stderr: \(childErrors)" }
}

@Suite("Socket patterns between two real processes", .serialized)
struct SocketPatternTests {
    static let codec = WireCodec()
    static let me = Sender.starting(role: .tool, id: "test")

    static func heartbeat(_ sequence: Int) -> [UInt8] {
        codec.encode(Envelope(sender: me, message: .heartbeat(Heartbeat(sequence: UInt64(sequence)))))
    }

    static func socket(_ type: SocketType) throws -> (ZMQContext, ZMQSocket) {
        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, type: type)
        try socket.set(.reconnectInterval(milliseconds: 50))
        return (context, socket)
    }

    /// Receives one message within `milliseconds` (generous: the loops end by count, so the
    /// deadline only bounds a failure and costs nothing on a loaded machine).
    static func receive(_ socket: ZMQSocket, within milliseconds: Int = 30_000) throws -> [[UInt8]]? {
        var poller = ZMQPoller()
        poller.add(socket)
        guard try !poller.poll(timeoutMilliseconds: milliseconds)[0].isEmpty else { return nil }
        return try socket.receive(dontWait: true)
    }

    static func endpoint(of child: ChildProcess) throws -> String { try child.endpoint("bound") }

    static func finish(_ child: ChildProcess, _ report: inout LinkReport) {
        report.childStatus = child.waitForExit()
        report.childOutput = child.output
        report.childErrors = child.standardError
    }

    @Test func pushToAPullInAnotherProcessSkipsGarbageAndKeepsServing() async throws {
        let report = try await onOwnThread {
            let child = try ChildProcess([
                "probe", "--socket", "pull", "--bind", "tcp://127.0.0.1:*", "--count", "20", "--quiet",
            ])
            let (context, push) = try Self.socket(.push)
            defer { push.close(); _ = context }
            try push.connect(try Self.endpoint(of: child))
            let garbage: [[UInt8]] = [
                [], [0xff, 0xff, 0xff], Array("hello".utf8), Array(Self.heartbeat(1).prefix(9)), [0x0a, 0x7f],
            ]
            for sequence in 0..<20 {
                if sequence < garbage.count { try push.send(garbage[sequence]) }
                try push.send(Self.heartbeat(sequence))
            }
            var report = LinkReport()
            Self.finish(child, &report)
            return report
        }
        #expect(report.childStatus == 0, "\(report.childErrors)")
        #expect(report.summary.hasPrefix("summary valid=20 rejected=5 "), "\(report.summary)")
        #expect(report.childErrors.contains("rejected a message"))
    }

    @Test func pullFromAPushInAnotherProcess() async throws {
        let report = try await onOwnThread {
            let (context, pull) = try Self.socket(.pull)
            defer { pull.close(); _ = context }
            let endpoint = try pull.bind("tcp://127.0.0.1:*")
            let child = try ChildProcess([
                "probe", "--socket", "push", "--connect", endpoint, "--count", "25", "--quiet",
            ])
            var report = LinkReport()
            while report.received.count < 25, let frames = try Self.receive(pull) {
                if case .heartbeat(let beat) = try Self.codec.decode(frames[0], expecting: [.heartbeat]).message {
                    report.received.append(beat.sequence)
                }
            }
            Self.finish(child, &report)
            return report
        }
        #expect(report.childStatus == 0)
        #expect(report.received == Array(0..<25))
    }

    @Test func publishToASubscriberInAnotherProcess() async throws {
        let report = try await onOwnThread {
            let (context, pub) = try Self.socket(.pub)
            defer { pub.close(); _ = context }
            let endpoint = try pub.bind("tcp://127.0.0.1:*")
            let child = try ChildProcess([
                "probe", "--socket", "sub", "--connect", endpoint, "--count", "10", "--quiet",
            ])
            // A subscriber that joins late misses what was sent before: publish until it has enough.
            var sequence = 0
            let deadline = ContinuousClock.now + .seconds(20)
            while child.isRunning && ContinuousClock.now < deadline {
                try pub.send(Self.heartbeat(sequence), dontWait: true)
                sequence += 1
                Thread.sleep(forTimeInterval: 0.005)
            }
            var report = LinkReport()
            Self.finish(child, &report)
            return report
        }
        #expect(report.childStatus == 0)
        #expect(report.summary.hasPrefix("summary valid=10 rejected=0"), "\(report.summary)")
    }

    @Test func dealerGetsRepliesAndErrorsFromARouterInAnotherProcess() async throws {
        let report = try await onOwnThread {
            let child = try ChildProcess([
                "probe", "--socket", "router", "--bind", "tcp://127.0.0.1:*", "--count", "3", "--quiet",
            ])
            let (context, dealer) = try Self.socket(.dealer)
            defer { dealer.close(); _ = context }
            try dealer.connect(try Self.endpoint(of: child))
            var report = LinkReport()
            for payload in [
                Self.heartbeat(0), Array("not a message".utf8), Self.heartbeat(1), [0x0a], Self.heartbeat(2),
            ] {
                try dealer.send(payload)
                guard let reply = try Self.receive(dealer) else { break }
                switch try Self.codec.decode(reply[0]).message {
                case .heartbeat(let beat): report.received.append(beat.sequence)
                case .error(let error): report.errorReplies.append(error.message)
                default: break
                }
            }
            Self.finish(child, &report)
            return report
        }
        #expect(report.childStatus == 0)
        #expect(report.received == [0, 1, 2])
        #expect(report.errorReplies.count == 2)
        #expect(report.errorReplies.allSatisfy { !$0.isEmpty })
    }

    @Test func routerAnswersADealerInAnotherProcess() async throws {
        let report = try await onOwnThread {
            let (context, router) = try Self.socket(.router)
            defer { router.close(); _ = context }
            let endpoint = try router.bind("tcp://127.0.0.1:*")
            let child = try ChildProcess([
                "probe", "--socket", "dealer", "--connect", endpoint, "--count", "20", "--quiet",
            ])
            var report = LinkReport()
            while report.received.count < 20, let frames = try Self.receive(router) {
                #expect(frames.count == 2, "a router sees [routing id, payload]")
                if case .heartbeat(let beat) = try Self.codec.decode(frames[1]).message {
                    report.received.append(beat.sequence)
                    try router.send([frames[0], Self.heartbeat(Int(beat.sequence))])
                }
            }
            Self.finish(child, &report)
            return report
        }
        #expect(report.childStatus == 0)
        #expect(report.received == Array(0..<20))
        #expect(report.summary.contains("rtt_p50_us="), "\(report.summary)")
    }

    @Test func oversizedMessageIsDroppedAndTheReceiverKeepsServing() async throws {
        let report = try await onOwnThread {
            let child = try ChildProcess([
                "probe", "--socket", "pull", "--bind", "tcp://127.0.0.1:*", "--count", "5", "--max-message-bytes",
                "4096", "--quiet",
            ])
            let (context, push) = try Self.socket(.push)
            defer { push.close(); _ = context }
            try push.connect(try Self.endpoint(of: child))
            try push.send([UInt8](repeating: 7, count: 10_000))
            // libzmq drops the connection that carried the oversized message; the pusher
            // reconnects, and messages caught in the dropped pipe are lost, so keep sending.
            var sequence = 0
            let deadline = ContinuousClock.now + .seconds(20)
            while child.isRunning && ContinuousClock.now < deadline {
                _ = try push.send(Self.heartbeat(sequence), dontWait: true)
                sequence += 1
                Thread.sleep(forTimeInterval: 0.01)
            }
            var report = LinkReport()
            Self.finish(child, &report)
            return report
        }
        #expect(report.childStatus == 0, "\(report.childErrors)")
        #expect(report.summary.hasPrefix("summary valid=5"), "\(report.summary)")
    }

    @Test func probeRejectsABadEndpointWithAClearError() async throws {
        let report = try await onOwnThread {
            let child = try ChildProcess(["probe", "--socket", "pull", "--bind", "nonsense"])
            var report = LinkReport()
            Self.finish(child, &report)
            return report
        }
        #expect(report.childStatus == 64)
        #expect(report.childErrors.contains("cannot bind nonsense"))
        #expect(report.childErrors.contains("tcp://HOST:PORT"))
    }
}
