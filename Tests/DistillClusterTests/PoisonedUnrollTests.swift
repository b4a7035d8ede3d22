import DistillRuntime
import DistillTestSupport
import DistillWire
import Foundation
import Testing

/// Issue 10, finding 1, against a real learner process: one well-formed unroll with a reward of
/// 3e38 (or a teacher value of 3e38) used to drive the student's exact return down for good. It
/// is now rejected before it reaches the learning step: the parameter version and the exact
/// return stay as they were, and honest unrolls are learned from before and after.
@Suite("poisoned unrolls", .serialized)
struct PoisonedUnrollTests {
    struct Observed: Sendable {
        var honestAcknowledged = false
        var versionAfterHonest = -1.0
        var returnAfterHonest = Double.nan
        var poisonAcknowledged = true
        var rejectedAfterPoison = -1.0
        var versionAfterPoison = -1.0
        var returnAfterPoison = Double.nan
        var versionAfterLastHonest = -1.0
    }

    static func unroll(sequence: UInt64, reward: Float = 0, teacherValue: Float = 0) -> Unroll {
        Unroll(
            sequence: sequence, parameterVersion: 0, teacherID: "optimal", teacherVersion: 1, actionCount: 4,
            episodeLengths: [1], episodeTerminated: [false], observations: [0, 1], actions: [0], rewards: [reward],
            behaviourProbabilities: [0.25],
            teacherProbabilities: Tensor(shape: [2, 4], values: [1, 0, 0, 0, 0, 1, 0, 0]),
            teacherValues: [teacherValue, 0])
    }

    @Test func aRewardOrValueOf3e38IsRejectedAndTheStudentKeepsItsReturn() async throws {
        let observed = try await onOwnThread {
            var observed = Observed()
            // One update per episode, so that the poisoned episode alone would make an update.
            let learner = try Roles.learner(extra: ["--episodes-per-iteration", "1"])
            defer { learner.process.stop() }
            let context = try ZMQContext()
            let codec = WireCodec()
            let me = Sender.starting(role: .actor, id: "attacker")
            let receipts = try ZMQSocket(context: context, type: .dealer, lingerMilliseconds: 0)
            try receipts.set(.routingID(routingID(of: me)))
            try receipts.connect(learner.control)
            let push = try ZMQSocket(context: context, type: .push, lingerMilliseconds: 0)
            try push.connect(learner.unrolls)
            defer { for socket in [receipts, push] { socket.close() } }
            func send(_ unroll: Unroll) throws {
                _ = try push.send(codec.encode(Envelope(sender: me, message: .unroll(unroll))), dontWait: true)
            }
            func acknowledged(within milliseconds: Int) -> Bool {
                var poller = ZMQPoller()
                poller.add(receipts)
                guard let ready = try? poller.poll(timeoutMilliseconds: milliseconds), !ready[0].isEmpty,
                    let frames = try? receipts.receive(dontWait: true), let envelope = try? codec.decode(frames.last!)
                else { return false }
                if case .unrollAck = envelope.message { return true }
                return false
            }
            /// The status once a metrics row after `version` was written (the exact return is
            /// computed per row).
            func settledStatus(version: Double) -> LearnerStatus? {
                var status: LearnerStatus?
                Roles.waitUntil(timeout: 30) {
                    status = Roles.status(learner.control)
                    return Roles.number(status, \.version) == version && status?.studentReturn != nil
                }
                Thread.sleep(forTimeInterval: 0.5)  // a metrics row (every 0.2 s) after that version
                return Roles.status(learner.control)
            }
            Thread.sleep(forTimeInterval: 0.3)

            try send(Self.unroll(sequence: 1))
            observed.honestAcknowledged = acknowledged(within: 10_000)
            var status = settledStatus(version: 1)
            observed.versionAfterHonest = Roles.number(status, \.version)
            observed.returnAfterHonest = Roles.number(status, \.studentReturn)

            try send(Self.unroll(sequence: 2, reward: 3e38))
            try send(Self.unroll(sequence: 3, teacherValue: 3e38))
            observed.poisonAcknowledged = acknowledged(within: 2000)
            Roles.waitUntil(timeout: 30) { Roles.number(Roles.status(learner.control), \.rejected) >= 2 }
            status = settledStatus(version: 1)
            observed.rejectedAfterPoison = Roles.number(status, \.rejected)
            observed.versionAfterPoison = Roles.number(status, \.version)
            observed.returnAfterPoison = Roles.number(status, \.studentReturn)

            try send(Self.unroll(sequence: 4))
            _ = acknowledged(within: 10_000)
            Roles.waitUntil(timeout: 30) { Roles.number(Roles.status(learner.control), \.version) >= 2 }
            observed.versionAfterLastHonest = Roles.number(Roles.status(learner.control), \.version)
            return observed
        }
        #expect(observed.honestAcknowledged && observed.versionAfterHonest == 1)
        #expect(!observed.poisonAcknowledged, "a rejected unroll gets no receipt")
        #expect(observed.rejectedAfterPoison == 2)
        #expect(observed.versionAfterPoison == 1, "no update from the poisoned unrolls")
        // The learner evaluates the return iteratively to 1e-7, warm-started from its last row.
        #expect(
            observed.returnAfterHonest.isFinite
                && abs(observed.returnAfterPoison - observed.returnAfterHonest) < 1e-5,
            "exact return \(observed.returnAfterHonest) before the poisoned unrolls, \(observed.returnAfterPoison) after"
        )
        #expect(observed.versionAfterLastHonest == 2, "honest unrolls are learned from afterwards")
    }
}
