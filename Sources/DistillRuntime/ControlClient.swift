import DistillWire
import Foundation

/// Sends `Control` commands to a learner's control endpoint and waits for the answer: the
/// launcher's progress display and `distill control` use it.
public final class ControlClient {
    private let sockets: SocketFactory
    private let socket: ZMQSocket
    private let sender: Sender
    private let codec = WireCodec()
    private var nextRequest: UInt64 = 1
    private let handshakes: HandshakeMonitor?
    /// The learner's control endpoint.
    public let endpoint: String
    /// The run token sent with every command but status (without CURVE operator keys).
    public var token: String
    /// How long a command waits for the learner's answer unless told otherwise
    /// (`distill control --timeout-ms`).
    public static let defaultTimeoutMilliseconds = 5000

    /// Connects to a learner's control endpoint (returns at once; ZeroMQ connects in the background).
    public init(
        learner endpoint: String, sender: Sender, curve: CurveConfiguration? = nil, learnerKey: String? = nil,
        token: String = ""
    ) throws {
        self.endpoint = endpoint
        self.sender = sender
        self.token = token
        sockets = try SocketFactory(curve: curve)
        socket = try sockets.open(.dealer, curve: learnerKey.map { CurveRole.client(serverKey: $0) })
        // With CURVE, a learner whose allow-list lacks our key refuses the handshake: watch for it,
        // so that is what a timeout reports instead of "no answer".
        handshakes = learnerKey != nil ? try socket.monitorHandshakes() : nil
        try sockets.connect(socket, endpoint, purpose: "learner control")
    }

    deinit {
        socket.close()
    }

    private var refusedHandshakeStatus: Int? {
        for outcome in handshakes?.outcomes() ?? [] {
            if case .refusedByServer(let status) = outcome { return status }
        }
        return nil
    }

    /// Sends a command and returns the learner's echo (with `accepted` and `statusJSON`).
    ///
    /// - Throws: `RuntimeError` when the learner refuses or does not answer within `timeout`.
    public func send(_ command: Control, timeoutMilliseconds: Int = defaultTimeoutMilliseconds) throws -> Control {
        var request = command
        if request.command != .status { request.token = token }
        request.requestID = nextRequest
        nextRequest += 1
        _ = try socket.send(codec.encode(Envelope(sender: sender, message: .control(request))), dontWait: true)
        let deadline = monotonicMilliseconds() + Int64(timeoutMilliseconds)
        var poller = ZMQPoller()
        poller.add(socket)
        while true {
            let left = deadline - monotonicMilliseconds()
            if let status = refusedHandshakeStatus {
                throw RuntimeError(
                    "the learner at \(endpoint) refused this client's CURVE key (ZAP status \(status)): its "
                        + "--curve-allow file does not list the key; add it as \"operator KEY\" to send "
                        + "commands (any listed key may ask for status)", code: .refusedByPeer)
            }
            guard left > 0 else {
                throw RuntimeError(
                    "no answer from the learner at \(endpoint) within \(timeoutMilliseconds) ms: "
                        + "is it running, and is that its control endpoint?", code: .noAnswer)
            }
            guard try !poller.poll(timeoutMilliseconds: Int(min(left, 100)))[0].isEmpty,
                let frames = try socket.receive(dontWait: true), let payload = frames.last
            else { continue }
            guard let envelope = try? codec.decode(payload, expecting: [.control, .error]) else { continue }
            switch envelope.message {
            case .control(let reply) where reply.requestID == request.requestID:
                return reply
            case .error(let error) where error.inReplyTo == request.requestID || error.inReplyTo == 0:
                throw RuntimeError(
                    "the learner refused the command: \(logSafe(error.message))", code: .refusedByPeer)
            default:
                continue  // an answer to an earlier, timed-out request
            }
        }
    }

    /// The learner's status.
    ///
    /// - Throws: `RuntimeError` when the learner does not answer (`.noAnswer`) or its answer is
    ///   not a status (`.invalidRecord`, naming the key: a learner of another release, or not a
    ///   learner at all).
    public func status(timeoutMilliseconds: Int = defaultTimeoutMilliseconds) throws -> LearnerStatus {
        let reply = try send(Control(command: .status), timeoutMilliseconds: timeoutMilliseconds)
        return try RecordCoding.decode(
            LearnerStatus.self, from: Data(reply.statusJSON.utf8),
            what: "the status answer of the learner at \(endpoint)")
    }
}
