import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The process's stop signals: SIGINT, SIGTERM, and its launcher vanishing. `install()` routes
/// them to the `StopToken` it returns, which the `distill` command hands to its role.
///
/// Every role's poll loop wakes at least every few tens of milliseconds and asks its token;
/// nothing else interrupts it, so a stop is always clean: final checkpoint, metrics flushed,
/// sockets closed with a bounded linger.
public enum StopSignal {
    private static let signalNumber = Atomic<Int32>(0)
    private static let expectedParent = Atomic<Int32>(0)

    /// The environment variable a launcher sets to its pid, so a child notices when it dies.
    public static let parentVariable = "DISTILL_PARENT_PID"

    /// Routes SIGINT and SIGTERM to the returned token (instead of killing the process) and
    /// ignores SIGPIPE. When `DISTILL_PARENT_PID` is set, a changed parent also counts as a stop
    /// request, so a role never outlives a launcher killed with SIGKILL.
    public static func install() -> StopToken {
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
        return StopToken(followingSignals: true)
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

    /// The name of the signal that asked for the stop ("SIGTERM", "SIGINT", "signal N"), if one did.
    static var signalName: String? {
        switch signalNumberReceived {
        case SIGINT?: "SIGINT"
        case SIGTERM?: "SIGTERM"
        case let number?: "signal \(number)"
        case nil: nil
        }
    }
}
