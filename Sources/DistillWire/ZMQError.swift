internal import CZeroMQ

#if canImport(Glibc)
    import Glibc
#endif

/// A libzmq call failed. Carries the operation, libzmq's errno and its message.
public struct ZMQError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was being done, e.g. "bind tcp://127.0.0.1:5556".
    public let operation: String
    /// The errno libzmq reported.
    public let errno: Int32
    /// libzmq's description of `errno` (`zmq_strerror`).
    public let message: String

    /// Creates an error for `operation` from libzmq's current errno.
    static func last(_ operation: String) -> ZMQError {
        let code = zmq_errno()
        return ZMQError(operation: operation, errno: code, message: String(cString: zmq_strerror(code)))
    }

    init(operation: String, errno: Int32, message: String) {
        self.operation = operation
        self.errno = errno
        self.message = message
    }

    /// True when the call would have blocked (EAGAIN): nothing to receive, or a full queue.
    public var isWouldBlock: Bool { errno == EAGAIN }
    /// True when the context is being terminated (ETERM): the owner should close the socket.
    public var isTerminated: Bool { errno == ETERM }
    /// True when a signal interrupted the call (EINTR): retry or check for shutdown.
    public var isInterrupted: Bool { errno == EINTR }

    /// "operation: message (errno N)".
    public var description: String { "\(operation): \(message) (errno \(errno))" }
}
