import DistillCore
import DistillRuntime
import DistillWire
import Foundation
import Testing

/// The learner's protocol behaviour in-process, with a fake clock (issue 10, item 2): no
/// sockets, no processes, no sleeping; each test takes milliseconds and they run in parallel.
@Suite("learner core, fake clock")
struct LearnerCoreTests {
    static let token = "0123456789abcdef"
    static let actorKey = String(repeating: "a", count: 40)
    static let otherActorKey = String(repeating: "b", count: 40)
    static let operatorKey = String(repeating: "c", count: 40)

    /// A 6×6 gridworld run of n-distill-r with an optimal teacher; one update per episode.
    static let problem: LearnerProblem = {
        var spec = EnvironmentSpec()
        spec.gridworld.size = 6
        spec.seed = 3
        let environment = try! spec.build()
        let teacher = try! TeacherSpec().build(for: environment)
        var method = MethodSpec()
        method.method = .nDistillR
        method.episodesPerIteration = 1
        return LearnerProblem(
            environment: environment, environmentIdentity: "gridworld-6", method: method,
            teacherKind: TeacherSpec().kind,
            referenceTeacher: teacher, unrollSteps: 100, configurationJSON: "{}")
    }()

    /// A core at fake time 0, with the run token as access unless told otherwise.
    static func core(
        access: ControlAccess = .token(token), _ configure: (inout LearnerConfiguration) -> Void = { _ in }
    ) throws -> LearnerCore<TabularLearnerModel> {
        var configuration = LearnerConfiguration(bindUnrolls: "", bindParameters: "", bindControl: "")
        configure(&configuration)
        var core = try LearnerCore(problem: problem, configuration: configuration)
        core.authorization = LearnerAuthorization(access: access)
        core.start(now: 0)
        return core
    }

    static func actor(_ id: String, nonce: UInt64 = 1) -> Sender { Sender(role: .actor, id: id, runNonce: nonce) }
    static let operatorSender = Sender(role: .control, id: "ops", runNonce: 99)

    /// The frames a ROUTER delivers: the routing id of `sender` (an actor's ID-NONCEHEX), the payload.
    static func frames(_ message: Message, from sender: Sender, routing: [UInt8]? = nil) -> [[UInt8]] {
        [routing ?? routingID(of: sender), WireCodec().encode(Envelope(sender: sender, message: message))]
    }

    static func hello(environment: String = problem.environmentIdentity, teacher: String = "tcp://t1:1") -> Message {
        let mdp = problem.environment!.mdp
        return .hello(
            Hello(
                environment: environment, stateCount: mdp.stateCount, actionCount: mdp.actionCount,
                teacherEndpoint: teacher))
    }

    static func heartbeat() -> Message { .heartbeat(Heartbeat(sequence: 1, envSteps: 0, parameterVersion: 0)) }

    static func control(_ command: Control.Command, token: String = token, lambda: Float? = nil) -> Message {
        var control = Control(command: command)
        control.token = token
        control.requestID = 7
        if command == .swapTeacher { control.teacherEndpoint = "tcp://t2:2" }
        if let lambda { control.lambdas = [lambda] }
        return .control(control)
    }

    /// One episode of one step from state 0 with the teacher's targets, as an actor pushes it.
    static func unroll(sequence: UInt64, teacher: String = "optimal", reward: Float = 0) -> Message {
        .unroll(
            Unroll(
                sequence: sequence, parameterVersion: 0, teacherID: teacher, teacherVersion: 1, actionCount: 4,
                episodeLengths: [1], episodeTerminated: [false], observations: [0, 1], actions: [0],
                rewards: [reward], behaviourProbabilities: [0.25],
                teacherProbabilities: Tensor(shape: [2, 4], values: [1, 0, 0, 0, 0, 1, 0, 0]),
                teacherValues: [0, 0]))
    }

    static func unrollFrames(_ message: Message, from sender: Sender) -> [[UInt8]] {
        [WireCodec().encode(Envelope(sender: sender, message: message))]
    }

    @Test func aHelloOfTheRunsEnvironmentIsWelcomedAndRecorded() throws {
        var core = try Self.core()
        let effects = core.receiveControl(Self.frames(Self.hello(), from: Self.actor("a")), peer: nil, now: 10)
        guard case .welcome(let welcome)? = effects.replies.first?.message else {
            Issue.record("expected a Welcome, got \(effects)")
            return
        }
        #expect(welcome.parameters.version == 0)
        #expect(core.actors[routingID(of: Self.actor("a"))]?.alive == true)
        #expect(core.actors[routingID(of: Self.actor("a"))]?.teacherEndpoint == "tcp://t1:1")
    }

    @Test func anUnrollOfObservationTensorsIsRefusedByATabularLearner() throws {
        var core = try Self.core()
        guard case .unroll(var unroll) = Self.unroll(sequence: 0) else { return }
        unroll.observations = []
        unroll.observationTensor = ObservationTensor(rows: 2, rowShape: [4], float32: [Float](repeating: 0, count: 8))
        let reason = core.incompatibility(of: unroll)
        #expect(reason?.contains("observation tensors") == true, "\(reason ?? "accepted")")
        let before = core.version
        _ = core.receiveUnroll(
            [WireCodec().encode(Envelope(sender: Self.actor("a"), message: .unroll(unroll)))], peer: nil, now: 1)
        #expect(core.version == before)
        #expect(core.rejections.total == 1)
    }

    @Test func aHelloFromAnotherEnvironmentIsRefusedAsIncompatible() throws {
        var core = try Self.core()
        let effects = core.receiveControl(
            Self.frames(Self.hello(environment: "cartpole"), from: Self.actor("a")), peer: nil, now: 10)
        #expect(effects.errorCodes == [.incompatible])
        #expect(effects.logs.contains { $0.level == .error && $0.message.contains("runs cartpole") })
        #expect(core.actors.isEmpty)
    }

    @Test func aFullTableOfLiveActorsRefusesAHelloAndADeadOneMakesRoom() throws {
        var core = try Self.core { $0.maxActors = 2 }
        for id in ["a", "b"] {
            _ = core.receiveControl(Self.frames(Self.hello(), from: Self.actor(id)), peer: nil, now: 0)
        }
        let refused = core.receiveControl(Self.frames(Self.hello(), from: Self.actor("c")), peer: nil, now: 100)
        #expect(refused.errorCodes == [.unavailable])
        #expect(core.actorsRefused == 1 && core.actors.count == 2)
        // "b" keeps beating, "a" falls silent and is marked dead after 3 s.
        _ = core.receiveControl(Self.frames(Self.heartbeat(), from: Self.actor("b")), peer: nil, now: 3000)
        _ = core.tick(now: 3500)
        #expect(core.actors[routingID(of: Self.actor("a"))]?.alive == false)
        let admitted = core.receiveControl(Self.frames(Self.hello(), from: Self.actor("c")), peer: nil, now: 3600)
        #expect(admitted.errorCodes.isEmpty)
        #expect(Set(core.actors.values.map(\.id)) == ["b", "c"])
    }

    @Test func anActorIdOfALiveActorCannotBeTakenByAnotherKey() throws {
        var core = try Self.core(access: .keys)
        let owner = AuthenticatedPeer(role: .actor, key: Self.actorKey)
        let other = AuthenticatedPeer(role: .actor, key: Self.otherActorKey)
        _ = core.receiveControl(Self.frames(Self.hello(), from: Self.actor("a", nonce: 1)), peer: owner, now: 0)
        let impostor = Self.actor("a", nonce: 2)
        let refused = core.receiveControl(Self.frames(Self.hello(), from: impostor), peer: other, now: 100)
        #expect(refused.errorCodes == [.incompatible])
        #expect(core.actors.count == 1 && core.actors.values.first?.nonce == 1, "the real actor's record stays")
        // A Hello carrying the live actor's id and nonce from another connection is refused too.
        let replay = core.receiveControl(
            Self.frames(Self.hello(), from: Self.actor("a", nonce: 1), routing: Array("elsewhere".utf8)), peer: owner,
            now: 200)
        #expect(replay.errorCodes == [.incompatible])
        // Heartbeats from the other key do not keep the actor alive, even on its routing id (free
        // again once the real actor disconnected); once dead, the id is free.
        _ = core.receiveControl(Self.frames(Self.heartbeat(), from: Self.actor("a", nonce: 1)), peer: other, now: 3000)
        _ = core.tick(now: 3500)
        #expect(core.actors.values.first?.alive == false)
        let takeover = core.receiveControl(Self.frames(Self.hello(), from: impostor), peer: other, now: 3600)
        #expect(takeover.errorCodes.isEmpty)
        #expect(core.actors.values.map(\.nonce) == [2])
    }

    @Test func aSilentActorIsMarkedDeadThenForgottenAfterTheWindow() throws {
        var core = try Self.core {
            $0.actorTimeoutMilliseconds = 1000
            $0.forgetDeadActorsAfterMilliseconds = 10_000
        }
        let a = routingID(of: Self.actor("a"))
        _ = core.receiveControl(Self.frames(Self.hello(), from: Self.actor("a")), peer: nil, now: 0)
        _ = core.receiveControl(Self.frames(Self.heartbeat(), from: Self.actor("a")), peer: nil, now: 900)
        _ = core.tick(now: 1500)
        #expect(core.actors[a]?.alive == true, "heard from 600 ms ago")
        let sweep = core.tick(now: 2000)
        #expect(core.actors[a]?.alive == false)
        #expect(sweep.logs.contains { $0.message.contains("missed its heartbeats") })
        _ = core.tick(now: 10_500)
        #expect(core.actors[a] != nil, "dead 9.6 s after it was last heard from: still listed")
        _ = core.tick(now: 11_000)
        #expect(core.actors[a] == nil, "forgotten 10.1 s after it was last heard from")
    }

    @Test func aCheckedSwapMovesTheActorsAndIsRevertedWhenNoUnrollComesInTheWindow() throws {
        var core = try Self.core { $0.swapWindowSeconds = 10 }
        let a = Self.actor("a")
        _ = core.receiveControl(Self.frames(Self.hello(), from: a), peer: nil, now: 0)
        _ = core.receiveUnroll(Self.unrollFrames(Self.unroll(sequence: 1), from: a), peer: nil, now: 10)
        #expect(core.teachers.current == "optimal")

        let asked = core.receiveControl(
            Self.frames(Self.control(.swapTeacher), from: Self.operatorSender), peer: nil, now: 100)
        guard
            case .checkTeacher(let check)? = asked.first(where: { if case .checkTeacher = $0 { true } else { false } })
        else {
            Issue.record("expected a teacher check, got \(asked)")
            return
        }
        #expect(check.endpoint == "tcp://t2:2" && check.expectation.environment == "gridworld-6")
        #expect(core.teacherEndpoint == "", "nothing moves before the check passed")
        // A second swap while the first is checked is told to wait.
        let second = core.receiveControl(
            Self.frames(Self.control(.swapTeacher), from: Self.operatorSender), peer: nil, now: 150)
        #expect(second.errorCodes == [.unavailable])

        let applied = core.teacherChecked(.passed(teacherID: "t2", stated: true), now: 200)
        #expect(applied.swapsSent == [Pair(routingID(of: a), "tcp://t2:2")])
        #expect(applied.statusReplies.first?.accepted == true)
        #expect(core.teacherEndpoint == "tcp://t2:2")

        // The actor stays alive but no unroll with t2's targets comes: back after 10 s.
        for now in stride(from: Int64(500), through: 10_000, by: 500) {
            _ = core.receiveControl(Self.frames(Self.heartbeat(), from: a), peer: nil, now: now)
            #expect(core.tick(now: now).swapsSent.isEmpty, "at \(now) ms")
        }
        let reverted = core.tick(now: 10_200)
        #expect(reverted.swapsSent == [Pair(routingID(of: a), "tcp://t1:1")], "back to the actor's own teacher")
        #expect(reverted.logs.contains { $0.level == .warning && $0.message.contains("moving the actors back") })
        #expect(core.teacherEndpoint == "")
    }

    @Test func aSwapWhoseTeacherDeliversStaysAndARefusedCheckChangesNothing() throws {
        var core = try Self.core()
        let a = Self.actor("a")
        _ = core.receiveControl(Self.frames(Self.hello(), from: a), peer: nil, now: 0)
        _ = core.receiveUnroll(Self.unrollFrames(Self.unroll(sequence: 1), from: a), peer: nil, now: 10)

        _ = core.receiveControl(Self.frames(Self.control(.swapTeacher), from: Self.operatorSender), peer: nil, now: 100)
        let refused = core.teacherChecked(.refused("the teacher did not answer in time"), now: 2100)
        #expect(refused.errorCodes == [.incompatible] && refused.swapsSent.isEmpty)
        #expect(core.teacherEndpoint == "")
        let unannounced = core.receiveUnroll(
            Self.unrollFrames(Self.unroll(sequence: 2, teacher: "t2"), from: a), peer: nil, now: 2200)
        #expect(
            core.rejections.total == 1
                && unannounced.logs.contains { $0.message.contains("not one this learner announced") })

        _ = core.receiveControl(
            Self.frames(Self.control(.swapTeacher), from: Self.operatorSender), peer: nil, now: 3000)
        _ = core.teacherChecked(.passed(teacherID: "t2", stated: true), now: 3100)
        _ = core.receiveUnroll(
            Self.unrollFrames(Self.unroll(sequence: 3, teacher: "t2"), from: a), peer: nil, now: 4000)
        #expect(core.teachers.current == "t2")
        _ = core.receiveControl(Self.frames(Self.heartbeat(), from: a), peer: nil, now: 14_000)
        #expect(core.tick(now: 14_000).swapsSent.isEmpty)
        #expect(core.teacherEndpoint == "tcp://t2:2")
    }

    @Test func aSwapsCheckRefusesATeacherOfAnotherEnvironmentOrShapeAndPassesAnUnstatedOne() throws {
        var core = try Self.core()
        let asked = core.receiveControl(
            Self.frames(Self.control(.swapTeacher), from: Self.operatorSender), peer: nil, now: 0)
        guard
            case .checkTeacher(let check)? = asked.first(where: { if case .checkTeacher = $0 { true } else { false } })
        else {
            Issue.record("expected a teacher check, got \(asked)")
            return
        }
        let expectation = check.expectation
        let states = expectation.probeStates
        #expect(states == [0, 12, 24, 36], "first, last and two between of the run's 37 states")
        func reply(environment: String, rows: Int = states.count, actions: Int = 4) -> TeacherReply {
            TeacherReply(
                queryID: 1, teacherID: "rogue", teacherVersion: 1,
                probabilities: Tensor(shape: [rows, actions], values: Array(repeating: 0.25, count: rows * actions)),
                values: Array(repeating: 0, count: rows), cacheable: true, environment: environment)
        }
        let other = expectation.judge(reply(environment: "chain"), rows: states.count, endpoint: "tcp://t2:2")
        #expect(
            other
                == .refused(
                    "the teacher 'rogue' at tcp://t2:2 serves chain, this run is gridworld-6: start it with the run's "
                        + "environment flags (--config RUN/config.json)"))
        let shape = expectation.judge(reply(environment: "", actions: 5), rows: states.count, endpoint: "e")
        #expect(shape != .passed(teacherID: "rogue", stated: false))
        #expect(
            expectation.judge(reply(environment: "gridworld-6"), rows: states.count, endpoint: "e")
                == .passed(teacherID: "rogue", stated: true))
        #expect(
            expectation.judge(reply(environment: ""), rows: states.count, endpoint: "e")
                == .passed(teacherID: "rogue", stated: false))
        // The refusal goes back to the operator; nothing moved.
        let refused = core.teacherChecked(other, now: 100)
        #expect(refused.errorMessages.first?.contains("serves chain") == true && core.teacherEndpoint == "")
    }

    @Test func setLambdaTakesOneValueInItsRange() throws {
        var core = try Self.core()
        let accepted = core.receiveControl(
            Self.frames(Self.control(.setLambda, lambda: 0.5), from: Self.operatorSender), peer: nil, now: 0)
        #expect(accepted.statusReplies.first?.accepted == true && core.state.lambdaOverride == 0.5)
        for lambda: Float in [3.4e38, 1001] {
            let refused = core.receiveControl(
                Self.frames(Self.control(.setLambda, lambda: lambda), from: Self.operatorSender), peer: nil, now: 0)
            #expect(refused.errorCodes == [.incompatible], "λ = \(lambda)")
            #expect(refused.errorMessages.first?.contains("must lie in") == true)
        }
        // A negative λ does not even pass the codec.
        let negative = core.receiveControl(
            Self.frames(Self.control(.setLambda, lambda: -1), from: Self.operatorSender), peer: nil, now: 0)
        #expect(negative.errorCodes == [.malformed])
        var two = Control(command: .setLambda, lambdas: [0.1, 0.2])
        two.token = Self.token
        let refused = core.receiveControl(Self.frames(.control(two), from: Self.operatorSender), peer: nil, now: 0)
        #expect(refused.errorCodes == [.incompatible])
        #expect(core.state.lambdaOverride == 0.5)
    }

    @Test func withKeysAnActorKeyCannotStopSwapOrSetLambdaAndAnOperatorKeyCan() throws {
        var core = try Self.core(access: .keys)
        let actor = AuthenticatedPeer(role: .actor, key: Self.actorKey)
        let operatorPeer = AuthenticatedPeer(role: .operator, key: Self.operatorKey)
        for command in [Control.Command.stop, .swapTeacher, .setLambda] {
            let refused = core.receiveControl(
                Self.frames(Self.control(command, token: "", lambda: 0.5), from: Self.actor("a")), peer: actor, now: 0)
            #expect(refused.errorCodes == [.incompatible], "\(command)")
            #expect(refused.errorMessages.first?.contains("needs an operator key") == true)
        }
        #expect(!core.stopActorsAtEnd && core.state.lambdaOverride == nil)
        let status = core.receiveControl(
            Self.frames(Self.control(.status, token: ""), from: Self.actor("a")), peer: actor, now: 0)
        #expect(status.statusReplies.count == 1, "status is anybody's")

        let lambda = core.receiveControl(
            Self.frames(Self.control(.setLambda, token: "", lambda: 0.5), from: Self.operatorSender),
            peer: operatorPeer, now: 0)
        #expect(lambda.statusReplies.first?.accepted == true)
        let swap = core.receiveControl(
            Self.frames(Self.control(.swapTeacher, token: ""), from: Self.operatorSender), peer: operatorPeer, now: 0)
        #expect(swap.contains { if case .checkTeacher(let check) = $0 { check.serverKey == nil } else { false } })
        let stop = core.receiveControl(
            Self.frames(Self.control(.stop, token: ""), from: Self.operatorSender), peer: operatorPeer, now: 0)
        #expect(stop.contains { if case .stop = $0 { true } else { false } })
        #expect(core.stopActorsAtEnd)
        // An operator key cannot play an actor.
        let hello = core.receiveControl(Self.frames(Self.hello(), from: Self.actor("o")), peer: operatorPeer, now: 0)
        #expect(hello.errorCodes == [.incompatible] && core.actors.isEmpty)
    }

    @Test func withoutCurveControlCommandsNeedTheRunToken() throws {
        var core = try Self.core()
        for token in ["", "wrong"] {
            for command in [Control.Command.stop, .swapTeacher, .setLambda] {
                let refused = core.receiveControl(
                    Self.frames(Self.control(command, token: token, lambda: 0.5), from: Self.operatorSender), peer: nil,
                    now: 0)
                #expect(refused.errorCodes == [.incompatible], "\(command) with token '\(token)'")
            }
        }
        #expect(!core.stopActorsAtEnd)
        let stop = core.receiveControl(Self.frames(Self.control(.stop), from: Self.operatorSender), peer: nil, now: 0)
        #expect(stop.contains { if case .stop = $0 { true } else { false } })
        #expect(stop.statusReplies.first?.token == "", "the token is never echoed")
        // No token to check against: only status.
        var statusOnly = try Self.core(access: .statusOnly)
        let refused = statusOnly.receiveControl(
            Self.frames(Self.control(.stop), from: Self.operatorSender), peer: nil, now: 0)
        #expect(refused.errorCodes == [.incompatible])
    }

    @Test func theLearnerGivesUpAfterTheGivenSecondsWithoutALiveActor() throws {
        var core = try Self.core { $0.giveUpAfterSeconds = 5 }
        _ = core.tick(now: 4500)
        #expect(core.gaveUp == nil)
        _ = core.tick(now: 5000)
        #expect(core.gaveUp == "no actor has been alive for 5.0 s")

        // An actor alive keeps it going; alone again from its death on.
        var watched = try Self.core { $0.giveUpAfterSeconds = 5 }
        let a = Self.actor("a")
        _ = watched.receiveControl(Self.frames(Self.hello(), from: a), peer: nil, now: 0)
        for now in stride(from: Int64(500), through: 8000, by: 500) {
            _ = watched.receiveControl(Self.frames(Self.heartbeat(), from: a), peer: nil, now: now)
            _ = watched.tick(now: now)
        }
        #expect(watched.gaveUp == nil)
        // Last heard from at 8 s: still alive at the sweep of 11 s, dead at 11.5 s.
        for now in stride(from: Int64(8500), through: 15_500, by: 500) { _ = watched.tick(now: now) }
        #expect(watched.gaveUp == nil, "alone since the sweep of 11 s")
        _ = watched.tick(now: 16_000)
        #expect(watched.gaveUp == "no actor has been alive for 5.0 s")
    }

    @Test func anUnrollWithARewardOf3e38IsRejectedAndTheParametersStay() throws {
        var core = try Self.core()
        let a = Self.actor("a")
        _ = core.receiveUnroll(Self.unrollFrames(Self.unroll(sequence: 1), from: a), peer: nil, now: 0)
        #expect(core.version == 1)
        #expect(core.takeReceipts().count == 1)
        let before = core.state.student.parameters

        let poisoned = core.receiveUnroll(
            Self.unrollFrames(Self.unroll(sequence: 2, reward: 3e38), from: a), peer: nil, now: 10)
        #expect(core.version == 1 && core.state.student.parameters == before)
        #expect(core.rejections.total == 1)
        #expect(poisoned.logs.contains { $0.level == .warning && $0.message.contains("rejected a message") })
        #expect(core.takeReceipts().isEmpty, "a rejected unroll gets no receipt")

        _ = core.receiveUnroll(Self.unrollFrames(Self.unroll(sequence: 3), from: a), peer: nil, now: 20)
        #expect(core.version == 2, "honest unrolls are learned from afterwards")
    }

    @Test func parametersArePublishedAfterTheIntervalOrEveryKUpdates() throws {
        var core = try Self.core {
            $0.publishEveryUpdates = 2
            $0.publishIntervalMilliseconds = 20
        }
        let a = Self.actor("a")
        let first = core.receiveUnroll(Self.unrollFrames(Self.unroll(sequence: 1), from: a), peer: nil, now: 0)
        #expect(first.published.isEmpty)
        #expect(core.tick(now: 19).published.isEmpty)
        #expect(core.tick(now: 20).published == [1])
        _ = core.receiveUnroll(Self.unrollFrames(Self.unroll(sequence: 2), from: a), peer: nil, now: 21)
        let third = core.receiveUnroll(Self.unrollFrames(Self.unroll(sequence: 3), from: a), peer: nil, now: 22)
        #expect(third.published == [3], "two updates since the last publication")
    }

    @Test func aFloodOfRefusedHellosIsThrottledInTheLog() throws {
        var core = try Self.core()
        let forged = Self.actor("x\n2026-01-01T00:00:00+0000 critical distill.learner : FORGED")
        var lines: [LogLine] = []
        for i in 0..<200 {
            let effects = core.receiveControl(
                Self.frames(Self.hello(environment: "another"), from: forged), peer: nil, now: Int64(i))
            #expect(effects.errorCodes == [.incompatible])
            lines += effects.logs
        }
        // The first 10 in full, then the 16th, 32nd, 64th and 128th.
        #expect(lines.count == 14)
        #expect(lines.last?.message.contains("128 times so far") == true)
    }

    @Test func garbageOnEitherSocketIsRejectedAndCountedWithoutACrash() throws {
        var core = try Self.core()
        let garbage = core.receiveControl([Array("x".utf8), [0xFF, 0x00, 0x13]], peer: nil, now: 0)
        #expect(garbage.errorCodes.count == 1)
        let extraFrame = core.receiveControl([[1], [2], [3]], peer: nil, now: 0)
        #expect(extraFrame.replies.isEmpty)
        _ = core.receiveUnroll([[0xFF, 0xFF]], peer: nil, now: 0)
        _ = core.receiveUnroll([], peer: nil, now: 0)
        #expect(core.rejections.total == 4 && core.version == 0)
    }
}

/// A routing id and a teacher endpoint, comparable.
struct Pair: Equatable {
    var routing: [UInt8]
    var endpoint: String
    init(_ routing: [UInt8], _ endpoint: String) {
        self.routing = routing
        self.endpoint = endpoint
    }
}

extension [LearnerEffect] {
    var replies: [(routing: [UInt8], message: Message)] {
        compactMap { if case .reply(let routing, let message) = $0 { (routing, message) } else { nil } }
    }
    var errorCodes: [ErrorReply.Code] {
        replies.compactMap { if case .error(let error) = $0.message { error.code } else { nil } }
    }
    var errorMessages: [String] {
        replies.compactMap { if case .error(let error) = $0.message { error.message } else { nil } }
    }
    var statusReplies: [Control] {
        compactMap { if case .replyWithStatus(_, let control) = $0 { control } else { nil } }
    }
    var swapsSent: [Pair] {
        replies.compactMap {
            if case .control(let control) = $0.message, control.command == .swapTeacher {
                Pair($0.routing, control.teacherEndpoint)
            } else {
                nil
            }
        }
    }
    var published: [UInt64] {
        compactMap { if case .publish(let parameters) = $0 { parameters.version } else { nil } }
    }
    var logs: [LogLine] {
        compactMap { if case .log(let line) = $0 { line } else { nil } }
    }
}
