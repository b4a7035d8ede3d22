import DistillCore
import DistillNN
import DistillWire
import Foundation

/// Acting with a network student on N observed environments stepped together (issue 12, item 3):
/// one batched forward of the student per step, actions sampled from the control policy
/// `q(a|o) = control.probability(student: π_θ, teacher: π, uniform: 1/A)` as `ObservedTrainer`
/// samples them, whole episodes pushed once they total `unrollSteps`.
///
/// The teacher is asked in batches: with a control that does not read it (student-driven, the
/// default) once per unroll, for every observation of the finished episodes; with one that does
/// (teacher, mixture) once per step, for the N current observations and the last observations of
/// the episodes that ended on the step before. Either way a query larger than the message size
/// allows is split, and an unroll's targets all come from one teacher (id and version): when a
/// swap or a new teacher version mixed them, every row of the unroll is asked again.
///
/// Parameters from the learner are checked on arrival (architecture, size, checksum) and applied
/// between unrolls only: an unroll's `parameterVersion` is the oldest version its episodes used.
public struct NetworkActing<Env: ObservedEnvironment>: ActorActing {
    /// The environment as the actor's student sees it.
    public let description: EnvironmentDescription
    /// The environment on the wire (Hello, the teacher's observations, unrolls).
    public let spec: WireEnvironmentSpec
    /// The student's architecture, as the learner's Welcome and parameters must name it.
    public let architecture: String
    /// The parameter version the student acts with now.
    public private(set) var actingVersion: UInt64 = 0
    /// Environment steps taken (every environment's).
    public private(set) var environmentSteps: UInt64 = 0
    /// Microseconds spent stepping the environments.
    public var observationMicroseconds: UInt64 { observationNanoseconds / 1000 }
    /// Microseconds spent in the student's forward passes.
    public var inferenceMicroseconds: UInt64 { inferenceNanoseconds / 1000 }
    // A CartPole step takes well under a microsecond: sum nanoseconds, not rounded microseconds.
    private var observationNanoseconds: UInt64 = 0
    private var inferenceNanoseconds: UInt64 = 0

    private var network: PolicyValueNetwork
    /// Holds parameters received while an unroll is being played, until the next boundary.
    private var spare: PolicyValueNetwork
    private var stagedVersion: UInt64?
    private var hasParameters = false
    /// True from an unroll's push until the next environment step: parameters apply at once.
    private var atBoundary = true
    private var batch: ObservedBatch<Env>
    private var rng: Xoshiro256StarStar
    private var running: [PlayedEpisode]
    /// Episodes that ended while the control reads the teacher: their last observation's row
    /// comes with the next step's query.
    private var ended: [PlayedEpisode] = []
    private var finished: [PlayedEpisode] = []
    private var finishedSteps = 0
    /// The learner's `unrollSteps` (at least 1), as the last play saw it.
    private var unrollLimit = 1
    private var readyToPush = false
    /// The teacher's rows for the N current observations (a control that reads the teacher).
    private var stepRows: TeacherRows?
    private var request: TeacherRequest?
    private let rowsPerQuery: Int
    /// Batched steps per call of `play(settings:)` at most (default: about 256 environment steps,
    /// so that the shell polls its sockets between slices).
    public var stepsPerSlice: Int
    private let clock: @Sendable () -> UInt64
    private var studentRow: [Double]
    private var behaviourRow: [Double]

    /// Acting on `environments` (their count is N) with a student of `architecture` (a `--student`
    /// string such as `mlp:64,64`), sampling with a generator seeded by `seed`, splitting teacher
    /// queries to fit `maxMessageBytes`; `clock` (nanoseconds, monotonic) times the observation and
    /// inference shares.
    public init(
        environments: [Env], architecture: String, seed: UInt64, maxMessageBytes: Int,
        clock: @escaping @Sendable () -> UInt64 = { DispatchTime.now().uptimeNanoseconds }
    ) throws {
        guard let first = environments.first else {
            throw DistillError(.invalidConfiguration, "an actor needs at least one environment")
        }
        let description = first.description
        guard description.observation.dtype == .float32 else {
            throw DistillError(
                .invalidConfiguration,
                "\(description.name) observes \(description.observation.dtype); network actors send float32 observations"
            )
        }
        let student = StudentSpec(architecture: architecture, seed: seed)
        guard !student.isTabular else {
            throw DistillError(.invalidConfiguration, "a network actor needs a network --student such as mlp:64,64")
        }
        network = try student.buildNetwork(for: description, method: MethodSpec()).network
        spare = try student.buildNetwork(for: description, method: MethodSpec()).network
        self.description = description
        self.architecture = network.architecture.description
        spec = WireEnvironmentSpec(description)
        var root = Xoshiro256StarStar(seed: seed)
        batch = ObservedBatch(environments, seed: root.next())
        rng = root.split()
        running = environments.map { _ in PlayedEpisode(actionCount: description.actionCount) }
        let na = description.actionCount
        // A query carries a row's observation, its reply the row's π, Q and V: both must fit.
        let rowBytes = max(4 * description.observation.count, 8 * na + 4)
        rowsPerQuery = max(1, (maxMessageBytes - 1024) / rowBytes)
        stepsPerSlice = max(1, 256 / environments.count)
        self.clock = clock
        studentRow = Array(repeating: 0, count: na)
        behaviourRow = studentRow
    }

    /// N.
    public var environmentCount: Int { batch.environments.count }

    /// Rows of the largest teacher query this actor sends.
    public var maxQueryRows: Int { rowsPerQuery }

    public func hello(environment identity: String, teacherEndpoint: String) -> Hello {
        Hello(
            environment: identity, stateCount: 0, actionCount: description.actionCount,
            teacherEndpoint: teacherEndpoint, environmentSpec: spec, architecture: architecture)
    }

    public func incompatibility(with welcome: Welcome) -> String? {
        guard let theirs = welcome.environmentSpec else {
            return "the learner trains a tabular student; this actor plays \(spec) with a \(architecture) network: "
                + "start it with the learner's --env"
        }
        guard theirs == spec else {
            return "the learner runs \(theirs), this actor \(spec): start the actor with the learner's --env"
        }
        guard welcome.architecture == architecture else {
            return
                "the learner's student is '\(welcome.architecture)', this actor's '\(architecture)': start the actor "
                + "with the learner's --student"
        }
        return nil
    }

    public mutating func receive(_ parameters: Parameters) -> String? {
        do {
            try NetworkParameters.apply(parameters, to: spare)
        } catch {
            return "the learner's parameters (version \(parameters.version)) do not fit: \(error.message)"
        }
        stagedVersion = parameters.version
        if atBoundary { applyStaged() }
        return nil
    }

    private mutating func applyStaged() {
        guard let version = stagedVersion else { return }
        swap(&network, &spare)
        actingVersion = version
        hasParameters = true
        stagedVersion = nil
    }

    // MARK: Playing

    public mutating func play(settings: ActorSettings) -> ActingNeed {
        if let request { return .teacher(request.query(rows: rowsPerQuery, spec: spec)) }
        if readyToPush { return .push }
        guard hasParameters else { return .play }  // never acts with weights the learner did not send
        if atBoundary {
            applyStaged()
            atBoundary = false
        }
        let readsTeacher = Self.readsTeacher(settings.control)
        if !readsTeacher && !ended.isEmpty {
            // The control stopped reading the teacher: these wait for the unroll's query instead.
            for var episode in ended {
                episode.rows = .mixed
                finish(episode)
            }
            ended = []
        }
        // At least one step per unroll and per episode, whatever the settings say.
        let unrollSteps = max(1, settings.unrollSteps)
        unrollLimit = unrollSteps
        for _ in 0..<stepsPerSlice {
            if finishedSteps >= unrollSteps { return finishUnroll() }
            if readsTeacher && stepRows == nil {
                return ask(.step(finals: ended.count), observations: stepObservations())
            }
            step(settings, readsTeacher: readsTeacher)
        }
        return finishedSteps >= unrollSteps ? finishUnroll() : .play
    }

    static func readsTeacher(_ control: ControlPolicy) -> Bool {
        switch control {
        case .teacher, .mixture: true
        case .student, .uniform: false
        }
    }

    /// The N current observations, then the last observations of the episodes that ended.
    private func stepObservations() -> [Float] {
        var rows = batch.observations
        for episode in ended { rows.append(contentsOf: episode.episode.observationRows.suffix(spec.observationSize)) }
        return rows
    }

    /// One step of every environment: one batched forward of the student, one sampled action each.
    private mutating func step(_ settings: ActorSettings, readsTeacher: Bool) {
        let n = batch.environments.count
        let na = description.actionCount
        let size = batch.observationCount
        let started = clock()
        let logits = network.forward(batch.observations, batch: n).logits
        let forwarded = clock()
        inferenceNanoseconds += forwarded &- started
        var actions = [Int](repeating: 0, count: n)
        let uniform = 1 / Double(na)
        for i in 0..<n {
            Self.softmax(logits, row: i, into: &studentRow)
            for a in 0..<na {
                let teacher = stepRows.map { Double($0.probabilities[i * na + a]) } ?? uniform
                behaviourRow[a] = settings.control.probability(
                    student: studentRow[a], teacher: teacher, uniform: uniform)
            }
            let a = sample(behaviourRow)
            actions[i] = a
            if running[i].episode.actions.isEmpty { running[i].version = actingVersion }
            running[i].episode.observationRows.append(contentsOf: batch.observations[(i * size)..<((i + 1) * size)])
            running[i].episode.actions.append(Int32(a))
            running[i].episode.behaviour.append(behaviourRow[a])
            if let stepRows { running[i].append(stepRows, row: i) }
        }
        let stepping = clock()
        batch.step(actions)
        var cut: [Int] = []
        let limit = max(1, settings.maxEpisodeSteps)
        for i in 0..<n where !batch.outcomes[i].done && running[i].episode.actions.count >= limit {
            batch.restart(i)
            cut.append(i)
        }
        observationNanoseconds += clock() &- stepping
        environmentSteps += UInt64(n)
        stepRows = nil
        for i in 0..<n {
            let outcome = batch.outcomes[i]
            running[i].episode.rewards.append(outcome.reward)
            guard outcome.done || cut.contains(i) else { continue }
            var episode = running[i]
            episode.episode.observationRows.append(contentsOf: batch.finalObservations[(i * size)..<((i + 1) * size)])
            // Cut by a time limit (the environment's or the learner's): not terminal, so bootstrapped.
            episode.episode.terminated = outcome.terminated
            running[i] = PlayedEpisode(actionCount: na)
            if readsTeacher { ended.append(episode) } else { finish(episode) }
        }
    }

    private mutating func finish(_ episode: PlayedEpisode) {
        finished.append(episode)
        finishedSteps += episode.episode.length
    }

    /// The finished episodes are an unroll: push it, or first ask for its targets (all of them
    /// when any row is missing or they come from several teachers).
    private mutating func finishUnroll() -> ActingNeed {
        guard !finished.isEmpty else { return .play }
        if case .from = finished[0].rows, finished.allSatisfy({ $0.rows == finished[0].rows }) {
            readyToPush = true
            return .push
        }
        var rows = [Float]()
        rows.reserveCapacity(finished.reduce(0) { $0 + $1.episode.observationRows.count })
        for episode in finished { rows.append(contentsOf: episode.episode.observationRows) }
        return ask(.targets, observations: rows)
    }

    private mutating func ask(_ purpose: TeacherRequest.Purpose, observations: [Float]) -> ActingNeed {
        let request = TeacherRequest(
            purpose: purpose, observations: observations, count: observations.count / spec.observationSize)
        self.request = request
        return .teacher(request.query(rows: rowsPerQuery, spec: spec))
    }

    private mutating func sample(_ probabilities: [Double]) -> Int {
        let u = rng.nextUnit()
        var cumulative = 0.0
        for (a, p) in probabilities.enumerated() {
            cumulative += p
            if u < cumulative { return a }
        }
        return probabilities.lastIndex { $0 > 0 } ?? 0
    }

    /// `softmax` of row `row` of `logits` (`[B × A]`) into `out`, in Double.
    static func softmax(_ logits: [Float], row: Int, into out: inout [Double]) {
        softmaxRow(logits, row: row, into: &out)
    }

    // MARK: The teacher

    public mutating func store(_ reply: TeacherReply, for query: TeacherQuery) throws(ActingProblem) -> ActingNeed {
        guard var request else { throw ActingProblem("a teacher reply while no query is open") }
        let na = description.actionCount
        let rows = query.observations.rowCount
        guard reply.probabilities.shape == [rows, na], reply.values.count == rows,
            reply.qValues.isEmpty || reply.qValues.shape == [rows, na]
        else {
            throw ActingProblem(
                "teacher '\(reply.teacherID)' answered \(rows) observations with probabilities \(reply.probabilities.shape), "
                    + "\(reply.values.count) values and Q-values \(reply.qValues.shape); expected [\(rows), \(na)]: "
                    + "is it serving \(spec)?")
        }
        if let served = reply.environmentSpec, served != spec {
            throw ActingProblem("teacher '\(reply.teacherID)' serves \(served), this actor plays \(spec)")
        }
        let tag = TeacherTag(id: reply.teacherID, version: reply.teacherVersion)
        if let known = request.tag, known != tag {
            // Another teacher answered part of the request: ask every row of it again.
            request.restart()
            self.request = request
            return .teacher(request.query(rows: rowsPerQuery, spec: spec))
        }
        request.take(reply, tag: tag)
        guard request.isComplete else {
            self.request = request
            return .teacher(request.query(rows: rowsPerQuery, spec: spec))
        }
        self.request = nil
        let answer = request.answer()
        switch request.purpose {
        case .step(let finals):
            let n = batch.environments.count
            stepRows = answer.slice(0..<n, actionCount: na)
            for k in 0..<finals {
                var episode = ended[k]
                episode.append(answer, row: n + k)
                finish(episode)
            }
            ended.removeFirst(finals)
            return .play
        case .targets:
            var row = 0
            for e in finished.indices {
                let count = finished[e].episode.length + 1
                finished[e].replaceRows(with: answer.slice(row..<(row + count), actionCount: na))
                row += count
            }
            readyToPush = true
            return .push
        }
    }

    public mutating func forgetTeacher(pending: TeacherQuery?) -> TeacherQuery? {
        stepRows = nil
        for i in running.indices { running[i].forgetTeacher() }
        for i in ended.indices { ended[i].forgetTeacher() }
        for i in finished.indices { finished[i].forgetTeacher() }
        if var request {
            request.restart()
            self.request = request
            return request.query(rows: rowsPerQuery, spec: spec)
        }
        guard readyToPush else { return nil }
        readyToPush = false
        guard case .teacher(let query) = finishUnroll() else { return nil }
        return query
    }

    public func keepaliveQuery(id: UInt64) -> TeacherQuery {
        TeacherQuery(
            queryID: id,
            observations: ObservationTensor(
                rows: 1, rowShape: spec.observationShape,
                float32: Array(batch.observations.prefix(spec.observationSize))))
    }

    // MARK: Pushing

    public var holdsEpisodes: Bool { !finished.isEmpty }

    /// The finished episodes one unroll takes: up to the first that brings them to the learner's
    /// `unrollSteps`. N environments can end many episodes on one step; an unroll of all of them
    /// could exceed the largest unroll the learner accepts (`UnrollBudget`: at most
    /// `unrollSteps − 1 + maxEpisodeSteps` steps), so the rest wait for the next unroll.
    private var episodesPerUnroll: Int {
        var steps = 0
        for (index, episode) in finished.enumerated() {
            steps += episode.episode.length
            if steps >= unrollLimit { return index + 1 }
        }
        return finished.count
    }

    public func unroll(sequence: UInt64) -> Unroll {
        precondition(readyToPush, "unroll(sequence:) before the acting said .push")
        guard case .from(let tag) = finished[0].rows else { preconditionFailure("an unroll without its targets") }
        let pushed = finished.prefix(episodesPerUnroll)
        return ObservedUnroll.unroll(
            pushed.map(\.episode), spec: spec, sequence: sequence,
            parameterVersion: pushed.map(\.version).min() ?? actingVersion, teacherID: tag.id,
            teacherVersion: tag.version)
    }

    public mutating func unrollPushed() {
        finished.removeFirst(episodesPerUnroll)
        finishedSteps = finished.reduce(0) { $0 + $1.episode.length }
        readyToPush = false
        atBoundary = true
    }
}

/// A teacher and its version: an unroll's targets come from one.
struct TeacherTag: Equatable, Sendable {
    var id: String
    var version: UInt64
}

/// Which teacher an episode's rows came from.
enum RowSource: Equatable, Sendable {
    /// No rows yet.
    case none
    /// Every row from this teacher.
    case from(TeacherTag)
    /// Rows missing or from several teachers: ask again for all of them.
    case mixed
}

/// The teacher's outputs for consecutive rows.
struct TeacherRows: Sendable {
    var tag: TeacherTag
    var probabilities: [Float]
    var values: [Float]
    /// Empty without Q-values.
    var actionValues: [Float]

    func slice(_ rows: Range<Int>, actionCount na: Int) -> TeacherRows {
        TeacherRows(
            tag: tag, probabilities: Array(probabilities[(rows.lowerBound * na)..<(rows.upperBound * na)]),
            values: Array(values[rows]),
            actionValues: actionValues.isEmpty
                ? [] : Array(actionValues[(rows.lowerBound * na)..<(rows.upperBound * na)]))
    }
}

/// An episode being played or waiting to be pushed, with where its teacher rows came from and
/// the parameter version it started with.
struct PlayedEpisode: Sendable {
    var episode: ObservedEpisode
    var rows = RowSource.none
    var version: UInt64 = 0

    init(actionCount: Int) { episode = ObservedEpisode(actionCount: actionCount) }

    /// Appends row `row` of `answer` as the teacher's outputs of the next observation.
    mutating func append(_ answer: TeacherRows, row: Int) {
        let na = episode.actionCount
        let range = (row * na)..<((row + 1) * na)
        let first = episode.teacherValues.isEmpty
        let sameKind = first || episode.teacherActionValues.isEmpty == answer.actionValues.isEmpty
        episode.teacherProbabilities.append(contentsOf: answer.probabilities[range].map { Double($0) })
        episode.teacherValues.append(Double(answer.values[row]))
        if !answer.actionValues.isEmpty {
            episode.teacherActionValues.append(contentsOf: answer.actionValues[range].map { Double($0) })
        }
        switch rows {
        case .none where first: rows = .from(answer.tag)
        case .from(let tag) where tag == answer.tag && sameKind: break
        default: rows = .mixed
        }
    }

    /// Replaces every teacher row (one per observation) with `answer`'s.
    mutating func replaceRows(with answer: TeacherRows) {
        episode.teacherProbabilities = answer.probabilities.map { Double($0) }
        episode.teacherValues = answer.values.map { Double($0) }
        episode.teacherActionValues = answer.actionValues.map { Double($0) }
        episode.teacherLogProbabilities = []
        rows = .from(answer.tag)
    }

    /// The rows held came from a teacher the actor left.
    mutating func forgetTeacher() {
        if rows != .none { rows = .mixed }
    }
}

/// Observations whose teacher outputs are being asked, in chunks that fit a message.
struct TeacherRequest: Sendable {
    enum Purpose: Sendable, Equatable {
        /// The N current observations, then the last observations of `finals` ended episodes.
        case step(finals: Int)
        /// Every observation of the finished episodes, in order.
        case targets
    }

    let purpose: Purpose
    let observations: [Float]
    let count: Int
    /// The first row not answered yet.
    private(set) var next = 0
    private(set) var tag: TeacherTag?
    private var probabilities: [Float] = []
    private var values: [Float] = []
    private var actionValues: [Float] = []
    private var withActionValues = true

    init(purpose: Purpose, observations: [Float], count: Int) {
        self.purpose = purpose
        self.observations = observations
        self.count = count
    }

    var isComplete: Bool { next >= count }

    /// The query for the next chunk of at most `rows` rows (its id is the core's to give).
    func query(rows: Int, spec: WireEnvironmentSpec) -> TeacherQuery {
        let width = spec.observationSize
        let chunk = min(rows, count - next)
        return TeacherQuery(
            queryID: 0,
            observations: ObservationTensor(
                rows: chunk, rowShape: spec.observationShape,
                float32: Array(observations[(next * width)..<((next + chunk) * width)])))
    }

    mutating func take(_ reply: TeacherReply, tag: TeacherTag) {
        self.tag = tag
        probabilities.append(contentsOf: reply.probabilities.values)
        values.append(contentsOf: reply.values)
        withActionValues = withActionValues && !reply.qValues.isEmpty
        if withActionValues { actionValues.append(contentsOf: reply.qValues.values) }
        next += reply.values.count
    }

    mutating func restart() {
        next = 0
        tag = nil
        probabilities = []
        values = []
        actionValues = []
        withActionValues = true
    }

    func answer() -> TeacherRows {
        TeacherRows(
            tag: tag ?? TeacherTag(id: "", version: 0), probabilities: probabilities, values: values,
            actionValues: withActionValues ? actionValues : [])
    }
}
