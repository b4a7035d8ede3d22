import DistillRuntime
import DistillTestSupport
import DistillWire
import Foundation
import Testing

/// CURVE encryption with an allow-list, between real processes: a client whose key is listed
/// pushes unrolls, receives parameters and queries the teacher; an unlisted one can do none.
@Suite("CURVE security", .serialized)
struct CurveSecurityTests {
    struct Outcome: Sendable {
        var listed: [String: Bool] = [:]
        var unlisted: [String: Bool] = [:]
        var actorsSeen: [String] = []
        var refusedHandshakes = 0.0
        var unlistedActorExit: Int32?
        var unlistedActorSays = ""
    }

    /// A key pair written by `distill keys generate`.
    static func keys(_ name: String, in directory: URL) throws -> CurveKeyPair {
        let generate = try ChildProcess(["keys", "generate", "--out", directory.path, "--name", name])
        _ = generate.waitForExit()
        let text = try String(contentsOf: directory.appendingPathComponent("\(name).key"), encoding: .utf8)
        let secret = text.split(separator: "\n").first { $0.hasPrefix("secret ") }!.dropFirst("secret ".count)
        return try CurveKeyPair(secretKey: String(secret))
    }

    /// What one client (with `pair`) can do against the CURVE servers.
    static func probe(
        pair: CurveKeyPair, learnerKey: String, teacherKey: String,
        learner: (control: String, unrolls: String, params: String),
        teacher: String, id: String, patience milliseconds: Int
    ) throws -> [String: Bool] {
        let context = try ZMQContext()
        func socket(_ type: SocketType, serverKey: String) throws -> ZMQSocket {
            let socket = try ZMQSocket(context: context, type: type, lingerMilliseconds: 0)
            try socket.set(.curveServerKey(serverKey))
            try socket.set(.curvePublicKey(pair.publicKey))
            try socket.set(.curveSecretKey(pair.secretKey))
            return socket
        }
        func receive(_ socket: ZMQSocket, within milliseconds: Int) -> [UInt8]? {
            var poller = ZMQPoller()
            poller.add(socket)
            guard let ready = try? poller.poll(timeoutMilliseconds: milliseconds), !ready[0].isEmpty else { return nil }
            return (try? socket.receive(dontWait: true))??.last
        }
        let codec = WireCodec()
        let me = Sender.starting(role: .tool, id: id)
        var can: [String: Bool] = [:]

        let query = try socket(.dealer, serverKey: teacherKey)
        try query.connect(teacher)
        _ = try query.send(
            codec.encode(Envelope(sender: me, message: .teacherQuery(TeacherQuery(queryID: 1, stateIDs: [0, 1])))))
        can["query the teacher"] =
            receive(query, within: milliseconds).flatMap { try? codec.decode($0) }.map {
                if case .teacherReply = $0.message { true } else { false }
            } ?? false

        let sub = try socket(.sub, serverKey: learnerKey)
        try sub.set(.subscribe(prefix: []))
        try sub.connect(learner.params)
        can["receive parameters"] =
            receive(sub, within: milliseconds).flatMap { try? codec.decode($0) }.map {
                if case .parameters = $0.message { true } else { false }
            } ?? false

        // The learner acknowledges a consumed unroll to the sender's routing id on its control
        // socket: a receipt proves the unroll went through.
        let receipts = try socket(.dealer, serverKey: learnerKey)
        try receipts.set(.routingID(routingID(of: me)))
        try receipts.connect(learner.control)
        let push = try socket(.push, serverKey: learnerKey)
        try push.connect(learner.unrolls)
        Thread.sleep(forTimeInterval: 0.5)
        let unroll = Unroll(
            // The teacher's own id: the learner refuses unrolls naming a teacher it did not announce.
            sequence: 0, parameterVersion: 0, teacherID: "optimal", teacherVersion: 1, actionCount: 4,
            episodeLengths: [1],
            episodeTerminated: [false], observations: [0, 1], actions: [0], rewards: [0],
            behaviourProbabilities: [0.25],
            teacherProbabilities: Tensor(shape: [2, 4], values: Array(repeating: 0.25, count: 8)),
            teacherValues: [0, 0])
        // Resend until a receipt arrives or the patience runs out (a send before the CURVE
        // handshake completes is dropped), instead of one send and one fixed 2 s window.
        var receipt: [UInt8]?
        let deadline = ContinuousClock.now + .milliseconds(milliseconds)
        repeat {
            _ = try push.send(codec.encode(Envelope(sender: me, message: .unroll(unroll))), dontWait: true)
            receipt = receive(receipts, within: 500)
        } while receipt == nil && ContinuousClock.now < deadline
        can["push unrolls"] =
            receipt.flatMap { try? codec.decode($0) }.map {
                if case .unrollAck = $0.message { true } else { false }
            } ?? false
        for socket in [query, sub, receipts, push] { socket.close() }
        return can
    }

    @Test func onlyClientsOnTheAllowListPushUnrollsReceiveParametersAndQueryTheTeacher() async throws {
        let directory = Roles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let outcome = try await onOwnThread {
            var outcome = Outcome()
            let learnerPair = try Self.keys("learner", in: directory)
            let teacherPair = try Self.keys("teacher", in: directory)
            let listed = try Self.keys("listed", in: directory)
            let unlisted = try Self.keys("unlisted", in: directory)
            _ = try Self.keys("actor", in: directory)
            let allowed = directory.appendingPathComponent("allowed")
            let actorPublic = try String(contentsOf: directory.appendingPathComponent("actor.pub"), encoding: .utf8)
            try Data((listed.publicKey + "\n" + actorPublic).utf8).write(to: allowed)
            func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

            let security = ["--curve-allow", allowed.path]
            let (teacher, teacherEndpoint) = try Roles.teacher(extra: ["--curve-key", path("teacher.key")] + security)
            let learner = try Roles.learner(extra: ["--curve-key", path("learner.key")] + security)
            let keysForActors = ["--learner-key", path("learner.pub"), "--teacher-key", path("teacher.pub")]
            let goodActor = try Roles.actor(
                learner: learner.control, teacher: teacherEndpoint, id: "listed-actor",
                extra: ["--curve-key", path("actor.key")] + keysForActors)
            let badActor = try Roles.actor(
                learner: learner.control, teacher: teacherEndpoint, id: "unlisted-actor",
                extra: ["--curve-key", path("unlisted.key")] + keysForActors)
            defer { for process in [goodActor, badActor, teacher, learner.process] { process.stop() } }

            outcome.listed = try Self.probe(
                pair: listed, learnerKey: learnerPair.publicKey, teacherKey: teacherPair.publicKey,
                learner: (learner.control, learner.unrolls, learner.params), teacher: teacherEndpoint, id: "listed",
                patience: 30_000)
            outcome.unlisted = try Self.probe(
                pair: unlisted, learnerKey: learnerPair.publicKey, teacherKey: teacherPair.publicKey,
                learner: (learner.control, learner.unrolls, learner.params), teacher: teacherEndpoint, id: "unlisted",
                patience: 3000)

            // The learner's own status, asked with a listed key.
            let client = try ControlClient(
                learner: learner.control, sender: .starting(role: .tool, id: "test"),
                curve: CurveConfiguration(keyPair: listed), learnerKey: learnerPair.publicKey)
            let status = try client.status(timeoutMilliseconds: 5000)
            outcome.actorsSeen = status.actors.map(\.id)
            outcome.refusedHandshakes = Double(status.refusedHandshakes)
            // The unlisted actor hears that its key was refused and exits non-zero (not "no
            // answer" forever).
            outcome.unlistedActorExit = badActor.waitForExit(timeout: .seconds(30))
            outcome.unlistedActorSays = badActor.standardError
            return outcome
        }
        #expect(outcome.listed == ["query the teacher": true, "receive parameters": true, "push unrolls": true])
        #expect(outcome.unlisted == ["query the teacher": false, "receive parameters": false, "push unrolls": false])
        #expect(outcome.actorsSeen == ["listed-actor"], "only the listed actor joined")
        #expect(outcome.refusedHandshakes > 0)
        #expect(outcome.unlistedActorExit != nil && outcome.unlistedActorExit != 0)
        #expect(
            outcome.unlistedActorSays.contains("refused this actor's CURVE key"),
            "\(outcome.unlistedActorSays.suffix(800))")
    }
}
