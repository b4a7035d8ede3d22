import DistillCore
import DistillNN
import DistillRuntime
import DistillTestSupport
import DistillWire
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The network learner against garbage on its unroll socket, as a real process (issue 12's failure
/// tests on the network path): observation tensors of another shape, non-finite observations and
/// bytes that are no message are refused and counted, a message over `--max-message-bytes` costs
/// the sender its connection, and the network learns from none of them — before and after, honest
/// unrolls are learned from.
@Suite("network learner under garbage", .serialized)
struct NetworkGarbageTests {
    static let cartPole = CartPole()

    /// A CartPole teacher file for the learner's run (any network of the right shape: the test
    /// checks what the learner accepts, not what it learns).
    static func teacherFile(in directory: URL) throws -> URL {
        let description = cartPole.description
        let network = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: "mlp:8"), inputShape: description.observation.shape,
            actionCount: 2, seed: 4)
        let file = directory.appendingPathComponent("teacher.safetensors")
        try NetworkTeacher.save(
            network: network, kind: .policy, temperature: 1, observation: description.name,
            environment: .init(description), to: file)
        return file
    }

    /// A 3-step episode with `size` numbers per observation, each `value`.
    static func episode(size: Int = 4, value: Float = 0.01) -> ObservedEpisode {
        var episode = ObservedEpisode(actionCount: 2)
        episode.observationRows = [Float](repeating: value, count: 4 * size)
        episode.actions = [0, 1, 0]
        episode.rewards = [1, 1, 1]
        episode.behaviour = [0.5, 0.5, 0.5]
        episode.terminated = true
        episode.teacherProbabilities = [Double](repeating: 0.5, count: 8)
        episode.teacherLogProbabilities = [Double](repeating: Foundation.log(0.5), count: 8)
        episode.teacherValues = [0, 0, 0, 0]
        return episode
    }

    static func unroll(_ episode: ObservedEpisode, sequence: UInt64, shape: [Int] = [4]) -> Unroll {
        ObservedUnroll.unroll(
            [episode], spec: WireEnvironmentSpec(name: "CartPole-v1", observationShape: shape, actionCount: 2),
            sequence: sequence, parameterVersion: 0, teacherID: "net", teacherVersion: 1)
    }

    struct Observed: Sendable {
        var versionAfterHonest = -1.0
        var rejectedAfterGarbage = -1.0
        var versionAfterGarbage = -1.0
        var learnerAliveAfterOversized = false
        var versionAfterLastHonest = -1.0
        var log = ""
    }

    @Test func garbageAndOversizedObservationTensorsAreRefusedAndLearnNothing() async throws {
        let directory = Roles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let teacher = try Self.teacherFile(in: directory)
        let observed = try await onOwnThread { () -> Observed in
            var observed = Observed()
            let learner = try ChildProcess([
                "learner", "--env", "cartpole", "--teacher-file", teacher.path, "--student", "mlp:16",
                "--no-reference-teacher", "--episodes-per-iteration", "1", "--max-message-bytes", "65536",
                "--bind-control", "tcp://127.0.0.1:*", "--bind-unrolls", "tcp://127.0.0.1:*", "--bind-params",
                "tcp://127.0.0.1:*", "--metrics-interval", "0.2",
            ])
            let control = try learner.endpoint("control")
            let unrolls = try learner.endpoint("unrolls")
            let context = try ZMQContext()
            let codec = WireCodec()
            let me = Sender.starting(role: .actor, id: "attacker")
            func pusher() throws -> ZMQSocket {
                let push = try ZMQSocket(context: context, type: .push, lingerMilliseconds: 0)
                try push.connect(unrolls)
                return push
            }
            var push = try pusher()
            defer {
                push.close()
                learner.send(signal: SIGTERM)
                _ = learner.waitForExit(timeout: .seconds(30))
            }
            func send(_ unroll: Unroll) throws {
                _ = try push.send(codec.encode(Envelope(sender: me, message: .unroll(unroll))), dontWait: true)
            }
            func version() -> Double { Roles.number(Roles.status(control), \.version) }
            Thread.sleep(forTimeInterval: 0.3)

            try send(Self.unroll(Self.episode(), sequence: 1))
            Roles.waitUntil(timeout: 30) { version() >= 1 }
            observed.versionAfterHonest = version()

            // Another observation shape, non-finite observations, and bytes that are no message.
            try send(Self.unroll(Self.episode(size: 5), sequence: 2, shape: [5]))
            try send(Self.unroll(Self.episode(value: .nan), sequence: 3))
            _ = try push.send((0..<512).map { UInt8(truncatingIfNeeded: $0 &* 37) }, dontWait: true)
            Roles.waitUntil(timeout: 30) { Roles.number(Roles.status(control), \.rejected) >= 3 }
            Thread.sleep(forTimeInterval: 0.5)
            observed.rejectedAfterGarbage = Roles.number(Roles.status(control), \.rejected)
            observed.versionAfterGarbage = version()

            // An observation tensor over the learner's message limit: libzmq drops the connection.
            try send(Self.unroll(Self.episode(size: 5000), sequence: 4, shape: [5000]))
            Thread.sleep(forTimeInterval: 0.5)
            observed.learnerAliveAfterOversized = learner.isRunning && Roles.status(control) != nil
            push.close()
            push = try pusher()
            Thread.sleep(forTimeInterval: 0.3)
            try send(Self.unroll(Self.episode(), sequence: 5))
            Roles.waitUntil(timeout: 30) { version() >= observed.versionAfterGarbage + 1 }
            observed.versionAfterLastHonest = version()
            learner.send(signal: SIGTERM)
            _ = learner.waitForExit(timeout: .seconds(30))
            observed.log = learner.standardError
            return observed
        }
        #expect(observed.versionAfterHonest == 1, "\(observed.log.suffix(1500))")
        #expect(observed.rejectedAfterGarbage >= 3, "three refusals counted: \(observed.log.suffix(1500))")
        #expect(observed.versionAfterGarbage == 1, "no update from garbage")
        #expect(observed.log.contains("the unroll's observations are [5] float32"), "\(observed.log.suffix(1500))")
        #expect(observed.log.contains("is not finite"), "\(observed.log.suffix(1500))")
        #expect(observed.learnerAliveAfterOversized, "the learner survives an oversized message")
        #expect(observed.versionAfterLastHonest == 2, "an honest unroll afterwards is learned from")
    }
}
