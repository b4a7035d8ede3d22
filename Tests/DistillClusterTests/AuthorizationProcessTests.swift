import DistillRuntime
import DistillTestSupport
import DistillWire
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The trust model against real processes (docs/security.md), as the attacks of issue 10 tried
/// it: who may stop, swap and set λ, with CURVE keys and with the run token; a key speaking as
/// another actor; forged teacher ids; swaps to black holes, other environments and silent teachers.
@Suite("Authorization between processes", .serialized)
struct AuthorizationProcessTests {
    /// A raw client socket of the test process (an attacker's or a fake peer's).
    final class Raw {
        let context: ZMQContext
        let socket: ZMQSocket
        let codec = WireCodec()

        init(
            _ type: SocketType, connect endpoint: String, pair: CurveKeyPair? = nil, serverKey: String? = nil,
            routingID: [UInt8]? = nil
        ) throws {
            context = try ZMQContext()
            socket = try ZMQSocket(context: context, type: type, lingerMilliseconds: 200)
            if let pair, let serverKey {
                try socket.set(.curveServerKey(serverKey))
                try socket.set(.curvePublicKey(pair.publicKey))
                try socket.set(.curveSecretKey(pair.secretKey))
            }
            if let routingID { try socket.set(.routingID(routingID)) }
            try socket.connect(endpoint)
        }

        init(bind endpoint: String) throws {
            context = try ZMQContext()
            socket = try ZMQSocket(context: context, type: .router, lingerMilliseconds: 0)
            try socket.bind(endpoint)
        }

        deinit { socket.close() }

        func send(_ sender: Sender, _ message: Message) throws {
            _ = try socket.send(codec.encode(Envelope(sender: sender, message: message)))
        }

        /// The next message within `milliseconds` (ROUTER: with the routing id), or nil.
        func receive(within milliseconds: Int) -> (routing: [UInt8], envelope: Envelope)? {
            var poller = ZMQPoller()
            poller.add(socket)
            let deadline = Date().addingTimeInterval(Double(milliseconds) / 1000)
            while Date() < deadline {
                guard let ready = try? poller.poll(timeoutMilliseconds: 50), !ready[0].isEmpty,
                    let frames = try? socket.receive(dontWait: true), let payload = frames.last,
                    let envelope = try? codec.decode(payload)
                else { continue }
                return (frames.count > 1 ? frames[0] : [], envelope)
            }
            return nil
        }
    }

    /// A one-episode unroll of the test gridworld naming `teacherID`.
    static func unroll(teacherID: String, sequence: UInt64 = 0) -> Unroll {
        Unroll(
            sequence: sequence, parameterVersion: 0, teacherID: teacherID, teacherVersion: 1, actionCount: 4,
            episodeLengths: [1], episodeTerminated: [false], observations: [0, 1], actions: [0], rewards: [0],
            behaviourProbabilities: [0.25],
            teacherProbabilities: Tensor(shape: [2, 4], values: Array(repeating: 0.25, count: 8)),
            teacherValues: [0, 0])
    }

    static func rejected(_ control: String) -> Double { Roles.number(Roles.status(control), \.rejected) }

    /// Runs `distill control ARGS`; returns its exit status and what it printed (stdout + stderr).
    static func control(_ arguments: [String]) throws -> (status: Int32?, text: String) {
        let process = try ChildProcess(["control"] + arguments)
        let status = process.waitForExit()
        return (status, process.output.joined(separator: "\n") + process.standardError)
    }

    @Test func withCurveOnlyOperatorKeysStopSwapOrSetLambdaAndAKeyCannotSpeakAsAnotherActor() async throws {
        let directory = Roles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        struct Seen: Sendable {
            var actorKeyRefusals: [String] = []
            var learnerAliveAfterActorKey = false
            var unlisted = ""
            var unlistedSeconds = 0.0
            var impostorHello = ""
            var realActorNonceKept = false
            var realActorAlive = false
            var impostorUnrollRejected = false
            var operatorLambda = ""
            var operatorSwap = ""
            var operatorStop = ""
            var learnerExit: Int32?
        }
        let seen = try await onOwnThread {
            var seen = Seen()
            func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
            let learnerPair = try CurveSecurityTests.keys("learner", in: directory)
            _ = try CurveSecurityTests.keys("teacher", in: directory)
            let actorPair = try CurveSecurityTests.keys("actor", in: directory)
            let impostorPair = try CurveSecurityTests.keys("impostor", in: directory)
            let unlistedPair = try CurveSecurityTests.keys("unlisted", in: directory)
            let generate = try ChildProcess([
                "keys", "generate", "--out", directory.path, "--name", "ops", "--role", "operator",
            ])
            _ = generate.waitForExit()
            // The learner's key too, for the teacher server: the learner queries it before a swap.
            let allowed =
                try ["actor.pub", "impostor.pub", "ops.pub"].map {
                    try String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8)
                }.joined() + "teacher \(learnerPair.publicKey)\n"
            try Data(allowed.utf8).write(to: directory.appendingPathComponent("allowed"))

            let security = ["--curve-allow", path("allowed")]
            let (teacher, teacherEndpoint) = try Roles.teacher(extra: ["--curve-key", path("teacher.key")] + security)
            let learner = try Roles.learner(
                extra: ["--curve-key", path("learner.key"), "--teacher-key", path("teacher.pub")] + security)
            let realActor = try Roles.actor(
                learner: learner.control, teacher: teacherEndpoint, id: "actor-0",
                extra: [
                    "--curve-key", path("actor.key"), "--learner-key", path("learner.pub"), "--teacher-key",
                    path("teacher.pub"),
                ])
            defer { for process in [realActor, teacher, learner.process] { process.stop() } }
            func status() -> LearnerStatus? {
                let client = try? ControlClient(
                    learner: learner.control, sender: .starting(role: .tool, id: "test"),
                    curve: CurveConfiguration(keyPair: actorPair), learnerKey: learnerPair.publicKey)
                return try? client?.status(timeoutMilliseconds: 2000)
            }
            Roles.waitUntil(timeout: 30) { Roles.number(status(), \.version) > 5 }
            let realNonce = Roles.actorStatus(status(), "actor-0")?.runNonce

            // An actor's key (listed) asks for stop, swap and set-lambda: refused, with the reason.
            let asActor = [
                "--learner", learner.control, "--curve-key", path("actor.key"), "--learner-key",
                path("learner.pub"),
            ]
            for command in [["stop"], ["swap-teacher", "--to", teacherEndpoint], ["set-lambda", "--lambda", "0.5"]] {
                let (code, text) = try Self.control([command[0]] + asActor + command.dropFirst())
                seen.actorKeyRefusals.append(code == 1 && text.contains("needs an operator key") ? "refused" : text)
            }
            seen.learnerAliveAfterActorKey = learner.process.isRunning && status() != nil

            // A key not on the allow-list hears that its handshake was refused, at once.
            let started = Date()
            do {
                let client = try ControlClient(
                    learner: learner.control, sender: .starting(role: .tool, id: "unlisted"),
                    curve: CurveConfiguration(keyPair: unlistedPair), learnerKey: learnerPair.publicKey)
                _ = try client.status(timeoutMilliseconds: 5000)
            } catch let error as RuntimeError {
                seen.unlisted = error.description
            }
            seen.unlistedSeconds = Date().timeIntervalSince(started)

            // Another listed key says Hello as actor-0 (a new run nonce, its own routing id).
            let impostor = Sender.starting(role: .actor, id: "actor-0")
            let hello = try Raw(
                .dealer, connect: learner.control, pair: impostorPair, serverKey: learnerPair.publicKey,
                routingID: routingID(of: impostor))
            let environment = try Self.environmentIdentity(learner: learner.process)
            try hello.send(
                impostor,
                .hello(Hello(environment: environment, stateCount: 101, actionCount: 4, teacherEndpoint: "")))
            if let answer = hello.receive(within: 3000), case .error(let error) = answer.envelope.message {
                seen.impostorHello = error.message
            }
            let after = Roles.actorStatus(status(), "actor-0")
            seen.realActorNonceKept = realNonce != nil && after?.runNonce == realNonce
            seen.realActorAlive = after?.alive == true

            // The impostor pushes an unroll as the real actor-0 (its id and nonce): refused, no receipt.
            let realSender = Sender(role: .actor, id: "actor-0", runNonce: UInt64(realNonce ?? "1", radix: 16) ?? 1)
            let push = try Raw(
                .push, connect: learner.unrolls, pair: impostorPair, serverKey: learnerPair.publicKey)
            let before = Roles.number(status(), \.rejected)
            try push.send(realSender, .unroll(Self.unroll(teacherID: "optimal", sequence: 1_000_000)))
            seen.impostorUnrollRejected =
                Roles.waitUntil(timeout: 5) { Roles.number(status(), \.rejected) > before } != nil
            _ = hello.receive(within: 200)

            // The operator's key: set-lambda and stop are accepted.
            let asOperator = [
                "--learner", learner.control, "--curve-key", path("ops.key"), "--learner-key",
                path("learner.pub"),
            ]
            seen.operatorLambda = try Self.control(["set-lambda"] + asOperator + ["--lambda", "0.5"]).text
            // A swap (to the same server): checked over CURVE with the teacher's key, then applied.
            seen.operatorSwap = try Self.control(["swap-teacher"] + asOperator + ["--to", teacherEndpoint]).text
            seen.operatorStop = try Self.control(["stop"] + asOperator).text
            seen.learnerExit = learner.process.waitForExit()
            return seen
        }
        #expect(seen.actorKeyRefusals == ["refused", "refused", "refused"])
        #expect(seen.learnerAliveAfterActorKey)
        #expect(seen.unlisted.contains("refused this client's CURVE key"), "\(seen.unlisted)")
        #expect(seen.unlistedSeconds < 3)
        #expect(seen.impostorHello.contains("belongs to another key"), "\(seen.impostorHello)")
        #expect(seen.realActorNonceKept && seen.realActorAlive, "the real actor's record stays")
        #expect(seen.impostorUnrollRejected)
        #expect(seen.operatorLambda.contains("accepted"), "\(seen.operatorLambda)")
        #expect(seen.operatorSwap.contains("accepted"), "\(seen.operatorSwap)")
        #expect(seen.operatorStop.contains("stop accepted"), "\(seen.operatorStop)")
        #expect(seen.learnerExit == 0)
    }

    @Test func withoutCurveControlNeedsTheRunTokenAndSwapsAreCheckedFirst() async throws {
        let out = Roles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: out) }
        struct Seen: Sendable {
            var tokenMode: Int?
            var unauthenticatedLines = 0
            var withoutToken = ""
            var wrongToken = ""
            var statusWithoutToken = false
            var blackHole = ""
            var noHost = ""
            var otherEnvironment = ""
            var endpointAfterRefusals = ""
            var stop = ""
            var learnerExit: Int32?
        }
        let seen = try await onOwnThread {
            var seen = Seen()
            let learner = try Roles.learner(extra: ["--out", out.path])
            // A teacher of another environment (another seed), for a swap that must be refused.
            let (other, otherEndpoint) = try Roles.teacher(extra: ["--seed", "2"])
            defer { for process in [other, learner.process] { process.stop() } }
            let tokenFile = out.appendingPathComponent(RunToken.fileName)
            seen.tokenMode = try FileManager.default.attributesOfItem(atPath: tokenFile.path)[.posixPermissions] as? Int
            let target = ["--learner", learner.control]
            seen.withoutToken = try Self.control(["stop"] + target).text
            let wrong = out.appendingPathComponent("wrong-token")
            try Data("0123456789abcdef\n".utf8).write(to: wrong)
            seen.wrongToken = try Self.control(["set-lambda"] + target + ["--token-file", wrong.path, "--lambda", "2"])
                .text
            seen.statusWithoutToken = try Self.control(["status"] + target).status == 0

            // A black hole: a port nobody answers on (bound, then closed, by this test).
            let closed = try Raw(bind: "tcp://127.0.0.1:*")
            let hole = try closed.socket.lastEndpoint()
            closed.socket.close()
            seen.blackHole = try Self.control(["swap-teacher"] + target + ["--run-dir", out.path, "--to", hole]).text
            // An endpoint `distill control` would not even send: asked directly, with the token.
            let client = try ControlClient(
                learner: learner.control, sender: .starting(role: .tool, id: "test"),
                token: try RunToken.read(tokenFile))
            do {
                _ = try client.send(Control(command: .swapTeacher, teacherEndpoint: "tcp://nohost:99999"))
            } catch let error as RuntimeError {
                seen.noHost = error.description
            }
            seen.otherEnvironment = try Self.control(
                ["swap-teacher"] + target + ["--run-dir", out.path, "--to", otherEndpoint]
            ).text
            seen.endpointAfterRefusals = Roles.status(learner.control)?.teacherEndpoint ?? "?"
            seen.stop = try Self.control(["stop"] + target + ["--run-dir", out.path]).text
            seen.learnerExit = learner.process.waitForExit()
            seen.unauthenticatedLines =
                learner.process.standardError.components(separatedBy: "unauthenticated").count
                - 1
            return seen
        }
        #expect(seen.tokenMode == 0o600)
        #expect(seen.unauthenticatedLines == 1, "said once at start")
        #expect(seen.withoutToken.contains("needs the run token"), "\(seen.withoutToken)")
        #expect(seen.wrongToken.contains("wrong run token"), "\(seen.wrongToken)")
        #expect(seen.statusWithoutToken)
        #expect(seen.blackHole.contains("did not answer"), "\(seen.blackHole)")
        #expect(seen.noHost.contains("invalid port"), "\(seen.noHost)")
        #expect(seen.otherEnvironment.contains("serves gridworld(seed=2"), "\(seen.otherEnvironment)")
        #expect(seen.endpointAfterRefusals == "", "no refused endpoint was stored")
        #expect(seen.stop.contains("stop accepted"), "\(seen.stop)")
        #expect(seen.learnerExit == 0)
    }

    @Test func unrollsNamingATeacherTheLearnerNeverAnnouncedAreRejectedAndTheSummaryStaysSmall() async throws {
        let out = Roles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: out) }
        let (rejected, summary) = try await onOwnThread { () -> (Double, Data?) in
            let learner = try Roles.learner(extra: ["--out", out.path])
            defer { learner.process.stop() }
            let push = try Raw(.push, connect: learner.unrolls)
            let forger = Sender.starting(role: .actor, id: "forger")
            try push.send(forger, .unroll(Self.unroll(teacherID: "optimal", sequence: 0)))
            for k in 1...300 {
                try push.send(forger, .unroll(Self.unroll(teacherID: "forged-\(k)", sequence: UInt64(k))))
            }
            Roles.waitUntil(timeout: 10) { Self.rejected(learner.control) >= 300 }
            let rejected = Self.rejected(learner.control)
            learner.process.send(signal: SIGTERM)
            _ = learner.process.waitForExit()
            return (rejected, try? Data(contentsOf: out.appendingPathComponent("summary.json")))
        }
        #expect(rejected >= 300)
        let object = try RecordCoding.decode(RunSummary.self, from: try #require(summary), what: "summary.json")
        #expect(object.teachers.map(\.teacherID) == ["optimal"])
        #expect(object.teacherSwitches == 1)
    }

    @Test func aSwapToATeacherWhoseTargetsNeverArriveIsUndoneWithinTheWindow() async throws {
        let out = Roles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: out) }
        struct Seen: Sendable {
            var swap = ""
            var endpointAfterSwap = ""
            var revertedAfter: Double?
            var stepsGrewAfterRevert = false
            var logSaysBack = false
        }
        let seen = try await onOwnThread {
            var seen = Seen()
            let (teacher, teacherEndpoint) = try Roles.teacher()
            let learner = try Roles.learner(extra: ["--out", out.path, "--swap-window", "2"])
            let actor = try Roles.actor(learner: learner.control, teacher: teacherEndpoint, id: "actor-0")
            defer { for process in [actor, teacher, learner.process] { process.stop() } }
            Roles.waitUntil(timeout: 30) { Roles.number(Roles.status(learner.control), \.version) > 5 }

            // A fake teacher: answers the learner's check with the real teacher's answer under
            // another id, then never again (what actors see of a teacher that died after a swap).
            let real = try Raw(.dealer, connect: teacherEndpoint)
            let fake = try Raw(bind: "tcp://127.0.0.1:*")
            let fakeEndpoint = try fake.socket.lastEndpoint()
            let control = try ChildProcess([
                "control", "swap-teacher", "--learner", learner.control, "--run-dir", out.path, "--to", fakeEndpoint,
            ])
            if let check = fake.receive(within: 3000), case .teacherQuery(let query) = check.envelope.message {
                try real.send(check.envelope.sender, .teacherQuery(query))
                if let answer = real.receive(within: 3000), case .teacherReply(var reply) = answer.envelope.message {
                    reply.teacherID = "fake"
                    _ = try fake.socket.send([
                        check.routing,
                        fake.codec.encode(Envelope(sender: answer.envelope.sender, message: .teacherReply(reply))),
                    ])
                }
            }
            _ = control.waitForExit()
            seen.swap = control.output.joined() + control.standardError
            seen.endpointAfterSwap = Roles.status(learner.control)?.teacherEndpoint ?? ""
            seen.revertedAfter = Roles.waitUntil(timeout: 10) {
                Roles.status(learner.control)?.teacherEndpoint == ""
            }
            let steps = Roles.number(Roles.status(learner.control), \.envSteps)
            seen.stepsGrewAfterRevert =
                Roles.waitUntil(timeout: 10) { Roles.number(Roles.status(learner.control), \.envSteps) > steps + 100 }
                != nil
            seen.logSaysBack = learner.process.standardError.contains("moving the actors back")
            return seen
        }
        #expect(seen.swap.contains("accepted"), "\(seen.swap)")
        #expect(seen.endpointAfterSwap.hasPrefix("tcp://127.0.0.1:"))
        #expect(seen.revertedAfter != nil, "went back to the previous teacher within the window")
        #expect(seen.stepsGrewAfterRevert, "the actors learn from the previous teacher again")
        #expect(seen.logSaysBack)
    }

    /// The run's environment identity, from the learner's "learner ready" log line (env=...).
    static func environmentIdentity(learner: ChildProcess) throws -> String {
        let text = learner.standardError
        guard let range = text.range(of: "env=") else { throw ChildProcessError("no env= in the learner's log") }
        let rest = text[range.upperBound...]
        guard let end = rest.range(of: " method=") else { throw ChildProcessError("no method= in the learner's log") }
        return String(rest[..<end.lowerBound])
    }
}
