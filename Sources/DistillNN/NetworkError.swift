/// An error a user can cause with an architecture string, a network file or an optimiser state.
///
/// `message` says what was wrong (naming the file and the field) and what to do.
public struct NetworkError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of error; new kinds may be added without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case architecture, shape, safetensors, networkFile, optimizerState
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// An architecture string that does not parse, or does not fit the input shape.
        public static let architecture = Code(.architecture)
        /// A tensor or input whose shape does not fit.
        public static let shape = Code(.shape)
        /// A malformed safetensors file or buffer.
        public static let safetensors = Code(.safetensors)
        /// A well-formed safetensors file that is not a network of this architecture.
        public static let networkFile = Code(.networkFile)
        /// An optimiser state that does not fit the optimiser or the parameters.
        public static let optimizerState = Code(.optimizerState)

        public var description: String { base.rawValue }
    }

    /// The kind of error.
    public let code: Code
    /// What was wrong and what to do.
    public let message: String

    /// An error of `code` with `message`.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
