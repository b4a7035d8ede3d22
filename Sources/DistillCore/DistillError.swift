/// An error a user of DistillCore can cause: a malformed MDP or teacher description, a
/// configuration that makes no sense, or a policy under which an episode never ends.
///
/// The message says what was wrong and where (field, state, action), so the command line can
/// print it as is.
public struct DistillError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of failure; new kinds may be added without breaking callers.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        enum Kind: Sendable, Hashable { case invalidDescription, invalidConfiguration, singularSystem }
        let kind: Kind
        /// A description (JSON MDP, teacher table) is malformed.
        public static let invalidDescription = Code(kind: .invalidDescription)
        /// A configuration value is out of range or inconsistent.
        public static let invalidConfiguration = Code(kind: .invalidConfiguration)
        /// A linear system (visits, values) is singular: some episode never ends.
        public static let singularSystem = Code(kind: .singularSystem)
        /// A short name of the code.
        public var description: String {
            switch kind {
            case .invalidDescription: "invalid description"
            case .invalidConfiguration: "invalid configuration"
            case .singularSystem: "singular system"
            }
        }
    }

    /// What kind of failure this is.
    public var code: Code
    /// A human-readable message naming the field and state at fault.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The message.
    public var description: String { message }
}
