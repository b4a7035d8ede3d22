import DistillCore
import DistillNN
import DistillRuntime
import DistillWire
import Foundation
import Testing

/// A monotonic nanosecond clock that advances 1 µs per reading.
final class SteppingClock: @unchecked Sendable {
    private let lock = NSLock()
    private var nanoseconds: UInt64 = 0

    func read() -> UInt64 {
        lock.lock()
        defer { lock.unlock() }
        nanoseconds += 1000
        return nanoseconds
    }
}

/// The network actor's core with a fake clock (issue 12, item 3): N CartPoles stepped together,
/// one batched student forward per step, one teacher query per unroll (split to fit a message),
/// unrolls that decode back into episodes whose behaviour is the student's softmax, parameters
/// applied between unrolls only, and Welcomes for another student or environment refused.
@Suite("network actor core, fake clock")
struct NetworkActorCoreTests {
    typealias Core = ActorCore<NetworkActing<CartPole>>

    static let t0: Int64 = 1_000_000
    static let architecture = "mlp:8"
    static let spec = WireEnvironmentSpec(CartPole().description)

    static func core(
        environments: Int = 4, maxMessageBytes: Int = WireCodec.defaultMaxMessageBytes, clock: SteppingClock = .init(),
        stepsPerSlice: Int? = nil, timeLimit: Int? = CartPole.timeLimit
    ) throws -> Core {
        var configuration = ActorConfiguration(
            learner: try Endpoint(parsing: "tcp://learner:5559"), teacher: "tcp://t1:1", seed: 11)
        configuration.maxMessageBytes = maxMessageBytes
        var acting = try NetworkActing(
            environments: [CartPole](repeating: CartPole(maxEpisodeSteps: timeLimit), count: environments),
            architecture: architecture,
            seed: configuration.seed, maxMessageBytes: maxMessageBytes, clock: { clock.read() })
        if let stepsPerSlice { acting.stepsPerSlice = stepsPerSlice }
        var core = Core(acting: acting, environmentIdentity: spec.name, configuration: configuration)
        core.start(now: t0)
        return core
    }

    /// A learner's network of this test's architecture, with weights from `seed`.
    static func network(seed: UInt64) throws -> PolicyValueNetwork {
        try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: architecture), inputShape: [4], actionCount: 2, seed: seed)
    }

    static func fromLearner(_ message: Message) -> [UInt8] {
        WireCodec().encode(Envelope(sender: Sender(role: .learner, id: "learner", runNonce: 42), message: message))
    }

    static func welcome(
        _ network: PolicyValueNetwork, version: UInt64, control: ControlPolicy = .student, maxEpisodeSteps: Int = 500,
        unrollSteps: Int = 200, spec: WireEnvironmentSpec = spec, architecture: String = architecture
    ) -> [UInt8] {
        let settings = ActorSettings(control: control, maxEpisodeSteps: maxEpisodeSteps, unrollSteps: unrollSteps)
        let json = String(decoding: try! JSONEncoder().encode(settings), as: UTF8.self)
        return fromLearner(
            .welcome(
                Welcome(
                    unrollPort: 5557, parametersPort: 5558, teacherEndpoint: "",
                    parameters: NetworkParameters.parameters(of: network, version: version, envSteps: 0),
                    actorSettingsJSON: json, environmentSpec: spec, architecture: architecture)))
    }

    /// A teacher that is a closed form of the observation: π(0|o) = σ(10 θ), V = x, Q = none.
    static func teacherRow(_ o: ArraySlice<Float>) -> (probabilities: [Float], value: Float) {
        let p0 = Float(1 / (1 + Foundation.exp(-10 * Double(o[o.startIndex + 2]))))
        return ([p0, 1 - p0], o[o.startIndex])
    }

    static func answer(_ query: TeacherQuery, id: String = "closed-form") -> [UInt8] {
        let rows = query.observations.rowCount
        let floats = query.observations.floats()
        var probabilities: [Float] = []
        var values: [Float] = []
        for r in 0..<rows {
            let row = teacherRow(floats[(r * 4)..<((r + 1) * 4)])
            probabilities += row.probabilities
            values.append(row.value)
        }
        let reply = TeacherReply(
            queryID: query.queryID, teacherID: id, teacherVersion: 1,
            probabilities: Tensor(shape: [rows, 2], values: probabilities), values: values, cacheable: false,
            environmentSpec: spec)
        return WireCodec().encode(
            Envelope(sender: Sender(role: .teacher, id: "t", runNonce: 5), message: .teacherReply(reply)))
    }

    /// Works the core (answering its teacher queries `teacherDelay` ms later) until it has an
    /// unroll to push; returns it through the codec, with the queries it asked.
    static func nextUnroll(
        _ core: inout Core, now: inout Int64, teacherDelay: Int64 = 7,
        answer: (TeacherQuery) -> [UInt8] = {
            answer($0)
        }
    ) throws -> (unroll: Unroll, queries: [TeacherQuery]) {
        var queries: [TeacherQuery] = []
        for _ in 0..<100_000 {
            now += 1
            for case .toTeacher(.teacherQuery(let query)) in core.work(now: now) {
                queries.append(query)
                now += teacherDelay
                _ = core.fromTeacher(answer(query), now: now)
            }
            let (unroll, _) = core.unrollToPush(now: now)
            if let unroll {
                core.unrollPushed()
                let envelope = try WireCodec().decode(
                    WireCodec().encode(
                        Envelope(sender: Sender(role: .actor, id: "a", runNonce: 1), message: .unroll(unroll))),
                    expecting: [.unroll])
                guard case .unroll(let decoded) = envelope.message else { throw ActingProblem("not an unroll") }
                return (decoded, queries)
            }
        }
        throw ActingProblem("no unroll after 100000 pieces of work (phase \(core.phase))")
    }

    /// The student's softmax at `observation` for the `network`'s parameters.
    static func softmax(_ network: PolicyValueNetwork, _ observation: ArraySlice<Float>) -> [Double] {
        let logits = network.forward(Array(observation), batch: 1).logits.map(Double.init)
        let top = logits.max()!
        let e = logits.map { Foundation.exp($0 - top) }
        return e.map { $0 / e.reduce(0, +) }
    }

    @Test func theHelloNamesTheSpecAndArchitectureAndTheUnrollDecodesWithTheStudentsBehaviour() throws {
        let clock = SteppingClock()
        var core = try Self.core(environments: 4, clock: clock)
        guard case .hello(let hello)? = core.tick(now: Self.t0).toLearner.first else {
            Issue.record("expected a Hello")
            return
        }
        #expect(hello.environment == "CartPole-v1" && hello.stateCount == 0 && hello.actionCount == 2)
        #expect(hello.environmentSpec == Self.spec && hello.architecture == Self.architecture)

        let learner = try Self.network(seed: 99)
        _ = core.fromLearner(Self.welcome(learner, version: 3, maxEpisodeSteps: 30), now: Self.t0)
        #expect(core.phase == .playing && core.version == 3)
        var now = Self.t0
        let (unroll, queries) = try Self.nextUnroll(&core, now: &now)

        // One teacher query for the unroll, for every observation of its episodes.
        #expect(queries.count == 1)
        let episodes = try ObservedUnroll.episodes(of: unroll, spec: Self.spec)
        let rows = episodes.reduce(0) { $0 + $1.length + 1 }
        #expect(queries[0].observations.shape == [rows, 4])
        #expect(queries[0].observations.floats() == episodes.flatMap(\.observationRows))
        let steps = episodes.reduce(0) { $0 + $1.length }
        #expect(steps >= 200 && steps < 200 + 4 * 30, "whole episodes, just past unrollSteps")
        #expect(unroll.parameterVersion == 3 && unroll.teacherID == "closed-form")

        for episode in episodes {
            #expect(episode.length <= 30, "the Welcome's time limit cuts episodes")
            if episode.length == 30 { #expect(!episode.terminated, "an episode cut by the time limit is bootstrapped") }
            if episode.length < 30 { #expect(episode.terminated) }
            for t in 0...episode.length {
                let o = episode.observationRows[(t * 4)..<((t + 1) * 4)]
                let teacher = Self.teacherRow(o)
                #expect(abs(episode.teacherProbabilities[t * 2] - Double(teacher.probabilities[0])) < 1e-6)
                #expect(abs(episode.teacherValues[t] - Double(teacher.value)) < 1e-6)
                guard t < episode.length else { continue }
                let student = Self.softmax(learner, o)
                #expect(abs(episode.behaviour[t] - student[Int(episode.actions[t])]) < 1e-5)
            }
        }
        #expect(episodes.contains { $0.length == 30 } && episodes.contains { $0.terminated })

        // Heartbeats: 1 µs per clock reading around each batched step and forward; the teacher
        // waited 7 ms (the fake `now`) for the one query.
        let batchedSteps = core.envSteps / 4
        guard case .heartbeat(let beat)? = core.tick(now: now + 1000).toLearner.first else {
            Issue.record("expected a heartbeat")
            return
        }
        #expect(beat.envSteps == core.envSteps && core.envSteps % 4 == 0)
        #expect(beat.observationMicroseconds == batchedSteps && beat.inferenceMicroseconds == batchedSteps + 7000)
    }

    @Test func aTeacherQueryLargerThanAMessageIsSplitAndReassembled() throws {
        // (2048 − 1024) / 20 bytes per row of reply: 51 rows per query. CartPole's own time limit
        // is 20 steps here.
        var core = try Self.core(environments: 3, maxMessageBytes: 2048, timeLimit: 20)
        #expect(core.acting.maxQueryRows == 51)
        _ = core.fromLearner(Self.welcome(try Self.network(seed: 5), version: 1, unrollSteps: 300), now: Self.t0)
        var now = Self.t0
        let (unroll, queries) = try Self.nextUnroll(&core, now: &now)
        let episodes = try ObservedUnroll.episodes(of: unroll, spec: Self.spec)
        let rows = episodes.reduce(0) { $0 + $1.length + 1 }
        #expect(queries.count == (rows + 50) / 51 && queries.count > 1)
        #expect(queries.allSatisfy { $0.observations.rowCount <= 51 })
        #expect(queries.flatMap { $0.observations.floats() } == episodes.flatMap(\.observationRows))
        for episode in episodes {
            for t in 0...episode.length {
                let teacher = Self.teacherRow(episode.observationRows[(t * 4)..<((t + 1) * 4)])
                #expect(abs(episode.teacherValues[t] - Double(teacher.value)) < 1e-6)
            }
            #expect(episode.length <= 20)
            if episode.length < 20 { #expect(episode.terminated) }
        }
        // Cut by the environment's time limit (and the pole still up): bootstrapped by the learner.
        #expect(episodes.contains { $0.length == 20 && !$0.terminated })
    }

    @Test func parametersArrivingDuringAnUnrollApplyOnlyAfterItIsPushed() throws {
        // One environment, one step per piece of work, unrolls of one episode: every episode lies
        // inside one unroll, and the new parameters arrive in the middle of the first.
        var core = try Self.core(environments: 1, stepsPerSlice: 1)
        let first = try Self.network(seed: 1)
        let second = try Self.network(seed: 2)
        _ = core.fromLearner(Self.welcome(first, version: 1, unrollSteps: 1), now: Self.t0)
        var now = Self.t0
        _ = core.work(now: now + 1)
        #expect(core.acting.environmentSteps == 1 && core.phase == .playing)
        let broadcast = Self.fromLearner(.parameters(NetworkParameters.parameters(of: second, version: 2, envSteps: 9)))
        _ = core.fromParameters(broadcast, now: now + 2)
        #expect(core.version == 2 && core.acting.actingVersion == 1, "held, not yet acted with")

        let (played, _) = try Self.nextUnroll(&core, now: &now)
        #expect(played.parameterVersion == 1)
        for episode in try ObservedUnroll.episodes(of: played, spec: Self.spec) {
            for t in 0..<episode.length {
                let o = episode.observationRows[(t * 4)..<((t + 1) * 4)]
                #expect(abs(episode.behaviour[t] - Self.softmax(first, o)[Int(episode.actions[t])]) < 1e-5)
            }
        }
        let (next, _) = try Self.nextUnroll(&core, now: &now)
        #expect(next.parameterVersion == 2 && core.acting.actingVersion == 2)
        for episode in try ObservedUnroll.episodes(of: next, spec: Self.spec) {
            for t in 0..<episode.length {
                let o = episode.observationRows[(t * 4)..<((t + 1) * 4)]
                #expect(abs(episode.behaviour[t] - Self.softmax(second, o)[Int(episode.actions[t])]) < 1e-5)
            }
        }
        // Parameters of another architecture, or with a wrong checksum, are refused and logged.
        let other = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: "mlp:16"), inputShape: [4], actionCount: 2, seed: 3)
        let foreign = core.fromParameters(
            Self.fromLearner(.parameters(NetworkParameters.parameters(of: other, version: 3, envSteps: 0))), now: now)
        #expect(foreign.logs.contains { $0.message.contains("'mlp:16' do not fit") } && core.version == 2)
        var corrupt = NetworkParameters.parameters(of: second, version: 4, envSteps: 0)
        corrupt.values.values[0] += 1
        let corrupted = core.fromLearner(Self.fromLearner(.parameters(corrupt)), now: now)
        #expect(!corrupted.logs.isEmpty && core.version == 2, "\(corrupted.logs.map(\.message))")
    }

    @Test func episodesEndingTogetherAreSplitIntoUnrollsTheLearnersBudgetAccepts() throws {
        // 16 CartPoles under the teacher's control with a 20-step time limit end 16 episodes on
        // the same step: one unroll of all of them would hold 320 steps, more than the learner's
        // largest honest unroll (unrollSteps − 1 + maxEpisodeSteps = 29). Each unroll stops at
        // the first episode that reaches unrollSteps; the rest follow in the next unrolls.
        var core = try Self.core(environments: 16, timeLimit: 20)
        _ = core.fromLearner(
            Self.welcome(try Self.network(seed: 8), version: 1, control: .teacher, unrollSteps: 10), now: Self.t0)
        var now = Self.t0
        var lengths: [[UInt32]] = []
        for _ in 0..<12 { lengths.append(try Self.nextUnroll(&core, now: &now).unroll.episodeLengths) }
        for unroll in lengths {
            let steps = Int(unroll.reduce(0, +))
            #expect(steps >= 10 && steps <= 10 - 1 + 20, "an unroll of \(unroll)")
            #expect(steps - Int(unroll.last!) < 10, "it stops at the episode that reaches unrollSteps")
        }
        #expect(lengths.flatMap { $0 }.count >= 12)
    }

    @Test func aWelcomeForAnotherStudentOrEnvironmentIsRefusedWithAClearLine() throws {
        var core = try Self.core()
        let wide = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: "mlp:16"), inputShape: [4], actionCount: 2, seed: 3)
        let effects = core.fromLearner(Self.welcome(wide, version: 1, architecture: "mlp:16"), now: Self.t0)
        #expect(effects.contains { if case .stop = $0 { true } else { false } })
        #expect(effects.logs.contains { $0.level == .error && $0.message.contains("refusing the learner's welcome") })
        #expect(core.refusal?.contains("'mlp:16', this actor's 'mlp:8'") == true, "\(core.refusal ?? "")")
        #expect(core.phase == .awaitingWelcome)

        var elsewhere = try Self.core()
        let acrobot = WireEnvironmentSpec(Acrobot().description)
        _ = elsewhere.fromLearner(Self.welcome(try Self.network(seed: 1), version: 1, spec: acrobot), now: Self.t0)
        #expect(elsewhere.refusal?.contains("the learner runs \(acrobot)") == true, "\(elsewhere.refusal ?? "")")
    }

    @Test func aTeacherDrivenControlAsksOncePerStepAndActsWithTheTeacher() throws {
        var core = try Self.core(environments: 3)
        _ = core.fromLearner(
            Self.welcome(try Self.network(seed: 4), version: 1, control: .teacher, unrollSteps: 60), now: Self.t0)
        var now = Self.t0
        let (unroll, queries) = try Self.nextUnroll(&core, now: &now)
        let episodes = try ObservedUnroll.episodes(of: unroll, spec: Self.spec)
        // One query per batched step: the 3 current observations, plus the last observations of
        // the episodes that ended on the step before.
        // (and the last query, whose answer completes the unroll before another step).
        #expect(UInt64(queries.count) == core.envSteps / 3 + 1)
        #expect(queries.allSatisfy { $0.observations.rowCount >= 3 })
        #expect(queries.contains { $0.observations.rowCount > 3 })
        for episode in episodes {
            for t in 0...episode.length {
                let o = episode.observationRows[(t * 4)..<((t + 1) * 4)]
                let teacher = Self.teacherRow(o)
                #expect(abs(episode.teacherProbabilities[t * 2] - Double(teacher.probabilities[0])) < 1e-6)
                guard t < episode.length else { continue }
                let a = Int(episode.actions[t])
                #expect(abs(episode.behaviour[t] - Double(teacher.probabilities[a])) < 1e-6)
            }
        }
    }

    @Test func aMixtureControlActsWithBetaTimesTheTeacherPlusTheRestTimesTheStudent() throws {
        var core = try Self.core(environments: 2)
        let student = try Self.network(seed: 8)
        _ = core.fromLearner(
            Self.welcome(student, version: 1, control: .mixture(beta: 0.3), unrollSteps: 40), now: Self.t0)
        var now = Self.t0
        let (unroll, _) = try Self.nextUnroll(&core, now: &now)
        var checked = 0
        for episode in try ObservedUnroll.episodes(of: unroll, spec: Self.spec) {
            for t in 0..<episode.length {
                let o = episode.observationRows[(t * 4)..<((t + 1) * 4)]
                let a = Int(episode.actions[t])
                let mixed = 0.3 * Double(Self.teacherRow(o).probabilities[a]) + 0.7 * Self.softmax(student, o)[a]
                #expect(abs(episode.behaviour[t] - mixed) < 1e-5)
                checked += 1
            }
        }
        #expect(checked >= 40)
    }

    @Test func anyObservedEnvironmentPlugsInAcrobotWithThreeActionsAndSixNumbers() throws {
        let spec = WireEnvironmentSpec(Acrobot().description)
        let acting = try NetworkActing(
            environments: [Acrobot](repeating: Acrobot(maxEpisodeSteps: 50), count: 3), architecture: "mlp:8",
            seed: 2, maxMessageBytes: WireCodec.defaultMaxMessageBytes)
        var core = ActorCore(
            acting: acting, environmentIdentity: spec.name,
            configuration: ActorConfiguration(
                learner: try Endpoint(parsing: "tcp://learner:5559"), teacher: "tcp://t1:1", seed: 2))
        core.start(now: Self.t0)
        guard case .hello(let hello)? = core.tick(now: Self.t0).toLearner.first else {
            Issue.record("expected a Hello")
            return
        }
        #expect(hello.environmentSpec == spec && hello.actionCount == 3 && hello.environment == "Acrobot-v1")
        let student = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: "mlp:8"), inputShape: [6], actionCount: 3, seed: 4)
        _ = core.fromLearner(Self.welcome(student, version: 1, unrollSteps: 100, spec: spec), now: Self.t0)
        #expect(core.phase == .playing && core.refusal == nil)
        var now = Self.t0
        var asked: [TeacherQuery] = []
        var pushed: Unroll?
        for _ in 0..<10_000 where pushed == nil {
            now += 1
            for case .toTeacher(.teacherQuery(let query)) in core.work(now: now) {
                asked.append(query)
                let rows = query.observations.rowCount
                let reply = TeacherReply(
                    queryID: query.queryID, teacherID: "uniform", teacherVersion: 1,
                    probabilities: Tensor(shape: [rows, 3], values: [Float](repeating: 1 / 3, count: rows * 3)),
                    values: [Float](repeating: -1, count: rows), cacheable: false, environmentSpec: spec)
                _ = core.fromTeacher(
                    WireCodec().encode(
                        Envelope(sender: Sender(role: .teacher, id: "t", runNonce: 5), message: .teacherReply(reply))),
                    now: now)
            }
            pushed = core.unrollToPush(now: now).unroll
        }
        let unroll = try #require(pushed)
        let episodes = try ObservedUnroll.episodes(of: unroll, spec: spec)
        #expect(asked.count == 1 && asked[0].observations.rowShape == [6])
        #expect(episodes.allSatisfy { $0.length == 50 && !$0.terminated }, "a random Acrobot swings 50 steps")
        for episode in episodes {
            for t in 0..<episode.length {
                let logits = student.forward(Array(episode.observationRows[(t * 6)..<((t + 1) * 6)]), batch: 1).logits
                let z = logits.map { Foundation.exp(Double($0)) }
                let p = z[Int(episode.actions[t])] / z.reduce(0, +)
                #expect(abs(episode.behaviour[t] - p) < 1e-5)
            }
        }
    }

    @Test func aSwapAsksTheNewTeacherForEveryRowOfTheUnroll() throws {
        var core = try Self.core(environments: 2, maxMessageBytes: 2048)
        _ = core.fromLearner(Self.welcome(try Self.network(seed: 6), version: 1, unrollSteps: 150), now: Self.t0)
        var now = Self.t0
        var first: TeacherQuery?
        for _ in 0..<10_000 where first == nil {
            now += 1
            for case .toTeacher(.teacherQuery(let query)) in core.work(now: now) { first = query }
        }
        let asked = try #require(first)
        _ = core.fromTeacher(Self.answer(asked, id: "old"), now: now + 1)
        #expect(core.phase == .awaitingTeacher, "more chunks to ask")
        _ = core.teacherConnected("tcp://t2:2")
        let (unroll, queries) = try Self.nextUnroll(&core, now: &now) { Self.answer($0, id: "new") }
        #expect(unroll.teacherID == "new")
        #expect(queries.first?.observations == asked.observations, "the new teacher is asked from the first row")
    }
}
