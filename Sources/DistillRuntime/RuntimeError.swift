/// A failure a user can act on: a bad flag value, an unreachable endpoint, an unreadable file.
/// The message says what was wrong and what to do; the code says which kind of failure it is, so
/// callers (the launcher, tests, scripts) can tell a bind failure from a checkpoint mismatch
/// without reading the message.
public struct RuntimeError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public enum Code: String, Sendable, CaseIterable, CustomStringConvertible {
        /// A flag, endpoint or configuration value was refused (fix the input).
        case invalidInput = "invalid-input"
        /// A socket could not be bound (the port is taken, or the address is not local).
        case bindFailed = "bind-failed"
        /// A socket could not be connected (a malformed endpoint).
        case connectFailed = "connect-failed"
        /// A checkpoint was written by a run with another configuration or shape.
        case checkpointMismatch = "checkpoint-mismatch"
        /// No checkpoint in the directory could be read.
        case checkpointUnreadable = "checkpoint-unreadable"
        /// A checkpoint could not be written (disk full, directory gone or read-only).
        case checkpointWriteFailed = "checkpoint-write-failed"
        /// A file or directory other than a checkpoint could not be read or written.
        case fileAccess = "file-access"
        /// A peer refused this process (another environment, an unknown key).
        case refusedByPeer = "refused-by-peer"
        /// A status answer, summary.json or metrics.csv did not have its documented form
        /// (docs/schemas/).
        case invalidRecord = "invalid-record"
        /// A peer did not answer in time.
        case noAnswer = "no-answer"
        /// The work would need more memory (or another resource) than the machine has.
        case resourceLimit = "resource-limit"
        /// A child process failed (the launcher).
        case childProcess = "child-process"
        /// Anything else.
        case other

        /// The code's name, as in logs.
        public var description: String { rawValue }
    }

    /// The kind of failure.
    public let code: Code
    /// What was wrong and what to do.
    public let description: String

    /// Creates an error with a message for a person and a code for a program.
    public init(_ description: String, code: Code = .other) {
        self.code = code
        self.description = description
    }
}
