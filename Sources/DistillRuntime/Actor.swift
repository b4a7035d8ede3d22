import DistillCore
import DistillWire
import Foundation
import Logging

/// How actors must act, decided by the learner (whose update rule assumes it) and sent in
/// `Welcome.actor_settings_json`, so every actor of a run acts alike.
public struct ActorSettings: Codable, Sendable, Equatable {
    /// The control policy q_θ that generates the trajectories.
    public var control: ControlPolicy
    /// Episodes longer than this are cut (and flagged as not terminated).
    public var maxEpisodeSteps: Int
    /// An unroll holds whole episodes totalling at least this many steps. This is network
    /// batching only: the learner updates every `episodesPerIteration` episodes, across unrolls.
    public var unrollSteps: Int

    /// The default of `unrollSteps` (`distill learner --unroll-steps`).
    public static let defaultUnrollSteps = 1000

    /// Creates settings.
    public init(control: ControlPolicy, maxEpisodeSteps: Int, unrollSteps: Int) {
        self.control = control
        self.maxEpisodeSteps = maxEpisodeSteps
        self.unrollSteps = unrollSteps
    }
}

/// Settings of one actor process.
public struct ActorConfiguration: Sendable {
    /// The learner's control endpoint (its other ports come in the Welcome).
    public var learner: Endpoint
    /// The teacher server to query (the learner may move the actor to another one).
    public var teacher: String
    /// Seed of this actor's random number generator.
    public var seed: UInt64
    /// Milliseconds between heartbeats to the learner.
    public var heartbeatMilliseconds: Int = 500
    /// Milliseconds before an unanswered teacher query is sent again (doubling up to the maximum).
    public var teacherTimeoutMilliseconds: Int = 1000
    /// Upper bound of the retry backoff, in milliseconds.
    public var maxBackoffMilliseconds: Int = 5000
    /// Stop after this many environment steps (nil: run until stopped).
    public var maxEnvSteps: UInt64?
    /// Unrolls pushed but not yet acknowledged by the learner, at most (flow control: bounds
    /// the policy lag whatever the speed of actors and learner).
    public var maxUnrollsInFlight = 8
    /// Largest message accepted.
    public var maxMessageBytes = WireCodec.defaultMaxMessageBytes
    /// This actor's CURVE keys, or nil for plain TCP.
    public var curve: CurveConfiguration?
    /// The learner's CURVE public key (required with `curve`).
    public var learnerKey: String?
    /// The teacher servers' CURVE public key (required with `curve`; shared by swapped-in servers).
    public var teacherKey: String?
    /// Give up (stop, with `gaveUp` set) after this many seconds without a message from the
    /// learner; 0: never (wait for it to come back).
    public var giveUpAfterSeconds: Double = 0
    /// Milliseconds without a query after which a one-state query tells the teacher server this
    /// actor is still alive (its cache may answer everything for long stretches), so a server's
    /// own give-up timer only fires when no actor is left.
    public var teacherKeepaliveMilliseconds: Int = 2000

    /// Creates a configuration.
    public init(learner: Endpoint, teacher: String, seed: UInt64) {
        self.learner = learner
        self.teacher = teacher
        self.seed = seed
    }
}

/// The teacher's outputs this actor knows, per state (valid for one teacher id and version).
struct TeacherCache {
    let stateCount: Int
    let actionCount: Int
    var teacherID = ""
    var teacherVersion: UInt64 = 0
    var cacheable = true
    var hasActionValues = false
    var known: [Bool]
    /// Number of `true` entries of `known`.
    private(set) var knownCount = 0
    /// The cache as a core `Teacher`, built once per content (teacher-driven control reads it
    /// every step; rebuilding it per unroll converted the whole table each time).
    private(set) var actingTeacher: Teacher?
    var probabilities: [Float]
    var values: [Float]
    var actionValues: [Float]

    /// The states this actor's teacher answers for (all, or one task's of a multi-task run).
    let playable: Range<Int>

    /// An empty cache; states outside `playable` (another task's, never visited) count as known,
    /// with uniform rows no unroll carries, so a teacher-driven control starts once the task's own
    /// states are known.
    init(stateCount: Int, actionCount: Int, playable: Range<Int>? = nil) {
        self.stateCount = stateCount
        self.actionCount = actionCount
        self.playable = playable ?? 0..<stateCount
        known = Array(repeating: false, count: stateCount)
        probabilities = Array(repeating: 0, count: stateCount * actionCount)
        values = Array(repeating: 0, count: stateCount)
        actionValues = []
        // Written once: replies store only the playable states' rows.
        let uniform = 1 / Float(actionCount)
        for s in 0..<stateCount where !self.playable.contains(s) {
            for a in 0..<actionCount { probabilities[s * actionCount + a] = uniform }
        }
        clear()
    }

    mutating func clear() {
        for i in 0..<known.count { known[i] = !playable.contains(i) }
        knownCount = stateCount - playable.count
        actingTeacher = nil
        teacherID = ""
    }

    /// True once every state is known (needed before acting with a teacher-driven control).
    var isComplete: Bool { knownCount == stateCount }

    /// Stores a reply for `states`; returns an error message when the reply does not fit.
    mutating func store(_ reply: TeacherReply, for states: [Int32]) -> String? {
        guard reply.probabilities.shape == [states.count, actionCount], reply.values.count == states.count else {
            return "teacher '\(reply.teacherID)' answered with shape \(reply.probabilities.shape) for "
                + "\(states.count) states of \(actionCount) actions: is it serving the same environment?"
        }
        if reply.teacherID != teacherID || reply.teacherVersion != teacherVersion {
            clear()
            teacherID = reply.teacherID
            teacherVersion = reply.teacherVersion
            hasActionValues = !reply.qValues.isEmpty
            actionValues = hasActionValues ? Array(repeating: 0, count: stateCount * actionCount) : []
        }
        cacheable = reply.cacheable
        for (row, state) in states.enumerated() {
            let s = Int(state)
            for a in 0..<actionCount {
                probabilities[s * actionCount + a] = reply.probabilities.values[row * actionCount + a]
                if hasActionValues { actionValues[s * actionCount + a] = reply.qValues.values[row * actionCount + a] }
            }
            values[s] = reply.values[row]
            if !known[s] {
                known[s] = true
                knownCount += 1
            }
        }
        actingTeacher =
            isComplete
            ? Teacher(
                identity: teacherID, stateCount: stateCount, actionCount: actionCount,
                probabilities: probabilities.map { Double($0) }, values: values.map { Double($0) }) : nil
        return nil
    }
}

/// Episodes played but not yet pushed, in the flat layout of an `Unroll`.
struct UnrollBuilder {
    var lengths: [UInt32] = []
    var terminated: [Bool] = []
    var observations: [Int32] = []
    var actions: [Int32] = []
    var rewards: [Float] = []
    var behaviour: [Float] = []
    var parameterVersion: UInt64 = 0

    var steps: Int { actions.count }
    var isEmpty: Bool { lengths.isEmpty }

    mutating func append(_ episode: EpisodeBuffer) {
        lengths.append(UInt32(episode.length))
        terminated.append(episode.terminated)
        observations.append(contentsOf: episode.states)
        actions.append(contentsOf: episode.actions)
        for r in episode.rewards { rewards.append(Float(r)) }
        for b in episode.behaviour { behaviour.append(Float(b)) }
    }

    /// States whose teacher outputs the cache lacks, each once.
    func missingStates(in cache: TeacherCache) -> [Int32] {
        var seen = Set<Int32>()
        return observations.filter { !cache.known[Int($0)] && seen.insert($0).inserted }
    }

    func unroll(sequence: UInt64, cache: TeacherCache) -> Unroll {
        let na = cache.actionCount
        let rows = observations.count
        // Row copies through raw buffers: this runs once per unroll for every visited state.
        let probabilities = Self.gather(cache.probabilities, rows: observations, width: na)
        let values = Self.gather(cache.values, rows: observations, width: 1)
        let q = cache.hasActionValues ? Self.gather(cache.actionValues, rows: observations, width: na) : []
        return Unroll(
            sequence: sequence, parameterVersion: parameterVersion, teacherID: cache.teacherID,
            teacherVersion: cache.teacherVersion, actionCount: na, episodeLengths: lengths,
            episodeTerminated: terminated, observations: observations, actions: actions, rewards: rewards,
            behaviourProbabilities: behaviour, teacherProbabilities: Tensor(shape: [rows, na], values: probabilities),
            teacherValues: values, teacherQValues: q.isEmpty ? .empty : Tensor(shape: [rows, na], values: q))
    }

    /// `table[row * width ..< (row + 1) * width]` for each row, concatenated.
    private static func gather(_ table: [Float], rows: [Int32], width: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: rows.count * width) { out, count in
            table.withUnsafeBufferPointer { source in
                rows.withUnsafeBufferPointer { rows in
                    var offset = 0
                    for row in rows {
                        let start = Int(row) * width
                        for k in 0..<width { out[offset + k] = source[start + k] }
                        offset += width
                    }
                }
            }
            count = rows.count * width
        }
    }

    mutating func reset() {
        self = UnrollBuilder()
    }
}

/// Runs environments with the control policy at the newest student parameters it holds, asks a
/// teacher server for the states it visits, and pushes whole episodes to the learner.
///
/// Failure policy: when the teacher server is unreachable the actor stops playing, retries with
/// exponential backoff and never sends an unroll with missing teacher outputs; when the learner
/// is unreachable it keeps one finished unroll and waits (PUSH blocks at a small high-water mark),
/// so memory and policy lag stay bounded; both reconnect on their own when the peer returns.
///
/// The ZeroMQ shell around `ActorCore`, which decides what every message means and what to send.
public struct Actor<Acting: ActorActing>: RoleLoop {
    private var core: ActorCore<Acting>
    private let configuration: ActorConfiguration
    private let sender: Sender
    private let logger: Logger
    private let codec: WireCodec
    /// Set by the learner's stop or refusal (or, for the `distill` command's token, a signal).
    private let stop: StopToken
    /// Why the actor gave up (`giveUpAfterSeconds` without a word from the learner), or nil.
    public var gaveUp: String? { core.gaveUp }

    /// Creates an actor that acts with `acting`, its environment identified to the learner by
    /// `environmentIdentity`, and runs until `stop` is requested.
    public init(
        acting: Acting, environmentIdentity: String, configuration: ActorConfiguration, sender: Sender,
        logger: Logger, stop: StopToken
    ) {
        self.stop = stop
        self.configuration = configuration
        self.sender = sender
        self.logger = logger
        self.codec = WireCodec(maxMessageBytes: configuration.maxMessageBytes)
        core = ActorCore(acting: acting, environmentIdentity: environmentIdentity, configuration: configuration)
    }

    /// The sockets of a running actor.
    private struct Sockets {
        let factory: SocketFactory
        let control: ZMQSocket
        var teacher: ZMQSocket
        let push: ZMQSocket
        let sub: ZMQSocket
        var learnerPorts: (Int, Int)?
    }

    /// Acts until a stop is requested, the learner says stop, or `maxEnvSteps` is reached.
    public mutating func run() throws {
        let factory = try SocketFactory(maxMessageBytes: configuration.maxMessageBytes, curve: configuration.curve)
        let toLearner = configuration.learnerKey.map { CurveRole.client(serverKey: $0) }
        let control = try factory.open(.dealer, curve: toLearner)
        try control.set(.routingID(routingID(of: sender)))
        // With CURVE, a refused key is told apart from a learner that is not there.
        let handshakes = configuration.curve != nil ? try control.monitorHandshakes() : nil
        try factory.connect(control, configuration.learner.description, purpose: "learner control")
        let teacher = try factory.open(.dealer, curve: teacherRole)
        try factory.connect(teacher, core.teacherEndpoint, purpose: "teacher")
        // Small queues: a slow or absent learner holds the actor back instead of letting it run
        // far ahead (bounded memory, bounded policy lag).
        let push = try factory.open(.push, highWaterMark: 2, curve: toLearner)
        try push.set(.sendBuffer(bytes: 128 << 10))
        let sub = try factory.open(.sub, highWaterMark: 16, curve: toLearner)
        try sub.set(.subscribe(prefix: []))
        var sockets = Sockets(factory: factory, control: control, teacher: teacher, push: push, sub: sub)
        defer {
            for socket in [sockets.control, sockets.teacher, sockets.push, sockets.sub] { socket.close() }
        }
        logger.info(
            "actor starting",
            metadata: ["learner": "\(configuration.learner)", "teacher": "\(core.teacherEndpoint)"])
        core.start(now: monotonicMilliseconds())

        while !stop.isRequested {
            if core.stepLimitReached { break }
            var poller = ZMQPoller()
            poller.add(sockets.control)
            poller.add(sockets.sub)
            poller.add(sockets.teacher)
            // Wait for the PUSH socket only when the credit allows a send: while blocked on receipts
            // it is writable, and asking would turn the poll into a busy loop.
            poller.add(sockets.push, events: core.phase == .sending && core.hasCredit ? .writable : [])
            let busy = core.phase == .playing
            let ready = try poller.poll(timeoutMilliseconds: busy ? 0 : 5)

            if !ready[0].isEmpty {
                while let frames = try sockets.control.receive(dontWait: true) {
                    try perform(core.fromLearner(frames.last ?? [], now: monotonicMilliseconds()), &sockets)
                }
            }
            if !ready[1].isEmpty {
                while let frames = try? sockets.sub.receive(dontWait: true) {
                    guard let payload = frames.last else { continue }
                    try perform(core.fromParameters(payload, now: monotonicMilliseconds()), &sockets)
                }
            }
            if !ready[2].isEmpty {
                while let frames = try sockets.teacher.receive(dontWait: true) {
                    try perform(core.fromTeacher(frames.last ?? [], now: monotonicMilliseconds()), &sockets)
                }
            }

            for outcome in handshakes?.outcomes() ?? [] {
                if case .refusedByServer(let status) = outcome {
                    throw RuntimeError(
                        "the learner at \(configuration.learner) refused this actor's CURVE key (ZAP status \(status)): "
                            + "add its public key to the learner's --curve-allow (as \"actor KEY\" or a bare key line) "
                            + "and start the actor again", code: .refusedByPeer)
                }
            }
            try perform(core.tick(now: monotonicMilliseconds()), &sockets)
            if core.gaveUp != nil { break }

            // Work for up to a millisecond between polls: a poll per small unroll would cost
            // more system time than the episodes themselves.
            let workUntil = monotonicMilliseconds() + 1
            repeat {
                let before = (core.phase, core.sequence)
                if core.phase == .sending {
                    let (unroll, effects) = core.unrollToPush(now: monotonicMilliseconds())
                    try perform(effects, &sockets)
                    if let unroll {
                        let bytes = codec.encode(Envelope(sender: sender, message: .unroll(unroll)))
                        // Learner busy or away: keep the unroll.
                        if (try? sockets.push.send(bytes, dontWait: true)) == true { core.unrollPushed() }
                    }
                } else {
                    try perform(core.work(now: monotonicMilliseconds()), &sockets)
                }
                if before == (core.phase, core.sequence) { break }  // blocked: poll for what unblocks it
                if core.stepLimitReached { break }
            } while monotonicMilliseconds() < workUntil
        }
        let reason =
            gaveUp.map { "gave up: \($0)" } ?? (stop.isRequested ? stop.reason : "step limit reached")
        logger.info(
            "actor stopping (\(reason))",
            metadata: [
                "env_steps": "\(core.envSteps)", "unrolls": "\(core.sequence)", "version": "\(core.version)",
                "observation_us": "\(core.acting.observationMicroseconds)",
                "inference_us": "\(core.acting.inferenceMicroseconds)",
            ])
        if let refusal = core.refusal {
            // A refused actor did nothing it was started for: a non-zero exit, so a supervisor
            // or cluster engine sees the failure instead of a clean stop.
            throw RuntimeError(
                "the learner at \(configuration.learner) refused this actor: \(refusal)", code: .refusedByPeer)
        }
    }

    private var teacherRole: CurveRole? { configuration.teacherKey.map { CurveRole.client(serverKey: $0) } }

    /// Carries out what the core says.
    private mutating func perform(_ effects: [ActorEffect], _ sockets: inout Sockets) throws {
        for effect in effects {
            switch effect {
            case .toLearner(let message):
                _ = try? sockets.control.send(codec.encode(Envelope(sender: sender, message: message)), dontWait: true)
            case .toTeacher(let message):
                _ = try? sockets.teacher.send(codec.encode(Envelope(sender: sender, message: message)), dontWait: true)
            case .connectLearner(let unrollPort, let parametersPort):
                let ports = (unrollPort, parametersPort)
                guard sockets.learnerPorts.map({ $0 != ports }) ?? true else { continue }
                if let old = sockets.learnerPorts {
                    try? sockets.push.disconnect(configuration.learner.with(port: old.0).description)
                    try? sockets.sub.disconnect(configuration.learner.with(port: old.1).description)
                }
                try sockets.factory.connect(
                    sockets.push, configuration.learner.with(port: ports.0).description, purpose: "unroll")
                try sockets.factory.connect(
                    sockets.sub, configuration.learner.with(port: ports.1).description, purpose: "parameter")
                sockets.learnerPorts = ports
            case .connectTeacher(let endpoint):
                do {
                    let replacement = try sockets.factory.open(.dealer, curve: teacherRole)
                    try sockets.factory.connect(replacement, endpoint, purpose: "teacher")
                    sockets.teacher.close()
                    sockets.teacher = replacement
                } catch {
                    logger.error(
                        "cannot move to the teacher at \(endpoint): \(error); staying with \(core.teacherEndpoint)")
                    continue
                }
                try perform(core.teacherConnected(endpoint), &sockets)
            case .log(let line):
                logger.log(level: line.level, Logger.Message(stringLiteral: line.message), metadata: line.metadata)
            case .stop:
                stop.request()
            }
        }
    }
}

extension Actor where Acting == TabularActing {
    /// Creates an actor with a tabular student on `environment`, identified to the learner by
    /// `environmentIdentity`, that runs until `stop` is requested.
    public init(
        environment: Environment, environmentIdentity: String, configuration: ActorConfiguration, sender: Sender,
        logger: Logger, stop: StopToken
    ) {
        self.init(
            acting: TabularActing(environment: environment, seed: configuration.seed),
            environmentIdentity: environmentIdentity, configuration: configuration, sender: sender, logger: logger,
            stop: stop)
    }
}
