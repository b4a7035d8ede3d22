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
    /// The learner's control endpoint.
    public let endpoint: String

    /// Connects to a learner's control endpoint (returns at once; ZeroMQ connects in the background).
    public init(
        learner endpoint: String, sender: Sender, curve: CurveConfiguration? = nil, learnerKey: String? = nil
    ) throws {
        self.endpoint = endpoint
        self.sender = sender
        sockets = try SocketFactory(curve: curve)
        socket = try sockets.open(.dealer, curve: learnerKey.map { CurveRole.client(serverKey: $0) })
        try sockets.connect(socket, endpoint, purpose: "learner control")
    }

    deinit {
        socket.close()
    }

    /// Sends a command and returns the learner's echo (with `accepted` and `statusJSON`).
    ///
    /// - Throws: `RuntimeError` when the learner refuses or does not answer within `timeout`.
    public func send(_ command: Control, timeoutMilliseconds: Int = 5000) throws -> Control {
        var request = command
        request.requestID = nextRequest
        nextRequest += 1
        _ = try socket.send(codec.encode(Envelope(sender: sender, message: .control(request))), dontWait: true)
        let deadline = monotonicMilliseconds() + Int64(timeoutMilliseconds)
        var poller = ZMQPoller()
        poller.add(socket)
        while true {
            let left = deadline - monotonicMilliseconds()
            guard left > 0 else {
                throw RuntimeError(
                    "no answer from the learner at \(endpoint) within \(timeoutMilliseconds) ms: "
                        + "is it running, and is that its control endpoint?", code: .noAnswer)
            }
            guard try !poller.poll(timeoutMilliseconds: Int(left))[0].isEmpty,
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

    /// The learner's status as a JSON object.
    public func status(timeoutMilliseconds: Int = 5000) throws -> [String: Any] {
        let reply = try send(Control(command: .status), timeoutMilliseconds: timeoutMilliseconds)
        let object = try? JSONSerialization.jsonObject(with: Data(reply.statusJSON.utf8))
        return object as? [String: Any] ?? [:]
    }
}
