import DistillRuntime
import DistillTestSupport
import Foundation
import Logging
import Testing

/// Stopping is a token passed to each role (issue 10, item 2), not a process-global: two
/// learners run inside the test process, and stopping one leaves the other running.
@Suite("roles inside the test process")
struct InProcessRoleTests {
    /// Runs a learner on its own thread until `stop` is requested; returns when it ended.
    static func runLearner(_ directory: URL, stop: StopToken) async throws -> ContinuousClock.Instant {
        try await onOwnThread {
            var configuration = LearnerConfiguration(
                bindUnrolls: "tcp://127.0.0.1:*", bindParameters: "tcp://127.0.0.1:*",
                bindControl: "tcp://127.0.0.1:*")
            configuration.outputDirectory = directory
            configuration.checkpointDirectory = directory.appendingPathComponent("checkpoints")
            configuration.progressIntervalSeconds = 0
            var logger = Logger(label: "distill.test.learner")
            logger.logLevel = .warning
            let learner = try Learner(
                problem: LearnerCoreTests.problem, configuration: configuration,
                sender: .starting(role: .learner, id: directory.lastPathComponent), logger: logger, stop: stop)
            try learner.run()
            return ContinuousClock.now
        }
    }

    @Test func stoppingOneLearnersTokenStopsThatLearnerOnly() async throws {
        let (first, second) = (temporaryDirectory(), temporaryDirectory())
        defer { for directory in [first, second] { try? FileManager.default.removeItem(at: directory) } }
        let (stopFirst, stopSecond) = (StopToken(), StopToken())
        async let firstEnded = Self.runLearner(first, stop: stopFirst)
        async let secondEnded = Self.runLearner(second, stop: stopSecond)
        try await Task.sleep(for: .milliseconds(300))
        let firstAsked = ContinuousClock.now
        stopFirst.request()
        try await Task.sleep(for: .milliseconds(700))
        let secondAsked = ContinuousClock.now
        stopSecond.request()
        let (a, b) = try await (firstEnded, secondEnded)
        #expect(a - firstAsked < .milliseconds(500), "the first learner stops within a few poll turns")
        #expect(a < secondAsked && b >= secondAsked, "the second ran on until its own token was set")
        for directory in [first, second] {
            let data = try Data(contentsOf: directory.appendingPathComponent("summary.json"))
            let summary = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            #expect(summary["stopped_because"] as? String == "requested")
            #expect((summary["final_checkpoint"] as? String)?.hasPrefix("written") == true)
        }
    }
}
