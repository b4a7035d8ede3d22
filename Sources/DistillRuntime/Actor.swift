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

    init(stateCount: Int, actionCount: Int) {
        self.stateCount = stateCount
        self.actionCount = actionCount
        known = Array(repeating: false, count: stateCount)
        probabilities = Array(repeating: 0, count: stateCount * actionCount)
        values = Array(repeating: 0, count: stateCount)
        actionValues = []
    }

    mutating func clear() {
        for i in 0..<known.count { known[i] = false }
        knownCount = 0
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
public struct Actor: RoleLoop {
    private enum Phase {
        case awaitingWelcome
        case playing
        case awaitingTeacher
        case sending
    }

    private let environment: Environment
    private let environmentIdentity: String
    private var configuration: ActorConfiguration
    private let sender: Sender
    private let logger: Logger
    /// Set by the learner's stop or refusal (or, for the `distill` command's token, a signal).
    private let stop: StopToken
    private let codec: WireCodec
    private var rng: Xoshiro256StarStar

    private var phase = Phase.awaitingWelcome
    private var settings = ActorSettings(
        control: .student, maxEpisodeSteps: MethodSpec().maxEpisodeSteps, unrollSteps: ActorSettings.defaultUnrollSteps)
    private var parameters: StudentParameters
    private var policy: StudentPolicy
    private var version: UInt64 = 0
    private var learnerNonce: UInt64 = 0
    private var learnerVersion: UInt64 = 0
    private var cache: TeacherCache
    private var builder = UnrollBuilder()
    private var episode = EpisodeBuffer()
    private let placeholderTeacher: Teacher
    private var teacherEndpoint: String

    private var pendingQuery: (id: UInt64, states: [Int32], sentAt: Int64, backoff: Int)?
    private var nextQueryID: UInt64 = 1
    private var sequence: UInt64 = 0
    private var consumed: UInt64 = 0
    private var creditBlockedSince: Int64 = 0
    private var heartbeatSequence: UInt64 = 0
    private var envSteps: UInt64 = 0
    private var unrollsWithheld: UInt64 = 0
    private var teacherOutage = false
    private var rejections = RejectionLog()
    private var peerLines = LogThrottle()
    private var lastHelloAt: Int64 = 0
    /// Milliseconds between unanswered Hellos: 1 s, doubling up to 16 s, back to 1 s on a Welcome.
    private var helloIntervalMilliseconds: Int64 = 1000
    /// When the first of the unanswered Hellos went out.
    private var helloStartedAt: Int64 = 0
    private var needsHello = false
    private var lastHeartbeatAt: Int64 = 0
    private var lastParametersAt: Int64 = 0
    private var lastHeardFromLearnerAt: Int64 = 0
    private var lastTeacherQueryAt: Int64 = 0
    /// Why the learner refused this actor (another environment), or nil: `run` then throws.
    private var refusal: String?
    /// Why the actor gave up (`giveUpAfterSeconds` without a word from the learner), or nil.
    public private(set) var gaveUp: String?

    /// Creates an actor for `environment`, identified to the learner by `environmentIdentity`,
    /// that runs until `stop` is requested.
    public init(
        environment: Environment, environmentIdentity: String, configuration: ActorConfiguration, sender: Sender,
        logger: Logger, stop: StopToken
    ) {
        self.stop = stop
        self.environment = environment
        self.environmentIdentity = environmentIdentity
        self.configuration = configuration
        self.sender = sender
        self.logger = logger
        self.rng = Xoshiro256StarStar(seed: configuration.seed)
        self.codec = WireCodec(maxMessageBytes: configuration.maxMessageBytes)
        let mdp = environment.mdp
        if let tied = environment.tiedRows {
            parameters = StudentParameters(
                rowOfState: tied, rowCount: Int(tied.max() ?? 0) + 1, actionCount: mdp.actionCount)
        } else {
            parameters = StudentParameters(stateCount: mdp.stateCount, actionCount: mdp.actionCount)
        }
        policy = StudentPolicy(parameters)
        cache = TeacherCache(stateCount: mdp.stateCount, actionCount: mdp.actionCount)
        let uniform = [Double](repeating: 1 / Double(mdp.actionCount), count: mdp.stateCount * mdp.actionCount)
        placeholderTeacher = Teacher(
            identity: "unused", stateCount: mdp.stateCount, actionCount: mdp.actionCount, probabilities: uniform,
            values: Array(repeating: 0, count: mdp.stateCount))
        teacherEndpoint = configuration.teacher
    }

    /// Acts until a stop is requested, the learner says stop, or `maxEnvSteps` is reached.
    public mutating func run() throws {
        let sockets = try SocketFactory(maxMessageBytes: configuration.maxMessageBytes, curve: configuration.curve)
        let toLearner = configuration.learnerKey.map { CurveRole.client(serverKey: $0) }
        let control = try sockets.open(.dealer, curve: toLearner)
        try control.set(.routingID(routingID(of: sender)))
        // With CURVE, a refused key is told apart from a learner that is not there.
        let handshakes = configuration.curve != nil ? try control.monitorHandshakes() : nil
        try sockets.connect(control, configuration.learner.description, purpose: "learner control")
        var teacher = try sockets.open(.dealer, curve: teacherRole)
        try sockets.connect(teacher, teacherEndpoint, purpose: "teacher")
        // Small queues: a slow or absent learner holds the actor back instead of letting it run
        // far ahead (bounded memory, bounded policy lag).
        let push = try sockets.open(.push, highWaterMark: 2, curve: toLearner)
        try push.set(.sendBuffer(bytes: 128 << 10))
        let sub = try sockets.open(.sub, highWaterMark: 16, curve: toLearner)
        try sub.set(.subscribe(prefix: []))
        var learnerPorts: (Int, Int)?
        defer {
            for socket in [control, teacher, push, sub] { socket.close() }
        }
        logger.info(
            "actor starting",
            metadata: ["learner": "\(configuration.learner)", "teacher": "\(teacherEndpoint)"])
        lastHeardFromLearnerAt = monotonicMilliseconds()
        lastTeacherQueryAt = lastHeardFromLearnerAt

        while !stop.isRequested {
            if let limit = configuration.maxEnvSteps, envSteps >= limit { break }
            var poller = ZMQPoller()
            poller.add(control)
            poller.add(sub)
            poller.add(teacher)
            // Wait for the PUSH socket only when the credit allows a send: while blocked on receipts
            // it is writable, and asking would turn the poll into a busy loop.
            let hasCredit = sequence - consumed < UInt64(configuration.maxUnrollsInFlight)
            poller.add(push, events: phase == .sending && hasCredit ? .writable : [])
            let busy = phase == .playing
            let ready = try poller.poll(timeoutMilliseconds: busy ? 0 : 5)

            if !ready[0].isEmpty {
                while let frames = try control.receive(dontWait: true) {
                    if let ports = handleLearnerMessage(frames.last ?? [], teacher: &teacher, sockets: sockets) {
                        if learnerPorts.map({ $0 != ports }) ?? true {
                            if let old = learnerPorts {
                                try? push.disconnect(configuration.learner.with(port: old.0).description)
                                try? sub.disconnect(configuration.learner.with(port: old.1).description)
                            }
                            try sockets.connect(
                                push, configuration.learner.with(port: ports.0).description, purpose: "unroll")
                            try sockets.connect(
                                sub, configuration.learner.with(port: ports.1).description, purpose: "parameter")
                            learnerPorts = ports
                        }
                    }
                }
            }
            if !ready[1].isEmpty { drainParameters(sub) }
            if !ready[2].isEmpty {
                while let frames = try teacher.receive(dontWait: true) { handleTeacherReply(frames.last ?? []) }
            }

            let now = monotonicMilliseconds()
            for outcome in handshakes?.outcomes() ?? [] {
                if case .refusedByServer(let status) = outcome {
                    throw RuntimeError(
                        "the learner at \(configuration.learner) refused this actor's CURVE key (ZAP status \(status)): "
                            + "add its public key to the learner's --curve-allow (as \"actor KEY\" or a bare key line) "
                            + "and start the actor again", code: .refusedByPeer)
                }
            }
            if (phase == .awaitingWelcome || needsHello) && now - lastHelloAt >= helloIntervalMilliseconds {
                if lastHelloAt != 0 {
                    // Back off (a learner that is down stays down a while) and say what to check,
                    // once per doubling rather than once a second.
                    let waited = String(format: "%.0f", Double(now - helloStartedAt) / 1000)
                    logger.notice(
                        Logger.Message(
                            stringLiteral:
                                "no answer from the learner at \(configuration.learner) after \(waited) s; "
                                + "next hello in \(2 * helloIntervalMilliseconds / 1000) s. Check that the learner runs, that "
                                + "this is its control endpoint (--bind-control; `distill probe` tests the route), and "
                                + "with CURVE that --learner-key is its public key and this actor's key is on its "
                                + "--curve-allow"))
                    helloIntervalMilliseconds = min(2 * helloIntervalMilliseconds, 16_000)
                } else {
                    helloStartedAt = now
                }
                sendHello(control)
            }
            if now - lastHeartbeatAt >= Int64(configuration.heartbeatMilliseconds) { sendHeartbeat(control) }
            if pendingQuery == nil && now - lastTeacherQueryAt >= Int64(configuration.teacherKeepaliveMilliseconds) {
                sendTeacherKeepalive(teacher)
            }
            let silence = Double(now - lastHeardFromLearnerAt) / 1000
            if configuration.giveUpAfterSeconds > 0 && silence >= configuration.giveUpAfterSeconds {
                gaveUp =
                    "no message from the learner at \(configuration.learner) for \(String(format: "%.1f", silence)) s"
                break
            }

            // Work for up to a millisecond between polls: a poll per small unroll would cost
            // more system time than the episodes themselves.
            let workUntil = monotonicMilliseconds() + 1
            repeat {
                let before = (phase, sequence)
                switch phase {
                case .awaitingWelcome:
                    break
                case .playing:
                    play()
                case .awaitingTeacher:
                    retryQueryIfDue(teacher)
                case .sending:
                    trySend(push)
                }
                if before == (phase, sequence) { break }  // blocked: poll for what unblocks it
                if let limit = configuration.maxEnvSteps, envSteps >= limit { break }
            } while monotonicMilliseconds() < workUntil
        }
        let reason =
            gaveUp.map { "gave up: \($0)" } ?? (stop.isRequested ? stop.reason : "step limit reached")
        logger.info(
            "actor stopping (\(reason))",
            metadata: ["env_steps": "\(envSteps)", "unrolls": "\(sequence)", "version": "\(version)"])
        if let refusal {
            // A refused actor did nothing it was started for: a non-zero exit, so a supervisor
            // or cluster engine sees the failure instead of a clean stop.
            throw RuntimeError(
                "the learner at \(configuration.learner) refused this actor: \(refusal)", code: .refusedByPeer)
        }
    }

    private var teacherRole: CurveRole? { configuration.teacherKey.map { CurveRole.client(serverKey: $0) } }

    // MARK: Acting

    /// Plays episodes until an unroll's worth of steps is collected, then moves on to the teacher.
    private mutating func play() {
        if settings.control != .student && !cache.isComplete {
            // Teacher-driven control needs π before each action: fetch every state first.
            requestTeacher(for: (0..<Int32(environment.mdp.stateCount)).filter { !cache.known[Int($0)] })
            return
        }
        let actingTeacher =
            settings.control == .student ? placeholderTeacher : cache.actingTeacher ?? placeholderTeacher
        builder.parameterVersion = version
        while builder.steps < settings.unrollSteps {
            collectEpisode(
                environment.mdp, policy: policy, teacher: actingTeacher, control: settings.control,
                maxSteps: settings.maxEpisodeSteps, rng: &rng, into: &episode)
            builder.append(episode)
            envSteps += UInt64(episode.length)
        }
        let missing = builder.missingStates(in: cache)
        if missing.isEmpty {
            phase = .sending
        } else {
            requestTeacher(for: missing)
        }
    }

    private mutating func requestTeacher(for states: [Int32]) {
        pendingQuery = (nextQueryID, states, 0, configuration.teacherTimeoutMilliseconds)
        nextQueryID += 1
        phase = .awaitingTeacher
    }

    private mutating func retryQueryIfDue(_ teacher: ZMQSocket) {
        guard var query = pendingQuery else { return }
        let now = monotonicMilliseconds()
        guard query.sentAt == 0 || now - query.sentAt >= Int64(query.backoff) else { return }
        if query.sentAt != 0 {
            if !teacherOutage {
                teacherOutage = true
                logger.warning(
                    "teacher at \(teacherEndpoint) is not answering; retrying with backoff, holding the unroll back")
            }
            unrollsWithheld += builder.isEmpty ? 0 : 1
            query.backoff = min(query.backoff * 2, configuration.maxBackoffMilliseconds)
        }
        let message = TeacherQuery(queryID: query.id, stateIDs: query.states)
        _ = try? teacher.send(codec.encode(Envelope(sender: sender, message: .teacherQuery(message))), dontWait: true)
        query.sentAt = now
        lastTeacherQueryAt = now
        pendingQuery = query
    }

    /// A one-state query whose answer is ignored: tells the teacher server this actor is alive.
    private mutating func sendTeacherKeepalive(_ teacher: ZMQSocket) {
        let message = TeacherQuery(queryID: nextQueryID, stateIDs: [0])
        nextQueryID += 1
        _ = try? teacher.send(codec.encode(Envelope(sender: sender, message: .teacherQuery(message))), dontWait: true)
        lastTeacherQueryAt = monotonicMilliseconds()
    }

    private mutating func handleTeacherReply(_ payload: [UInt8]) {
        let envelope: Envelope
        do {
            envelope = try codec.decode(payload, expecting: [.teacherReply, .error])
        } catch {
            if let line = rejections.record(error, from: "teacher \(teacherEndpoint)") { logger.warning("\(line)") }
            return
        }
        switch envelope.message {
        case .error(let error):
            if let line = peerLines.admit("teacher refused", "teacher refused a query: \(error.message)") {
                logger.error("\(line)")
            }
        case .teacherReply(let reply):
            guard let query = pendingQuery, reply.queryID == query.id else { return }  // a late answer
            if let problem = cache.store(reply, for: query.states) {
                logger.error("\(problem)")
                return
            }
            if teacherOutage {
                teacherOutage = false
                logger.notice("teacher at \(teacherEndpoint) answers again")
            }
            pendingQuery = nil
            // A changed teacher clears the cache: the unroll may need other states again.
            let missing = builder.missingStates(in: cache)
            if !missing.isEmpty {
                requestTeacher(for: missing)
            } else {
                phase = builder.isEmpty ? .playing : .sending
            }
        default:
            break
        }
    }

    private mutating func trySend(_ push: ZMQSocket) {
        if sequence - consumed >= UInt64(configuration.maxUnrollsInFlight) {
            // Wait for receipts; if none come for long, the learner lost them (it restarted):
            // forgive the window rather than stall forever.
            let now = monotonicMilliseconds()
            if creditBlockedSince == 0 { creditBlockedSince = now }
            guard now - creditBlockedSince > 3000 else { return }
            logger.notice("no receipts from the learner for 3 s; resuming with a fresh window")
            consumed = sequence
        }
        creditBlockedSince = 0
        let unroll = builder.unroll(sequence: sequence, cache: cache)
        let bytes = codec.encode(Envelope(sender: sender, message: .unroll(unroll)))
        guard (try? push.send(bytes, dontWait: true)) == true else { return }  // learner busy or away
        sequence += 1
        builder.reset()
        if !cache.cacheable { cache.clear() }
        phase = .playing
    }

    // MARK: The learner

    private mutating func sendHello(_ control: ZMQSocket) {
        let hello = Hello(
            environment: environmentIdentity, stateCount: environment.mdp.stateCount,
            actionCount: environment.mdp.actionCount, teacherEndpoint: teacherEndpoint)
        _ = try? control.send(codec.encode(Envelope(sender: sender, message: .hello(hello))), dontWait: true)
        lastHelloAt = monotonicMilliseconds()
    }

    private mutating func sendHeartbeat(_ control: ZMQSocket) {
        heartbeatSequence += 1
        let beat = Heartbeat(
            sequence: heartbeatSequence, envSteps: envSteps, parameterVersion: version,
            unrollsWithheld: unrollsWithheld, messagesRejected: rejections.total)
        _ = try? control.send(codec.encode(Envelope(sender: sender, message: .heartbeat(beat))), dontWait: true)
        lastHeartbeatAt = monotonicMilliseconds()
        // Parameters are published often; a long silence while the learner is ahead means we
        // missed them (slow joiner, dropped at the high-water mark): ask directly.
        if learnerVersion > version && lastHeartbeatAt - lastParametersAt > 1000 && phase != .awaitingWelcome {
            let request = GetParams(haveVersion: version)
            _ = try? control.send(codec.encode(Envelope(sender: sender, message: .getParams(request))), dontWait: true)
        }
    }

    /// Handles one message from the learner's ROUTER; returns the learner's (unroll, parameters)
    /// ports when it was a Welcome.
    private mutating func handleLearnerMessage(
        _ payload: [UInt8], teacher: inout ZMQSocket, sockets: SocketFactory
    ) -> (Int, Int)? {
        let envelope: Envelope
        do {
            envelope = try codec.decode(
                payload, expecting: [.welcome, .heartbeat, .parameters, .control, .error, .unrollAck])
        } catch {
            if let line = rejections.record(error, from: "learner") { logger.warning("\(line)") }
            return nil
        }
        lastHeardFromLearnerAt = monotonicMilliseconds()
        switch envelope.message {
        case .welcome(let welcome):
            do {
                settings = try JSONDecoder().decode(ActorSettings.self, from: Data(welcome.actorSettingsJSON.utf8))
            } catch {
                logger.error("the learner's actor settings are unreadable (\(error)); keeping \(settings)")
            }
            if learnerNonce != envelope.sender.runNonce { consumed = sequence }
            learnerNonce = envelope.sender.runNonce
            needsHello = false
            helloIntervalMilliseconds = 1000
            adopt(welcome.parameters, force: true)
            if !welcome.teacherEndpoint.isEmpty && welcome.teacherEndpoint != teacherEndpoint {
                swapTeacher(to: welcome.teacherEndpoint, teacher: &teacher, sockets: sockets)
            }
            if phase == .awaitingWelcome { phase = .playing }
            logger.info(
                "joined the learner",
                metadata: ["version": "\(version)", "control": "\(settings.control.name)"])
            return (welcome.unrollPort, welcome.parametersPort)
        case .heartbeat(let beat):
            learnerVersion = beat.parameterVersion
            if envelope.sender.runNonce != learnerNonce && phase != .awaitingWelcome && !needsHello {
                logger.notice("the learner restarted; joining it again")
                needsHello = true
                lastHelloAt = 0
            }
        case .parameters(let parameters):
            adopt(parameters, force: envelope.sender.runNonce != learnerNonce)
        case .unrollAck(let ack):
            if envelope.sender.runNonce == learnerNonce { consumed = max(consumed, min(ack.sequence + 1, sequence)) }
            learnerVersion = max(learnerVersion, ack.parameterVersion)
        case .control(let command):
            switch command.command {
            case .stop:
                logger.info("the learner asked this actor to stop")
                stop.request()
            case .swapTeacher:
                swapTeacher(to: command.teacherEndpoint, teacher: &teacher, sockets: sockets)
            case .setLambda, .status:
                break
            }
        case .error(let error):
            logger.error("the learner refused this actor: \(error.message)")
            if error.code == .incompatible {
                refusal = error.message
                stop.request()
            }
        default:
            break
        }
        return nil
    }

    private mutating func drainParameters(_ sub: ZMQSocket) {
        while let frames = try? sub.receive(dontWait: true) {
            guard let payload = frames.last else { continue }
            do {
                let envelope = try codec.decode(payload, expecting: [.parameters])
                guard case .parameters(let parameters) = envelope.message else { continue }
                lastHeardFromLearnerAt = monotonicMilliseconds()
                if envelope.sender.runNonce == learnerNonce { adopt(parameters, force: false) }
            } catch {
                // A corrupted broadcast fails its checksum here; the next one (or GetParams) heals it.
                if let line = rejections.record(error, from: "parameter broadcast") { logger.warning("\(line)") }
            }
        }
    }

    private mutating func adopt(_ incoming: Parameters, force: Bool) {
        guard force || incoming.version > version else { return }
        guard incoming.values.values.count == parameters.logits.count else {
            logger.error(
                """
                the learner's parameters have \(incoming.values.values.count) values, this actor's student has \
                \(parameters.logits.count): is the learner running the same environment?
                """)
            return
        }
        parameters.setLogits(float32: incoming.values.values)
        policy = StudentPolicy(parameters)
        version = incoming.version
        learnerVersion = max(learnerVersion, version)
        lastParametersAt = monotonicMilliseconds()
    }

    private mutating func swapTeacher(to endpoint: String, teacher: inout ZMQSocket, sockets: SocketFactory) {
        guard endpoint != teacherEndpoint else { return }
        do {
            let replacement = try sockets.open(.dealer, curve: teacherRole)
            try sockets.connect(replacement, endpoint, purpose: "teacher")
            teacher.close()
            teacher = replacement
        } catch {
            logger.error("cannot move to the teacher at \(endpoint): \(error); staying with \(teacherEndpoint)")
            return
        }
        logger.notice("moving to the teacher server at \(endpoint) (was \(teacherEndpoint))")
        teacherEndpoint = endpoint
        cache.clear()
        teacherOutage = false
        // Targets of the finished episodes must all come from the new teacher.
        if let query = pendingQuery {
            pendingQuery = (nextQueryID, query.states, 0, configuration.teacherTimeoutMilliseconds)
            nextQueryID += 1
        }
        if phase == .sending {
            requestTeacher(for: builder.missingStates(in: cache))
        } else if phase == .awaitingTeacher && pendingQuery == nil {
            phase = .playing
        }
    }
}
