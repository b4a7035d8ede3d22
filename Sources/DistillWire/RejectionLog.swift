/// Counts rejected messages by code and decides which to log, so a peer spraying garbage
/// cannot flood the log: the first `burst` rejections are logged, then only the 2^k-th.
public struct RejectionLog: Sendable {
    /// Rejections so far, by error code name.
    public private(set) var counts: [String: UInt64] = [:]
    /// Rejections so far, all codes.
    public private(set) var total: UInt64 = 0
    /// How many rejections are logged one by one before thinning starts.
    public let burst: UInt64

    /// Creates an empty log that logs the first `burst` rejections in full.
    public init(burst: UInt64 = 10) {
        self.burst = burst
    }

    /// Records a rejection; returns the line to log, or nil when this one should stay silent.
    public mutating func record(_ error: DecodingError, from peer: String) -> String? {
        total += 1
        counts[error.code.description, default: 0] += 1
        guard total <= burst || total & (total - 1) == 0 else { return nil }
        let suffix = total > burst ? " (\(total) rejected so far; logging every power of two)" : ""
        return "rejected a message from \(peer): \(error)\(suffix)"
    }

    /// "malformed=3 tooLarge=1", sorted by code name; "none" when nothing was rejected.
    public var summary: String {
        counts.isEmpty
            ? "none" : counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }
}
