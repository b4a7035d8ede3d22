import Synchronization

/// Whether a role should stop, and why: passed to each role, so that a role can run (and be
/// stopped) inside a test process without touching any other.
///
/// A role asks `isRequested` at every turn of its poll loop and calls `request()` when it
/// decides to stop itself (an operator's stop command, a refusal it cannot recover from). The
/// `distill` command's token comes from `StopSignal.install()`, which also counts SIGINT,
/// SIGTERM and the launcher's death as a request; a token made with `init()` is stopped by
/// `request()` only.
public final class StopToken: Sendable {
    private let requested = Atomic<Bool>(false)
    private let followsSignals: Bool

    /// A token that only `request()` sets.
    public convenience init() { self.init(followingSignals: false) }

    /// A token that `request()` sets, and, when `followingSignals`, the signals and launcher
    /// death `StopSignal.install()` watches.
    init(followingSignals: Bool) {
        followsSignals = followingSignals
    }

    /// Asks the role holding this token to stop, cleanly, at its next turn.
    public func request() {
        requested.store(true, ordering: .relaxed)
    }

    /// True once a stop was asked for: by `request()`, or (for the process's token) by a signal
    /// or the launcher's death.
    public var isRequested: Bool {
        requested.load(ordering: .relaxed)
            || (followsSignals && (StopSignal.signalNumberReceived != nil || StopSignal.parentVanished))
    }

    /// A phrase for logs: "SIGTERM", "SIGINT", "launcher exited", "requested".
    public var reason: String {
        if followsSignals, let signal = StopSignal.signalName { return signal }
        if followsSignals && StopSignal.parentVanished { return "launcher exited" }
        return "requested"
    }
}
