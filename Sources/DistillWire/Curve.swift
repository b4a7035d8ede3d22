internal import CZeroMQ
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A CURVE key pair (Curve25519) in Z85 text, 40 characters each, as libzmq uses them.
public struct CurveKeyPair: Sendable, Equatable {
    /// The public key: give it to peers.
    public let publicKey: String
    /// The secret key: keep it private.
    public let secretKey: String

    /// A fresh random key pair.
    public static func generate() throws(ZMQError) -> CurveKeyPair {
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&publicKey, &secretKey) == 0 else { throw ZMQError.last("zmq_curve_keypair") }
        return CurveKeyPair(publicKey: text(publicKey), secretKey: text(secretKey))
    }

    /// The pair of a secret key (its public key is derived from it).
    public init(secretKey: String) throws(ZMQError) {
        guard secretKey.utf8.count == 40 else {
            throw ZMQError(
                operation: "read a CURVE secret key", errno: EINVAL, message: "a key is 40 characters of Z85")
        }
        var publicKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&publicKey, secretKey) == 0 else {
            throw ZMQError.last("derive the CURVE public key (is the secret key valid Z85?)")
        }
        self.init(publicKey: text(publicKey), secretKey: secretKey)
    }

    private init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// True when `key` looks like a Z85 CURVE key (40 characters of the Z85 alphabet).
    public static func isKey(_ key: String) -> Bool {
        let alphabet = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#")
        return key.count == 40 && key.allSatisfy { alphabet.contains($0) }
    }
}

/// What a CURVE key may do, as an allow-list says (see docs/security.md).
public enum KeyRole: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Hello, heartbeats, unrolls, parameters, teacher queries, `status`.
    case actor
    /// A teacher server's own key (listed where a teacher is a client): `status` and teacher queries.
    case teacher
    /// Everything an operator does: `stop`, `swap-teacher`, `set-lambda`, `status`.
    case `operator`

    /// The role name as written in allow-lists and ZAP user ids.
    public var description: String { rawValue }
}

/// A peer as the ZAP handler authenticated it: the role its key has, and the key.
public struct AuthenticatedPeer: Sendable, Hashable {
    /// What the key may do.
    public var role: KeyRole
    /// The peer's Z85 public key.
    public var key: String

    /// Creates a peer.
    public init(role: KeyRole, key: String) {
        self.role = role
        self.key = key
    }

    /// The ZAP User-Id the handler gives this peer: "ROLE:KEY".
    public var userID: String { "\(role.rawValue):\(key)" }

    /// Reads a ZAP User-Id of the form "ROLE:KEY"; nil for anything else (no ZAP handler, or
    /// a handler that is not ours).
    public init?(userID: String?) {
        guard let userID, let colon = userID.firstIndex(of: ":"),
            let role = KeyRole(rawValue: String(userID[..<colon]))
        else { return nil }
        let key = String(userID[userID.index(after: colon)...])
        guard CurveKeyPair.isKey(key) else { return nil }
        self.init(role: role, key: key)
    }
}

/// A ZAP handler (ZeroMQ RFC 27) that admits CURVE clients whose public key is on an allow-list,
/// and names the key's role in the ZAP User-Id ("operator:KEY"), which receivers read per message
/// (`ZMQSocket.lastUserID`).
///
/// It binds `inproc://zeromq.zap.01` in the given context, so every CURVE server socket of that
/// context asks it; it serves on a thread of its own (its REP socket is touched by no other
/// thread) until `stop()`. A rejected client's handshake fails; nothing it sends is delivered.
public final class ZAPAuthenticator: @unchecked Sendable {
    private let allowed: [String: KeyRole]
    private let running = Atomic<Bool>(true)
    private let rejectedCount = Atomic<Int>(0)
    private let acceptedCount = Atomic<Int>(0)
    private let finished = Atomic<Bool>(false)
    private let socket: ZMQSocket

    /// Starts admitting the clients whose Z85 public keys are in `allowed`, each with its role.
    public init(context: ZMQContext, allowed: [String: KeyRole]) throws(ZMQError) {
        self.allowed = allowed
        socket = try ZMQSocket(context: context, type: .rep, lingerMilliseconds: 0)
        try socket.bind("inproc://zeromq.zap.01")
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    /// Handshakes refused so far.
    public var rejected: Int { rejectedCount.load(ordering: .relaxed) }
    /// Handshakes admitted so far.
    public var accepted: Int { acceptedCount.load(ordering: .relaxed) }

    /// Stops serving and closes the socket (before the context is terminated).
    public func stop() {
        running.store(false, ordering: .relaxed)
        while !finished.load(ordering: .relaxed) { usleep(1000) }
    }

    private func serve() {
        var poller = ZMQPoller()
        poller.add(socket)
        while running.load(ordering: .relaxed) {
            guard let events = try? poller.poll(timeoutMilliseconds: 50), !events[0].isEmpty,
                let request = try? socket.receive(dontWait: true)
            else { continue }
            // [version, request id, domain, address, identity, mechanism, credentials...]
            guard request.count >= 6 else { continue }
            var peer: AuthenticatedPeer?
            if String(decoding: request[5], as: UTF8.self) == "CURVE", request.count >= 7, request[6].count == 32 {
                var text = [CChar](repeating: 0, count: 41)
                if zmq_z85_encode(&text, request[6], 32) != nil {
                    let key = DistillWire.text(text)
                    peer = allowed[key].map { AuthenticatedPeer(role: $0, key: key) }
                }
            }
            if peer != nil {
                acceptedCount.add(1, ordering: .relaxed)
            } else {
                rejectedCount.add(1, ordering: .relaxed)
            }
            // [version, request id, status code, status text, user id, metadata]
            let reply: [[UInt8]] = [
                Array("1.0".utf8), request[1], Array((peer != nil ? "200" : "400").utf8),
                Array((peer != nil ? "OK" : "client key not on the allow-list").utf8),
                Array((peer?.userID ?? "").utf8), [],
            ]
            _ = try? socket.send(reply)
        }
        socket.close()
        finished.store(true, ordering: .relaxed)
    }
}

/// The text of a NUL-terminated C buffer.
private func text(_ characters: [CChar]) -> String {
    String(decoding: characters.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
