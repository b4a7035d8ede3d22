import DistillCore
import DistillRuntime
import DistillTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Runs the built `distill` to its end: its status, stdout and stderr.
struct Ran: Sendable {
    var status: Int32
    var out: String
    var err: String

    /// `distill arguments`, with only `environment` (and PATH) in its environment.
    init(_ arguments: [String], environment: [String: String] = [:], directory: URL? = nil) throws {
        let process = Process()
        process.executableURL = ChildProcess.distillBinary
        process.arguments = arguments
        process.environment = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "COLUMNS": "100",
        ]
        .merging(environment) { $1 }
        if let directory { process.currentDirectoryURL = directory }
        let files = Roles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: files) }
        let outFile = files.appendingPathComponent("out")
        let errFile = files.appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: outFile.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errFile.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: outFile)
        process.standardError = try FileHandle(forWritingTo: errFile)
        try process.run()
        process.waitUntilExit()
        status = process.terminationStatus
        out = (try? String(contentsOf: outFile, encoding: .utf8)) ?? ""
        err = (try? String(contentsOf: errFile, encoding: .utf8)) ?? ""
    }
}

/// Help snapshots: `distill PATH --help` of every command equals Tests/Snapshots/help/distill-PATH.txt
/// (regenerate with scripts/update-help-snapshots), so every change of help text is reviewed.
@Suite("Help snapshots")
struct HelpSnapshotTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Snapshots/help")

    /// Every command path, from argument-parser's dump (as the script walks it).
    static func paths() throws -> [[String]] {
        struct Command: Decodable {
            var commandName: String
            var subcommands: [Command]?
        }
        struct Tool: Decodable { var command: Command }
        let dump = try Ran(["--experimental-dump-help"])
        let root = try JSONDecoder().decode(Tool.self, from: Data(dump.out.utf8)).command
        func walk(_ command: Command, _ path: [String]) -> [[String]] {
            [path]
                + (command.subcommands ?? []).filter { $0.commandName != "help" }.flatMap {
                    walk($0, path + [$0.commandName])
                }
        }
        return walk(root, [])
    }

    @Test func everyCommandsHelpMatchesItsSnapshot() throws {
        let paths = try Self.paths()
        #expect(paths.count > 20)
        var failures: [String] = []
        for path in paths {
            let name = (["distill"] + path).joined(separator: "-") + ".txt"
            let file = Self.directory.appendingPathComponent(name)
            let help = try Ran(path + ["--help"]).out
            guard let snapshot = try? String(contentsOf: file, encoding: .utf8) else {
                failures.append("no snapshot \(name): run scripts/update-help-snapshots")
                continue
            }
            if help != snapshot { failures.append("\(name) differs:\n" + Self.diff(snapshot, help)) }
        }
        let snapshots = (try? FileManager.default.contentsOfDirectory(atPath: Self.directory.path)) ?? []
        let expected = Set(paths.map { (["distill"] + $0).joined(separator: "-") + ".txt" })
        for stale in snapshots where !expected.contains(stale) { failures.append("stale snapshot \(stale)") }
        #expect(
            failures.isEmpty,
            "\(failures.joined(separator: "\n"))\nIf the change is meant, run scripts/update-help-snapshots and commit."
        )
    }

    /// No option's help restates the default argument-parser prints after it.
    @Test func noHelpTextRestatesItsDefault() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path)
        var twice: [String] = []
        for file in files {
            let text = try String(contentsOf: Self.directory.appendingPathComponent(file), encoding: .utf8)
            // One entry per option: a line starting with "  -" and its continuation lines.
            for entry in text.components(separatedBy: "\n  -") {
                let flat = entry.split(whereSeparator: \.isWhitespace).joined(separator: " ")
                if flat.components(separatedBy: "(default").count > 2 { twice.append("\(file): -\(flat.prefix(120))") }
            }
        }
        #expect(twice.isEmpty, "defaults printed twice:\n\(twice.joined(separator: "\n"))")
    }

    /// A line diff: the lines of `old` missing from `new` (-) and the other way round (+).
    static func diff(_ old: String, _ new: String) -> String {
        let a = old.components(separatedBy: "\n")
        let b = new.components(separatedBy: "\n")
        let difference = b.difference(from: a)
        return difference.map { change in
            switch change {
            case .remove(let offset, let line, _): "  -\(offset + 1): \(line)"
            case .insert(let offset, let line, _): "  +\(offset + 1): \(line)"
            }
        }.joined(separator: "\n")
    }
}

/// Errors a newcomer hits: "did you mean", the variable a value came from, the failing
/// subcommand's usage, one meaning of --teacher.
@Suite("Command-line errors")
struct CommandLineErrorTests {
    @Test func misspeltSubcommandGetsASuggestion() throws {
        let ran = try Ran(["clustr"])
        #expect(ran.status == 64)
        #expect(ran.err.contains("Did you mean 'cluster'?"), "\(ran.err)")
        let nested = try Ran(["control", "stauts"])
        #expect(nested.err.contains("Did you mean 'status'?"), "\(nested.err)")
    }

    @Test func misspeltValuesGetASuggestion() throws {
        for (arguments, meant) in [
            (["train", "--env", "gridwrld"], "gridworld"), (["train", "--method", "ndistill+R"], "n-distill+R"),
            (["train", "--teacher", "optimla"], "optimal"),
        ] {
            let ran = try Ran(arguments)
            #expect(ran.status == 64)
            #expect(ran.err.contains("Did you mean '\(meant)'?"), "\(arguments): \(ran.err)")
        }
    }

    @Test func aBadValueFromTheEnvironmentNamesTheVariable() throws {
        let ran = try Ran(["train", "--iterations", "0"], environment: ["DISTILL_ENV": "chian"])
        #expect(ran.status == 64)
        #expect(ran.err.contains("DISTILL_ENV"), "\(ran.err)")
        #expect(ran.err.contains("Did you mean 'chain'?"), "\(ran.err)")
        let validation = try Ran(
            ["cluster", "--env", "chain"], environment: ["DISTILL_ACTORS": "0"])
        #expect(validation.err.contains("--actors must be at least 1"), "\(validation.err)")
        #expect(validation.err.contains("DISTILL_ACTORS"), "\(validation.err)")
    }

    @Test func anUnknownVariableIsWarnedAboutWithASuggestion() throws {
        let ran = try Ran(
            ["train", "--env", "chain", "--teacher", "optimal", "--iterations", "1", "--quiet"],
            environment: ["DISTILL_ITERATONS": "5"])
        #expect(ran.status == 0)
        #expect(ran.err.contains("DISTILL_ITERATONS"), "\(ran.err)")
        #expect(ran.err.contains("did you mean DISTILL_ITERATIONS?"), "\(ran.err)")
        // A variable of another command (one environment for several roles) is no typo.
        let shared = try Ran(
            ["train", "--env", "chain", "--teacher", "optimal", "--iterations", "1", "--quiet"],
            environment: ["DISTILL_LEARNER": "tcp://127.0.0.1:5559"])
        #expect(!shared.err.contains("warning"), "\(shared.err)")
    }

    @Test func problemFlagsBesideConfigAreReportedAsIgnored() throws {
        let directory = Roles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("run.json").path
        #expect(try Ran(["cluster", "--env", "chain", "--write-config", file]).status == 0)
        let ran = try Ran(
            ["cluster", "--config", file, "--seed", "3", "--write-config", file + ".copy"],
            environment: ["DISTILL_METHOD": "n-distill"])
        #expect(ran.status == 0)
        #expect(ran.err.contains("--config replaces the problem flags; ignored: --seed, --method"), "\(ran.err)")
    }

    /// Rusu's replay options: refused with the reason where they cannot apply.
    @Test func replayOptionsAreRefusedWhereTheyCannotApply() throws {
        let cartpole = ["train", "--env", "cartpole", "--student", "mlp:8", "--teacher-file", "missing.safetensors"]
        for (arguments, reason) in [
            (cartpole + ["--method", "n-distill", "--replay-size", "100"], "score-function"),
            (cartpole + ["--method", "on-policy-distill", "--replay-size", "100"], "teacher controls"),
            (
                cartpole + ["--method", "teacher-distill-kl", "--control", "mixture", "--replay-size", "100"],
                "--control mixture"
            ),
            (
                cartpole + ["--method", "teacher-distill-kl", "--replay-size", "10", "--replay-batch", "11"],
                "--replay-batch"
            ),
            (
                cartpole + ["--method", "teacher-distill-kl", "--replay-size", "100", "--replay-ratio", "0"],
                "--replay-ratio"
            ),
            (cartpole + ["--method", "teacher-distill-kl", "--replay-batch", "8"], "--replay-size N"),
            (["train", "--env", "chain", "--method", "teacher-distill", "--replay-size", "100"], "network student"),
        ] {
            let ran = try Ran(arguments)
            #expect(ran.status == 64, "\(arguments): \(ran.err)")
            #expect(ran.err.contains(reason), "\(arguments): \(ran.err)")
        }
    }

    @Test func validationErrorsPrintTheSubcommandsUsage() throws {
        let ran = try Ran(["cluster", "--actors", "0"])
        #expect(ran.status == 64)
        #expect(ran.err.contains("Usage: distill cluster"), "\(ran.err)")
        #expect(!ran.err.contains("Usage: distill <subcommand>"), "\(ran.err)")
    }

    @Test func actorsTeacherEndpointIsTeacherServerAndTheOldSpellingStillWorks() throws {
        // An invalid --learner stops the actor at validation, after the flags were read.
        let old = try Ran(["actor", "--learner", "nowhere", "--teacher", "tcp://127.0.0.1:5556"])
        #expect(old.err.contains("--teacher is deprecated"), "\(old.err)")
        #expect(old.err.contains("'nowhere' is not a TCP endpoint"), "\(old.err)")
        let variable = try Ran(
            ["actor", "--learner", "nowhere"], environment: ["DISTILL_TEACHER": "tcp://127.0.0.1:5556"])
        #expect(variable.err.contains("DISTILL_TEACHER_SERVER"), "\(variable.err)")
        #expect(variable.err.contains("'nowhere' is not a TCP endpoint"), "\(variable.err)")
        // Both set: the new spelling wins (an invalid old value would fail validation).
        let both = try Ran(
            ["actor", "--learner", "nowhere"],
            environment: ["DISTILL_TEACHER": "not-an-endpoint", "DISTILL_TEACHER_SERVER": "tcp://127.0.0.1:5556"])
        #expect(both.err.contains("'nowhere' is not a TCP endpoint"), "\(both.err)")
        #expect(!both.err.contains("not-an-endpoint' is not"), "\(both.err)")
        let help = try Ran(["actor", "--help"]).out
        #expect(help.contains("--teacher-server <teacher-server>"))
    }
}

/// Issue 10, item 4: a setting's default lives on its configuration type and the options print
/// that one; a value from a `DISTILL_*` variable is named when an error found after parsing (a port
/// taken, a learner that does not answer) names the value.
@Suite("One default per setting, and where a value came from")
struct SettingOriginTests {
    /// The default each command's `--help` prints, by command path and flag (argument-parser's dump).
    static func printedDefaults() throws -> [String: [String: String]] {
        struct Name: Decodable { var name: String }
        struct Argument: Decodable {
            var names: [Name]?
            var defaultValue: String?
        }
        struct Command: Decodable {
            var commandName: String
            var subcommands: [Command]?
            var arguments: [Argument]?
        }
        struct Tool: Decodable { var command: Command }
        let dump = try Ran(["--experimental-dump-help"])
        var defaults: [String: [String: String]] = [:]
        func walk(_ command: Command, _ path: [String]) {
            for argument in command.arguments ?? [] {
                guard let value = argument.defaultValue, let name = argument.names?.first?.name else { continue }
                defaults[path.joined(separator: " "), default: [:]]["--" + name] = value
            }
            for sub in command.subcommands ?? [] { walk(sub, path + [sub.commandName]) }
        }
        walk(try JSONDecoder().decode(Tool.self, from: Data(dump.out.utf8)).command, [])
        return defaults
    }

    @Test func optionsPrintTheDefaultsOfTheirConfigurationTypes() throws {
        let printed = try Self.printedDefaults()
        let learner = LearnerConfiguration(bindUnrolls: "", bindParameters: "", bindControl: "")
        let method = MethodSpec()
        let expected: [(command: String, flag: String, value: String)] = [
            ("learner", "--publish-every", "\(learner.publishEveryUpdates)"),
            ("learner", "--publish-interval-ms", "\(learner.publishIntervalMilliseconds)"),
            ("learner", "--checkpoint-interval", "\(learner.checkpointIntervalSeconds)"),
            ("learner", "--metrics-interval", "\(learner.metricsIntervalSeconds)"),
            ("learner", "--progress-interval", "\(learner.progressIntervalSeconds)"),
            ("learner", "--actor-timeout-ms", "\(learner.actorTimeoutMilliseconds)"),
            ("learner", "--max-actors", "\(learner.maxActors)"),
            ("learner", "--unroll-queue-mb", "\(learner.unrollQueueBytes >> 20)"),
            ("learner", "--swap-window", "\(learner.swapWindowSeconds)"),
            ("learner", "--unroll-steps", "\(ActorSettings.defaultUnrollSteps)"),
            (
                "actor", "--max-in-flight",
                "\(ActorConfiguration(learner: .init(host: "h", port: 1), teacher: "", seed: 0).maxUnrollsInFlight)"
            ),
            ("cluster", "--progress-interval", "\(LauncherConfiguration.defaultProgressIntervalSeconds)"),
            ("control status", "--timeout-ms", "\(ControlClient.defaultTimeoutMilliseconds)"),
            ("train", "--learning-rate", "\(method.learningRate)"),
            ("train", "--episodes-per-iteration", "\(method.episodesPerIteration)"),
            ("train", "--max-episode-steps", "\(method.maxEpisodeSteps)"),
            ("learner", "--learning-rate", "\(method.learningRate)"),
            ("learner", "--episodes-per-iteration", "\(method.episodesPerIteration)"),
            ("learner", "--max-episode-steps", "\(method.maxEpisodeSteps)"),
        ]
        for (command, flag, value) in expected {
            #expect(printed[command]?[flag] == value, "distill \(command) \(flag)")
        }
    }

    @Test func aLearnerThatDoesNotAnswerNamesTheVariableItsEndpointCameFrom() throws {
        let ran = try Ran(
            ["control", "status", "--timeout-ms", "200"], environment: ["DISTILL_LEARNER": "tcp://127.0.0.1:1"])
        #expect(ran.status == 1)
        #expect(ran.err.contains("no answer from the learner at tcp://127.0.0.1:1"), "\(ran.err)")
        #expect(ran.err.contains("(--learner came from the environment variable DISTILL_LEARNER)"), "\(ran.err)")
        // Given on the command line, it names no variable.
        let given = try Ran(["control", "status", "--timeout-ms", "200", "--learner", "tcp://127.0.0.1:1"])
        #expect(given.status == 1 && !given.err.contains("environment variable"), "\(given.err)")
    }

    @Test func aTakenPortNamesTheVariableTheEndpointCameFrom() throws {
        let factory = try SocketFactory()
        let holder = try factory.open(.pull)
        defer { holder.close() }
        let taken = try factory.bind(holder, "tcp://127.0.0.1:*", purpose: "test")
        let ran = try Ran(
            [
                "learner", "--env", "chain", "--teacher", "optimal", "--bind-unrolls", "tcp://127.0.0.1:*",
                "--bind-params", "tcp://127.0.0.1:*",
            ], environment: ["DISTILL_BIND_CONTROL": taken])
        #expect(ran.status == 1)
        #expect(ran.err.contains("cannot bind the control socket to \(taken)"), "\(ran.err)")
        #expect(
            ran.err.contains("(--bind-control came from the environment variable DISTILL_BIND_CONTROL)"), "\(ran.err)")
    }
}
