import DistillRuntime
import DistillTestSupport
import DistillWire
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A resumed learner serves exactly the parameters of the checkpoint it resumed from (issue 15:
/// a restore that skipped the logits passed every test that checked version numbers only).
@Suite("Checkpoint restore", .serialized)
struct ResumeParametersTests {
    struct Seen: Sendable {
        var checkpoint: Checkpoint?
        var served: Parameters?
        /// The checkpoint the resumed learner writes when stopped before learning anything.
        var rewritten: Checkpoint?
        var notes: [String: Double] = [:]
    }

    @Test func resumedLearnerServesTheCheckpointsParameters() async throws {
        let seen = try await onOwnThread {
            var seen = Seen()
            let checkpoints = Roles.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: checkpoints) }
            let (teacher, teacherEndpoint) = try Roles.teacher()
            // Adam, so the optimiser has state (moments and a step count) to restore.
            let extra = ["--checkpoint-dir", checkpoints.path, "--checkpoint-interval", "0.3", "--optimiser", "adam"]
            var learner = try Roles.learner(extra: extra)
            let actor = try Roles.actor(learner: learner.control, teacher: teacherEndpoint, id: "trainer")
            defer { for process in [actor, teacher, learner.process] { process.stop() } }
            seen.notes["learned 100 versions after s"] =
                Roles.waitUntil(timeout: 60) { Roles.number(Roles.status(learner.control), \.version) > 100 } ?? -1
            // No actor: nothing changes the parameters after the final checkpoint of a clean stop.
            actor.stop()
            learner.process.send(signal: SIGTERM)
            seen.notes["first learner exit status"] = Double(learner.process.waitForExit(timeout: .seconds(60)) ?? -1)
            seen.checkpoint = try CheckpointStore(directory: checkpoints).latest()?.checkpoint

            learner = try Roles.learner(
                control: learner.control, unrolls: learner.unrolls, params: learner.params,
                extra: extra + ["--resume"])
            let context = try ZMQContext()
            let dealer = try ZMQSocket(context: context, type: .dealer, lingerMilliseconds: 0)
            defer { dealer.close() }
            try dealer.connect(learner.control)
            let codec = WireCodec()
            let me = Sender.starting(role: .tool, id: "resume-test")
            let deadline = ContinuousClock.now + .seconds(60)
            var poller = ZMQPoller()
            poller.add(dealer)
            while seen.served == nil && ContinuousClock.now < deadline {
                _ = try dealer.send(codec.encode(Envelope(sender: me, message: .getParams(GetParams(haveVersion: 0)))))
                guard try !poller.poll(timeoutMilliseconds: 1000)[0].isEmpty,
                    let frames = try dealer.receive(dontWait: true), let payload = frames.last,
                    case .parameters(let parameters) = try codec.decode(payload).message
                else { continue }
                seen.served = parameters
            }
            learner.process.send(signal: SIGTERM)
            seen.notes["resumed learner exit status"] = Double(learner.process.waitForExit(timeout: .seconds(60)) ?? -1)
            seen.rewritten = try CheckpointStore(directory: checkpoints).latest()?.checkpoint
            return seen
        }
        print("resume: \(seen.notes)")
        let checkpoint = try #require(seen.checkpoint)
        let served = try #require(seen.served, "the resumed learner answered GetParams")
        #expect(seen.notes["first learner exit status"] == 0)
        #expect(
            served.version == checkpoint.version, "served version \(served.version), checkpoint \(checkpoint.version)")
        #expect(served.values.values.count == checkpoint.parameters.count)
        // Trained logits, not the initial uniform ones, so a restore that skips them shows.
        #expect(checkpoint.parameters.contains { abs($0) > 1e-3 })
        let worst = zip(served.values.values, checkpoint.parameters).map { abs(Double($0) - $1) }.max() ?? .infinity
        #expect(worst <= 1e-5, "served parameters differ from the checkpoint's by up to \(worst)")
        // Everything restored is written back unchanged: parameters, optimiser state and steps,
        // critic, counters and version.
        let rewritten = try #require(seen.rewritten)
        #expect(seen.notes["resumed learner exit status"] == 0)
        #expect(checkpoint.optimiserSteps > 0 && !checkpoint.optimiserState.isEmpty)
        #expect(rewritten.parameters == checkpoint.parameters)
        #expect(rewritten.optimiserState == checkpoint.optimiserState)
        #expect(rewritten.optimiserSteps == checkpoint.optimiserSteps)
        #expect(rewritten.critic == checkpoint.critic)
        #expect(rewritten.version == checkpoint.version && rewritten.updates == checkpoint.updates)
        #expect(rewritten.envSteps == checkpoint.envSteps)
    }
}
