import DistillCore
import DistillWire

/// Acting with a tabular student on state ids: whole episodes played at once up to an unroll,
/// the teacher asked for the states visited that its cache lacks (static teachers' answers are
/// cached; a teacher-driven control first fetches every state).
public struct TabularActing: ActorActing {
    private let environment: Environment
    private var rng: Xoshiro256StarStar
    private var parameters: StudentParameters
    private var policy: StudentPolicy
    private var version: UInt64 = 0
    private var cache: TeacherCache
    private var builder = UnrollBuilder()
    private var episode = EpisodeBuffer()
    private let placeholderTeacher: Teacher
    /// Environment steps played.
    public private(set) var environmentSteps: UInt64 = 0

    /// The union's states of this actor's task in a multi-task run: its teacher server numbers
    /// them from 0 (queries subtract the offset, replies are stored back at the union's ids).
    private let task: Range<Int32>?

    /// Acting on `environment`, sampling with a generator seeded by `seed`; `task`: the states of
    /// the one task this actor plays in a multi-task run (its episodes start there and never leave).
    public init(environment: Environment, seed: UInt64, task: Range<Int>? = nil) {
        self.environment = environment
        self.task = task.map { Int32($0.lowerBound)..<Int32($0.upperBound) }
        rng = Xoshiro256StarStar(seed: seed)
        let mdp = environment.mdp
        if let tied = environment.tiedRows {
            parameters = StudentParameters(
                rowOfState: tied, rowCount: Int(tied.max() ?? 0) + 1, actionCount: mdp.actionCount)
        } else {
            parameters = StudentParameters(stateCount: mdp.stateCount, actionCount: mdp.actionCount)
        }
        policy = StudentPolicy(parameters)
        cache = TeacherCache(stateCount: mdp.stateCount, actionCount: mdp.actionCount, playable: task)
        let uniform = [Double](repeating: 1 / Double(mdp.actionCount), count: mdp.stateCount * mdp.actionCount)
        placeholderTeacher = Teacher(
            identity: "unused", stateCount: mdp.stateCount, actionCount: mdp.actionCount, probabilities: uniform,
            values: Array(repeating: 0, count: mdp.stateCount))
    }

    public func hello(environment identity: String, teacherEndpoint: String) -> Hello {
        Hello(
            environment: identity, stateCount: environment.mdp.stateCount, actionCount: environment.mdp.actionCount,
            teacherEndpoint: teacherEndpoint)
    }

    public func incompatibility(with welcome: Welcome) -> String? {
        guard welcome.environmentSpec == nil && welcome.architecture.isEmpty else {
            return "the learner trains a \(welcome.architecture) network on "
                + "\(welcome.environmentSpec?.description ?? "observations"); this actor plays a tabular student on "
                + "\(environment.name): start it with the learner's --env and --student"
        }
        return nil
    }

    public mutating func receive(_ incoming: Parameters) -> String? {
        guard incoming.values.values.count == parameters.logits.count else {
            return """
                the learner's parameters have \(incoming.values.values.count) values, this actor's student has \
                \(parameters.logits.count): is the learner running the same environment?
                """
        }
        parameters.setLogits(float32: incoming.values.values)
        policy = StudentPolicy(parameters)
        version = incoming.version
        return nil
    }

    /// Plays whole episodes until an unroll's worth of steps is collected.
    public mutating func play(settings: ActorSettings) -> ActingNeed {
        if settings.control != .student && !cache.isComplete {
            // Teacher-driven control needs π before each action: fetch every state first.
            return .teacher(
                query((0..<Int32(environment.mdp.stateCount)).filter { !cache.known[Int($0)] }))
        }
        let actingTeacher =
            settings.control == .student ? placeholderTeacher : cache.actingTeacher ?? placeholderTeacher
        builder.parameterVersion = version
        while builder.steps < settings.unrollSteps {
            collectEpisode(
                environment.mdp, policy: policy, teacher: actingTeacher, control: settings.control,
                maxSteps: settings.maxEpisodeSteps, rng: &rng, into: &episode)
            builder.append(episode)
            environmentSteps += UInt64(episode.length)
        }
        return needAfterPlaying()
    }

    private func needAfterPlaying() -> ActingNeed {
        let missing = builder.missingStates(in: cache)
        if !missing.isEmpty { return .teacher(query(missing)) }
        return builder.isEmpty ? .play : .push
    }

    /// The query for the union's `states`, in the numbering of this actor's teacher server.
    private func query(_ states: [Int32]) -> TeacherQuery {
        guard let task else { return TeacherQuery(queryID: 0, stateIDs: states) }
        return TeacherQuery(queryID: 0, stateIDs: states.map { $0 - task.lowerBound })
    }

    public mutating func store(_ reply: TeacherReply, for query: TeacherQuery) throws(ActingProblem) -> ActingNeed {
        let states = task.map { task in query.stateIDs.map { $0 + task.lowerBound } } ?? query.stateIDs
        if let problem = cache.store(reply, for: states) { throw ActingProblem(problem) }
        // A changed teacher clears the cache: the unroll may need other states again.
        return needAfterPlaying()
    }

    public mutating func forgetTeacher(pending: TeacherQuery?) -> TeacherQuery? {
        cache.clear()
        // Targets of the finished episodes must all come from the new teacher.
        if let pending { return TeacherQuery(queryID: 0, stateIDs: pending.stateIDs) }
        let missing = builder.missingStates(in: cache)
        return missing.isEmpty ? nil : query(missing)
    }

    public func keepaliveQuery(id: UInt64) -> TeacherQuery { TeacherQuery(queryID: id, stateIDs: [0]) }

    public var holdsEpisodes: Bool { !builder.isEmpty }

    public func unroll(sequence: UInt64) -> Unroll { builder.unroll(sequence: sequence, cache: cache) }

    public mutating func unrollPushed() {
        builder.reset()
        if !cache.cacheable { cache.clear() }
    }

    /// Not measured for tables (a table lookup per step).
    public var observationMicroseconds: UInt64 { 0 }

    /// Not measured for tables.
    public var inferenceMicroseconds: UInt64 { 0 }
}
