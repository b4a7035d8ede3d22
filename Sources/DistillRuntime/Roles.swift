// The shape of the system, in the words of the roles (read this file first).
//
// Each role is one OS process running one loop on one plain thread (never Swift's cooperative
// pool): `zmq_poll` over the role's sockets with a short timeout, then whatever work is due.
// Nothing else touches the sockets, so no locks; a stop request (the role's `StopToken`) is
// noticed within one poll timeout and always ends in a clean stop.
//
//   teacher server (`TeacherServer`)   ROUTER  ← TeacherQuery / → TeacherReply
//       batches queries across actors; flushes on a full batch or a deadline; names the
//       teacher (id, version) in every reply.
//
//   actor (`Actor`)                     DEALER → learner control, SUB ← parameters,
//                                       PUSH → unrolls, DEALER → teacher server
//       acts with the control policy at the newest parameters it holds, asks the teacher for
//       the states it visited (cache for static teachers), pushes whole episodes with the
//       behaviour probabilities and the teacher's outputs. Its protocol behaviour is
//       `ActorCore`, without I/O, around an `ActorActing` (`TabularActing` on state ids,
//       `NetworkActing` on N observed environments with one batched student forward per step);
//       `Actor` is the poll loop around it.
//
//   learner (`Learner`)                 PULL ← unrolls, PUB → parameters, ROUTER ↔ control
//       applies the update rule with V-trace correction for policy lag, publishes parameters
//       every K updates or T ms, answers Hello / GetParams / Control, tracks actor liveness,
//       writes metrics and atomic checkpoints, resumes from them. Its protocol behaviour is
//       `LearnerCore`, a value without I/O that takes messages with the time they arrived and
//       returns what to send; `Learner` is the poll loop around it.
//
//   launcher (`Launcher`, `distill cluster`)
//       starts the three roles as child processes on loopback, supervises and restarts them,
//       prints progress, stops them cleanly, leaves metrics, a checkpoint and a plot.

import DistillWire
import Foundation

/// A role's main loop: runs until a stop is requested or its work is done, then cleans up.
public protocol RoleLoop {
    /// Runs the loop on the calling thread (never a Swift concurrency task) until it stops.
    mutating func run() throws
}

/// Prints the endpoint a role bound, in the one-line form launchers and tests read:
/// `endpoint NAME tcp://HOST:PORT`.
public func announceEndpoint(_ name: String, _ endpoint: String) {
    FileHandle.standardOutput.write(Data("endpoint \(name) \(endpoint)\n".utf8))
}

/// The ZeroMQ routing id an actor's control DEALER uses ("ID-NONCEHEX"): unique per process
/// run, and computable by the learner from the sender of any message, so it can address
/// receipts for unrolls that came in on another socket.
public func routingID(of sender: Sender) -> [UInt8] {
    Array("\(sender.id)-\(String(sender.runNonce, radix: 16))".utf8)
}

/// Milliseconds on a monotonic clock, for deadlines inside poll loops.
@inline(__always)
func monotonicMilliseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
}

/// Seconds on a monotonic clock.
@inline(__always)
func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// CURVE security of a process: its key pair and, for servers, the clients it admits.
public struct CurveConfiguration: Sendable {
    /// This process's key pair.
    public var keyPair: CurveKeyPair
    /// Public keys of the clients a server admits, each with what it may do; nil admits any
    /// client that knows its key (encryption without authentication: no roles either).
    public var allowedClients: [String: KeyRole]?

    /// Creates a configuration.
    public init(keyPair: CurveKeyPair, allowedClients: [String: KeyRole]? = nil) {
        self.keyPair = keyPair
        self.allowedClients = allowedClients
    }
}

/// Which end of a CURVE handshake a socket is.
public enum CurveRole: Sendable {
    /// The binding side, with this process's secret key.
    case server
    /// The connecting side, which must know the server's public key.
    case client(serverKey: String)
}

/// Opens sockets with the options every role wants: bounded linger, the codec's maximum
/// message size, quick reconnects with a capped backoff, TCP keepalive, ZMTP heartbeats, and
/// CURVE encryption when the process has keys.
public final class SocketFactory {
    /// The context all sockets of the process share.
    public let context: ZMQContext
    /// Largest inbound message.
    public let maxMessageBytes: Int
    /// CURVE keys, or nil for plain TCP.
    public let curve: CurveConfiguration?
    private let authenticator: ZAPAuthenticator?

    /// Creates a factory (and the process's ZeroMQ context, and its ZAP handler when the
    /// process admits only listed clients).
    public init(maxMessageBytes: Int = WireCodec.defaultMaxMessageBytes, curve: CurveConfiguration? = nil) throws {
        self.context = try ZMQContext()
        self.maxMessageBytes = maxMessageBytes
        self.curve = curve
        if let allowed = curve?.allowedClients {
            authenticator = try ZAPAuthenticator(context: context, allowed: allowed)
        } else {
            authenticator = nil
        }
    }

    deinit {
        authenticator?.stop()
    }

    /// CURVE handshakes refused so far (clients not on the allow-list).
    public var rejectedHandshakes: Int { authenticator?.rejected ?? 0 }

    /// Opens a socket of `type` with the standard options, the given high-water marks and, when
    /// the process has CURVE keys, the CURVE `role`.
    public func open(_ type: SocketType, highWaterMark: Int = 1000, curve role: CurveRole? = nil) throws -> ZMQSocket {
        let socket = try ZMQSocket(context: context, type: type, lingerMilliseconds: 500)
        try socket.set(.maxMessageSize(maxMessageBytes))
        try socket.set(.sendHighWaterMark(highWaterMark))
        try socket.set(.receiveHighWaterMark(highWaterMark))
        try socket.set(.reconnectInterval(milliseconds: 100))
        try socket.set(.reconnectIntervalMax(milliseconds: 2000))
        try socket.set(.tcpKeepalive(true))
        try socket.set(.tcpKeepaliveIdle(seconds: 30))
        try socket.set(.heartbeatInterval(milliseconds: 1000))
        try socket.set(.heartbeatTimeout(milliseconds: 5000))
        if let curve, let role {
            switch role {
            case .server:
                try socket.set(.curveServer(true))
                try socket.set(.curveSecretKey(curve.keyPair.secretKey))
            case .client(let serverKey):
                try socket.set(.curveServerKey(serverKey))
                try socket.set(.curvePublicKey(curve.keyPair.publicKey))
                try socket.set(.curveSecretKey(curve.keyPair.secretKey))
            }
        }
        return socket
    }

    /// Binds, turning libzmq's error into one that says what to do.
    public func bind(_ socket: ZMQSocket, _ endpoint: String, purpose: String) throws -> String {
        // libzmq reads a port modulo 65536 (tcp://127.0.0.1:99999 binds port 34463): check first.
        try Self.checkPort(endpoint, purpose: purpose)
        do {
            return try socket.bind(endpoint)
        } catch {
            throw RuntimeError(
                "cannot bind the \(purpose) socket to \(endpoint): \(error.message). Use a free port, "
                    + "tcp://*:PORT for all interfaces, or tcp://127.0.0.1:* for any free local port.",
                code: .bindFailed)
        }
    }

    /// Connects, turning libzmq's error into one that says what to do.
    public func connect(_ socket: ZMQSocket, _ endpoint: String, purpose: String) throws {
        try Self.checkPort(endpoint, purpose: purpose)
        do {
            try socket.connect(endpoint)
        } catch {
            throw RuntimeError(
                "cannot connect the \(purpose) socket to \(endpoint): \(error.message). "
                    + "An endpoint looks like tcp://HOST:PORT.", code: .connectFailed)
        }
    }

    /// Refuses a TCP endpoint whose port is not 1–65535 (or `*`); other transports pass.
    private static func checkPort(_ endpoint: String, purpose: String) throws {
        guard endpoint.hasPrefix("tcp://") else { return }
        do {
            _ = try Endpoint(parsing: endpoint)
        } catch let error as RuntimeError {
            throw RuntimeError("the \(purpose) socket: \(error.description)", code: .invalidInput)
        }
    }
}
