import Logging

/// Control characters in text that may come from a peer (ids, endpoints, teacher ids, error
/// messages) made visible, so that a newline in `Sender.id` cannot forge a log line, a carriage
/// return cannot overwrite one on a terminal, and an escape sequence cannot drive the terminal.
///
/// C0 controls, DEL, C1 controls, the Unicode line and paragraph separators and the bidirectional
/// overrides become `\n`, `\r`, `\t` or `\u{XX}`; a backslash stays as it is (an escaped line
/// is for reading, not for parsing back).
public func logSafe(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: needsEscape) else { return text }
    var result = ""
    result.reserveCapacity(text.utf8.count + 8)
    for scalar in text.unicodeScalars {
        guard needsEscape(scalar) else {
            result.unicodeScalars.append(scalar)
            continue
        }
        switch scalar {
        case "\n": result += "\\n"
        case "\r": result += "\\r"
        case "\t": result += "\\t"
        default: result += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
        }
    }
    return result
}

private func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x00...0x1F, 0x7F...0x9F: true
    case 0x2028, 0x2029: true  // line and paragraph separators
    case 0x202A...0x202E, 0x2066...0x2069: true  // bidirectional embeddings, overrides, isolates
    default: false
    }
}

/// A log handler that escapes control characters (see `logSafe`) in every message and metadata
/// value before another handler writes them: one log call is one line, whatever a peer put in
/// the strings it logs. The roles' commands install it around their stderr handler.
public struct EscapingLogHandler: LogHandler {
    private var wrapped: any LogHandler

    /// Wraps `handler`.
    public init(_ handler: any LogHandler) {
        wrapped = handler
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { wrapped.metadataProvider }
        set { wrapped.metadataProvider = newValue }
    }

    public var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }

    public var metadata: Logger.Metadata {
        get { wrapped.metadata }
        set { wrapped.metadata = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { wrapped[metadataKey: key] }
        set { wrapped[metadataKey: key] = newValue }
    }

    public func log(event: LogEvent) {
        var safe = event
        safe.message = Logger.Message(stringLiteral: logSafe(event.message.description))
        safe.metadata = event.metadata.map(Self.escape)
        wrapped.log(event: safe)
    }

    private static func escape(_ metadata: Logger.Metadata) -> Logger.Metadata {
        var result: Logger.Metadata = [:]
        for (key, value) in metadata { result[logSafe(key)] = escape(value) }
        return result
    }

    private static func escape(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): .string(logSafe(text))
        case .stringConvertible(let convertible): .string(logSafe(convertible.description))
        case .dictionary(let dictionary): .dictionary(escape(dictionary))
        case .array(let array): .array(array.map(escape))
        }
    }
}

/// Thins a log line a peer can trigger: the first `burst` occurrences are logged, then only
/// the 2^k-th (as `RejectionLog` does for rejected messages), so no peer can flood the log.
/// Lines are counted per kind (a key chosen by the caller), and the count is in the line.
public struct LogThrottle: Sendable {
    private var counts: [String: UInt64] = [:]
    /// Occurrences logged one by one before thinning starts.
    public let burst: UInt64
    /// Kinds remembered at most (peers cannot grow this table either).
    public let maxKinds: Int

    /// Creates a throttle that logs the first `burst` lines of each kind in full.
    public init(burst: UInt64 = 10, maxKinds: Int = 64) {
        self.burst = burst
        self.maxKinds = maxKinds
    }

    /// Counts one occurrence of `kind`; returns `line` (with the count once thinning started)
    /// when it should be logged, nil when it should stay silent.
    public mutating func admit(_ kind: String, _ line: @autoclosure () -> String) -> String? {
        if counts[kind] == nil && counts.count >= maxKinds { counts.removeAll(keepingCapacity: true) }
        let count = counts[kind, default: 0] + 1
        counts[kind] = count
        guard count <= burst || count & (count - 1) == 0 else { return nil }
        return count > burst ? "\(line()) (\(count) times so far; logging every power of two)" : line()
    }
}
