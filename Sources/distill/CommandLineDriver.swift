import ArgumentParser
import DistillRuntime
import Foundation

/// The parts of argument-parser's structured help (`ToolInfoV0`, what `--experimental-dump-help`
/// prints) this tool reads: commands, their flags and the values an option accepts. Decoding the
/// dump rather than scraping the help text keeps the flag list exactly argument-parser's own.
struct CommandInfo: Decodable, Sendable {
    struct Name: Decodable, Sendable {
        var kind: String
        var name: String
    }

    struct Argument: Decodable, Sendable {
        var kind: String
        var names: [Name]?
        var allValues: [String]?
        /// The heading of the option group it belongs to, if titled.
        var sectionTitle: String?

        /// `--name` for each long name.
        var longFlags: [String] { (names ?? []).filter { $0.kind == "long" }.map { "--" + $0.name } }
        var isFlag: Bool { kind == "flag" }
    }

    var commandName: String
    var subcommands: [CommandInfo]?
    var arguments: [Argument]?

    private struct Tool: Decodable { var command: CommandInfo }

    /// The whole `distill` tree, from argument-parser's dump.
    static let root: CommandInfo = {
        do {
            return try JSONDecoder().decode(Tool.self, from: Data(Distill._dumpHelp().utf8)).command
        } catch {
            fatalError("argument-parser's help dump did not decode: \(error)")
        }
    }()

    /// Flags argument-parser adds to every command; they never come from the environment.
    static let builtIn: Set<String> = [
        "--help", "--version", "--experimental-dump-help", "--generate-completion-script",
    ]

    /// The command `arguments` name (following leading subcommand names) and how many words name it.
    func resolve(_ arguments: [String]) -> (command: CommandInfo, path: [String]) {
        var command = self
        var path: [String] = []
        for word in arguments {
            guard let next = command.subcommands?.first(where: { $0.commandName == word }) else { break }
            command = next
            path.append(word)
        }
        return (command, path)
    }

    /// The argument with long flag `flag`.
    func argument(_ flag: String) -> Argument? {
        arguments?.first { $0.longFlags.contains(flag) }
    }

    /// Every long flag of this command (built-in ones aside).
    var flags: [String] {
        (arguments ?? []).flatMap(\.longFlags).filter { !Self.builtIn.contains($0) }
    }

    /// Every long flag of this command and of its subcommands, recursively.
    var allFlags: Set<String> {
        Set(flags).union((subcommands ?? []).flatMap(\.allFlags))
    }

    /// Whether this command takes subcommands and no positional argument of its own.
    var onlyDispatches: Bool {
        !(subcommands ?? []).isEmpty && !(arguments ?? []).contains { $0.kind == "positional" }
    }
}

/// "Did you mean": the candidate closest to a misspelt word by edit distance.
enum Suggestion {
    /// Levenshtein distance: insertions, deletions and substitutions, each costing 1; a swap of
    /// two neighbouring letters (the commonest typo) costs 1 too (optimal string alignment).
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[a.count][b.count]
    }

    /// The closest candidate, if it is close enough to be what was meant (at most a third of the
    /// word's letters wrong, at least 2 allowed); ties go to the candidate of the word's length,
    /// then to the first.
    static func closest(to word: String, among candidates: [String]) -> String? {
        let limit = max(2, word.count / 3)
        var best: (candidate: String, rank: (Int, Int))?
        for candidate in candidates {
            let distance = editDistance(word.lowercased(), candidate.lowercased())
            let rank = (distance, abs(candidate.count - word.count))
            if distance <= limit, best.map({ rank < $0.rank }) ?? true { best = (candidate, rank) }
        }
        return best?.candidate
    }
}

/// Flags renamed so that one spelling means one thing everywhere; the old spelling still works
/// (with a warning) for a while.
enum RenamedFlags {
    /// (command path, old flag, new flag, why).
    static let table: [(path: [String], old: String, new: String, why: String)] = [
        (
            ["actor"], "--teacher", "--teacher-server",
            "--teacher names a teacher kind in every other command; the actor's endpoint flag is --teacher-server"
        )
    ]

    /// `arguments` with old spellings replaced; a warning for each replacement.
    static func apply(_ arguments: [String]) -> (arguments: [String], warnings: [String]) {
        let (_, path) = CommandInfo.root.resolve(arguments)
        var result = arguments
        var warnings: [String] = []
        for rename in table where rename.path == path {
            for (index, word) in result.enumerated() where index >= path.count {
                if word == rename.old {
                    result[index] = rename.new
                } else if word.hasPrefix(rename.old + "=") {
                    result[index] = rename.new + word.dropFirst(rename.old.count)
                } else {
                    continue
                }
                warnings.append(
                    "\(rename.old) is deprecated in `distill \(path.joined(separator: " "))`: \(rename.why)")
            }
        }
        return (result, warnings)
    }
}

/// Reads `DISTILL_*` environment variables as flags of the subcommand being run, so cluster
/// engines (Slurm, Kubernetes) can configure roles through the environment:
/// `DISTILL_BIND_UNROLLS=tcp://*:5557` is `--bind-unrolls tcp://*:5557`. A flag given on the
/// command line wins over the environment. The flags are argument-parser's own (its help dump).
enum EnvironmentFlags {
    /// Variables that configure the process or the scripts around it rather than a flag.
    static let reserved: Set<String> = [
        StopSignal.parentVariable, BuildInfo.launcherVariable, "DISTILL_BINARY", "DISTILL_PYTHON", "DISTILL_SLURM_DIR",
        "DISTILL_PORT_BASE",
        "DISTILL_PROBLEM", "DISTILL_RENDEZVOUS", "DISTILL_STATIC_BINARY",
    ]

    /// What the environment added to a command line.
    struct Resolution {
        /// The command line with the environment's flags appended.
        var arguments: [String]
        /// The variable each added flag came from.
        var sources: [String: String] = [:]
        var warnings: [String] = []
        var errors: [String] = []
    }

    /// `--bind-unrolls` for `DISTILL_BIND_UNROLLS`.
    static func flag(for variable: String) -> String {
        "--" + variable.dropFirst("DISTILL_".count).lowercased().replacingOccurrences(of: "_", with: "-")
    }

    /// `DISTILL_BIND_UNROLLS` for `--bind-unrolls`.
    static func variable(for flag: String) -> String {
        "DISTILL_" + flag.dropFirst(2).uppercased().replacingOccurrences(of: "-", with: "_")
    }

    static func resolve(_ arguments: [String], environment: [String: String]) -> Resolution {
        var resolution = Resolution(arguments: arguments)
        let (command, path) = CommandInfo.root.resolve(arguments)
        let everyFlag = CommandInfo.root.allFlags.subtracting(CommandInfo.builtIn)
        let renamed = RenamedFlags.table.filter { $0.path == path }
        // Deprecated spellings last, so that the new one wins when both are set.
        func deprecated(_ key: String) -> Int { renamed.contains { $0.old == flag(for: key) } ? 1 : 0 }
        let variables = environment.sorted { (deprecated($0.key), $0.key) < (deprecated($1.key), $1.key) }
        for (key, value) in variables where key.hasPrefix("DISTILL_") && !reserved.contains(key) {
            var flag = flag(for: key)
            if let rename = renamed.first(where: { $0.old == flag }) {
                resolution.warnings.append(
                    "\(key) is deprecated for `distill \(path.joined(separator: " "))`: use \(variable(for: rename.new)) "
                        + "(\(rename.why))")
                flag = rename.new
            }
            guard !path.isEmpty, let argument = command.argument(flag), !CommandInfo.builtIn.contains(flag) else {
                // A variable for another command (one environment for several roles) is fine;
                // one that no command knows is a typo.
                if !everyFlag.contains(flag) {
                    let known = everyFlag.map(variable(for:)).sorted()
                    let hint = Suggestion.closest(to: key, among: known).map { " (did you mean \($0)?)" } ?? ""
                    resolution.warnings.append("\(key) is not a setting of any distill command; ignored\(hint)")
                }
                continue
            }
            // The command line wins; so does an earlier variable for the same flag (DISTILL_TEACHER_SERVER
            // over the deprecated DISTILL_TEACHER, which comes last).
            let given = argument.longFlags.contains { name in
                resolution.arguments.contains { $0 == name || $0.hasPrefix(name + "=") }
            }
            guard !given else { continue }
            if argument.isFlag {
                switch value.lowercased() {
                case "1", "true", "yes": resolution.arguments.append(flag)
                case "0", "false", "no", "":
                    // An inverted flag (--baseline / --no-baseline) takes the negative spelling.
                    let negative = "--no-" + flag.dropFirst(2)
                    if argument.longFlags.contains(negative) { resolution.arguments.append(negative) }
                default:
                    resolution.errors.append(
                        "\(key)=\(value): \(flag) is a flag; set \(key) to 1, true, yes, 0, false or no")
                    continue
                }
            } else {
                resolution.arguments += [flag, value]
            }
            resolution.sources[flag] = key
        }
        return resolution
    }
}

/// Runs `distill`: environment flags, parsing, and errors with the failing subcommand's usage,
/// "did you mean" and the variable a bad value came from.
enum CommandLineDriver {
    static func run(_ arguments: [String], environment: [String: String]) -> Never {
        let (renamedArguments, renameWarnings) = RenamedFlags.apply(arguments)
        var resolution = EnvironmentFlags.resolve(renamedArguments, environment: environment)
        // Negative values joined to their flags (`--steps -5` → `--steps=-5`) after the variables
        // are in, so that those from DISTILL_* variables are read as numbers too.
        resolution.arguments = OperatorInput.joiningNegativeValues(resolution.arguments)
        for warning in renameWarnings + resolution.warnings { printError("distill: warning: \(warning)") }
        let (info, path) = CommandInfo.root.resolve(resolution.arguments)
        let commandName = (["distill"] + path).joined(separator: " ")
        if let error = resolution.errors.first {
            printError("Error: \(error)\n  See '\(commandName) --help' for more information.")
            Distill.exit(withError: ExitCode.validationFailure)
        }
        if info.onlyDispatches, let word = resolution.arguments.dropFirst(path.count).first, !word.hasPrefix("-") {
            let names = (info.subcommands ?? []).map(\.commandName)
            let hint = Suggestion.closest(to: word, among: names).map { " Did you mean '\($0)'?" } ?? ""
            printError(
                "Error: '\(word)' is not a command of \(commandName).\(hint)\n"
                    + "  See '\(commandName) --help' for the list.")
            Distill.exit(withError: ExitCode.validationFailure)
        }
        if let ignored = ignoredByConfig(resolution.arguments, command: info) {
            printError("distill: warning: --config replaces the problem flags; ignored: \(ignored)")
        }
        var command: any ParsableCommand
        do {
            command = try Distill.parseAsRoot(resolution.arguments)
        } catch {
            fail(error, command: info, name: commandName, resolution: resolution, usage: nil)
        }
        do {
            try command.run()
        } catch {
            let usage = Distill.usageString(for: type(of: command))
            fail(error, command: info, name: commandName, resolution: resolution, usage: usage)
        }
        Distill.exit()
    }

    /// The problem flags (their group's title mentions --config) given beside --config, which
    /// replaces them; nil when there are none.
    static func ignoredByConfig(_ arguments: [String], command: CommandInfo) -> String? {
        guard arguments.contains(where: { $0 == "--config" || $0.hasPrefix("--config=") }) else { return nil }
        let problem = Set(
            (command.arguments ?? []).filter { $0.sectionTitle?.contains("--config") == true }.flatMap(\.longFlags))
        let given = arguments.map { String($0.prefix { $0 != "=" }) }.filter { problem.contains($0) }
        return given.isEmpty ? nil : given.joined(separator: ", ")
    }

    /// Reports `error` and exits: help and version as argument-parser prints them, errors with hints.
    /// `usage` is the failing subcommand's usage for errors thrown after parsing.
    static func fail(
        _ error: any Error, command: CommandInfo, name: String, resolution: EnvironmentFlags.Resolution,
        usage: String?
    ) -> Never {
        let code = Distill.exitCode(for: error)
        guard code != .success, !(error is ExitCode) else { Distill.exit(withError: error) }
        var lines: [String]
        if let usage, let validation = error as? ValidationError {
            lines = [
                "Error: \(validation.message)", "Usage: \(usage)", "  See '\(name) --help' for more information.",
            ]
        } else {
            lines = Distill.fullMessage(for: error).components(separatedBy: "\n")
        }
        let hints = self.hints(for: lines.joined(separator: "\n"), command: command, resolution: resolution)
        // After the error's own lines (the list of values, if any), before "Help:" and "Usage:".
        let end = lines.firstIndex { $0.hasPrefix("Help:") || $0.hasPrefix("Usage:") } ?? lines.count
        lines.insert(contentsOf: hints, at: end)
        printError(lines.joined(separator: "\n"))
        Distill.exit(withError: ExitCode(code.rawValue))
    }

    /// "Did you mean" for a misspelt value or flag, and the variable a value came from.
    static func hints(for message: String, command: CommandInfo, resolution: EnvironmentFlags.Resolution) -> [String] {
        var hints: [String] = []
        if let (value, flag) = captures(message, #"The value '([^']*)' is invalid for '(--[A-Za-z0-9-]+)"#),
            let values = command.argument(flag)?.allValues,
            let close = Suggestion.closest(to: value, among: values)
        {
            hints.append("Did you mean '\(close)'?")
        }
        if !message.contains("Did you mean"),
            let (flag, _) = captures(message, #"Unknown option '(--[A-Za-z0-9-]+)'()"#),
            let close = Suggestion.closest(to: flag, among: command.flags)
        {
            hints.append("Did you mean '\(close)'?")
        }
        return hints + environmentOrigins(of: message, resolution: resolution)
    }

    /// "(--FLAG came from the environment variable DISTILL_FLAG)" for each flag set from the
    /// environment that `message` names, by its flag or by its value: errors found after parsing
    /// (a port taken, a learner that does not answer) name the endpoint, not the flag.
    static func environmentOrigins(of message: String, resolution: EnvironmentFlags.Resolution) -> [String] {
        let mentioned = Set(matches(message, #"--[a-z0-9][a-z0-9-]*"#))
        func value(of flag: String) -> String? {
            guard let index = resolution.arguments.lastIndex(of: flag), index + 1 < resolution.arguments.count
            else { return nil }
            return resolution.arguments[index + 1]
        }
        return resolution.sources.sorted(by: { $0.key < $1.key }).compactMap { flag, variable in
            // Values of a few characters ("0", "yes") would be found in unrelated messages.
            let named =
                mentioned.contains(flag) || value(of: flag).map { $0.count >= 4 && message.contains($0) } == true
            return named ? "(\(flag) came from the environment variable \(variable))" : nil
        }
    }

    /// `environmentOrigins` for this process's own command line and environment, for errors a
    /// command reports itself (a role's failure, `distill control`'s).
    static func environmentOrigins(of message: String) -> [String] {
        let environment = ProcessInfo.processInfo.environment
        let (arguments, _) = RenamedFlags.apply(Array(CommandLine.arguments.dropFirst()))
        return environmentOrigins(
            of: message, resolution: EnvironmentFlags.resolve(arguments, environment: environment))
    }

    private static func captures(_ text: String, _ pattern: String) -> (String, String)? {
        guard let regex = try? NSRegularExpression(pattern: pattern),
            let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
            let first = Range(match.range(at: 1), in: text), let second = Range(match.range(at: 2), in: text)
        else { return nil }
        return (String(text[first]), String(text[second]))
    }

    private static func matches(_ text: String, _ pattern: String) -> [String] {
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return [] }
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap {
            Range($0.range, in: text).map { String(text[$0]) }
        }
    }

    static func printError(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
