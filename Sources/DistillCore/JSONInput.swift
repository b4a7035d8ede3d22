import Foundation

/// Decoding of MDP and teacher files from bytes (the command line reads the files; DistillCore
/// does no I/O). Every failure becomes a ``DistillError`` whose message names the field and, where
/// there is one, the state and action.
public enum JSONInput {
    /// Decodes and validates an MDP description (schema in README.md, "File formats").
    public static func mdp(from data: Data) throws -> TabularMDP {
        try decode(MDPDescription.self, from: data, what: "MDP").validated()
    }

    /// Decodes and validates a teacher table against `mdp`.
    public static func teacher(from data: Data, for mdp: TabularMDP) throws -> Teacher {
        try decode(TeacherDescription.self, from: data, what: "teacher").validated(for: mdp)
    }

    /// Decodes `T` from JSON; non-finite numbers may be written as the strings "NaN", "Infinity".
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data, what: String) throws -> T {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        do {
            return try decoder.decode(type, from: data)
        } catch let error as DecodingError {
            throw DistillError(.invalidDescription, "\(what) file: " + describe(error))
        } catch {
            throw DistillError(.invalidDescription, "\(what) file is not valid JSON: \(error.localizedDescription)")
        }
    }

    /// Spells a coding path the way our error messages do: `transitions[state 1][action 0][outcome 2].probability`.
    static func place(_ path: [any CodingKey]) -> String {
        var out = ""
        var indexNames: [String] = []
        for key in path {
            if let i = key.intValue {
                let name = indexNames.isEmpty ? "index" : indexNames.removeFirst()
                out += "[\(name) \(i)]"
            } else {
                out += out.isEmpty ? key.stringValue : "." + key.stringValue
                switch key.stringValue {
                case "transitions": indexNames = ["state", "action", "outcome"]
                case "policy", "q": indexNames = ["state", "action"]
                case "start", "terminal", "values": indexNames = ["state"]
                default: indexNames = []
                }
            }
        }
        return out.isEmpty ? "top level" : out
    }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, let context):
            let at = place(context.codingPath)
            return "missing field '\(key.stringValue)'" + (context.codingPath.isEmpty ? "" : " in \(at)")
        case .typeMismatch(let type, let context):
            return "\(place(context.codingPath)) has the wrong type (expected \(type))"
        case .valueNotFound(let type, let context):
            return "\(place(context.codingPath)) is null (expected \(type))"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return "not valid JSON (\(context.debugDescription))" }
            return "\(place(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}
