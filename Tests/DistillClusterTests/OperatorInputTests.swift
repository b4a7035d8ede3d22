import DistillRuntime
import DistillTestSupport
import Foundation
import Testing

/// Finding 11 of issue 10: every refusal of operator input is a non-zero exit with a message
/// saying what to do, before anything is bound or allocated.
@Suite("Operator input")
struct OperatorInputTests {
    struct Refusal: Sendable {
        var status: Int32?
        var stderr: String
        var stdout: [String]
        var seconds: Double
    }

    /// Runs `distill ARGUMENTS` to its end (at most 30 s).
    static func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> Refusal {
        try await onOwnThread {
            let started = Date()
            let process = try ChildProcess(arguments, environment: environment)
            let status = process.waitForExit(timeout: .seconds(30))
            return Refusal(
                status: status, stderr: process.standardError, stdout: process.output,
                seconds: Date().timeIntervalSince(started))
        }
    }

    @Test func portsOutsideOneTo65535AreRefusedInEveryEndpointFlag() async throws {
        // Before: libzmq bound 99999 mod 65536 = 34463 and said nothing.
        let learner = try await Self.run(
            ["learner"] + Roles.problem + [
                "--bind-control", "tcp://127.0.0.1:99999", "--bind-unrolls",
                "tcp://127.0.0.1:*", "--bind-params", "tcp://127.0.0.1:*",
            ])
        #expect(learner.status != nil && learner.status != 0)
        #expect(learner.stderr.contains("--bind-control") && learner.stderr.contains("1 to 65535"), "\(learner.stderr)")
        #expect(!learner.stdout.contains { $0.hasPrefix("endpoint") }, "nothing may be bound: \(learner.stdout)")
        let teacher = try await Self.run(["teacher"] + Roles.problem + ["--bind", "tcp://127.0.0.1:70000"])
        #expect(teacher.status != nil && teacher.status != 0)
        #expect(teacher.stderr.contains("--bind") && teacher.stderr.contains("70000"), "\(teacher.stderr)")
        let actor = try await Self.run(
            ["actor"] + Roles.problem.prefix(6) + [
                "--learner", "tcp://127.0.0.1:0", "--teacher", "tcp://127.0.0.1:5556",
            ])
        #expect(actor.status != nil && actor.status != 0)
        #expect(actor.stderr.contains("--learner") && actor.stderr.contains("1 to 65535"), "\(actor.stderr)")
    }

    @Test func aGridTooLargeForThisMachineIsRefusedBeforeAllocating() async throws {
        // Before: a 160 GB allocation and a crash with a backtrace.
        let learner = try await Self.run(["learner", "--env", "gridworld", "--grid-size", "100000"])
        #expect(learner.status != nil && learner.status != 0)
        #expect(learner.stderr.contains("--grid-size 100000"), "\(learner.stderr)")
        #expect(learner.stderr.contains("of memory") && learner.stderr.contains("or less on this machine"))
        #expect(!learner.stderr.contains("Fatal error") && !learner.stderr.contains("backtrace"))
        #expect(learner.seconds < 20)
        let overflowing = try await Self.run(["train", "--env", "gridworld", "--grid-size", "5000000000"])
        #expect(overflowing.status != nil && overflowing.status != 0)
        #expect(overflowing.stderr.contains("more than 16 EB") || overflowing.stderr.contains("of memory"))
    }

    @Test func negativeNumbersAreReadAsNumbersThenRangeChecked() async throws {
        // Before: "Missing value for '--steps <steps>'".
        let steps = try await Self.run(["learner", "--steps", "-5"])
        #expect(steps.status != nil && steps.status != 0)
        #expect(steps.stderr.contains("--steps must be positive, got -5"), "\(steps.stderr)")
        let inFlight = try await Self.run(
            [
                "actor", "--learner", "tcp://127.0.0.1:5559", "--teacher", "tcp://127.0.0.1:5556", "--max-in-flight",
                "-2",
            ])
        #expect(inFlight.stderr.contains("--max-in-flight must be at least 1, got -2"), "\(inFlight.stderr)")
        let fromEnvironment = try await Self.run(["learner"], environment: ["DISTILL_STEPS": "-5"])
        #expect(fromEnvironment.stderr.contains("--steps must be positive, got -5"), "\(fromEnvironment.stderr)")
        let interval = try await Self.run(["learner", "--checkpoint-interval", "-0.5"])
        #expect(interval.stderr.contains("--checkpoint-interval must be positive, got -0.5"), "\(interval.stderr)")
    }

    @Test func anActorTheLearnerRefusesExitsNonZero() async throws {
        // Before: "the learner refused this actor", then exit 0.
        let seen = try await onOwnThread { () -> (Int32?, String) in
            let learner = try Roles.learner()
            defer { learner.process.stop() }
            let actor = try ChildProcess([
                "actor", "--env", "gridworld", "--seed", "1", "--grid-size", "8", "--learner", learner.control,
                "--teacher", "tcp://127.0.0.1:9", "--id", "wrong-env",
            ])
            return (actor.waitForExit(timeout: .seconds(30)), actor.standardError)
        }
        #expect(seen.0 != nil && seen.0 != 0, "exit status \(String(describing: seen.0))")
        #expect(seen.1.contains("refused this actor") && seen.1.contains("same --env"), "\(seen.1)")
    }
}
