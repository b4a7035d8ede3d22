import DistillWire
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Caps the connections of one bound socket: beyond `limit` live connections, each new one is
/// shut down as it is accepted (libzmq then closes it and forgets it). With a per-connection
/// bound on what a peer can queue (`UnrollBudget`), this makes the bound global.
///
/// libzmq reports connections asynchronously: an accepted descriptor may, rarely, have been
/// closed and reused by the time its event is read. The cap then cuts a newer connection to the
/// same socket, whose peer reconnects (ZeroMQ peers always do); it never touches a file, since
/// `shutdown` works on sockets only.
final class ConnectionCap {
    let monitor: ZMQMonitor
    let limit: Int
    private var live: Set<Int32> = []
    /// Connections cut so far.
    private(set) var refused: UInt64 = 0

    init(_ socket: ZMQSocket, context: ZMQContext, limit: Int) throws {
        monitor = try ZMQMonitor(socket, context: context)
        self.limit = limit
    }

    /// Connections open now.
    var connections: Int { live.count }

    /// Applies the events waiting; returns how many connections it cut.
    @discardableResult
    func update() -> Int {
        var cut = 0
        for event in monitor.events() {
            switch event {
            case .accepted(let descriptor):
                if live.count >= limit {
                    shutdown(descriptor, Int32(SHUT_RDWR))
                    refused += 1
                    cut += 1
                } else {
                    live.insert(descriptor)
                }
            case .disconnected(let descriptor):
                live.remove(descriptor)
            case .other:
                break
            }
        }
        return cut
    }
}
