import ArgumentParser
import DistillRuntime
import DistillWire
import Foundation

/// `distill control`: commands to a running learner (and through it, its actors).
struct ControlCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "control",
        abstract: "Send a command to a running learner: status, stop, swap-teacher, set-lambda.",
        discussion: """
            Anybody who reaches the learner may ask for its status. The other commands need an \
            operator: with CURVE and an allow-list, a key listed as "operator KEY" (--curve-key); \
            without, the run token the learner wrote at start (mode 0600) into its run directory: \
            give --run-dir RUN (the learner's --out, or --checkpoint-dir without --out; for \
            `distill cluster`, its --out) or --token-file RUN/run-token. See docs/security.md.

            Examples:
              distill control status --learner tcp://127.0.0.1:5559
              distill control swap-teacher --learner tcp://127.0.0.1:5559 --run-dir runs/x --to tcp://10.0.0.7:5556
              distill control set-lambda --learner tcp://127.0.0.1:5559 --run-dir runs/x --lambda 0.5
              distill control stop --learner tcp://127.0.0.1:5559 --token-file runs/x/run-token
              distill control stop --learner tcp://HOST:5559 --curve-key keys/ops.key --learner-key keys/learner.pub
            """,
        subcommands: [Status.self, Stop.self, SwapTeacher.self, SetLambda.self])

    struct Target: ParsableArguments {
        @Option(help: "The learner's control endpoint, tcp://HOST:PORT (or DISTILL_LEARNER).")
        var learner: String

        @Option(help: "Milliseconds to wait for the answer.")
        var timeoutMs = ControlClient.defaultTimeoutMilliseconds

        @Option(help: ArgumentHelp("This client's CURVE key pair, for a learner with CURVE.", valueName: "file"))
        var curveKey: String?

        @Option(help: ArgumentHelp("With --curve-key: the learner's CURVE public key.", valueName: "file"))
        var learnerKey: String?

        @Option(
            help: ArgumentHelp(
                "The learner's run token file (commands other than status, without CURVE operator keys).",
                valueName: "file"))
        var tokenFile: String?

        @Option(
            help: ArgumentHelp(
                "The learner's run directory (its --out, or `distill cluster --out`): reads its run-token.",
                valueName: "dir"))
        var runDir: String?

        func validate() throws {
            guard !learner.isEmpty else {
                throw ValidationError("give the learner's control endpoint with --learner tcp://HOST:PORT")
            }
            do { _ = try Endpoint(parsing: learner) } catch let error as RuntimeError {
                throw ValidationError(error.description)
            }
            if tokenFile != nil && runDir != nil { throw ValidationError("give --token-file or --run-dir, not both") }
        }

        /// The run token of --token-file or --run-dir, or "" when neither is given.
        func token() throws -> String {
            guard let file = tokenFile ?? runDir.map({ "\($0)/\(RunToken.fileName)" }) else { return "" }
            return try RunToken.read(URL(fileURLWithPath: file))
        }

        func send(_ command: Control) throws -> Control {
            do {
                var curve: CurveConfiguration?
                var serverKey: String?
                if let curveKey {
                    guard let learnerKey else { throw ValidationError("--curve-key needs --learner-key") }
                    curve = CurveConfiguration(keyPair: try KeyFiles.keyPair(curveKey, flag: "--curve-key"))
                    serverKey = try KeyFiles.publicKey(learnerKey, flag: "--learner-key")
                }
                let client = try ControlClient(
                    learner: learner, sender: .starting(role: .control, id: "control"), curve: curve,
                    learnerKey: serverKey, token: command.command == .status ? "" : try token())
                return try client.send(command, timeoutMilliseconds: timeoutMs)
            } catch let error as RuntimeError {
                Self.report(error)
            }
        }

        /// Prints `error` (and the variable a value it names came from) and exits with status 1.
        static func report(_ error: RuntimeError) -> Never {
            let lines =
                ["distill control: \(error.description)"] + CommandLineDriver.environmentOrigins(of: error.description)
            FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
            ControlCommand.exit(withError: ExitCode(1))
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the learner's status as JSON.")
        @OptionGroup var target: Target
        func run() throws {
            let answer = try target.send(Control(command: .status)).statusJSON
            // Printed as the learner wrote it, once it is known to be a status (docs/schemas/).
            do {
                _ = try RecordCoding.decode(
                    LearnerStatus.self, from: Data(answer.utf8), what: "the status answer of \(target.learner)")
            } catch let error as RuntimeError {
                Target.report(error)
            }
            emit(answer)
        }
    }

    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop the learner and its actors cleanly (final checkpoint and metrics).")
        @OptionGroup var target: Target
        func run() throws {
            _ = try target.send(Control(command: .stop))
            emit("stop accepted")
        }
    }

    struct SwapTeacher: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "swap-teacher", abstract: "Move every actor to another teacher server, restarting nothing.")
        @OptionGroup var target: Target
        @Option(help: "The new teacher server's endpoint, tcp://HOST:PORT.")
        var to: String
        func validate() throws {
            do { _ = try Endpoint(parsing: to) } catch let error as RuntimeError {
                throw ValidationError(error.description)
            }
        }
        func run() throws {
            _ = try target.send(Control(command: .swapTeacher, teacherEndpoint: to))
            emit("swap to \(to) accepted: actors move at once; unrolls name the teacher that made their targets")
        }
    }

    struct SetLambda: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-lambda", abstract: "Set the distillation weight λ (kickstarting) from now on.")
        @OptionGroup var target: Target
        @Option(help: "The new λ (>= 0).")
        var lambda: Float
        func validate() throws {
            guard lambda >= 0, lambda.isFinite else { throw ValidationError("--lambda must be a finite number >= 0") }
        }
        func run() throws {
            _ = try target.send(Control(command: .setLambda, lambdas: [lambda]))
            emit("λ = \(lambda) accepted")
        }
    }
}
