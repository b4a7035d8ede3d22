internal import CZeroMQ

#if canImport(Glibc)
    import Glibc
#endif

/// A libzmq context: owns the I/O threads shared by its sockets. Thread-safe.
///
/// Close every socket before the context goes away: libzmq's `zmq_ctx_term` (run on deinit)
/// waits for them. Sockets keep their context alive, so dropping both in any order is safe.
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    /// Creates a context with `ioThreads` I/O threads (one is plenty below ~1 GB/s).
    public init(ioThreads: Int = 1) throws(ZMQError) {
        guard let handle = zmq_ctx_new() else { throw ZMQError.last("zmq_ctx_new") }
        self.handle = handle
        guard zmq_ctx_set(handle, ZMQ_IO_THREADS, Int32(ioThreads)) == 0 else {
            zmq_ctx_term(handle)
            throw ZMQError.last("set ZMQ_IO_THREADS=\(ioThreads)")
        }
    }

    /// Makes every blocking call on this context's sockets fail with ETERM, so the threads that
    /// own them can close them. Safe to call from any thread, e.g. a signal-watching one.
    public func shutdown() {
        zmq_ctx_shutdown(handle)
    }

    deinit {
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }

    /// Whether libzmq was built with a capability, e.g. "curve".
    public static func has(_ capability: String) -> Bool {
        zmq_has(capability) != 0
    }

    /// The linked libzmq version as "major.minor.patch".
    public static var version: String {
        var major: Int32 = 0
        var minor: Int32 = 0
        var patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }
}

/// The ZeroMQ socket patterns this system uses.
public enum SocketType: Sendable, CaseIterable, CustomStringConvertible {
    /// Fan-out of work (actor → learner unrolls). Blocks at the high-water mark.
    case push
    /// Fair-queued fan-in of `push`.
    case pull
    /// Broadcast (learner → actors parameters). Drops at the high-water mark.
    case pub
    /// Receives what `pub` broadcasts, filtered by prefix.
    case sub
    /// Asynchronous request side of `router` (actor ↔ teacher, client ↔ learner).
    case dealer
    /// Addressed replies: every received message starts with the peer's routing id.
    case router
    /// Strict reply side (only the ZAP handler uses it).
    case rep
    /// One-to-one (only socket monitors use it).
    case pair

    var rawValue: Int32 {
        switch self {
        case .push: ZMQ_PUSH
        case .pull: ZMQ_PULL
        case .pub: ZMQ_PUB
        case .sub: ZMQ_SUB
        case .dealer: ZMQ_DEALER
        case .router: ZMQ_ROUTER
        case .rep: ZMQ_REP
        case .pair: ZMQ_PAIR
        }
    }

    /// The lower-case pattern name, as on the command line.
    public var description: String {
        switch self {
        case .push: "push"
        case .pull: "pull"
        case .pub: "pub"
        case .sub: "sub"
        case .dealer: "dealer"
        case .router: "router"
        case .rep: "rep"
        case .pair: "pair"
        }
    }
}

/// A socket option this system sets. Durations in milliseconds, sizes in bytes or messages.
public enum SocketOption: Sendable {
    /// How long unsent messages may delay `close` (ZMQ_LINGER). Never leave it at -1 (forever).
    case linger(milliseconds: Int)
    /// Outgoing queue limit in messages (ZMQ_SNDHWM); 0 is unlimited.
    case sendHighWaterMark(Int)
    /// Incoming queue limit in messages (ZMQ_RCVHWM); 0 is unlimited.
    case receiveHighWaterMark(Int)
    /// Kernel send buffer of the TCP connections, in bytes (ZMQ_SNDBUF); 0 keeps the OS default.
    case sendBuffer(bytes: Int)
    /// Kernel receive buffer of the TCP connections, in bytes (ZMQ_RCVBUF); 0 keeps the OS default.
    case receiveBuffer(bytes: Int)
    /// Largest accepted inbound message (ZMQ_MAXMSGSIZE); a peer sending more is disconnected.
    case maxMessageSize(Int)
    /// First reconnect delay (ZMQ_RECONNECT_IVL).
    case reconnectInterval(milliseconds: Int)
    /// Upper bound of the exponential reconnect backoff (ZMQ_RECONNECT_IVL_MAX).
    case reconnectIntervalMax(milliseconds: Int)
    /// TCP keepalive probes on idle connections (ZMQ_TCP_KEEPALIVE).
    case tcpKeepalive(Bool)
    /// Idle seconds before the first keepalive probe (ZMQ_TCP_KEEPALIVE_IDLE).
    case tcpKeepaliveIdle(seconds: Int)
    /// ZMTP heartbeats every interval (ZMQ_HEARTBEAT_IVL); detects dead peers on silent links.
    case heartbeatInterval(milliseconds: Int)
    /// Drop a connection whose peer missed heartbeats this long (ZMQ_HEARTBEAT_TIMEOUT).
    case heartbeatTimeout(milliseconds: Int)
    /// Subscribe a `sub` socket to messages starting with `prefix` (empty: everything).
    case subscribe(prefix: [UInt8])
    /// This socket's routing id as seen by a `router` peer (ZMQ_ROUTING_ID).
    case routingID([UInt8])
    /// A `router` reports unroutable replies as EHOSTUNREACH instead of dropping them.
    case routerMandatory(Bool)
    /// Queue messages only to completed connections (ZMQ_IMMEDIATE).
    case immediate(Bool)
    /// Act as a CURVE server (ZMQ_CURVE_SERVER); set with `curveSecretKey` before `bind`.
    case curveServer(Bool)
    /// This socket's CURVE secret key, 40-character Z85.
    case curveSecretKey(String)
    /// This socket's CURVE public key, 40-character Z85.
    case curvePublicKey(String)
    /// The CURVE server's public key, for clients, 40-character Z85.
    case curveServerKey(String)
}

/// Events a socket is polled for, or is ready for.
public struct PollEvents: OptionSet, Sendable {
    /// The raw zmq event bits.
    public let rawValue: Int16
    /// Creates a set from raw bits.
    public init(rawValue: Int16) { self.rawValue = rawValue }
    /// A message can be received without blocking.
    public static let readable = PollEvents(rawValue: Int16(ZMQ_POLLIN))
    /// A message can be sent without blocking.
    public static let writable = PollEvents(rawValue: Int16(ZMQ_POLLOUT))
}

/// One ZeroMQ socket. Not thread-safe: one thread owns it from creation to `close()`.
///
/// Every operation that can wait takes a `dontWait` flag or goes through `ZMQPoller` with a
/// timeout, so the owning thread stays responsive to shutdown. Never call these from Swift's
/// cooperative thread pool (it has one thread per core here; a blocked one starves the rest).
public final class ZMQSocket {
    /// The socket's pattern.
    public let type: SocketType
    let handle: UnsafeMutableRawPointer
    private let context: ZMQContext
    // A zmq_msg_t must not move while libzmq uses it: keep one at a stable heap address.
    private let message: UnsafeMutablePointer<zmq_msg_t>
    private var isClosed = false
    /// The ZAP User-Id of the last message received (what the ZAP handler said about the
    /// peer's CURVE key, e.g. "operator:KEY"), or nil when no ZAP handler authenticated it.
    public private(set) var lastUserID: String?

    /// Opens a socket with a bounded linger (the libzmq default, forever, hangs shutdown).
    public convenience init(context: ZMQContext, type: SocketType, lingerMilliseconds: Int = 200) throws(ZMQError) {
        try self.init(context: context, type: type, rawType: type.rawValue, lingerMilliseconds: lingerMilliseconds)
    }

    /// Opens a socket of a libzmq type `SocketType` does not list (a monitor's PAIR), labelled `type`.
    private init(
        context: ZMQContext, type: SocketType, rawType: Int32, lingerMilliseconds: Int
    ) throws(ZMQError) {
        guard let handle = zmq_socket(context.handle, rawType) else {
            throw ZMQError.last("open \(type) socket")
        }
        self.type = type
        self.handle = handle
        self.context = context
        self.message = .allocate(capacity: 1)
        zmq_msg_init(message)
        try set(.linger(milliseconds: lingerMilliseconds))
    }

    deinit {
        close()
        zmq_msg_close(message)
        message.deallocate()
    }

    /// Closes the socket; pending outgoing messages get at most the linger period.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        zmq_close(handle)
    }

    /// Binds to `endpoint` (e.g. "tcp://127.0.0.1:*") and returns the endpoint actually bound,
    /// with the port chosen by the system when the request asked for `*`.
    @discardableResult
    public func bind(_ endpoint: String) throws(ZMQError) -> String {
        guard zmq_bind(handle, endpoint) == 0 else { throw ZMQError.last("bind \(endpoint)") }
        return try lastEndpoint()
    }

    /// Connects to `endpoint`. Returns at once; libzmq connects (and reconnects) in the background.
    public func connect(_ endpoint: String) throws(ZMQError) {
        guard zmq_connect(handle, endpoint) == 0 else { throw ZMQError.last("connect \(endpoint)") }
    }

    /// Drops the connection to `endpoint` made by `connect`.
    public func disconnect(_ endpoint: String) throws(ZMQError) {
        guard zmq_disconnect(handle, endpoint) == 0 else { throw ZMQError.last("disconnect \(endpoint)") }
    }

    /// The endpoint of the last `bind` or `connect` (ZMQ_LAST_ENDPOINT).
    public func lastEndpoint() throws(ZMQError) -> String {
        var buffer = [CChar](repeating: 0, count: 512)
        var size = buffer.count
        guard zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else {
            throw ZMQError.last("read ZMQ_LAST_ENDPOINT")
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Sets an option.
    public func set(_ option: SocketOption) throws(ZMQError) {
        switch option {
        case .linger(let ms): try setInt(ZMQ_LINGER, ms, "ZMQ_LINGER")
        case .sendHighWaterMark(let n): try setInt(ZMQ_SNDHWM, n, "ZMQ_SNDHWM")
        case .receiveHighWaterMark(let n): try setInt(ZMQ_RCVHWM, n, "ZMQ_RCVHWM")
        case .sendBuffer(let bytes): try setInt(ZMQ_SNDBUF, bytes, "ZMQ_SNDBUF")
        case .receiveBuffer(let bytes): try setInt(ZMQ_RCVBUF, bytes, "ZMQ_RCVBUF")
        case .maxMessageSize(let bytes):
            var value = Int64(bytes)
            try setRaw(ZMQ_MAXMSGSIZE, &value, MemoryLayout<Int64>.size, "ZMQ_MAXMSGSIZE=\(bytes)")
        case .reconnectInterval(let ms): try setInt(ZMQ_RECONNECT_IVL, ms, "ZMQ_RECONNECT_IVL")
        case .reconnectIntervalMax(let ms): try setInt(ZMQ_RECONNECT_IVL_MAX, ms, "ZMQ_RECONNECT_IVL_MAX")
        case .tcpKeepalive(let on): try setInt(ZMQ_TCP_KEEPALIVE, on ? 1 : 0, "ZMQ_TCP_KEEPALIVE")
        case .tcpKeepaliveIdle(let s): try setInt(ZMQ_TCP_KEEPALIVE_IDLE, s, "ZMQ_TCP_KEEPALIVE_IDLE")
        case .heartbeatInterval(let ms): try setInt(ZMQ_HEARTBEAT_IVL, ms, "ZMQ_HEARTBEAT_IVL")
        case .heartbeatTimeout(let ms): try setInt(ZMQ_HEARTBEAT_TIMEOUT, ms, "ZMQ_HEARTBEAT_TIMEOUT")
        case .subscribe(let prefix): try setBytes(ZMQ_SUBSCRIBE, prefix, "ZMQ_SUBSCRIBE")
        case .routingID(let id): try setBytes(ZMQ_ROUTING_ID, id, "ZMQ_ROUTING_ID")
        case .routerMandatory(let on): try setInt(ZMQ_ROUTER_MANDATORY, on ? 1 : 0, "ZMQ_ROUTER_MANDATORY")
        case .immediate(let on): try setInt(ZMQ_IMMEDIATE, on ? 1 : 0, "ZMQ_IMMEDIATE")
        case .curveServer(let on): try setInt(ZMQ_CURVE_SERVER, on ? 1 : 0, "ZMQ_CURVE_SERVER")
        case .curveSecretKey(let key): try setKey(ZMQ_CURVE_SECRETKEY, key, "ZMQ_CURVE_SECRETKEY")
        case .curvePublicKey(let key): try setKey(ZMQ_CURVE_PUBLICKEY, key, "ZMQ_CURVE_PUBLICKEY")
        case .curveServerKey(let key): try setKey(ZMQ_CURVE_SERVERKEY, key, "ZMQ_CURVE_SERVERKEY")
        }
    }

    private func setInt(_ name: Int32, _ value: Int, _ label: String) throws(ZMQError) {
        var int32 = Int32(clamping: value)
        try setRaw(name, &int32, MemoryLayout<Int32>.size, "\(label)=\(value)")
    }

    private func setBytes(_ name: Int32, _ bytes: [UInt8], _ label: String) throws(ZMQError) {
        let status = bytes.withUnsafeBytes { zmq_setsockopt(handle, name, $0.baseAddress, $0.count) }
        guard status == 0 else { throw ZMQError.last("set \(label)") }
    }

    private func setKey(_ name: Int32, _ key: String, _ label: String) throws(ZMQError) {
        // Z85 keys are 40 characters; libzmq takes them with a terminating NUL (41 bytes).
        guard key.utf8.count == 40 else {
            throw ZMQError(
                operation: "set \(label)", errno: EINVAL,
                message: "a CURVE key must be 40 characters of Z85, got \(key.utf8.count)")
        }
        try setBytes(name, Array(key.utf8) + [0], label)
    }

    private func setRaw(_ name: Int32, _ value: UnsafeRawPointer, _ size: Int, _ label: String) throws(ZMQError) {
        guard zmq_setsockopt(handle, name, value, size) == 0 else { throw ZMQError.last("set \(label)") }
    }

    /// Sends one message of one or more frames.
    ///
    /// - Returns: false when `dontWait` is set and the message could not be queued now (the
    ///   high-water mark of a PUSH/DEALER, or no peer yet); true when queued.
    @discardableResult
    public func send(_ frames: [[UInt8]], dontWait: Bool = false) throws(ZMQError) -> Bool {
        precondition(!frames.isEmpty, "a ZeroMQ message has at least one frame")
        for (index, frame) in frames.enumerated() {
            var flags: Int32 = dontWait ? ZMQ_DONTWAIT : 0
            if index < frames.count - 1 { flags |= ZMQ_SNDMORE }
            while true {
                let status = frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
                if status >= 0 { break }
                let error = ZMQError.last("send on \(type) socket")
                if error.isInterrupted { continue }
                // libzmq queues multipart messages atomically: EAGAIN comes on the first frame only.
                if error.isWouldBlock && index == 0 { return false }
                throw error
            }
        }
        return true
    }

    /// Sends a single-frame message (see `send(_:dontWait:)` for frames).
    @discardableResult
    public func send(_ bytes: [UInt8], dontWait: Bool = false) throws(ZMQError) -> Bool {
        try send([bytes], dontWait: dontWait)
    }

    /// Receives one whole message (all its frames).
    ///
    /// - Returns: nil when `dontWait` is set and nothing is waiting.
    public func receive(dontWait: Bool = false) throws(ZMQError) -> [[UInt8]]? {
        var frames: [[UInt8]] = []
        repeat {
            let flags: Int32 = (dontWait && frames.isEmpty) ? ZMQ_DONTWAIT : 0
            let size = zmq_msg_recv(message, handle, flags)
            if size < 0 {
                let error = ZMQError.last("receive on \(type) socket")
                if error.isInterrupted && !frames.isEmpty { continue }
                if error.isWouldBlock && frames.isEmpty { return nil }
                throw error
            }
            let data = zmq_msg_data(message)
            frames.append(
                [UInt8](unsafeUninitializedCapacity: Int(size)) { buffer, count in
                    if size > 0, let data {
                        buffer.baseAddress!.initialize(from: data.assumingMemoryBound(to: UInt8.self), count: Int(size))
                    }
                    count = Int(size)
                })
        } while zmq_msg_more(message) != 0
        // Metadata is per connection and the same on every frame: read it from the last one.
        lastUserID = zmq_msg_gets(message, "User-Id").map { String(cString: $0) }
        return frames
    }

    /// Starts reporting this socket's connection events on a new PAIR socket (`zmq_socket_monitor`):
    /// read them with `HandshakeMonitor.failures`. Call before `connect`.
    public func monitorHandshakes() throws(ZMQError) -> HandshakeMonitor {
        let address = "inproc://distill-monitor-\(UInt64.random(in: 1...UInt64.max))"
        let events =
            ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
            | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_SUCCEEDED
        guard zmq_socket_monitor(handle, address, events) == 0 else { throw ZMQError.last("monitor \(type) socket") }
        // A PAIR socket (labelled as the socket it watches; it is never sent on).
        let pair = try ZMQSocket(context: context, type: type, rawType: ZMQ_PAIR, lingerMilliseconds: 0)
        try pair.connect(address)
        return HandshakeMonitor(socket: pair)
    }

    /// The events the socket is ready for now, without waiting.
    public func readyEvents() throws(ZMQError) -> PollEvents {
        var events: Int32 = 0
        var size = MemoryLayout<Int32>.size
        guard zmq_getsockopt(handle, ZMQ_EVENTS, &events, &size) == 0 else {
            throw ZMQError.last("read ZMQ_EVENTS")
        }
        return PollEvents(rawValue: Int16(truncatingIfNeeded: events))
    }
}

/// Waits on several sockets at once (`zmq_poll`): the heart of every role's single loop.
public struct ZMQPoller {
    private var items: [zmq_pollitem_t] = []
    private var sockets: [ZMQSocket] = []

    /// Creates an empty poller.
    public init() {}

    /// Adds a socket to wait on; returns its index in `poll`'s result.
    @discardableResult
    public mutating func add(_ socket: ZMQSocket, events: PollEvents = .readable) -> Int {
        items.append(zmq_pollitem_t(socket: socket.handle, fd: 0, events: events.rawValue, revents: 0))
        sockets.append(socket)
        return items.count - 1
    }

    /// Waits until some socket is ready or `timeoutMilliseconds` pass (-1: forever, which the
    /// roles never use). Returns each socket's ready events, in the order added; all empty on
    /// timeout or when a signal interrupted the wait (the caller's loop checks for shutdown).
    public mutating func poll(timeoutMilliseconds: Int) throws(ZMQError) -> [PollEvents] {
        let count = items.count
        let status = items.withUnsafeMutableBufferPointer {
            zmq_poll($0.baseAddress, Int32(count), timeoutMilliseconds)
        }
        if status < 0 {
            let error = ZMQError.last("poll \(count) sockets")
            if error.isInterrupted { return Array(repeating: [], count: count) }
            throw error
        }
        return items.map { PollEvents(rawValue: $0.revents) }
    }
}

/// What happened to a socket's handshakes (CURVE authentication), read from its monitor.
public final class HandshakeMonitor {
    /// How a handshake ended.
    public enum Outcome: Sendable, Equatable {
        /// The server's ZAP handler refused this client's key (status code, e.g. 400).
        case refusedByServer(status: Int)
        /// The handshake failed for another reason (wrong server key, protocol mismatch).
        case failed
        /// A handshake succeeded.
        case succeeded
    }

    private let socket: ZMQSocket

    init(socket: ZMQSocket) { self.socket = socket }

    deinit { socket.close() }

    /// The handshake outcomes reported since the last call, oldest first (never waits).
    public func outcomes() -> [Outcome] {
        var result: [Outcome] = []
        while let frames = try? socket.receive(dontWait: true), let first = frames.first, first.count >= 6 {
            let event = Int32(first[0]) | Int32(first[1]) << 8
            let value = Int(first[2]) | Int(first[3]) << 8 | Int(first[4]) << 16 | Int(first[5]) << 24
            switch event {
            case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: result.append(.refusedByServer(status: value))
            case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: result.append(.succeeded)
            default: result.append(.failed)
            }
        }
        return result
    }
}
