/// A failure a user can act on: a bad flag value, an unreachable endpoint, an unreadable file.
/// The message says what was wrong and what to do.
public struct RuntimeError: Error, Sendable, CustomStringConvertible {
    /// What was wrong and what to do.
    public let description: String

    /// Creates an error with a message for a person.
    public init(_ description: String) {
        self.description = description
    }
}
