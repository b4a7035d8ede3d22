import DistillCore
import DistillNN
import DistillRuntime
import DistillWire
import Foundation
import Testing

/// Multi-task distillation on the cluster (issue 12, item 7), in process with a fake clock: the
/// union of two gridworlds, an actor assigned to one task, and the learner of one network student
/// with one teacher per task. An actor of task k plays only task k and asks its teacher in the
/// task's own state ids; the published table is the network's policy at every state, rendered
/// here by hand; an unroll must lie in the task of the teacher it names; swaps are refused.
@Suite("multi-task learner and actor, fake clock")
struct MultitaskLearnerTests {
    static let seeds: [UInt64] = [4, 7]

    static func configuration(
        architecture: String = "mlp:16/heads:2", observation: String = "one-hot"
    )
        -> RunConfiguration
    {
        var environment = EnvironmentSpec()
        environment.gridworld.size = 5
        environment.gridworld.terminalProbability = 0.05
        var method = MethodSpec()
        method.method = .nDistillR
        method.optimiser = .adam
        method.learningRate = 0.01
        method.episodesPerIteration = 1
        var teacher = TeacherSpec()
        teacher.kind = .optimal
        var configuration = RunConfiguration(
            environment: environment, teacher: teacher, method: method,
            student: StudentSpec(architecture: architecture, observation: observation, seed: 3))
        configuration.tasks = TasksSpec(
            seeds: seeds, label: try! TasksSpec.label(for: architecture, tasks: seeds.count))
        return configuration
    }

    static func core(
        _ configuration: RunConfiguration = configuration()
    ) throws -> LearnerCore<TabularNetworkLearnerModel> {
        let tasks = try MultitaskProblem(configuration)
        let teachers = try (0..<tasks.count).map { try tasks.teacher(task: $0, configuration.teacher) }
        let problem = LearnerProblem(
            environment: tasks.tasks.environment, environmentIdentity: tasks.environmentIdentity,
            method: configuration.method, teacherKind: configuration.teacher.kind, referenceTeacher: nil,
            unrollSteps: 100, configurationJSON: "{}")
        let model = try TabularNetworkLearnerModel(
            learner: problem, tasks: TaskTeachers(problem: tasks, teachers: teachers),
            architecture: configuration.student.architecture)
        var settings = LearnerConfiguration(bindUnrolls: "", bindParameters: "", bindControl: "")
        settings.publishEveryUpdates = 1
        var core = try LearnerCore(
            model: model, student: tasks.student(configuration.student, method: configuration.method), problem: problem,
            configuration: settings, seed: 1)
        core.authorization = LearnerAuthorization(access: .token(LearnerCoreTests.token))
        core.start(now: 0)
        return core
    }

    /// One episode of one step of task `task` (from its first start state), naming `teacher`.
    static func unroll(
        _ tasks: MultitaskProblem, task: Int, teacher: String, sequence: UInt64, stateOffset: Int? = nil
    ) -> Message {
        let start = tasks.tasks.tasks[task].mdp.startStates[0]
        let s = Int32(stateOffset ?? tasks.tasks.stateOffsets[task]) + start
        return .unroll(
            Unroll(
                sequence: sequence, parameterVersion: 0, teacherID: teacher, teacherVersion: 1, actionCount: 4,
                episodeLengths: [1], episodeTerminated: [false], observations: [s, s], actions: [0], rewards: [0],
                behaviourProbabilities: [0.25],
                teacherProbabilities: Tensor(shape: [2, 4], values: [1, 0, 0, 0, 1, 0, 0, 0]), teacherValues: [0, 0]))
    }

    @Test func anActorOfOneTaskStartsThereAndNeverLeavesIt() throws {
        let tasks = try MultitaskProblem(Self.configuration())
        for k in 0..<tasks.count {
            let mdp = tasks.tasks.environment(startingIn: k).mdp
            let range = tasks.tasks.stateOffsets[k]..<tasks.tasks.stateOffsets[k + 1]
            let own = tasks.tasks.tasks[k].mdp
            for s in 0..<mdp.stateCount {
                let expected = range.contains(s) ? own.startDistribution[s - range.lowerBound] : 0
                #expect(mdp.startDistribution[s] == expected, "ρ0 of state \(s) for an actor of task \(k)")
                #expect(tasks.tasks.task(ofState: s) == (range.contains(s) ? k : 1 - k))
            }
            // Every state reachable from task k's starts is task k's.
            var seen = Set(mdp.startStates.map(Int.init))
            var frontier = Array(seen)
            while let s = frontier.popLast() {
                for a in 0..<mdp.actionCount {
                    for next in mdp.outcomes(state: s, action: a).map(\.next) where seen.insert(next).inserted {
                        frontier.append(next)
                    }
                }
            }
            #expect(seen.allSatisfy(range.contains), "task \(k) reaches \(seen.filter { !range.contains($0) })")
        }
    }

    /// The published logits are the network's at every union state, with the observation rendered
    /// here by hand: task k's own one-hot vector of the state, then the one-hot head selector.
    @Test func thePublishedTableIsTheNetworksPolicyAtEveryStateOfEveryTask() throws {
        let core = try Self.core()
        let tasks = try #require(core.model.tasks).problem
        let parameters = core.currentParameters()
        let network = core.state.student.network
        #expect(parameters.values.shape == [tasks.tasks.environment.mdp.stateCount, 4])
        for k in 0..<tasks.count {
            let n = tasks.tasks.tasks[k].mdp.stateCount
            var rows: [Float] = []
            for s in 0..<n {
                var row = [Float](repeating: 0, count: n + 2)
                row[s] = 1
                row[n + k] = 1
                rows += row
            }
            let logits = network.forward(rows, batch: n).logits
            let offset = tasks.tasks.stateOffsets[k]
            for s in 0..<n {
                for a in 0..<4 {
                    // One batched forward of every state against one of a task's: float32 rounding apart.
                    #expect(
                        abs(parameters.values.values[(offset + s) * 4 + a] - logits[s * 4 + a]) <= 1e-6,
                        "task \(k), state \(s), action \(a)")
                }
            }
        }
    }

    @Test func anUnrollMustLieInTheTaskOfTheTeacherItNames() throws {
        var core = try Self.core()
        let tasks = try #require(core.model.tasks).problem
        let ids = try #require(core.model.tasks).identities
        #expect(ids == ["task 0: optimal", "task 1: optimal"])
        let actor = LearnerCoreTests.actor("a")
        // Task 1's states with task 0's teacher, an unknown teacher: refused, nothing learned.
        let refused: [(Message, String)] = [
            (
                Self.unroll(tasks, task: 1, teacher: ids[0], sequence: 1),
                "names task 0's teacher but visits state"
            ),
            (Self.unroll(tasks, task: 0, teacher: "optimal", sequence: 2), "is none of this run's 2 task teachers"),
        ]
        for (message, reason) in refused {
            _ = core.receiveUnroll(LearnerCoreTests.unrollFrames(message, from: actor), peer: nil, now: 5)
            #expect(core.version == 0)
            #expect(core.rejections.total > 0)
            #expect(core.model.incompatibility(of: Self.unwrap(message))?.contains(reason) == true)
        }
        // Each task's own teacher: both learned from, with no single "current" teacher to switch.
        let rejected = core.rejections.total
        _ = core.receiveUnroll(
            LearnerCoreTests.unrollFrames(Self.unroll(tasks, task: 0, teacher: ids[0], sequence: 3), from: actor),
            peer: nil, now: 6)
        _ = core.receiveUnroll(
            LearnerCoreTests.unrollFrames(
                Self.unroll(tasks, task: 1, teacher: ids[1], sequence: 1), from: LearnerCoreTests.actor("b")),
            peer: nil, now: 7)
        #expect(core.version == 2)
        #expect(core.rejections.total == rejected)
        #expect(core.teachers.switchCount == 0)
    }

    /// A checkpoint on disk resumes the network, its optimiser and the tabular critic exactly: the
    /// resumed learner (other initial weights before the restore) learns what the one that never
    /// stopped learns.
    @Test func aCheckpointOnDiskResumesTheMultitaskLearnerExactly() throws {
        var configuration = Self.configuration()
        configuration.method.method = .actorCritic  // a rule that reads the tabular critic
        var core = try Self.core(configuration)
        let tasks = try #require(core.model.tasks)
        var sequence: UInt64 = 0
        func unroll(_ k: Int) -> [[UInt8]] {
            sequence += 1
            return LearnerCoreTests.unrollFrames(
                Self.unroll(tasks.problem, task: k, teacher: tasks.identities[k], sequence: sequence),
                from: LearnerCoreTests.actor("a\(k)"))
        }
        for k in [0, 1, 0] { _ = core.receiveUnroll(unroll(k), peer: nil, now: 1) }
        #expect(core.version == 3 && core.state.critic != nil)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tasks-ckpt-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try CheckpointStore(directory: directory)
        _ = try store.write(
            Checkpoint(core.snapshot, version: core.version, configurationJSON: "{}", createdUnixMilliseconds: 0),
            sender: Sender(role: .learner, id: "l", runNonce: 1))
        var other = configuration
        other.student.seed = 99
        var resumed = try Self.core(other)
        #expect(resumed.state.student.network.parameters != core.state.student.network.parameters)
        try resumed.restore(LearnerSnapshot(try #require(try store.latest()).checkpoint))
        #expect(resumed.state.critic?.values == core.state.critic?.values)
        let next = unroll(1)
        _ = core.receiveUnroll(next, peer: nil, now: 2)
        _ = resumed.receiveUnroll(next, peer: nil, now: 2)
        #expect(resumed.state.updates == 4 && core.state.updates == 4)
        #expect(resumed.state.student.network.parameters == core.state.student.network.parameters)
        #expect(resumed.currentParameters().values == core.currentParameters().values)
    }

    @Test func aSwapIsRefusedWithTheReason() throws {
        var core = try Self.core()
        let effects = core.receiveControl(
            LearnerCoreTests.frames(LearnerCoreTests.control(.swapTeacher), from: LearnerCoreTests.operatorSender),
            peer: nil, now: 10)
        #expect(effects.errorCodes == [.incompatible])
        #expect(effects.errorMessages.first?.contains("one teacher per task") == true, "\(effects.errorMessages)")
        #expect(effects.swapsSent.isEmpty)
    }

    @Test func aStudentOfTheWrongDesignIsRefused() throws {
        var configuration = Self.configuration()
        configuration.student.architecture = "mlp:16/heads:3"
        #expect(throws: DistillError.self) { try TasksSpec.label(for: "mlp:16/heads:3", tasks: 2) }
        configuration.tasks?.label = .input
        configuration.student.architecture = "mlp:16/heads:2"
        let tasks = try MultitaskProblem(configuration)
        #expect(throws: DistillError.self) { try tasks.student(configuration.student, method: configuration.method) }
        var file = Self.configuration()
        file.teacher.kind = .file
        #expect(throws: DistillError.self) { try MultitaskProblem(file).teacher(task: 0, file.teacher) }
        var one = Self.configuration()
        one.tasks?.seeds = [4]
        #expect(throws: DistillError.self) { try MultitaskProblem(one) }
    }

    /// An actor of task 1 asks its teacher server for task 1's own ids and stores the answers at
    /// the union's: with a teacher-driven control it first fetches task 1's states, and its unroll
    /// carries the rows its teacher gave for each state.
    @Test func anActorOfTaskOneSpeaksItsTeachersStateIDs() throws {
        let tasks = try MultitaskProblem(Self.configuration())
        let offset = tasks.tasks.stateOffsets[1]
        let n = tasks.tasks.tasks[1].mdp.stateCount
        var acting = TabularActing(
            environment: tasks.tasks.environment(startingIn: 1), seed: 5, task: offset..<(offset + n))
        var settings = ActorSettings(control: .teacher, maxEpisodeSteps: 50, unrollSteps: 30)
        settings.control = .teacher
        guard case .teacher(let query) = acting.play(settings: settings) else {
            Issue.record("a teacher-driven actor asks for its task's states first")
            return
        }
        #expect(query.stateIDs == (0..<Int32(n)).map { $0 })
        // A teacher of task 1 that names each state by its own id: action (id mod 4), value id.
        func reply(_ query: TeacherQuery) -> TeacherReply {
            var probabilities = [Float](repeating: 0, count: query.stateIDs.count * 4)
            for (row, id) in query.stateIDs.enumerated() { probabilities[row * 4 + Int(id) % 4] = 1 }
            return TeacherReply(
                queryID: query.queryID, teacherID: "task 1: optimal", teacherVersion: 1,
                probabilities: Tensor(shape: [query.stateIDs.count, 4], values: probabilities),
                values: query.stateIDs.map(Float.init), cacheable: true)
        }
        var need = try acting.store(reply(query), for: query)
        while need == .play { need = acting.play(settings: settings) }
        while case .teacher(let next) = need { need = try acting.store(reply(next), for: next) }
        #expect(need == .push)
        let unroll = acting.unroll(sequence: 1)
        #expect(!unroll.observations.isEmpty)
        for (row, s) in unroll.observations.enumerated() {
            #expect((offset..<(offset + n)).contains(Int(s)), "state \(s) is not task 1's")
            let local = Int(s) - offset
            #expect(unroll.teacherValues[row] == Float(local))
            #expect(unroll.teacherProbabilities.values[row * 4 + local % 4] == 1)
        }
        #expect(tasks.tasks.task(ofState: Int(unroll.observations[0])) == 1)
    }

    /// A network student on one gridworld: the tabular run's actors and teachers (its Hello, its
    /// first teacher trusted, swaps checked as usual), the network's table on the wire.
    @Test func aNetworkStudentOnOneGridworldTalksToTabularActorsAndTeachers() throws {
        let problem = LearnerCoreTests.problem
        let environment = try #require(problem.environment)
        let student = try StudentSpec(architecture: "mlp:8", observation: "image", seed: 2)
            .buildNetwork(for: environment, method: problem.method)
        let model = try TabularNetworkLearnerModel(learner: problem, architecture: "mlp:8")
        #expect(!model.teachersPerTask)
        var core = try LearnerCore(
            model: model, student: student, problem: problem,
            configuration: LearnerConfiguration(bindUnrolls: "", bindParameters: "", bindControl: ""), seed: 1)
        core.authorization = LearnerAuthorization(access: .token(LearnerCoreTests.token))
        core.start(now: 0)
        let welcome = core.receiveControl(
            LearnerCoreTests.frames(LearnerCoreTests.hello(), from: LearnerCoreTests.actor("a")), peer: nil, now: 1)
        guard case .welcome(let message)? = welcome.replies.first?.message else {
            Issue.record("a tabular actor of the run's gridworld is welcomed: \(welcome)")
            return
        }
        #expect(message.environmentSpec == nil && message.architecture.isEmpty)
        // The table is the network's policy: softmax of its logits at each state's image.
        let n = environment.mdp.stateCount
        let logits = student.network.forward(student.observations, batch: n).logits
        #expect(message.parameters.values.shape == [n, 4])
        for s in 0..<n {
            let row = (0..<4).map { Double(logits[s * 4 + $0]) }
            let published = (0..<4).map { Double(message.parameters.values.values[s * 4 + $0]) }
            let z = row.map { Foundation.exp($0) }.reduce(0, +)
            let w = published.map { Foundation.exp($0) }.reduce(0, +)
            for a in 0..<4 {
                #expect(abs(Foundation.exp(row[a]) / z - Foundation.exp(published[a]) / w) < 1e-6, "state \(s)")
            }
        }
        _ = core.receiveUnroll(
            LearnerCoreTests.unrollFrames(LearnerCoreTests.unroll(sequence: 1), from: LearnerCoreTests.actor("a")),
            peer: nil, now: 2)
        #expect(core.version == 1)
        let swap = core.receiveControl(
            LearnerCoreTests.frames(LearnerCoreTests.control(.swapTeacher), from: LearnerCoreTests.operatorSender),
            peer: nil, now: 10)
        #expect(swap.errorCodes.isEmpty, "a swap is checked as in any tabular run: \(swap.errorMessages)")
    }

    static func unwrap(_ message: Message) -> Unroll {
        guard case .unroll(let unroll) = message else { fatalError("not an unroll") }
        return unroll
    }
}
