import DistillCore
import DistillRuntime
import DistillTestSupport
import DistillWire
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Rusu's setting on a real learner process: the replay memory goes into the checkpoint at stop,
/// and the learner resumed from it (`--resume`) holds the same rows; one resumed with another
/// `--replay-size` says why its memory starts empty.
@Suite("network learner: the replay memory across a restart", .serialized)
struct NetworkReplayResumeTests {
    @Test func aResumedLearnerKeepsItsReplayMemory() async throws {
        let directory = Roles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let teacher = try NetworkGarbageTests.teacherFile(in: directory)
        let checkpoints = directory.appendingPathComponent("checkpoints")
        let logs = try await onOwnThread { () -> [String] in
            func learner(replaySize: Int, resume: Bool) throws -> ChildProcess {
                try ChildProcess(
                    [
                        "learner", "--env", "cartpole", "--teacher-file", teacher.path, "--student", "mlp:16",
                        "--method", "teacher-distill", "--replay-size", "\(replaySize)", "--replay-batch", "4",
                        "--no-reference-teacher", "--checkpoint-dir", checkpoints.path, "--bind-control",
                        "tcp://127.0.0.1:*", "--bind-unrolls", "tcp://127.0.0.1:*", "--bind-params",
                        "tcp://127.0.0.1:*",
                    ] + (resume ? ["--resume"] : []))
            }
            var logs: [String] = []
            let first = try learner(replaySize: 64, resume: false)
            let control = try first.endpoint("control")
            let context = try ZMQContext()
            let push = try ZMQSocket(context: context, type: .push, lingerMilliseconds: 0)
            try push.connect(try first.endpoint("unrolls"))
            Thread.sleep(forTimeInterval: 0.3)
            let me = Sender.starting(role: .actor, id: "a")
            for sequence in 1...5 {
                let unroll = NetworkGarbageTests.unroll(NetworkGarbageTests.episode(), sequence: UInt64(sequence))
                _ = try push.send(WireCodec().encode(Envelope(sender: me, message: .unroll(unroll))), dontWait: true)
            }
            // 5 episodes of 3 steps: 15 rows stored, an update owed per row once 4 are there.
            Roles.waitUntil(timeout: 30) { Roles.number(Roles.status(control), \.envSteps) >= 15 }
            push.close()
            first.send(signal: SIGTERM)
            _ = first.waitForExit(timeout: .seconds(30))
            logs.append(first.standardError)
            for size in [64, 32] {
                let resumed = try learner(replaySize: size, resume: true)
                _ = try resumed.endpoint("control")
                resumed.send(signal: SIGTERM)
                _ = resumed.waitForExit(timeout: .seconds(30))
                logs.append(resumed.standardError)
            }
            return logs
        }
        #expect(logs.count == 3)
        #expect(
            logs[1].contains("resumed the replay memory: 15 rows of 64, 15 appended"), "\(logs[1].suffix(1500))")
        #expect(
            logs[2].contains("the replay memory starts empty") && logs[2].contains("--replay-size is 32"),
            "\(logs[2].suffix(1500))")
    }
}
