import DistillCore
import DistillRuntime
import DistillWire
import Foundation
import Testing

/// The actor's protocol behaviour in-process, with a fake clock (issue 10, item 2): Hello and
/// its backoff, Welcome, stop, refusal, swap, give-up; and an actor core learning through a
/// learner core, message for message, without a socket.
@Suite("actor core, fake clock")
struct ActorCoreTests {
    /// A fake monotonic clock starts far from 0, as the real one does.
    static let t0: Int64 = 1_000_000
    static let learnerSender = Sender(role: .learner, id: "learner", runNonce: 42)
    static var environment: Environment { LearnerCoreTests.problem.environment! }

    static func core(_ configure: (inout ActorConfiguration) -> Void = { _ in }) throws -> ActorCore<TabularActing> {
        var configuration = ActorConfiguration(
            learner: try Endpoint(parsing: "tcp://learner:5559"), teacher: "tcp://t1:1", seed: 7)
        configure(&configuration)
        var core = ActorCore(
            environment: environment, environmentIdentity: LearnerCoreTests.problem.environmentIdentity,
            configuration: configuration)
        core.start(now: t0)
        return core
    }

    static func fromLearner(_ message: Message, nonce: UInt64 = 42) -> [UInt8] {
        WireCodec().encode(Envelope(sender: Sender(role: .learner, id: "learner", runNonce: nonce), message: message))
    }

    static func welcome(version: UInt64 = 1, teacher: String = "") -> [UInt8] {
        let mdp = environment.mdp
        let settings = ActorSettings(control: .student, maxEpisodeSteps: 50, unrollSteps: 20)
        let json = String(decoding: try! JSONEncoder().encode(settings), as: UTF8.self)
        let parameters = Parameters(
            version: version,
            values: Tensor(
                shape: [mdp.stateCount, mdp.actionCount],
                values: Array(repeating: 0, count: mdp.stateCount * mdp.actionCount)),
            envSteps: 0)
        return fromLearner(
            .welcome(
                Welcome(
                    unrollPort: 5557, parametersPort: 5558, teacherEndpoint: teacher, parameters: parameters,
                    actorSettingsJSON: json)))
    }

    /// The teacher's answer to `query`, from the run's own teacher table.
    static func answer(_ query: TeacherQuery, teacher: Teacher, id: String? = nil) -> [UInt8] {
        let na = teacher.actionCount
        var probabilities: [Float] = []
        var values: [Float] = []
        for state in query.stateIDs {
            let s = Int(state)
            probabilities += teacher.probabilities[s * na..<(s + 1) * na].map { Float($0) }
            values.append(Float(teacher.values[s]))
        }
        let reply = TeacherReply(
            queryID: query.queryID, teacherID: id ?? teacher.identity, teacherVersion: 1,
            probabilities: Tensor(shape: [query.stateIDs.count, na], values: probabilities), values: values,
            cacheable: true)
        return WireCodec().encode(
            Envelope(sender: Sender(role: .teacher, id: "t", runNonce: 5), message: .teacherReply(reply)))
    }

    @Test func helloBacksOffFromOneToSixteenSecondsAndAWelcomeEndsIt() throws {
        var core = try Self.core()
        var hellos: [Int64] = []
        var notices = 0
        for now in stride(from: Self.t0, through: Self.t0 + 80_000, by: 100) {
            let effects = core.tick(now: now)
            hellos += effects.toLearner.filter { if case .hello = $0 { true } else { false } }.map { _ in now - Self.t0
            }
            notices += effects.logs.filter { $0.message.contains("no answer from the learner") }.count
        }
        #expect(hellos == [0, 1000, 3000, 7000, 15_000, 31_000, 47_000, 63_000, 79_000])
        #expect(notices == hellos.count - 1, "one notice per unanswered Hello, none for the first")
        #expect(core.helloIntervalMilliseconds == 16_000)

        let welcomed = core.fromLearner(Self.welcome(), now: Self.t0 + 80_000)
        #expect(core.phase == .playing && core.version == 1 && core.helloIntervalMilliseconds == 1000)
        #expect(welcomed.contains { if case .connectLearner(5557, 5558) = $0 { true } else { false } })
        let later = (0..<100).flatMap { core.tick(now: Self.t0 + 80_100 + Int64($0) * 100) }
        #expect(!later.toLearner.contains { if case .hello = $0 { true } else { false } })
    }

    @Test func aRefusalStopsTheActorWithTheLearnersReasonAndAFullTableDoesNot() throws {
        var core = try Self.core()
        let full = core.fromLearner(
            Self.fromLearner(.error(ErrorReply(code: .unavailable, message: "all 1024 actors are alive"))),
            now: Self.t0)
        #expect(!full.contains { if case .stop = $0 { true } else { false } } && core.refusal == nil)
        let refused = core.fromLearner(
            Self.fromLearner(.error(ErrorReply(code: .incompatible, message: "this learner runs cartpole"))),
            now: Self.t0)
        #expect(refused.contains { if case .stop = $0 { true } else { false } })
        #expect(core.refusal == "this learner runs cartpole", "the shell exits non-zero with it")
    }

    @Test func theLearnersStopCommandStopsTheActorCleanly() throws {
        var core = try Self.core()
        _ = core.fromLearner(Self.welcome(), now: Self.t0)
        let effects = core.fromLearner(Self.fromLearner(.control(Control(command: .stop))), now: Self.t0 + 10)
        #expect(effects.contains { if case .stop = $0 { true } else { false } })
        #expect(core.refusal == nil)
    }

    @Test func aSwapAsksTheNewTeacherForTheStatesAlreadyPlayed() throws {
        var core = try Self.core()
        let teacher = try #require(LearnerCoreTests.problem.referenceTeacher)
        _ = core.fromLearner(Self.welcome(), now: Self.t0)
        _ = core.work(now: Self.t0 + 1)
        #expect(core.phase == .awaitingTeacher && core.envSteps >= 20)
        let played = core.work(now: Self.t0 + 1)
        guard case .teacherQuery(let first)? = played.toTeacher.first else {
            Issue.record("expected a teacher query, got \(played)")
            return
        }
        // The same endpoint is no move; another one is.
        let same = core.fromLearner(
            Self.fromLearner(.control(Control(command: .swapTeacher, teacherEndpoint: "tcp://t1:1"))), now: Self.t0 + 2)
        #expect(!same.contains { if case .connectTeacher = $0 { true } else { false } })
        let swap = core.fromLearner(
            Self.fromLearner(.control(Control(command: .swapTeacher, teacherEndpoint: "tcp://t2:2"))), now: Self.t0 + 3)
        #expect(swap.contains { if case .connectTeacher("tcp://t2:2") = $0 { true } else { false } })
        _ = core.teacherConnected("tcp://t2:2")
        #expect(core.teacherEndpoint == "tcp://t2:2")
        // The old teacher's late answer is ignored; the query goes out again, under a new id.
        _ = core.fromTeacher(Self.answer(first, teacher: teacher), now: Self.t0 + 4)
        #expect(core.phase == .awaitingTeacher)
        guard case .teacherQuery(let second)? = core.work(now: Self.t0 + 5).toTeacher.first else {
            Issue.record("expected the query again")
            return
        }
        #expect(second.queryID != first.queryID && second.stateIDs == first.stateIDs)
        _ = core.fromTeacher(Self.answer(second, teacher: teacher, id: "t2"), now: Self.t0 + 6)
        let (unroll, _) = core.unrollToPush(now: Self.t0 + 7)
        #expect(unroll?.teacherID == "t2", "every target of the unroll comes from the new teacher")
    }

    @Test func theActorGivesUpAfterTheGivenSecondsWithoutTheLearner() throws {
        var core = try Self.core { $0.giveUpAfterSeconds = 5 }
        _ = core.fromLearner(Self.welcome(), now: Self.t0 + 1000)
        _ = core.tick(now: Self.t0 + 5999)
        #expect(core.gaveUp == nil)
        _ = core.tick(now: Self.t0 + 6000)
        #expect(core.gaveUp?.hasPrefix("no message from the learner at tcp://learner:5559 for 5.0 s") == true)
    }

    @Test func anActorCoreLearnsThroughALearnerCoreWithoutASocket() throws {
        let teacher = try #require(LearnerCoreTests.problem.referenceTeacher)
        var learner = try LearnerCoreTests.core()
        learner.ports = (unrolls: 5557, parameters: 5558)
        var actor = try Self.core()
        let me = Sender(role: .actor, id: "a", runNonce: 1)
        let codec = WireCodec()
        func deliver(_ effects: [ActorEffect], now: Int64) {
            for case .toLearner(let message) in effects {
                let frames = [routingID(of: me), codec.encode(Envelope(sender: me, message: message))]
                for reply in learner.receiveControl(frames, peer: nil, now: now).replies {
                    let payload = codec.encode(Envelope(sender: Self.learnerSender, message: reply.message))
                    deliver(actor.fromLearner(payload, now: now), now: now)
                }
            }
            for case .toTeacher(.teacherQuery(let query)) in effects {
                deliver(actor.fromTeacher(Self.answer(query, teacher: teacher), now: now), now: now)
            }
        }
        var now = Self.t0
        for _ in 0..<200 where learner.version < 3 {
            now += 10
            deliver(actor.tick(now: now), now: now)
            deliver(actor.work(now: now), now: now)
            let (unroll, effects) = actor.unrollToPush(now: now)
            deliver(effects, now: now)
            guard let unroll else { continue }
            actor.unrollPushed()
            _ = learner.receiveUnroll(
                [codec.encode(Envelope(sender: me, message: .unroll(unroll)))], peer: nil, now: now)
            for ack in learner.takeReceipts().replies {
                let payload = codec.encode(Envelope(sender: Self.learnerSender, message: ack.message))
                deliver(actor.fromLearner(payload, now: now), now: now)
            }
        }
        #expect(learner.version >= 3, "one update per episode")
        #expect(learner.actors[routingID(of: me)]?.alive == true)
        #expect(learner.rejections.total == 0 && actor.rejections.total == 0, "\(actor.rejections.summary)")
        #expect(learner.teachers.current == teacher.identity)
    }
}

extension [ActorEffect] {
    var toLearner: [Message] { compactMap { if case .toLearner(let message) = $0 { message } else { nil } } }
    var toTeacher: [Message] { compactMap { if case .toTeacher(let message) = $0 { message } else { nil } } }
    var logs: [LogLine] { compactMap { if case .log(let line) = $0 { line } else { nil } } }
}
