import DistillCore
import DistillNN
import DistillRuntime
import DistillWire
import Foundation
import Testing

/// The learner core with a network student (issue 12, item 4), in process with a fake clock: the
/// same protocol core as the tabular learner, with a `NetworkLearnerModel`. Actors of another
/// observation or architecture are refused with the reason; unrolls become the same update the
/// one learning step makes in one process; garbage observations change nothing; a checkpoint
/// (through its protobuf encoding on disk) resumes the network and its optimiser exactly.
@Suite("network learner core, fake clock")
struct NetworkLearnerCoreTests {
    static let description = ObservedWireTests.cartPole.description
    static let spec = ObservedWireTests.spec
    static let architecture = "mlp:16"

    static var method: MethodSpec {
        var method = MethodSpec()
        method.method = .onPolicyDistill
        method.optimiser = .adam
        method.learningRate = 0.01
        method.episodesPerIteration = 4
        return method
    }

    static func student(seed: UInt64 = 2) throws -> NetworkStudent {
        try StudentSpec(architecture: architecture, seed: seed).buildNetwork(for: description, method: method)
    }

    static func core(seed: UInt64 = 2) throws -> LearnerCore<NetworkLearnerModel> {
        let model = NetworkLearnerModel(
            description: description, environmentIdentity: description.name, architecture: architecture,
            method: method)
        let problem = LearnerProblem(
            environment: nil, environmentIdentity: description.name, method: method, teacherKind: nil,
            referenceTeacher: nil, unrollSteps: 100, configurationJSON: "{}")
        var configuration = LearnerConfiguration(bindUnrolls: "", bindParameters: "", bindControl: "")
        configuration.publishEveryUpdates = 1
        var core = try LearnerCore(
            model: model, student: student(seed: seed), problem: problem, configuration: configuration, seed: 1)
        core.start(now: 0)
        return core
    }

    static func hello(spec: WireEnvironmentSpec? = spec, architecture: String = architecture) -> Message {
        var hello = Hello(environment: description.name, stateCount: 0, actionCount: 2, teacherEndpoint: "tcp://t:1")
        hello.environmentSpec = spec
        hello.architecture = architecture
        return .hello(hello)
    }

    static func unroll(_ episodes: [ObservedEpisode], sequence: UInt64) -> Message {
        .unroll(
            ObservedUnroll.unroll(
                episodes, spec: spec, sequence: sequence, parameterVersion: 0, teacherID: "net", teacherVersion: 1))
    }

    static let actor = LearnerCoreTests.actor("a")

    @Test func anActorOfTheSameObservationAndArchitectureGetsTheNetworkInItsWelcome() throws {
        var core = try Self.core()
        let effects = core.receiveControl(LearnerCoreTests.frames(Self.hello(), from: Self.actor), peer: nil, now: 1)
        guard case .welcome(let welcome)? = effects.replies.first?.message else {
            Issue.record("expected a Welcome, got \(effects)")
            return
        }
        #expect(welcome.environmentSpec == Self.spec)
        #expect(welcome.architecture == Self.architecture)
        let network = try Self.student(seed: 99).network
        #expect(network.parameters != core.state.student.network.parameters)
        try NetworkParameters.apply(welcome.parameters, to: network)
        #expect(network.parameters == core.state.student.network.parameters)
    }

    @Test func actorsOfAnotherArchitectureOrObservationOrATabularActorAreRefusedWithTheReason() throws {
        var core = try Self.core()
        let cases: [(Message, String)] = [
            (Self.hello(architecture: "mlp:64,64"), "--student mlp:16"),
            (
                Self.hello(spec: WireEnvironmentSpec(name: "CartPole-v1", observationShape: [5], actionCount: 2)),
                "same --env"
            ),
            (
                .hello(
                    Hello(
                        environment: Self.description.name, stateCount: 36, actionCount: 2, teacherEndpoint: "tcp://t:1"
                    )),
                "a tabular actor"
            ),
        ]
        for (hello, hint) in cases {
            let effects = core.receiveControl(LearnerCoreTests.frames(hello, from: Self.actor), peer: nil, now: 1)
            #expect(effects.errorCodes == [.incompatible], "\(effects.errorMessages)")
            #expect(effects.errorMessages.first?.contains(hint) == true, "\(effects.errorMessages)")
        }
        #expect(core.actors.isEmpty)
    }

    @Test func unrollsTeachTheNetworkExactlyWhatTheOneLearningStepLearnsInOneProcess() throws {
        var core = try Self.core()
        let episodes = try ObservedWireTests.episodes(count: 8, seed: 11)
        let first = core.receiveUnroll(
            LearnerCoreTests.unrollFrames(Self.unroll(Array(episodes[0..<4]), sequence: 1), from: Self.actor),
            peer: nil, now: 5)
        let second = core.receiveUnroll(
            LearnerCoreTests.unrollFrames(Self.unroll(Array(episodes[4..<8]), sequence: 2), from: Self.actor),
            peer: nil, now: 6)
        #expect(core.version == 2)
        #expect(first.published == [1] && second.published == [2])
        // The same episodes as the wire delivers them, through the one learning step.
        var local = try LearnerState(
            method: Self.method, teacherKind: nil, discount: Self.description.discount, stateCount: 0, actionCount: 2,
            student: Self.student(), bound: .standard, seed: 1)
        for half in [episodes[0..<4], episodes[4..<8]] {
            guard case .unroll(let unroll) = Self.unroll(Array(half), sequence: 0) else { return }
            for episode in try ObservedUnroll.episodes(of: ObservedWireTests.roundTrip(unroll), spec: Self.spec) {
                local.accumulate(episode)
            }
            #expect(local.updateDue)
            _ = local.applyUpdate()
        }
        #expect(core.state.student.network.parameters == local.student.network.parameters)
        #expect(core.learnedSteps == UInt64(episodes.map(\.length).reduce(0, +)))
        // What is published is that network.
        guard case .publish(let parameters)? = second.first(where: { if case .publish = $0 { true } else { false } })
        else { return }
        let copy = try Self.student(seed: 5).network
        try NetworkParameters.apply(parameters, to: copy)
        #expect(copy.parameters == local.student.network.parameters)
    }

    @Test func garbageObservationsAndStateIdsChangeNothing() throws {
        var core = try Self.core()
        let before = core.state.student.network.parameters
        let episodes = try ObservedWireTests.episodes(count: 4, seed: 12)
        guard case .unroll(let good) = Self.unroll(episodes, sequence: 1) else { return }
        var wrongShape = good
        wrongShape.observationTensor = ObservationTensor(
            rows: good.observationTensor.rowCount * 2, rowShape: [2], float32: good.observationTensor.floats())
        var notFinite = good
        var floats = good.observationTensor.floats()
        floats[3] = .nan
        notFinite.observationTensor = ObservationTensor(
            rows: good.observationTensor.rowCount, rowShape: [4], float32: floats)
        var stateIDs = good
        stateIDs.observationTensor = .empty
        var badReward = good
        badReward.rewards[0] = 1e6
        for (index, unroll) in [wrongShape, notFinite, stateIDs, badReward].enumerated() {
            _ = core.receiveUnroll(
                LearnerCoreTests.unrollFrames(.unroll(unroll), from: Self.actor), peer: nil, now: Int64(index))
        }
        #expect(core.version == 0 && core.learnedSteps == 0)
        #expect(core.rejections.total == 4)
        #expect(core.state.student.network.parameters == before)
        _ = core.receiveUnroll(LearnerCoreTests.unrollFrames(.unroll(good), from: Self.actor), peer: nil, now: 9)
        #expect(core.version == 1)
    }

    @Test func aCheckpointOnDiskResumesTheNetworkAndItsOptimiserExactly() throws {
        var core = try Self.core()
        let episodes = try ObservedWireTests.episodes(count: 12, seed: 13)
        for (k, start) in [0, 4].enumerated() {
            _ = core.receiveUnroll(
                LearnerCoreTests.unrollFrames(
                    Self.unroll(Array(episodes[start..<(start + 4)]), sequence: UInt64(k + 1)), from: Self.actor),
                peer: nil, now: 1)
        }
        #expect(core.version == 2)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("net-ckpt-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try CheckpointStore(directory: directory)
        _ = try store.write(
            Checkpoint(core.snapshot, version: core.version, configurationJSON: "{}", createdUnixMilliseconds: 0),
            sender: Sender(role: .learner, id: "l", runNonce: 1))
        let (checkpoint, _, _) = try #require(try store.latest())
        // Another process: other initial weights, restored from the file.
        var resumed = try Self.core(seed: 77)
        try resumed.restore(LearnerSnapshot(checkpoint))
        #expect(resumed.state.student.network.parameters == core.state.student.network.parameters)
        #expect(resumed.state.student.optimizer.state == core.state.student.optimizer.state)
        #expect(resumed.state.updates == 2 && resumed.state.environmentSteps == core.state.environmentSteps)
        // Both learn the next unroll identically (Adam's moments and step count came back too).
        for index in [0, 1] {
            let frames = LearnerCoreTests.unrollFrames(
                Self.unroll(Array(episodes[8..<12]), sequence: 3), from: Self.actor)
            if index == 0 {
                _ = core.receiveUnroll(frames, peer: nil, now: 2)
            } else {
                _ = resumed.receiveUnroll(frames, peer: nil, now: 2)
            }
        }
        #expect(core.version == 3 && resumed.state.updates == 3)
        #expect(resumed.state.student.network.parameters == core.state.student.network.parameters)
    }

    @Test func aCheckpointOfAnotherNetworkIsRefusedAndChangesNothing() throws {
        var core = try Self.core()
        let before = core.state.student.network.parameters
        var snapshot = core.snapshot
        snapshot.parameters.removeLast()
        snapshot.shape = [snapshot.parameters.count]
        #expect(throws: DistillError.self) { try core.restore(snapshot) }
        var halfMoments = core.snapshot
        halfMoments.optimiserState.removeLast(7)
        #expect(throws: DistillError.self) { try core.restore(halfMoments) }
        var notFloat = core.snapshot
        notFloat.parameters[0] = 0.1  // not a float32 number
        #expect(throws: DistillError.self) { try core.restore(notFloat) }
        #expect(core.state.student.network.parameters == before)
    }

    /// A core of Rusu's setting (teacher-distill, a replay memory of `capacity` rows, 8-row
    /// minibatches, half an update per stored row).
    static func replayCore(seed: UInt64 = 2, capacity: Int = 50) throws -> LearnerCore<NetworkLearnerModel> {
        var method = Self.method
        method.method = .teacherDistill
        let model = NetworkLearnerModel(
            description: Self.description, environmentIdentity: Self.description.name,
            architecture: Self.architecture, method: method)
        var problem = LearnerProblem(
            environment: nil, environmentIdentity: Self.description.name, method: method, teacherKind: nil,
            referenceTeacher: nil, unrollSteps: 100, configurationJSON: "{}")
        problem.replay = ReplaySpec(capacity: capacity, batchSize: 8, updatesPerStep: 0.5)
        var core = try LearnerCore(
            model: model,
            student: StudentSpec(architecture: Self.architecture, seed: seed).buildNetwork(
                for: Self.description, method: method),
            problem: problem, configuration: LearnerConfiguration(bindUnrolls: "", bindParameters: "", bindControl: ""),
            seed: 1)
        core.start(now: 0)
        return core
    }

    /// The replay memory goes into the checkpoint file and comes back: a resumed learner samples
    /// the same minibatches from the same rows (the ring already wrapped, with credit owed) and
    /// learns exactly what the learner that never stopped learns.
    @Test func aCheckpointOnDiskResumesTheReplayMemoryExactly() throws {
        var core = try Self.replayCore()
        let episodes = try ObservedWireTests.episodes(count: 9, seed: 21)
        for (k, start) in [0, 3].enumerated() {
            _ = core.receiveUnroll(
                LearnerCoreTests.unrollFrames(
                    Self.unroll(Array(episodes[start..<(start + 3)]), sequence: UInt64(k + 1)), from: Self.actor),
                peer: nil, now: 1)
        }
        let memory = try #require(core.replayMemory)
        #expect(
            memory.appended > memory.capacity, "the ring has wrapped: \(memory.appended) rows in \(memory.capacity)")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("replay-ckpt-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try CheckpointStore(directory: directory)
        var written = Checkpoint(
            core.snapshot, version: core.version, configurationJSON: "{}", createdUnixMilliseconds: 0)
        written.replay = core.replayRows
        _ = try store.write(written, sender: Sender(role: .learner, id: "l", runNonce: 1))
        let (checkpoint, _, _) = try #require(try store.latest())
        #expect(checkpoint.replay == core.replayRows)

        var resumed = try Self.replayCore(seed: 77)
        try resumed.restore(LearnerSnapshot(checkpoint))
        #expect(resumed.restoreReplay(try #require(checkpoint.replay)) == nil)
        #expect(resumed.replayMemory?.appended == memory.appended && resumed.replayRows == core.replayRows)
        for index in [0, 1] {
            let frames = LearnerCoreTests.unrollFrames(
                Self.unroll(Array(episodes[6..<9]), sequence: 3), from: Self.actor)
            if index == 0 {
                _ = core.receiveUnroll(frames, peer: nil, now: 2)
            } else {
                _ = resumed.receiveUnroll(frames, peer: nil, now: 2)
            }
        }
        #expect(resumed.state.updates == core.state.updates && core.state.updates > Int(checkpoint.updates))
        #expect(resumed.state.student.network.parameters == core.state.student.network.parameters)

        // A memory of another size is not restored, and says why; rows that disagree are refused.
        var other = try Self.replayCore(capacity: 40)
        #expect(other.restoreReplay(try #require(checkpoint.replay))?.contains("--replay-size is 40") == true)
        var torn = try #require(checkpoint.replay)
        torn.values.removeLast()
        #expect(torn.inconsistency != nil)
        var bad = written
        bad.replay = torn
        let bytes = WireCodec().encode(
            Envelope(sender: Sender(role: .learner, id: "l", runNonce: 1), message: .checkpoint(bad)))
        #expect(throws: DecodingError.self) { try WireCodec().decode(bytes, expecting: [.checkpoint]) }
    }

    @Test func withAReplayMemoryTheLearnerLearnsFromSampledMinibatchesOfTheTeachersGameplay() throws {
        var method = Self.method
        method.method = .teacherDistill
        let replay = ReplaySpec(capacity: 10_000, batchSize: 8, updatesPerStep: 0.5)
        var core = try Self.replayCore(capacity: replay.capacity)
        let episodes = try ObservedWireTests.episodes(count: 3, seed: 14)
        let steps = episodes.map(\.length).reduce(0, +)
        _ = core.receiveUnroll(
            LearnerCoreTests.unrollFrames(Self.unroll(episodes, sequence: 1), from: Self.actor), peer: nil, now: 1)
        // Every step's row is stored; once a minibatch is there, each row owes half an update.
        #expect(core.replayMemory?.count == steps)
        let updates = (steps - replay.batchSize + 1) / 2
        #expect(core.version == UInt64(updates) && core.state.environmentSteps == UInt64(steps))

        // The same memory and minibatches by hand, through the one learning step: each episode's
        // rows are stored as it arrives, then the updates they owe are made.
        var state = try LearnerState(
            method: method, teacherKind: nil, discount: Self.description.discount, stateCount: 0, actionCount: 2,
            student: StudentSpec(architecture: Self.architecture, seed: 2).buildNetwork(
                for: Self.description, method: method),
            bound: .standard, seed: 1)
        var memory = try ReplayMemory(capacity: 10_000, observationSize: 4, actionCount: 2, hasActionValues: false)
        guard case .unroll(let unroll) = Self.unroll(episodes, sequence: 1) else { return }
        let rule = state.effectiveRule
        var credit = 0.0
        var made = 0
        for episode in try ObservedUnroll.episodes(of: ObservedWireTests.roundTrip(unroll), spec: Self.spec) {
            for t in 0..<episode.length {
                memory.append(
                    observation: episode.observationRows[(t * 4)..<((t + 1) * 4)],
                    probabilities: episode.teacherProbabilities[(t * 2)..<((t + 1) * 2)],
                    logProbabilities: episode.teacherLogProbabilities[(t * 2)..<((t + 1) * 2)],
                    value: episode.teacherValues[t], actionValues: nil)
                if memory.count >= 8 { credit += 0.5 }
            }
            while credit >= 1 {
                credit -= 1
                let slots = memory.sample(8, using: &state.rng)
                state.withStudent {
                    $0.accumulateSupervised(memory, slots: slots, loss: rule.loss, weight: rule.lossWeight)
                }
                _ = state.applyUpdate()
                made += 1
            }
        }
        #expect(made == updates)
        #expect(core.state.student.network.parameters == state.student.network.parameters)
    }

    @Test func aReplayIsRefusedForATabularStudentAndForRulesThatNeedFreshEpisodes() throws {
        var tabular = LearnerCoreTests.problem
        tabular.replay = ReplaySpec(capacity: 100)
        #expect(throws: RuntimeError.self) {
            _ = try LearnerCore(
                problem: tabular, configuration: .init(bindUnrolls: "", bindParameters: "", bindControl: ""))
        }
        let model = NetworkLearnerModel(
            description: Self.description, environmentIdentity: Self.description.name,
            architecture: Self.architecture, method: Self.method)
        var problem = LearnerProblem(
            environment: nil, environmentIdentity: Self.description.name, method: Self.method, teacherKind: nil,
            referenceTeacher: nil, unrollSteps: 100, configurationJSON: "{}")
        problem.replay = ReplaySpec(capacity: 100)
        let error = try #require(throws: RuntimeError.self) {
            _ = try LearnerCore(
                model: model, student: Self.student(), problem: problem,
                configuration: .init(bindUnrolls: "", bindParameters: "", bindControl: ""), seed: 1)
        }
        #expect(error.description.contains("a replay memory holds the teacher's gameplay"))
    }
}
