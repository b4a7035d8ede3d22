import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Why a role should stop: a signal, its launcher vanishing, or its own decision (steps reached).
///
/// Every role's poll loop wakes at least every few tens of milliseconds and asks `isRequested`;
/// nothing else interrupts it, so a stop is always clean: final checkpoint, metrics flushed,
/// sockets closed with a bounded linger.
public enum StopSignal {
    private static let signalNumber = Atomic<Int32>(0)
    private static let requestedByCode = Atomic<Bool>(false)
    private static let expectedParent = Atomic<Int32>(0)

    /// The environment variable a launcher sets to its pid, so a child notices when it dies.
    public static let parentVariable = "DISTILL_PARENT_PID"

    /// Routes SIGINT and SIGTERM to `isRequested` (instead of killing the process) and ignores
    /// SIGPIPE. When `DISTILL_PARENT_PID` is set, a changed parent also counts as a stop request,
    /// so a role never outlives a launcher killed with SIGKILL.
    public static func install() {
        // A parent may have spawned us with these signals blocked (the mask is inherited):
        // unblock them, or SIGTERM would never reach the handler.
        var mask = sigset_t()
        sigemptyset(&mask)
        sigaddset(&mask, SIGINT)
        sigaddset(&mask, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &mask, nil)
        Glibc.signal(SIGINT) { number in StopSignal.signalNumber.store(number, ordering: .relaxed) }
        Glibc.signal(SIGTERM) { number in StopSignal.signalNumber.store(number, ordering: .relaxed) }
        Glibc.signal(SIGPIPE, SIG_IGN)
        if let value = ProcessInfo.processInfo.environment[parentVariable], let pid = Int32(value) {
            expectedParent.store(pid, ordering: .relaxed)
        }
    }

    /// Asks the current process to stop, as a signal would.
    public static func request() {
        requestedByCode.store(true, ordering: .relaxed)
    }

    /// The signal that asked for the stop, if one did.
    public static var signalNumberReceived: Int32? {
        let number = signalNumber.load(ordering: .relaxed)
        return number == 0 ? nil : number
    }

    /// True when the launcher that started this process has died.
    public static var parentVanished: Bool {
        let expected = expectedParent.load(ordering: .relaxed)
        return expected != 0 && getppid() != expected
    }

    /// True once a stop was asked for, by a signal, by `request()`, or by the launcher's death.
    public static var isRequested: Bool {
        signalNumberReceived != nil || requestedByCode.load(ordering: .relaxed) || parentVanished
    }

    /// A phrase for logs: "SIGTERM", "SIGINT", "launcher exited", "requested".
    public static var reason: String {
        switch signalNumberReceived {
        case SIGINT?: "SIGINT"
        case SIGTERM?: "SIGTERM"
        case let number?: "signal \(number)"
        case nil: parentVanished ? "launcher exited" : "requested"
        }
    }
}
