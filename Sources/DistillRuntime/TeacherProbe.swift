import DistillWire
import Foundation

/// A learner's check of a teacher server before a swap to it: one `TeacherQuery` for a few
/// states of the run's environment, answered in time by a teacher of that environment, or the
/// swap is refused. Non-blocking: the learner's poll loop calls `poll(now:)` until it returns
/// an outcome.
final class TeacherProbe {
    /// What the check found.
    typealias Outcome = TeacherCheckOutcome
    /// What a teacher of this run answers.
    typealias Expectation = TeacherExpectation

    /// The endpoint checked.
    let endpoint: String
    private var socket: ZMQSocket?
    private let codec: WireCodec
    private let deadline: Int64
    private let query: TeacherQuery
    private let expectation: Expectation
    private var result: Outcome?

    /// Sends the query to `endpoint` (with CURVE when `curve` is given); `timeoutMilliseconds`
    /// bounds the wait for the answer.
    init(
        endpoint: String, expectation: Expectation, sockets: SocketFactory, curve: CurveRole?, sender: Sender,
        now: Int64, timeoutMilliseconds: Int
    ) {
        self.endpoint = endpoint
        self.expectation = expectation
        self.codec = WireCodec(maxMessageBytes: sockets.maxMessageBytes)
        self.deadline = now + Int64(timeoutMilliseconds)
        query = expectation.probeQuery
        do {
            let endpointValue = try Endpoint(parsing: endpoint)
            guard endpointValue.port != 0 else {
                throw RuntimeError(
                    "'\(endpoint)' has no port: a teacher endpoint is tcp://HOST:PORT", code: .invalidInput)
            }
            let socket = try sockets.open(.dealer, highWaterMark: 4, curve: curve)
            try sockets.connect(socket, endpoint, purpose: "teacher check")
            self.socket = socket
            // Queued for the connection being made (not ZMQ_IMMEDIATE): sent once it is up.
            guard try socket.send(codec.encode(Envelope(sender: sender, message: .teacherQuery(query))), dontWait: true)
            else { throw RuntimeError("cannot queue a query to \(endpoint)") }
        } catch let error as RuntimeError {
            result = .refused(error.description)
        } catch {
            result = .refused("cannot reach \(endpoint): \(error)")
        }
    }

    deinit { socket?.close() }

    /// The outcome once there is one; nil while waiting.
    func poll(now: Int64) -> Outcome? {
        if let result { return result }
        guard let socket else { return result }
        while let frames = try? socket.receive(dontWait: true), let payload = frames.last {
            guard let envelope = try? codec.decode(payload, expecting: [.teacherReply, .error]) else { continue }
            switch envelope.message {
            case .teacherReply(let reply) where reply.queryID == 1:
                result = expectation.judge(reply, rows: query.batchSize, endpoint: endpoint)
            case .error(let error):
                result = .refused("the teacher at \(endpoint) refused the check: \(error.message)")
            default:
                continue
            }
            socket.close()
            return result
        }
        if now >= deadline {
            result = .refused(
                "the teacher at \(endpoint) did not answer a query for \(query.batchSize) rows in time: "
                    + "is a teacher server running there, reachable from the learner?")
            socket.close()
        }
        return result
    }
}
