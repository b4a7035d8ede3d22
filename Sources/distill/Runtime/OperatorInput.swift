import ArgumentParser
import DistillRuntime

/// Operator input the argument parser would misread or accept too readily.
enum OperatorInput {
    /// `--steps -5` as `--steps=-5`: argument-parser takes a token starting with `-` for a flag
    /// ("Missing value for '--steps'"), so a negative number never reached the range checks
    /// that say what is wrong. Only a long option followed by a negative number is joined, and
    /// nothing after `--`; no valid command line had such a pair, so none changes meaning.
    static func joiningNegativeValues(_ arguments: [String]) -> [String] {
        var result: [String] = []
        result.reserveCapacity(arguments.count)
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" {
                result += arguments[index...]
                break
            }
            if argument.hasPrefix("--"), !argument.contains("="), index + 1 < arguments.count,
                isNegativeNumber(arguments[index + 1])
            {
                result.append(argument + "=" + arguments[index + 1])
                index += 2
                continue
            }
            result.append(argument)
            index += 1
        }
        return result
    }

    private static func isNegativeNumber(_ text: String) -> Bool {
        guard text.count > 1, text.hasPrefix("-") else { return false }
        let rest = text.dropFirst()
        return Double(rest) != nil || rest.lowercased() == "inf" || rest.lowercased() == "nan"
    }

    /// Checks a `tcp://HOST:PORT` flag value (port 1–65535, or `*` where `bindable`), naming
    /// the flag in the message.
    static func endpoint(_ value: String, flag: String) throws {
        do {
            _ = try Endpoint(parsing: value)
        } catch let error as RuntimeError {
            throw ValidationError("\(flag): \(error.description)")
        }
    }

    /// "--NAME must be positive, got VALUE" unless `value > 0`.
    static func positive<T: Comparable & Numeric>(_ value: T?, _ flag: String) throws {
        if let value, value <= 0 { throw ValidationError("\(flag) must be positive, got \(value)") }
    }

    /// "--NAME must be at least MIN, got VALUE" unless `value >= minimum`.
    static func atLeast<T: Comparable>(_ value: T, _ minimum: T, _ flag: String) throws {
        if value < minimum { throw ValidationError("\(flag) must be at least \(minimum), got \(value)") }
    }
}
