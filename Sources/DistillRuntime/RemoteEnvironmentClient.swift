import DistillWire
import Foundation

/// One connection to a remote environment server (examples/env-server, docs/remote-environments.md),
/// shared by every ``RemoteEnvironment`` of a process.
///
/// Each call is one round trip: an `EnvironmentRequest` on a DEALER socket, and the reply with
/// the same request id within ``timeoutMilliseconds`` (late replies to earlier requests are
/// skipped). A call that fails throws a ``RuntimeError`` that names the server and what to do.
/// Thread-safe: calls are serialised on a lock (the socket belongs to whoever holds it).
public final class RemoteEnvironmentClient: @unchecked Sendable {
    /// The default wait for one answer: generous for a Python environment's reset (Atari's
    /// takes ~0.1 s), short enough that a dead server is reported promptly.
    public static let defaultTimeoutMilliseconds = 10_000

    /// The server's endpoint, `tcp://HOST:PORT`.
    public let endpoint: String
    /// What the server hosts, as it described it when the connection was made.
    public let description: RemoteEnvironmentDescription
    /// The wait for one answer.
    public let timeoutMilliseconds: Int

    private let lock = NSLock()
    private let context: ZMQContext
    private let socket: ZMQSocket
    private let codec = WireCodec()
    private let sender: Sender
    private var nextRequestID: UInt64 = 1
    private var firstFailure: RuntimeError?

    /// Connects to `endpoint` and asks the server to describe its environments.
    ///
    /// Throws when the endpoint is malformed, the server does not answer within
    /// `timeoutMilliseconds` (is it running? is the port right?), it answers with an error, or it
    /// hosts something a network student cannot use.
    public init(
        endpoint: String, timeoutMilliseconds: Int = RemoteEnvironmentClient.defaultTimeoutMilliseconds
    )
        throws
    {
        let parsed = try Endpoint(parsing: endpoint)
        guard parsed.port != 0, parsed.host != "*" else {
            throw RuntimeError(
                "'\(endpoint)' names no server: a remote environment is remote:tcp://HOST:PORT, e.g. "
                    + "remote:tcp://127.0.0.1:5560", code: .invalidInput)
        }
        guard timeoutMilliseconds > 0 else {
            throw RuntimeError("the remote environment timeout must be positive", code: .invalidInput)
        }
        self.endpoint = endpoint
        self.timeoutMilliseconds = timeoutMilliseconds
        sender = Sender.starting(role: .actor, id: "remote-environments")
        do {
            context = try ZMQContext()
            socket = try ZMQSocket(context: context, type: .dealer, lingerMilliseconds: 0)
            // A routing id of our own, so that the server still knows our environments after a reconnect.
            try socket.set(.routingID(routingID(of: sender)))
            try socket.set(.maxMessageSize(WireCodec.defaultMaxMessageBytes))
            try socket.set(.reconnectIntervalMax(milliseconds: 2_000))
            try socket.connect(endpoint)
        } catch {
            throw RuntimeError(
                "cannot connect to the environment server at \(endpoint): \(error)", code: .connectFailed)
        }
        let reply = try Self.exchange(
            EnvironmentRequest(requestID: 1, command: .describe), socket: socket, codec: codec, sender: sender,
            endpoint: endpoint, timeoutMilliseconds: timeoutMilliseconds)
        nextRequestID = 2
        guard let description = reply.description else {
            throw RuntimeError(
                "the environment server at \(endpoint) answered DESCRIBE without a description", code: .refusedByPeer)
        }
        self.description = description
    }

    deinit { socket.close() }

    /// The first failure of a call made through ``RemoteEnvironment`` (whose steps cannot throw),
    /// or nil. Loops that step remote environments check it after every iteration.
    public var failure: RuntimeError? {
        lock.lock()
        defer { lock.unlock() }
        return firstFailure
    }

    /// Throws the first recorded failure, if any.
    public func checkHealthy() throws {
        if let failure { throw failure }
    }

    /// Records a failure (the first one is kept).
    func record(_ error: any Error) {
        lock.lock()
        defer { lock.unlock() }
        if firstFailure == nil {
            firstFailure =
                error as? RuntimeError ?? RuntimeError("remote environment at \(endpoint): \(error)", code: .other)
        }
    }

    /// Reserves `count` environments; returns their indices on the server.
    public func open(count: Int) throws -> [Int] {
        let reply = try call(EnvironmentRequest(requestID: 0, command: .open, count: count))
        guard reply.environments.count == count, Set(reply.environments).count == count else {
            throw RuntimeError(
                "the environment server at \(endpoint) opened \(reply.environments) for \(count) environments asked",
                code: .refusedByPeer)
        }
        return reply.environments
    }

    /// One environment's observation (as floats: uint8 as 0…255) and internal state.
    public struct Observation: Sendable, Equatable {
        /// The observation, ``EnvironmentDescription/ObservationSpec/count`` floats.
        public var values: [Float]
        /// The internal state (empty when the server exposes none).
        public var state: [Double]
    }

    /// Resets `environments` (seeded when `seeds` is not empty) and returns their first observations.
    public func reset(_ environments: [Int], seeds: [UInt64] = []) throws -> [Observation] {
        let reply = try call(
            EnvironmentRequest(requestID: 0, command: .reset, environments: environments, seeds: seeds))
        return try observations(of: reply, for: environments, command: .reset)
    }

    /// Steps each of `environments` with its action; returns the observations and outcomes in order.
    public func step(
        _ environments: [Int], actions: [Int]
    ) throws -> [(
        observation: Observation, reward: Double,
        terminated: Bool, truncated: Bool
    )] {
        let reply = try call(
            EnvironmentRequest(requestID: 0, command: .step, environments: environments, actions: actions))
        let observed = try observations(of: reply, for: environments, command: .step)
        guard reply.rewards.count == environments.count, reply.terminated.count == environments.count,
            reply.truncated.count == environments.count
        else {
            throw RuntimeError(
                "the environment server at \(endpoint) answered STEP without a reward and flags per environment",
                code: .refusedByPeer)
        }
        return environments.indices.map {
            (observed[$0], reply.rewards[$0], reply.terminated[$0], reply.truncated[$0])
        }
    }

    /// Releases `environments` without waiting for the answer (called as environments go away;
    /// it must not block, least of all when the server is gone).
    public func close(_ environments: [Int]) {
        guard !environments.isEmpty else { return }
        lock.lock()
        defer { lock.unlock() }
        let request = EnvironmentRequest(requestID: takeRequestID(), command: .close, environments: environments)
        _ = try? socket.send(
            codec.encode(Envelope(sender: sender, message: .environmentRequest(request))), dontWait: true)
    }

    // MARK: Round trips

    private func takeRequestID() -> UInt64 {
        defer { nextRequestID &+= 1 }
        return nextRequestID == 0 ? 1 : nextRequestID
    }

    private func call(_ request: EnvironmentRequest) throws -> EnvironmentReply {
        lock.lock()
        defer { lock.unlock() }
        var numbered = request
        numbered.requestID = takeRequestID()
        return try Self.exchange(
            numbered, socket: socket, codec: codec, sender: sender, endpoint: endpoint,
            timeoutMilliseconds: timeoutMilliseconds)
    }

    private func observations(
        of reply: EnvironmentReply, for environments: [Int], command: EnvironmentRequest.Command
    ) throws -> [Observation] {
        let spec = description.spec
        let tensor = reply.observations
        guard reply.environments == environments, tensor.rowCount == environments.count,
            tensor.rowShape == spec.observationShape, tensor.dtype == spec.observationDType
        else {
            throw RuntimeError(
                "the environment server at \(endpoint) answered \(command) for environments \(reply.environments) "
                    + "with observations of shape \(tensor.shape) \(tensor.dtype); asked for \(environments), "
                    + "described \(spec.observationShape) \(spec.observationDType)", code: .refusedByPeer)
        }
        let size = description.stateSize
        guard reply.states.count == size * environments.count else {
            throw RuntimeError(
                "the environment server at \(endpoint) sent \(reply.states.count) state values for "
                    + "\(environments.count) environments of state size \(size)", code: .refusedByPeer)
        }
        let values = tensor.floats()
        let count = spec.observationSize
        return environments.indices.map {
            Observation(
                values: Array(values[($0 * count)..<(($0 + 1) * count)]),
                state: Array(reply.states[($0 * size)..<(($0 + 1) * size)]))
        }
    }

    /// Sends `request` and waits for its reply, skipping replies to earlier (abandoned) requests.
    private static func exchange(
        _ request: EnvironmentRequest, socket: ZMQSocket, codec: WireCodec, sender: Sender, endpoint: String,
        timeoutMilliseconds: Int
    ) throws -> EnvironmentReply {
        let deadline = monotonicMilliseconds() + Int64(timeoutMilliseconds)
        let bytes = codec.encode(Envelope(sender: sender, message: .environmentRequest(request)))
        func noAnswer() -> RuntimeError {
            RuntimeError(
                "the environment server at \(endpoint) did not answer \(request.command) within "
                    + "\(timeoutMilliseconds) ms: is examples/env-server/run running there, and the port right?",
                code: .noAnswer)
        }
        do {
            // DEALER queues for a connection still being made, and blocks only at the high-water mark.
            while try !socket.send(bytes, dontWait: true) {
                guard monotonicMilliseconds() < deadline else { throw noAnswer() }
                usleep(1_000)
            }
            var poller = ZMQPoller()
            poller.add(socket)
            while true {
                let left = deadline - monotonicMilliseconds()
                guard left > 0 else { throw noAnswer() }
                guard try poller.poll(timeoutMilliseconds: Int(min(left, 1_000)))[0].contains(.readable) else {
                    continue
                }
                while let frames = try socket.receive(dontWait: true) {
                    guard let payload = frames.last else { continue }
                    let envelope: Envelope
                    do {
                        envelope = try codec.decode(payload, expecting: [.environmentReply, .error])
                    } catch {
                        throw RuntimeError(
                            "the server at \(endpoint) is not a distill environment server, or speaks another "
                                + "version: \(error)", code: .refusedByPeer)
                    }
                    switch envelope.message {
                    case .environmentReply(let reply) where reply.requestID == request.requestID:
                        return reply
                    case .error(let error) where error.inReplyTo == request.requestID || error.inReplyTo == 0:
                        throw RuntimeError(
                            "the environment server at \(endpoint) refused \(request.command): \(error.message)",
                            code: .refusedByPeer)
                    default:
                        continue  // the answer to an abandoned request, or to a CLOSE
                    }
                }
            }
        } catch let error as RuntimeError {
            throw error
        } catch {
            throw RuntimeError("remote environment at \(endpoint): \(error)", code: .other)
        }
    }
}
