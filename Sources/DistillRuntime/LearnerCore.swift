// The learner's protocol behaviour without I/O (issue 10, item 2; swift-nio's EmbeddedChannel
// and Acme's learner are the models): what arrives goes in with the time it arrived, what to
// send and what to log comes out. The ZeroMQ poll loop (`Learner`) is the shell around it;
// tests drive the core with a fake clock in milliseconds (`LearnerCoreTests`).

import DistillCore
import DistillWire
import Foundation
import Logging

/// One log line a core asks its shell to write.
public struct LogLine: Sendable {
    /// The line's level.
    public var level: Logger.Level
    /// The text (peer-supplied parts are escaped by the log handler).
    public var message: String
    /// Metadata, if any.
    public var metadata: Logger.Metadata?

    /// Creates a line.
    public init(_ level: Logger.Level, _ message: String, metadata: Logger.Metadata? = nil) {
        self.level = level
        self.message = message
        self.metadata = metadata
    }
}

/// What a learner core asks its shell to do, in order.
public enum LearnerEffect: Sendable {
    /// Send `message` on the control socket to the client with this routing id.
    case reply(routing: [UInt8], Message)
    /// Answer a control command: the shell puts the learner's status into `Control.statusJSON`
    /// (the status also reports transport figures only the shell knows) and sends it.
    case replyWithStatus(routing: [UInt8], Control)
    /// Broadcast these parameters on the parameter socket.
    case publish(Parameters)
    /// Write a log line.
    case log(LogLine)
    /// Query the teacher server of a swap (`TeacherProbe`) and give the outcome to
    /// `LearnerCore.teacherChecked(_:now:)`.
    case checkTeacher(TeacherCheck)
    /// An operator asked the learner to stop: end the run (the core stops the actors at the end).
    case stop
}

/// A swap's check of a teacher server, as the core asks for it.
public struct TeacherCheck: Sendable, Equatable {
    /// The endpoint to query.
    public var endpoint: String
    /// What a teacher of this run answers.
    public var expectation: TeacherExpectation
    /// With CURVE: the teacher servers' public key; nil for plain TCP.
    public var serverKey: String?
    /// How long the teacher has to answer.
    public var timeoutMilliseconds: Int
}

/// What a teacher of a run answers to a swap's check.
public struct TeacherExpectation: Sendable, Equatable {
    /// `Hello.environment` of the run.
    public var environment: String
    /// The run's number of states.
    public var stateCount: Int
    /// The run's number of actions.
    public var actionCount: Int
    /// The update rule needs the teacher's Q-values.
    public var needsQValues: Bool
    /// The observations of a network run (its teachers are asked for observations, not state
    /// ids); nil for a tabular run.
    public var observationSpec: WireEnvironmentSpec?

    /// Creates an expectation.
    public init(environment: String, stateCount: Int, actionCount: Int, needsQValues: Bool) {
        self.environment = environment
        self.stateCount = stateCount
        self.actionCount = actionCount
        self.needsQValues = needsQValues
    }

    /// The states a check asks for: the first and last (a teacher of a smaller environment
    /// refuses the last), and two in between.
    public var probeStates: [Int32] {
        let last = Int32(max(stateCount - 1, 0))
        return Array(Set([0, last / 3, 2 * last / 3, last])).sorted()
    }

    /// The query of a check: the probe states, or for a network run two all-zero observations
    /// of the run's shape (a teacher of another observation refuses them).
    public var probeQuery: TeacherQuery {
        guard let spec = observationSpec else { return TeacherQuery(queryID: 1, stateIDs: probeStates) }
        let rows = 2
        let tensor =
            spec.observationDType == .uint8
            ? ObservationTensor(
                dtype: .uint8, shape: [rows] + spec.observationShape,
                data: [UInt8](repeating: 0, count: rows * spec.observationSize))
            : ObservationTensor(
                rows: rows, rowShape: spec.observationShape,
                float32: [Float](repeating: 0, count: rows * spec.observationSize))
        return TeacherQuery(queryID: 1, observations: tensor)
    }

    /// What the teacher at `endpoint` answered to a check of `rows` rows: passed, or refused
    /// with the reason (another environment, the wrong shape, no Q-values when the method needs them).
    public func judge(_ reply: TeacherReply, rows: Int, endpoint: String) -> TeacherCheckOutcome {
        let who = "the teacher '\(reply.teacherID)' at \(endpoint)"
        guard reply.environment.isEmpty || reply.environment == environment else {
            return .refused(
                "\(who) serves \(reply.environment), this run is \(environment): start it with the run's "
                    + "environment flags (--config RUN/config.json)")
        }
        if let spec = observationSpec, let theirs = reply.environmentSpec, theirs != spec {
            return .refused("\(who) serves \(theirs), this run observes \(spec)")
        }
        guard reply.probabilities.shape == [rows, actionCount] else {
            return .refused(
                "\(who) answered with shape \(reply.probabilities.shape), expected [\(rows), \(actionCount)]")
        }
        if needsQValues && reply.qValues.isEmpty {
            return .refused("\(who) has no Q-values, and this run's method needs them")
        }
        return .passed(teacherID: reply.teacherID, stated: !reply.environment.isEmpty)
    }
}

/// What a swap's check of a teacher found.
public enum TeacherCheckOutcome: Sendable, Equatable {
    /// The teacher answered for every state asked, for this environment (`stated`), or
    /// without saying which environment it serves (a third-party or older server: only the
    /// shape of its answer, for the run's first and last states, was checked).
    case passed(teacherID: String, stated: Bool)
    /// Why the swap is refused.
    case refused(String)
}

/// One actor as the learner sees it.
public struct ActorRecord: Sendable {
    /// The actor's id (`Sender.id`).
    public internal(set) var id: String
    /// The run nonce of its Hello.
    public internal(set) var nonce: UInt64
    /// When it was last heard from (the core's clock, milliseconds).
    public internal(set) var lastSeen: Int64
    /// Its environment steps, as its last heartbeat said.
    public internal(set) var envSteps: UInt64 = 0
    /// The parameter version it acts with, as its last heartbeat said.
    public var version: UInt64 = 0
    /// Unrolls it held back (teacher outage), as its last heartbeat said.
    public internal(set) var unrollsWithheld: UInt64 = 0
    /// Microseconds its environments spent stepping, as its last heartbeat said.
    public internal(set) var observationMicroseconds: UInt64 = 0
    /// Microseconds in its student's forward passes and waiting for the teacher, as its last heartbeat said.
    public internal(set) var inferenceMicroseconds: UInt64 = 0
    /// False once it missed its heartbeats.
    public internal(set) var alive = true
    /// The CURVE key that speaks for this actor (with an allow-list), else nil.
    public internal(set) var key: String?
    /// The teacher endpoint the actor said it used in its Hello (where a revert sends it back).
    public internal(set) var teacherEndpoint = ""
}

/// The learner's protocol behaviour as a value: Hello checks, the actor table (bounded, with
/// liveness and expiry), authorization, swaps (checked, then supervised), set-lambda, stop,
/// give-up, unroll validation and the learning step (`LearnerState`, with its bounds).
///
/// Time is the `now` given to each call (monotonic milliseconds), never read inside. Every
/// call returns the effects to carry out, in order:
///
/// ```
/// core.start(now:)
/// loop:
///     core.receiveUnroll(frames, peer:, now:)      → publish, log
///     core.takeReceipts()                          → UnrollAck replies
///     core.receiveControl(frames, peer:, now:)     → replies, log, checkTeacher, stop
///     core.teacherChecked(outcome, now:)           → the swap applied or refused
///     core.tick(now:)                              → swap window, publication, liveness, give-up
/// ```
public struct LearnerCore<Model: LearnerModel> {
    /// What is learned: the method, the reference teacher, the unroll size, the configuration.
    public let problem: LearnerProblem
    /// The student's side of the protocol: which peers fit, unrolls to episodes, parameters.
    public let model: Model
    /// The learner's settings (the core reads the protocol ones: timeouts, table size, windows).
    public let configuration: LearnerConfiguration
    /// The one learning step's state (shared with `distill train`): student, optimiser, critic,
    /// schedules, counters.
    public internal(set) var state: LearnerState<Model.Trainee>
    private let codec: WireCodec

    /// The parameter version: +1 per update, continued across restarts from the checkpoint.
    public internal(set) var version: UInt64 = 0
    /// Actors by the routing id of their control connection.
    public internal(set) var actors: [[UInt8]: ActorRecord] = [:]
    /// The teacher endpoint handed to actors ("" before a swap: each keeps its own).
    public internal(set) var teacherEndpoint = ""
    /// The ports a Welcome names (set by the shell once it bound them).
    public var ports = (unrolls: 0, parameters: 0)
    // Authorization (docs/security.md): who may do what, the teachers announced, swaps checked.
    /// Who may do what.
    public var authorization = LearnerAuthorization()
    /// The teachers announced, and the current one.
    public var teachers: TeacherRegistry
    private var swapCheck: (command: Control, routing: [UInt8], client: Sender, endpoint: String)?
    private var swapWatch: (teacherID: String, previousEndpoint: String, deadline: Int64)?
    /// Messages rejected, by code.
    public internal(set) var rejections = RejectionLog()
    /// True when the actors are told to stop at the end of the run (a stop command, or the
    /// step limit).
    public internal(set) var stopActorsAtEnd = false
    var window = MetricsWindow()
    var totals = MetricsWindow()
    /// Environment steps learned from in this run (not counting a resumed checkpoint's).
    public internal(set) var learnedSteps: UInt64 = 0
    private var episodesSeen: UInt64 = 0
    /// Unroll messages decoded, and their bytes.
    public internal(set) var unrollMessages: UInt64 = 0
    public internal(set) var unrollBytes: UInt64 = 0
    private var receipts: [[UInt8]: UInt64] = [:]
    private var lastActorAliveAt: Int64 = 0
    private var nextLivenessSweep: Int64 = 0
    private var publishedVersion: UInt64 = 0
    private var lastPublished: Int64 = 0
    /// Hellos refused because the actor table was full of live actors.
    public internal(set) var actorsRefused: UInt64 = 0
    /// Throttles the log lines peers can trigger (refusals, teacher switches, table limits).
    private var peerLines = LogThrottle()
    /// Throttles actors joining, restarting, dying and coming back: every line of a real cluster
    /// (up to 64 of each), not one per fake Hello of a flood.
    private var membershipLines = LogThrottle(burst: 64)
    /// Why the learner gave up (no live actor for `giveUpAfterSeconds`), or nil.
    public private(set) var gaveUp: String?
    private var effects: [LearnerEffect] = []
    /// Rows of the teacher's gameplay (Rusu's setting, `problem.replay`), created with the core.
    public internal(set) var replayMemory: ReplayMemory?
    /// Minibatch updates owed by the rows stored (the replay ratio's running sum).
    var replayCredit = 0.0

    /// Milliseconds between liveness sweeps.
    public static var livenessSweepMilliseconds: Int64 { 500 }

    /// Creates a core at version 0 with the fresh learning state `state` of `model`.
    public init(
        model: Model, state: LearnerState<Model.Trainee>, problem: LearnerProblem, configuration: LearnerConfiguration
    ) {
        self.problem = problem
        self.model = model
        self.configuration = configuration
        self.state = state
        codec = WireCodec(maxMessageBytes: configuration.maxMessageBytes)
        teachers = TeacherRegistry(initial: problem.referenceTeacher?.identity)
    }

    /// Continues from a checkpoint's learning state (the shell sets `version` from it too).
    ///
    /// - Throws: `DistillError` when the snapshot does not fit this run's student.
    public mutating func restore(_ snapshot: LearnerSnapshot) throws {
        try model.restore(snapshot, into: &state)
    }

    /// The learning state as a checkpoint holds it.
    public var snapshot: LearnerSnapshot { model.snapshot(of: state) }

    /// Starts the clocks: liveness, give-up and publication count from `now`.
    public mutating func start(now: Int64) {
        lastPublished = now
        publishedVersion = version
        nextLivenessSweep = now + Self.livenessSweepMilliseconds
        lastActorAliveAt = now
    }

    private mutating func takeEffects() -> [LearnerEffect] {
        defer { effects.removeAll() }
        return effects
    }

    private mutating func log(_ level: Logger.Level, _ message: String, metadata: Logger.Metadata? = nil) {
        effects.append(.log(LogLine(level, message, metadata: metadata)))
    }

    private mutating func reply(_ message: Message, to routing: [UInt8]) {
        effects.append(.reply(routing: routing, message))
    }

    /// True once `maxEnvSteps` were learned from (the actors are then stopped at the end).
    public mutating func stepLimitReached() -> Bool {
        guard let limit = configuration.maxEnvSteps, learnedSteps >= limit else { return false }
        stopActorsAtEnd = true
        return true
    }

    /// The learner's parameters now.
    public func currentParameters() -> Parameters {
        model.parameters(of: state.student, version: version, envSteps: state.environmentSteps)
    }

    /// Periodic work at `now`: the swap window, publication after `publishIntervalMilliseconds`,
    /// and every half second the liveness sweep (dead actors marked, long-dead ones forgotten)
    /// and the give-up check.
    public mutating func tick(now: Int64) -> [LearnerEffect] {
        superviseSwap(now: now)
        if version != publishedVersion && now - lastPublished >= Int64(configuration.publishIntervalMilliseconds) {
            publish(now: now)
        }
        if now >= nextLivenessSweep {
            sweepLiveness(now)
            nextLivenessSweep = now + Self.livenessSweepMilliseconds
            let alone = Double(now - lastActorAliveAt) / 1000
            if configuration.giveUpAfterSeconds > 0 && alone >= configuration.giveUpAfterSeconds {
                gaveUp = "no actor has been alive for \(String(format: "%.1f", alone)) s"
            }
        }
        return takeEffects()
    }

    private mutating func publish(now: Int64) {
        effects.append(.publish(currentParameters()))
        publishedVersion = version
        lastPublished = now
    }

    /// The stop commands to every live actor, when the run ends with them stopped.
    public func stopActors() -> [LearnerEffect] {
        guard stopActorsAtEnd else { return [] }
        return actors.filter { $0.value.alive }.map { .reply(routing: $0.key, .control(Control(command: .stop))) }
    }

    // MARK: Learning

    /// Takes one message from the unroll socket (`frames`, the payload last), pushed by `peer`
    /// (the key the ZAP handler authenticated, else nil): validates it, learns from it, and
    /// publishes when `publishEveryUpdates` updates were made since the last publication.
    public mutating func receiveUnroll(_ frames: [[UInt8]], peer: AuthenticatedPeer?, now: Int64) -> [LearnerEffect] {
        learn(from: frames, peer: peer)
        if version - publishedVersion >= UInt64(configuration.publishEveryUpdates) { publish(now: now) }
        return takeEffects()
    }

    private mutating func learn(from frames: [[UInt8]], peer unrollPeer: AuthenticatedPeer?) {
        let unroll: Unroll
        let actor: Sender
        do {
            let envelope = try codec.decode(frames.last ?? [], expecting: [.unroll])
            guard case .unroll(let u) = envelope.message else { return }
            unroll = u
            actor = envelope.sender
            unrollMessages += 1
            unrollBytes += UInt64(frames.last?.count ?? 0)
        } catch {
            if let line = rejections.record(error, from: "an actor's unroll") { log(.warning, line) }
            return
        }
        if let problem = incompatibility(of: unroll) {
            let error = DecodingError(.invalidField, problem)
            if let line = rejections.record(error, from: "\(actor.role) '\(actor.id)'") { log(.warning, line) }
            return
        }
        guard admit(unroll, from: actor, peer: unrollPeer) else { return }
        receipts[routingID(of: actor)] = unroll.sequence
        let discount = model.discount
        // A copy: the closure below mutates the core.
        let model = self.model
        model.forEachEpisode(of: unroll) { episode in
            // Sampled Σ_t KL(π(s_t) ‖ π_θ(s_t)) of the episode (Fig. 3's metric, under the behaviour policy).
            // The KL metric takes |A| logarithms per step: measure it on every 4th episode
            // (an unbiased subsample), which keeps it off the learner's critical path.
            episodesSeen &+= 1
            let measureKL = episodesSeen % 4 == 0
            let kl = measureKL ? model.sampledKL(episode, student: state.student) : 0
            // Rusu's setting: the episode's rows go into the replay memory and the minibatch
            // updates the replay ratio owes are applied there; else the paper's path.
            if problem.replay != nil {
                Model.replay(episode, into: &self)
            } else {
                state.accumulate(episode)
            }
            var episodeReturn = 0.0
            var weight = 1.0
            for t in 0..<episode.length {
                episodeReturn += weight * episode.reward(t)
                weight *= discount
            }
            let steps = UInt64(episode.length)
            learnedSteps += steps
            let lag = version >= unroll.parameterVersion ? Double(version - unroll.parameterVersion) : 0
            window.add(steps: steps, klSample: measureKL ? kl : nil, returnSum: episodeReturn, lag: lag)
            totals.add(steps: steps, klSample: measureKL ? kl : nil, returnSum: episodeReturn, lag: lag)
            // One update per `episodesPerIteration` episodes, across unroll boundaries, as `distill train`.
            if problem.replay == nil && state.updateDue { applyUpdate() }
        }
    }

    /// Applies the accumulated update: a new parameter version. An update the parameter bound
    /// refuses leaves the version as it was; its episodes are counted as quarantined.
    mutating func applyUpdate() {
        switch state.applyUpdate() {
        case .applied:
            version += 1
        case .refused(let reason):
            // Thinned as rejections are: the first few, then every power of two.
            let count = state.quarantined
            if count <= 3 || count & (count - 1) == 0 {
                log(
                    .error,
                    "refused an update (\(reason)); the student keeps its parameters (\(count) quarantined so far)")
            }
        }
    }

    /// Why an unroll cannot be learned from in this run, or nil.
    public func incompatibility(of unroll: Unroll) -> String? { model.incompatibility(of: unroll) }

    /// Acknowledges the unrolls consumed since the last call, one receipt per actor.
    public mutating func takeReceipts() -> [LearnerEffect] {
        guard !receipts.isEmpty else { return [] }
        let acks = receipts.map { routing, sequence in
            LearnerEffect.reply(
                routing: routing, .unrollAck(UnrollAck(sequence: sequence, parameterVersion: version)))
        }
        receipts.removeAll(keepingCapacity: true)
        return acks
    }

    // MARK: Clients

    /// Takes one message from the control socket (`frames`: routing id, payload) from `peer`
    /// (the key the ZAP handler authenticated, else nil) at `now`.
    public mutating func receiveControl(_ frames: [[UInt8]], peer: AuthenticatedPeer?, now: Int64) -> [LearnerEffect] {
        serve(frames, peer: peer, now: now)
        return takeEffects()
    }

    private mutating func serve(_ frames: [[UInt8]], peer: AuthenticatedPeer?, now: Int64) {
        guard frames.count == 2 else {
            let error = DecodingError(.malformed, "expected one payload frame, got \(frames.count - 1)")
            if let line = rejections.record(error, from: "a control client") { log(.warning, line) }
            return
        }
        let routing = frames[0]
        let envelope: Envelope
        do {
            envelope = try codec.decode(frames[1], expecting: [.hello, .heartbeat, .getParams, .control])
        } catch {
            if let line = rejections.record(error, from: "a control client") { log(.warning, line) }
            reply(.error(ErrorReply(code: error.code.replyCode, message: error.message)), to: routing)
            return
        }
        if let refusal = authorization.refusal(of: envelope.message.kind, from: peer) {
            refuse(refusal, to: routing, from: envelope.sender)
            return
        }
        switch envelope.message {
        case .hello(let hello):
            if let message = model.mismatch(of: hello, from: envelope.sender) {
                if let line = peerLines.admit("refused a client", "refused a client: \(message)") {
                    log(.error, line)
                }
                reply(.error(ErrorReply(code: .incompatible, message: message)), to: routing)
                return
            }
            if envelope.sender.role == .actor {
                if let refusal = admitActorHello(envelope.sender, from: peer, routing: routing) {
                    refuse(refusal, to: routing, from: envelope.sender)
                    return
                }
                // A restarted actor (same id, new run nonce) replaces its old record.
                for (other, record) in actors where record.id == envelope.sender.id && other != routing {
                    actors[other] = nil
                    let line = "actor '\(record.id)' restarted (new run); forgetting its previous run"
                    if let line = membershipLines.admit("restarted", line) { log(.info, line) }
                }
                let known = actors[routing] != nil
                guard known || makeRoomForActor(now) else {
                    refuseActor(envelope.sender, routing: routing)
                    return
                }
                var record = ActorRecord(id: envelope.sender.id, nonce: envelope.sender.runNonce, lastSeen: now)
                record.key = peer?.key
                record.teacherEndpoint = hello.teacherEndpoint
                actors[routing] = record
                if !known, let line = membershipLines.admit("joined", "actor '\(envelope.sender.id)' joined") {
                    log(.info, line, metadata: ["version": "\(version)"])
                }
            }
            let settings = ActorSettings(
                control: state.control, maxEpisodeSteps: model.maxEpisodeSteps,
                unrollSteps: problem.unrollSteps)
            let json = (try? String(decoding: JSONEncoder().encode(settings), as: UTF8.self)) ?? "{}"
            var welcome = Welcome(
                unrollPort: ports.unrolls, parametersPort: ports.parameters, teacherEndpoint: teacherEndpoint,
                parameters: currentParameters(), actorSettingsJSON: json)
            (welcome.environmentSpec, welcome.architecture) = model.welcomeExtras()
            reply(.welcome(welcome), to: routing)
        case .heartbeat(let beat):
            // A key cannot keep another key's actor alive (a routing id is free again once its
            // actor disconnects).
            if var record = actors[routing], authorization.mayUpdate(recordKey: record.key, from: peer) {
                if !record.alive, let line = membershipLines.admit("back", "actor '\(record.id)' is back") {
                    log(.notice, line)
                }
                record.lastSeen = now
                record.alive = true
                record.envSteps = beat.envSteps
                record.version = beat.parameterVersion
                record.unrollsWithheld = beat.unrollsWithheld
                record.observationMicroseconds = beat.observationMicroseconds
                record.inferenceMicroseconds = beat.inferenceMicroseconds
                actors[routing] = record
            }
            reply(
                .heartbeat(
                    Heartbeat(sequence: beat.sequence, envSteps: state.environmentSteps, parameterVersion: version)),
                to: routing)
        case .getParams(let request):
            if request.haveVersion < version { reply(.parameters(currentParameters()), to: routing) }
        case .control(let command):
            handle(command, from: envelope.sender, peer: peer, routing: routing, now: now)
        default:
            break
        }
    }

    private mutating func handle(
        _ command: Control, from client: Sender, peer: AuthenticatedPeer?, routing: [UInt8], now: Int64
    ) {
        if let refusal = authorization.refusal(of: command, from: peer) {
            refuse(refusal, to: routing, from: client, inReplyTo: command.requestID)
            return
        }
        var echo = command
        echo.accepted = true
        echo.token = ""
        switch command.command {
        case .stop:
            log(.notice, "stop requested by \(client.role) '\(client.id)'")
            stopActorsAtEnd = true
            effects.append(.stop)
        case .swapTeacher:
            // Applied once the new teacher passed its check (`teacherChecked` answers).
            startSwap(command, from: client, routing: routing)
            return
        case .setLambda:
            do {
                guard command.lambdas.count == 1 else {
                    throw DistillError(
                        .invalidConfiguration,
                        "this learner distils from one teacher server at a time: give exactly one lambda")
                }
                try state.setLambda(Double(command.lambdas[0]))
            } catch {
                let message = (error as? DistillError)?.message ?? "\(error)"
                reply(
                    .error(ErrorReply(code: .incompatible, message: message, inReplyTo: command.requestID)), to: routing
                )
                return
            }
            log(.notice, "distillation weight λ set to \(command.lambdas[0]) by \(client.role) '\(client.id)'")
        case .status:
            break
        }
        effects.append(.replyWithStatus(routing: routing, echo))
    }

    private mutating func sweepLiveness(_ now: Int64) {
        for (routing, record) in actors
        where record.alive && now - record.lastSeen > Int64(configuration.actorTimeoutMilliseconds) {
            actors[routing]!.alive = false
            let line = "actor '\(record.id)' missed its heartbeats: marked dead; learning goes on from the others"
            if let line = membershipLines.admit("dead", line) { log(.warning, line) }
        }
        if actors.values.contains(where: \.alive) { lastActorAliveAt = now }
        forgetDeadActors(now)
    }

    /// Forgets dead actors heard from longer ago than the forget window.
    private mutating func forgetDeadActors(_ now: Int64) {
        let window = Int64(
            configuration.forgetDeadActorsAfterMilliseconds ?? 20 * configuration.actorTimeoutMilliseconds)
        for (routing, record) in actors where !record.alive && now - record.lastSeen > window {
            actors[routing] = nil
        }
    }

    /// Whether a new actor record fits (forgetting the longest-dead one if the table is full).
    private mutating func makeRoomForActor(_ now: Int64) -> Bool {
        guard actors.count >= configuration.maxActors else { return true }
        // One pass, no sort: a flood of Hellos to a full table costs O(table) each.
        guard
            let oldest = actors.lazy.filter({ !$0.value.alive }).min(by: { $0.value.lastSeen < $1.value.lastSeen })
        else { return false }
        actors[oldest.key] = nil
        return true
    }

    /// Refuses a Hello because every record of the full table belongs to a live actor.
    private mutating func refuseActor(_ client: Sender, routing: [UInt8]) {
        actorsRefused += 1
        let message =
            "this learner tracks at most \(configuration.maxActors) actors and all are alive; "
            + "retry later, or give the learner a larger --max-actors"
        if let line = peerLines.admit("actor table full", "refused \(client.role) '\(client.id)': \(message)") {
            log(.warning, line)
        }
        reply(.error(ErrorReply(code: .unavailable, message: message)), to: routing)
    }

    /// The shell's log line when it cut an unroll connection over the limit (thinned here, as
    /// every line a peer can trigger).
    public mutating func connectionsCut(open: Int, limit: Int, bytesPerConnection: Int) -> [LearnerEffect] {
        let queueMegabytes = configuration.unrollQueueBytes >> 20
        if let line = peerLines.admit(
            "connections",
            "cut an unroll connection: \(open) are open, the limit is \(limit) "
                + "(--unroll-queue-mb \(queueMegabytes) / "
                + "\(formatBytes(UInt64(bytesPerConnection))) per connection); raise "
                + "--unroll-queue-mb if this many actors are real")
        {
            log(.warning, line)
        }
        return takeEffects()
    }
}

// MARK: Authorization (docs/security.md)

extension LearnerCore {
    /// True when `unroll` from `actor` may be learned from: its key may push unrolls and speaks
    /// for the actor id it carries, and it names a teacher this learner announced. Notes
    /// teacher switches; refusals are counted (and logged, thinned).
    fileprivate mutating func admit(_ unroll: Unroll, from actor: Sender, peer unrollPeer: AuthenticatedPeer?) -> Bool {
        var refusal =
            authorization.refusal(of: .unroll, from: unrollPeer)
            ?? authorization.admitUnroll(id: actor.id, from: unrollPeer)
        if refusal == nil && !model.teachersPerTask {
            // (A multi-task model checked the unroll's teacher against its task's already.)
            let trusted = teachers.trustedOnFirstUse
            let (teacherRefusal, switchedFrom) = teachers.observe(unroll.teacherID, envSteps: state.environmentSteps)
            if trusted == nil, let first = teachers.trustedOnFirstUse {
                log(
                    .notice,
                    "the first unroll names teacher '\(first)', not the configured "
                        + "'\(problem.referenceTeacher?.identity ?? "(none built)")': trusting it as this run's "
                        + "first teacher; unrolls may name no other until a checked swap")
            }
            if let switchedFrom {
                let line = "targets now come from teacher '\(unroll.teacherID)' (was '\(switchedFrom)')"
                if let line = peerLines.admit("teacher switch", line) { log(.notice, line) }
            }
            refusal = teacherRefusal
        }
        guard let refusal else { return true }
        let error = DecodingError(.unauthorized, refusal)
        if let line = rejections.record(error, from: "\(actor.role) '\(actor.id)'") { log(.warning, line) }
        return false
    }

    /// Why an actor's Hello is refused, or nil (and then its id is bound to its key).
    fileprivate mutating func admitActorHello(
        _ sender: Sender, from peer: AuthenticatedPeer?, routing: [UInt8]
    ) -> String? {
        // Actors' control sockets use the routing id ID-NONCEHEX, unique per connection: a
        // Hello with another actor's id and nonce from another connection is an impostor's.
        guard routing == routingID(of: sender) else {
            return "an actor's control socket must have the routing id ID-NONCEHEX of its Hello's sender"
        }
        let liveOwner = actors.values.first { $0.id == sender.id && $0.alive }?.key
        return authorization.admitHello(id: sender.id, from: peer, liveOwner: liveOwner)
    }

    /// Answers a refused message with an `Error` (code incompatible, so a misconfigured actor
    /// stops) and counts it; the log line is thinned like every peer-triggered rejection.
    fileprivate mutating func refuse(
        _ reason: String, to routing: [UInt8], from client: Sender, inReplyTo: UInt64 = 0
    ) {
        let error = DecodingError(.unauthorized, reason)
        if let line = rejections.record(error, from: "\(client.role) '\(client.id)'") { log(.warning, line) }
        reply(.error(ErrorReply(code: .incompatible, message: reason, inReplyTo: inReplyTo)), to: routing)
    }

    /// Asks the shell to check the teacher of a swap; `teacherChecked` applies or refuses it.
    fileprivate mutating func startSwap(_ command: Control, from client: Sender, routing: [UInt8]) {
        guard !model.teachersPerTask else {
            let message =
                "this multi-task run has one teacher per task, checked on every unroll; a swap would give every "
                + "task one teacher: restart a task's teacher server on its endpoint instead"
            reply(.error(ErrorReply(code: .incompatible, message: message, inReplyTo: command.requestID)), to: routing)
            return
        }
        if let pending = swapCheck {
            let message = "a swap to \(pending.endpoint) is being checked: try again in a few seconds"
            reply(.error(ErrorReply(code: .unavailable, message: message, inReplyTo: command.requestID)), to: routing)
            return
        }
        var serverKey: String?
        if configuration.curve != nil {
            guard let key = configuration.teacherKey else {
                let message =
                    "with CURVE the learner checks a new teacher before a swap: start it with --teacher-key "
                    + "(the teacher servers' public key) and list its key on the teachers' --curve-allow"
                reply(
                    .error(ErrorReply(code: .incompatible, message: message, inReplyTo: command.requestID)), to: routing
                )
                return
            }
            serverKey = key
        }
        let check = TeacherCheck(
            endpoint: command.teacherEndpoint,
            expectation: model.teacherExpectation(needsQValues: state.rule.loss.needsActionValues),
            serverKey: serverKey, timeoutMilliseconds: configuration.swapCheckMilliseconds)
        log(
            .notice,
            "\(client.role) '\(client.id)' asks to move every actor to the teacher server at "
                + "\(command.teacherEndpoint): checking it first")
        swapCheck = (command, routing, client, command.teacherEndpoint)
        effects.append(.checkTeacher(check))
    }

    /// Applies or refuses the swap whose check ended with `outcome`.
    public mutating func teacherChecked(_ outcome: TeacherCheckOutcome, now: Int64) -> [LearnerEffect] {
        guard let check = swapCheck else { return [] }
        swapCheck = nil
        switch outcome {
        case .refused(let reason):
            log(.warning, "refused the swap to \(check.endpoint): \(reason)")
            reply(
                .error(ErrorReply(code: .incompatible, message: reason, inReplyTo: check.command.requestID)),
                to: check.routing)
        case .passed(let teacherID, let stated):
            if !stated {
                log(
                    .warning,
                    "the teacher '\(teacherID)' at \(check.endpoint) does not say which "
                        + "environment it serves: only the shape of its answers was checked")
            }
            log(.notice, "moving every actor to the teacher server at \(check.endpoint) (teacher '\(teacherID)')")
            swapWatch = (teacherID, teacherEndpoint, now + Int64(configuration.swapWindowSeconds * 1000))
            teachers.announce(teacherID)
            moveActors(to: check.endpoint)
            var echo = check.command
            echo.accepted = true
            echo.token = ""
            effects.append(.replyWithStatus(routing: check.routing, echo))
        }
        return takeEffects()
    }

    /// Goes back to the previous teacher when the new one's targets did not arrive within the
    /// window after a swap.
    fileprivate mutating func superviseSwap(now: Int64) {
        guard let watch = swapWatch else { return }
        if teachers.current == watch.teacherID {
            swapWatch = nil
        } else if now >= watch.deadline && !actors.values.contains(where: \.alive) {
            // Nobody could have sent its targets: the window starts again when actors are back.
            let window = Int64(configuration.swapWindowSeconds * 1000)
            swapWatch?.deadline = now + window
        } else if now >= watch.deadline {
            swapWatch = nil
            teachers.revert()
            let back = watch.previousEndpoint.isEmpty ? "the teachers they started with" : watch.previousEndpoint
            log(
                .warning,
                "no unroll with targets of teacher '\(watch.teacherID)' at \(teacherEndpoint) within "
                    + "\(configuration.swapWindowSeconds) s of the swap: moving the actors back to \(back)")
            moveActors(to: watch.previousEndpoint)
        }
    }

    /// Tells every live actor to use the teacher at `endpoint` (empty: the one each said in its
    /// Hello), and hands it to actors joining later.
    private mutating func moveActors(to endpoint: String) {
        teacherEndpoint = endpoint
        for (actorRouting, record) in actors where record.alive {
            let target = endpoint.isEmpty ? record.teacherEndpoint : endpoint
            guard !target.isEmpty else { continue }
            reply(.control(Control(command: .swapTeacher, teacherEndpoint: target)), to: actorRouting)
        }
    }
}
