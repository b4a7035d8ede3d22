import DistillCore
import DistillRuntime
import DistillTestSupport
import DistillWire
import Foundation
import Logging
import Testing

/// Issue 10, item 3: callers tell failures apart by code, not by reading the message.
@Suite("Runtime error codes")
struct RuntimeErrorCodeTests {
    @Test func aCheckpointOfAnotherRunIsAMismatchAndATakenPortIsABindFailure() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var spec = EnvironmentSpec()
        spec.kind = .chain
        let environment = try spec.build()
        func problem(_ configuration: String) -> LearnerProblem {
            LearnerProblem(
                environment: environment, environmentIdentity: "chain", method: MethodSpec(), teacherKind: nil,
                referenceTeacher: nil, unrollSteps: 100, configurationJSON: configuration)
        }
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let sender = Sender.starting(role: .learner, id: "learner")
        // A checkpoint written by a run with another configuration.
        let rows = environment.mdp.stateCount * environment.mdp.actionCount
        try CheckpointStore(directory: directory).write(
            Checkpoint(
                version: 3, shape: [environment.mdp.stateCount, environment.mdp.actionCount],
                parameters: Array(repeating: 0, count: rows), optimiserState: [], optimiserSteps: 0, critic: [],
                envSteps: 0, updates: 3, rngState: [], configurationJSON: #"{"run":"A"}"#, createdUnixMilliseconds: 1),
            sender: sender)
        var configuration = LearnerConfiguration(
            bindUnrolls: "tcp://127.0.0.1:*", bindParameters: "tcp://127.0.0.1:*", bindControl: "tcp://127.0.0.1:*")
        configuration.checkpointDirectory = directory
        let mismatch = try #require(throws: RuntimeError.self) {
            _ = try Learner(
                problem: problem(#"{"run":"B"}"#), configuration: configuration, sender: sender, logger: logger,
                stop: StopToken())
        }
        #expect(mismatch.code == .checkpointMismatch)

        let factory = try SocketFactory()
        let first = try factory.open(.pull)
        let second = try factory.open(.pull)
        defer { for socket in [first, second] { socket.close() } }
        let bound = try factory.bind(first, "tcp://127.0.0.1:*", purpose: "unroll")
        let taken = try #require(throws: RuntimeError.self) { try factory.bind(second, bound, purpose: "unroll") }
        #expect(taken.code == .bindFailed)
        let outOfRange = try #require(throws: RuntimeError.self) {
            try factory.bind(second, "tcp://127.0.0.1:99999", purpose: "unroll")
        }
        #expect(outOfRange.code == .invalidInput)
    }

    @Test func unreadableCheckpointsAndBadEndpointsHaveTheirCodes() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data("garbage".utf8).write(to: directory.appendingPathComponent(CheckpointStore.fileName(version: 1)))
        let unreadable = try #require(throws: RuntimeError.self) { try CheckpointStore(directory: directory).latest() }
        #expect(unreadable.code == .checkpointUnreadable)
        let endpoint = try #require(throws: RuntimeError.self) { try Endpoint(parsing: "tcp://host:70000") }
        #expect(endpoint.code == .invalidInput)
        #expect(Set(RuntimeError.Code.allCases.map(\.description)).count == RuntimeError.Code.allCases.count)
    }

    @Test func badAllowListsMissingRunTokensAndSilentLearnersHaveTheirCodes() throws {
        let allowList = try #require(throws: RuntimeError.self) {
            try AllowList.parse("boss " + String(repeating: "a", count: 40))
        }
        #expect(allowList.code == .invalidInput, "\(allowList)")
        let directory = DistillTestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let token = try #require(throws: RuntimeError.self) {
            try RunToken.read(directory.appendingPathComponent(RunToken.fileName))
        }
        #expect(token.code == .fileAccess, "\(token)")
        // Nobody listens on this port: the client connects in the background and hears nothing.
        let factory = try SocketFactory()
        let placeholder = try factory.open(.router)
        let endpoint = try factory.bind(placeholder, "tcp://127.0.0.1:*", purpose: "test")
        placeholder.close()
        let client = try ControlClient(learner: endpoint, sender: .starting(role: .tool, id: "test"))
        let silent = try #require(throws: RuntimeError.self) { try client.status(timeoutMilliseconds: 200) }
        #expect(silent.code == .noAnswer, "\(silent)")
    }
}
