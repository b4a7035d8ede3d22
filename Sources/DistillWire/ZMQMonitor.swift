internal import CZeroMQ
import Foundation

/// A connection event of a monitored socket (`zmq_socket_monitor`).
public enum ConnectionEvent: Sendable, Equatable {
    /// A peer connected to a bound socket; the value is the connection's file descriptor.
    case accepted(descriptor: Int32)
    /// A connection ended; the value is the descriptor it had.
    case disconnected(descriptor: Int32)
    /// Any other event (handshakes, retries), by libzmq's event number.
    case other(event: UInt16, value: UInt32)
}

/// Watches the connections of one socket: libzmq reports them on an inproc PAIR socket, which
/// the owning thread polls with its other sockets (`socket`) and drains with `events()`.
public final class ZMQMonitor {
    /// The PAIR socket the events arrive on: add it to the role's `ZMQPoller`.
    public let socket: ZMQSocket

    /// Starts monitoring `target`'s accepted and ended connections. Call before `target`
    /// binds, so that no connection is missed.
    public init(_ target: ZMQSocket, context: ZMQContext) throws(ZMQError) {
        let endpoint = "inproc://distill-monitor-\(UUID().uuidString)"
        guard zmq_socket_monitor(target.handle, endpoint, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) == 0 else {
            throw ZMQError.last("zmq_socket_monitor \(endpoint)")
        }
        socket = try ZMQSocket(context: context, type: .pair, lingerMilliseconds: 0)
        // Events are small and drained every loop; a lost "disconnected" would leave a
        // connection counted for good.
        try socket.set(.receiveHighWaterMark(100_000))
        try socket.connect(endpoint)
    }

    /// The events waiting now, oldest first (never blocks).
    public func events() -> [ConnectionEvent] {
        var result: [ConnectionEvent] = []
        while let frames = try? socket.receive(dontWait: true) {
            guard let header = frames.first, header.count >= 6 else { continue }
            let event = UInt16(header[0]) | UInt16(header[1]) << 8
            let value = UInt32(header[2]) | UInt32(header[3]) << 8 | UInt32(header[4]) << 16 | UInt32(header[5]) << 24
            switch Int32(event) {
            case ZMQ_EVENT_ACCEPTED: result.append(.accepted(descriptor: Int32(bitPattern: value)))
            case ZMQ_EVENT_DISCONNECTED: result.append(.disconnected(descriptor: Int32(bitPattern: value)))
            default: result.append(.other(event: event, value: value))
            }
        }
        return result
    }

    /// Stops receiving events (closes the PAIR socket).
    public func close() {
        socket.close()
    }
}
