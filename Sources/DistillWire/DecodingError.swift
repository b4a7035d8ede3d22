/// Why bytes received from the network were rejected by `WireCodec`.
///
/// Every error says what was wrong in words a person can act on; `code` lets programs count
/// and answer (`ErrorReply.Code`) without parsing the message.
public struct DecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The class of a decoding error. New codes may be added; switch with a default.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Kind: String, Sendable, Hashable {
            case malformed, unsupportedVersion, unexpectedType, tooLarge, invalidField, unauthorized
        }
        private let kind: Kind

        /// Not a protobuf `Envelope` at all.
        public static let malformed = Code(kind: .malformed)
        /// A protocol version this build does not speak.
        public static let unsupportedVersion = Code(kind: .unsupportedVersion)
        /// A valid message of another type than the one expected.
        public static let unexpectedType = Code(kind: .unexpectedType)
        /// Larger than the maximum message size.
        public static let tooLarge = Code(kind: .tooLarge)
        /// A field is missing, out of range, not finite, or inconsistent with another.
        public static let invalidField = Code(kind: .invalidField)
        /// Well-formed, but its sender may not send it: a key without the role, a sender id bound
        /// to another key, a teacher id the receiver never announced.
        public static let unauthorized = Code(kind: .unauthorized)

        /// The code's name.
        public var description: String { kind.rawValue }

        /// The code to send back in an `ErrorReply`.
        public var replyCode: ErrorReply.Code {
            switch kind {
            case .malformed, .invalidField: .malformed
            case .unauthorized: .incompatible
            case .unsupportedVersion: .unsupportedVersion
            case .unexpectedType: .unexpectedType
            case .tooLarge: .tooLarge
            }
        }
    }

    /// The class of the error.
    public let code: Code
    /// What was wrong, e.g. "Unroll.rewards[3] is nan: every float must be finite".
    public let message: String

    /// Creates a decoding error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The message, prefixed by the code.
    public var description: String { "\(code): \(message)" }
}
