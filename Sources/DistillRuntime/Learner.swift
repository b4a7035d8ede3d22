import DistillCore
import DistillWire
import Foundation
import Logging

/// What a learner learns: the environment, the method (update rule, schedules, optimiser) and
/// the size of its batches.
public struct LearnerProblem: Sendable {
    /// The environment (for shapes, exact metrics and checking actors' unrolls).
    public var environment: Environment
    /// Identifies the environment; actors must present the same string in their Hello.
    public var environmentIdentity: String
    /// The method: rule, control policy, λ and β schedules, optimiser, V-trace clipping, critic.
    public var method: MethodSpec
    /// The kind of teacher configured (some rules' defaults depend on it).
    public var teacherKind: TeacherSpec.Kind?
    /// The teacher as configured, for the exact teacher return in metrics.
    public var referenceTeacher: Teacher?
    /// Further kickstarting teachers (tabular, built by the learner from the configuration),
    /// mixed into each step's teacher outputs exactly as `distill train` mixes them.
    public var kickstart: KickstartTeachers?
    /// Steps per unroll message (whole episodes): network batching only. The learner updates
    /// every `method.episodesPerIteration` episodes, across messages, exactly as `distill train`.
    public var unrollSteps: Int
    /// The run's configuration as JSON; checkpoints record it and a resume checks it.
    public var configurationJSON: String

    /// Creates a problem.
    public init(
        environment: Environment, environmentIdentity: String, method: MethodSpec, teacherKind: TeacherSpec.Kind?,
        referenceTeacher: Teacher?, kickstart: KickstartTeachers? = nil, unrollSteps: Int, configurationJSON: String
    ) {
        self.environment = environment
        self.environmentIdentity = environmentIdentity
        self.method = method
        self.teacherKind = teacherKind
        self.referenceTeacher = referenceTeacher
        self.kickstart = kickstart
        self.unrollSteps = unrollSteps
        self.configurationJSON = configurationJSON
    }
}

/// Where a learner listens and what it leaves behind.
public struct LearnerConfiguration: Sendable {
    /// PULL endpoint for unrolls.
    public var bindUnrolls: String
    /// PUB endpoint for parameters.
    public var bindParameters: String
    /// ROUTER endpoint for Hello / Heartbeat / GetParams / Control.
    public var bindControl: String
    /// Directory of checkpoints (resumed from when it holds one); nil: no checkpoints.
    public var checkpointDirectory: URL?
    /// Directory for metrics.csv and summary.json; nil: none written.
    public var outputDirectory: URL?
    /// Publish parameters after this many updates...
    public var publishEveryUpdates: Int = 1000
    /// ...or this many milliseconds after the last publication, whichever comes first.
    public var publishIntervalMilliseconds: Int = 20
    /// Seconds between periodic checkpoints.
    public var checkpointIntervalSeconds: Double = 30
    /// Seconds between metrics rows...
    public var metricsIntervalSeconds: Double = 1
    /// Seconds between progress lines in the log (at level info); 0: none.
    public var progressIntervalSeconds: Double = 5
    /// ...and a row every this many environment steps (nil: by time only), whichever first.
    public var metricsEverySteps: UInt64?
    /// An actor silent this long is marked dead, in milliseconds.
    public var actorTimeoutMilliseconds: Int = 3000
    /// Stop once this many environment steps were learned from (nil: run until stopped).
    public var maxEnvSteps: UInt64?
    /// Largest message accepted.
    public var maxMessageBytes = WireCodec.defaultMaxMessageBytes
    /// CURVE keys (and allow-list), or nil for plain TCP.
    public var curve: CurveConfiguration?
    /// Actor records kept at most; a Hello beyond it first makes the table forget dead actors,
    /// and is refused when every record is alive.
    public var maxActors = 1024
    /// A dead actor's record is forgotten this many milliseconds after it was last heard from
    /// (nil: 20 × `actorTimeoutMilliseconds`, 60 s at the defaults).
    public var forgetDeadActorsAfterMilliseconds: Int?
    /// The global cap on bytes queued for the learner by unroll connections, whatever their
    /// number: with the per-connection bound (`UnrollBudget`) it gives the connection limit.
    public var unrollQueueBytes = 1 << 30
    /// Give up (stop as at the step limit, with `gaveUp` set) once no actor has been alive for
    /// this many seconds; 0: never (wait for actors to come back).
    public var giveUpAfterSeconds: Double = 0
    /// With CURVE: the teacher servers' public key, so the learner can check a new teacher
    /// before a swap (without it, swaps are refused under CURVE).
    public var teacherKey: String?
    /// How long a teacher has to answer the check before a swap, in milliseconds.
    public var swapCheckMilliseconds = 2000
    /// After a swap, the learner goes back to the previous teacher if no unroll with the new
    /// teacher's targets arrived within this many seconds.
    public var swapWindowSeconds: Double = 10

    /// Creates a configuration.
    public init(bindUnrolls: String, bindParameters: String, bindControl: String) {
        self.bindUnrolls = bindUnrolls
        self.bindParameters = bindParameters
        self.bindControl = bindControl
    }
}

/// One actor as the learner sees it.
struct ActorRecord {
    var id: String
    var nonce: UInt64
    var lastSeen: Int64
    var envSteps: UInt64 = 0
    var version: UInt64 = 0
    var unrollsWithheld: UInt64 = 0
    var alive = true
    /// The CURVE key that speaks for this actor (with an allow-list), else nil.
    var key: String?
    /// The teacher endpoint the actor said it used in its Hello (where a revert sends it back).
    var teacherEndpoint = ""
}

/// Pulls unrolls, applies the update rule with V-trace correction for policy lag, publishes
/// parameters, answers its clients, tracks actor liveness, writes metrics and checkpoints.
public final class Learner: RoleLoop {
    private let problem: LearnerProblem
    /// The one learning step's state (shared with `distill train`): student, optimiser, critic,
    /// schedules, counters.
    private var state: LearnerState<TabularStudent>
    /// What an unroll's rewards and teacher outputs may be in this environment.
    private let bounds: PlausibleOutputs
    private let configuration: LearnerConfiguration
    private let sender: Sender
    private let logger: Logger
    private let codec: WireCodec

    /// The parameter version: +1 per update, continued across restarts from the checkpoint.
    public private(set) var version: UInt64 = 0
    private var updates: UInt64 { UInt64(state.updates) }
    private var envSteps: UInt64 { state.environmentSteps }
    private var resumedFrom: UInt64?

    private var actors: [[UInt8]: ActorRecord] = [:]
    private var teacherEndpoint = ""
    // Authorization (docs/security.md): who may do what, the teachers announced, swaps checked.
    private var authorization = LearnerAuthorization()
    private var teachers = TeacherRegistry(initial: nil)
    private var unrollPeer: AuthenticatedPeer?
    private var swapCheck: (probe: TeacherProbe, command: Control, routing: [UInt8], client: Sender)?
    private var swapWatch: (teacherID: String, previousEndpoint: String, deadline: Int64)?
    private var rejections = RejectionLog()
    private var stopActorsAtEnd = false
    private var startSeconds = monotonicSeconds()
    private var window = MetricsWindow()
    private var totals = MetricsWindow()
    private var metrics: MetricsFile?
    private var lastMetrics = MetricsRow()
    private var nextProgressSeconds = 0.0
    private var unrollPort = 0
    private var parametersPort = 0
    private var learnedSteps: UInt64 = 0
    private var referenceTeacherReturn: Double?
    private var studentValuesForMetrics: [Double]?
    private var nextMetricsAtSteps: UInt64 = 0
    private var firstUnrollSeconds: Double?
    private var socketFactory: SocketFactory?
    private var divergenceReported = false
    private var episodesSeen: UInt64 = 0
    private var unrollMessages: UInt64 = 0
    private var unrollBytes: UInt64 = 0
    private var receipts: [[UInt8]: UInt64] = [:]
    private var lastActorAliveAt: Int64 = 0
    private var unrollBudget: UnrollBudget?
    private var unrollConnections: ConnectionCap?
    private var actorsRefused: UInt64 = 0
    /// Throttles the log lines peers can trigger (refusals, teacher switches, table limits).
    private var peerLines = LogThrottle()
    /// Throttles actors joining, restarting, dying and coming back: every line of a real cluster
    /// (up to 64 of each), not one per fake Hello of a flood.
    private var membershipLines = LogThrottle(burst: 64)
    /// The version of the newest checkpoint this run wrote, or nil.
    private var lastDurableVersion: UInt64?
    /// Why the learner gave up (no live actor for `giveUpAfterSeconds`), or nil.
    public private(set) var gaveUp: String?

    /// Creates a learner; resumes from the newest checkpoint in `checkpointDirectory` if any.
    public init(problem: LearnerProblem, configuration: LearnerConfiguration, sender: Sender, logger: Logger) throws {
        self.problem = problem
        self.configuration = configuration
        self.sender = sender
        self.logger = logger
        codec = WireCodec(maxMessageBytes: configuration.maxMessageBytes)
        do {
            state = try LearnerState(
                method: problem.method, teacherKind: problem.teacherKind, environment: problem.environment,
                kickstart: problem.kickstart, bound: .standard)
        } catch let error as DistillError {
            throw RuntimeError(error.message)
        }
        bounds = PlausibleOutputs(problem.environment, maxEpisodeSteps: problem.method.maxEpisodeSteps)
        if let directory = configuration.checkpointDirectory {
            try resume(from: CheckpointStore(directory: directory))
        }
    }

    private func resume(from store: CheckpointStore) throws {
        guard let (checkpoint, file, skipped) = try store.latest() else { return }
        for reason in skipped { logger.warning("skipped an unreadable checkpoint: \(reason)") }
        guard checkpoint.configurationJSON == problem.configurationJSON else {
            throw RuntimeError(
                """
                the checkpoint \(file.path) was written by a run with another configuration:
                  checkpoint: \(checkpoint.configurationJSON)
                  this run:   \(problem.configurationJSON)
                Resume with the same flags, or give another --checkpoint-dir to start afresh.
                """, code: .checkpointMismatch)
        }
        do {
            try state.restore(from: LearnerSnapshot(checkpoint))
        } catch let error as DistillError {
            throw RuntimeError(
                "the checkpoint \(file.path) does not fit this run: \(error.message)", code: .checkpointMismatch)
        }
        version = checkpoint.version
        resumedFrom = checkpoint.version
        logger.notice(
            "resumed from checkpoint", metadata: ["file": "\(file.lastPathComponent)", "version": "\(version)"])
    }

    /// Learns until a stop is requested or `maxEnvSteps` is reached; always ends with a final
    /// publication, checkpoint, metrics row and summary.
    public func run() throws {
        // Before anything is announced: whoever sees the endpoints may rely on a clean directory.
        if let directory = configuration.checkpointDirectory {
            let stale = try CheckpointStore(directory: directory).removeStaleTemporaryFiles()
            if !stale.isEmpty {
                logger.notice(
                    "removed \(stale.count) temporary file(s) of checkpoint writes killed mid-way",
                    metadata: ["files": "\(stale.joined(separator: " "))"])
            }
        }
        let sockets = try SocketFactory(maxMessageBytes: configuration.maxMessageBytes, curve: configuration.curve)
        socketFactory = sockets
        let budget = Self.unrollBudget(problem, configuration)
        unrollBudget = budget
        let pull = try sockets.open(.pull, highWaterMark: budget.messagesPerConnection, curve: .server)
        // Small kernel buffers and small messages too: unrolls queued anywhere are policy lag,
        // and what a peer can make the learner hold is bounded by what an honest actor sends.
        try pull.set(.receiveBuffer(bytes: budget.kernelBufferBytes))
        try pull.set(.maxMessageSize(budget.maxUnrollBytes))
        let cap = try ConnectionCap(pull, context: sockets.context, limit: budget.maxConnections)
        unrollConnections = cap
        defer { cap.monitor.close() }
        let pub = try sockets.open(.pub, highWaterMark: 16, curve: .server)
        let router = try sockets.open(.router, highWaterMark: 10_000, curve: .server)
        // Control messages are small: a peer must not queue unroll-sized ones here instead.
        try router.set(.maxMessageSize(Self.maxControlMessageBytes))
        try router.set(.receiveHighWaterMark(100))
        defer { for socket in [pull, pub, router] { socket.close() } }
        let unrolls = try sockets.bind(pull, configuration.bindUnrolls, purpose: "unroll")
        let params = try sockets.bind(pub, configuration.bindParameters, purpose: "parameter")
        let control = try sockets.bind(router, configuration.bindControl, purpose: "control")
        unrollPort = try Endpoint(parsing: unrolls).port
        parametersPort = try Endpoint(parsing: params).port
        announceEndpoint("unrolls", unrolls)
        announceEndpoint("parameters", params)
        announceEndpoint("control", control)
        try setUpAuthorization()
        if let directory = configuration.outputDirectory {
            metrics = try MetricsFile(directory: directory, appending: resumedFrom != nil)
        }
        let limits =
            "unroll limits: messages of at most \(formatBytes(UInt64(budget.maxUnrollBytes))), "
            + "\(budget.maxConnections) connections of at most \(formatBytes(UInt64(budget.bytesPerConnection))) "
            + "queued each: \(formatBytes(UInt64(budget.queuedBytesCap))) in all (--unroll-queue-mb)"
        logger.info("\(limits)")
        logger.info(
            "learner ready",
            metadata: [
                "control": "\(control)", "method": "\(problem.method.method.rawValue)", "version": "\(version)",
                "env": "\(problem.environmentIdentity)",
            ])

        var poller = ZMQPoller()
        poller.add(pull)
        poller.add(router)
        poller.add(cap.monitor.socket)
        var lastPublished = monotonicMilliseconds()
        var publishedVersion = version
        var nextCheckpoint = monotonicSeconds() + configuration.checkpointIntervalSeconds
        var nextMetrics = monotonicSeconds() + configuration.metricsIntervalSeconds
        var nextLivenessSweep = monotonicMilliseconds() + 500
        lastActorAliveAt = monotonicMilliseconds()
        startSeconds = monotonicSeconds()

        while !StopSignal.isRequested {
            if let limit = configuration.maxEnvSteps, learnedSteps >= limit {
                stopActorsAtEnd = true
                break
            }
            let ready = try poller.poll(timeoutMilliseconds: 10)
            if !ready[0].isEmpty {
                // Bounded drain: the control socket and publication stay responsive under load.
                var drained = 0
                while drained < 16, let frames = try pull.receive(dontWait: true) {
                    drained += 1
                    unrollPeer = AuthenticatedPeer(userID: pull.lastUserID)
                    learn(from: frames)
                    if version - publishedVersion >= UInt64(configuration.publishEveryUpdates) {
                        publish(pub)
                        publishedVersion = version
                        lastPublished = monotonicMilliseconds()
                    }
                }
            }
            if !ready[2].isEmpty && cap.update() > 0 {
                if let line = peerLines.admit(
                    "connections",
                    "cut an unroll connection: \(cap.connections) are open, the limit is \(cap.limit) "
                        + "(--unroll-queue-mb \(configuration.unrollQueueBytes >> 20) / "
                        + "\(formatBytes(UInt64(budget.bytesPerConnection))) per connection); raise "
                        + "--unroll-queue-mb if this many actors are real")
                {
                    logger.warning("\(line)")
                }
            }
            sendReceipts(router)
            if !ready[1].isEmpty {
                while let frames = try router.receive(dontWait: true) { serve(frames, on: router) }
            }
            let now = monotonicMilliseconds()
            superviseSwap(router, now: now)
            if version != publishedVersion && now - lastPublished >= Int64(configuration.publishIntervalMilliseconds) {
                publish(pub)
                publishedVersion = version
                lastPublished = now
            }
            if now >= nextLivenessSweep {
                sweepLiveness(now)
                nextLivenessSweep = now + 500
                let alone = Double(now - lastActorAliveAt) / 1000
                if configuration.giveUpAfterSeconds > 0 && alone >= configuration.giveUpAfterSeconds {
                    gaveUp = "no actor has been alive for \(String(format: "%.1f", alone)) s"
                    break
                }
            }
            let seconds = monotonicSeconds()
            if seconds >= nextMetrics || (configuration.metricsEverySteps != nil && learnedSteps >= nextMetricsAtSteps)
            {
                if let every = configuration.metricsEverySteps { nextMetricsAtSteps = learnedSteps + every }
                writeMetrics()
                nextMetrics = seconds + configuration.metricsIntervalSeconds
            }
            if seconds >= nextCheckpoint {
                checkpoint()
                nextCheckpoint = seconds + configuration.checkpointIntervalSeconds
            }
        }

        let reason =
            gaveUp.map { "gave up: \($0)" } ?? (StopSignal.isRequested ? StopSignal.reason : "step limit reached")
        logger.info("learner stopping (\(reason))", metadata: ["version": "\(version)", "env_steps": "\(envSteps)"])
        publish(pub)
        if stopActorsAtEnd { stopActors(router) }
        writeMetrics()
        let finalCheckpoint = checkpoint()
        writeSummary(reason: reason, finalCheckpoint: finalCheckpoint?.outcome)
        if let failure = finalCheckpoint?.failure {
            // A lost final checkpoint is not a clean stop: the work since the last durable
            // version is gone, and whoever runs the learner must hear it from the exit status.
            throw RuntimeError(
                "the final checkpoint failed: \(failure). The last durable checkpoint is "
                    + ((lastDurableVersion ?? resumedFrom).map { "version \($0)" } ?? "none")
                    + " of \(version); fix the checkpoint directory and resume from it.",
                code: .checkpointWriteFailed)
        }
    }

    // MARK: Learning

    private func learn(from frames: [[UInt8]]) {
        let unroll: Unroll
        let actor: Sender
        do {
            let envelope = try codec.decode(frames.last ?? [], expecting: [.unroll])
            guard case .unroll(let u) = envelope.message else { return }
            unroll = u
            actor = envelope.sender
            unrollMessages += 1
            unrollBytes += UInt64(frames.last?.count ?? 0)
            if firstUnrollSeconds == nil { firstUnrollSeconds = monotonicSeconds() }
        } catch {
            if let line = rejections.record(error, from: "an actor's unroll") { logger.warning("\(line)") }
            return
        }
        if let problem = incompatibility(of: unroll) {
            let error = DecodingError(.invalidField, problem)
            if let line = rejections.record(error, from: "\(actor.role) '\(actor.id)'") { logger.warning("\(line)") }
            return
        }
        guard admit(unroll, from: actor) else { return }
        receipts[routingID(of: actor)] = unroll.sequence
        let na = unroll.actionCount
        let discount = problem.environment.mdp.discount
        UnrollEpisode.withEpisodes(of: unroll) { episodes in
            for episode in episodes {
                // Sampled Σ_t KL(π(s_t) ‖ π_θ(s_t)) of the episode (Fig. 3's metric, under the behaviour policy).
                // The KL metric takes |A| logarithms per step: measure it on every 4th episode
                // (an unbiased subsample), which keeps it off the learner's critical path.
                episodesSeen &+= 1
                let measureKL = episodesSeen % 4 == 0
                let kl = measureKL ? sampledKL(episode, actionCount: na) : 0
                state.accumulate(episode)
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
                if state.updateDue { applyUpdate() }
            }
        }
    }

    /// `Σ_t KL(π(s_t) ‖ π_θ(s_t))` of `episode` under the current student.
    private func sampledKL(_ episode: UnrollEpisode, actionCount na: Int) -> Double {
        let policy = state.student.policy
        var kl = 0.0
        for t in 0..<episode.length {
            let row = Int(policy.rowOfState[episode.state(t)]) * na
            for a in 0..<na {
                let p = episode.teacherProbability(t, a)
                if p > 0 { kl += p * (Foundation.log(p) - policy.logProbabilities[row + a]) }
            }
        }
        return kl
    }

    /// Applies the accumulated update: a new parameter version. An update the parameter bound
    /// refuses leaves the version as it was; its episodes are counted as quarantined.
    private func applyUpdate() {
        switch state.applyUpdate() {
        case .applied:
            version += 1
        case .refused(let reason):
            // Thinned as rejections are: the first few, then every power of two.
            let count = state.quarantined
            if count <= 3 || count & (count - 1) == 0 {
                logger.error(
                    "refused an update (\(reason)); the student keeps its parameters (\(count) quarantined so far)")
            }
        }
    }

    /// Why an unroll cannot be learned from in this run, or nil.
    private func incompatibility(of unroll: Unroll) -> String? {
        let mdp = problem.environment.mdp
        guard unroll.actionCount == mdp.actionCount else {
            return "the unroll has \(unroll.actionCount) actions, this learner's environment has \(mdp.actionCount)"
        }
        if let bad = unroll.observations.first(where: { Int($0) >= mdp.stateCount }) {
            return "the unroll visits state \(bad), this learner's environment has \(mdp.stateCount) states"
        }
        if let problem = bounds.implausibility(of: unroll) { return problem }
        if state.rule.loss.needsActionValues && unroll.teacherQValues.isEmpty {
            return
                "method \(problem.method.method.rawValue) needs the teacher's Q-values; teacher '\(unroll.teacherID)' sends none"
        }
        return nil
    }

    /// Acknowledges the unrolls consumed since the last call, one receipt per actor.
    private func sendReceipts(_ router: ZMQSocket) {
        guard !receipts.isEmpty else { return }
        for (routing, sequence) in receipts {
            reply(.unrollAck(UnrollAck(sequence: sequence, parameterVersion: version)), to: routing, router)
        }
        receipts.removeAll(keepingCapacity: true)
    }

    private func currentParameters() -> Parameters {
        Parameters(
            version: version,
            values: Tensor(
                shape: [state.student.parameters.rowCount, state.student.parameters.actionCount],
                values: state.student.parameters.float32Logits()),
            envSteps: envSteps)
    }

    private func publish(_ pub: ZMQSocket) {
        let bytes = codec.encode(Envelope(sender: sender, message: .parameters(currentParameters())))
        _ = try? pub.send(bytes, dontWait: true)
    }

    // MARK: Clients

    private func serve(_ frames: [[UInt8]], on router: ZMQSocket) {
        // The peer the ZAP handler authenticated (CURVE with an allow-list), else nil.
        let peer = AuthenticatedPeer(userID: router.lastUserID)
        guard frames.count == 2 else {
            let error = DecodingError(.malformed, "expected one payload frame, got \(frames.count - 1)")
            if let line = rejections.record(error, from: "a control client") { logger.warning("\(line)") }
            return
        }
        let routing = frames[0]
        let envelope: Envelope
        do {
            envelope = try codec.decode(frames[1], expecting: [.hello, .heartbeat, .getParams, .control])
        } catch {
            if let line = rejections.record(error, from: "a control client") { logger.warning("\(line)") }
            reply(.error(ErrorReply(code: error.code.replyCode, message: error.message)), to: routing, router)
            return
        }
        if let refusal = authorization.refusal(of: envelope.message.kind, from: peer) {
            refuse(refusal, to: routing, from: envelope.sender, router)
            return
        }
        let now = monotonicMilliseconds()
        switch envelope.message {
        case .hello(let hello):
            let mdp = problem.environment.mdp
            guard hello.environment == problem.environmentIdentity, hello.stateCount == mdp.stateCount,
                hello.actionCount == mdp.actionCount
            else {
                let message =
                    "this learner runs \(problem.environmentIdentity) (\(mdp.stateCount) states, \(mdp.actionCount) "
                    + "actions), \(envelope.sender.role) '\(envelope.sender.id)' runs \(hello.environment) "
                    + "(\(hello.stateCount) states, \(hello.actionCount) actions): start it with the same --env flags"
                if let line = peerLines.admit("refused a client", "refused a client: \(message)") {
                    logger.error("\(line)")
                }
                reply(.error(ErrorReply(code: .incompatible, message: message)), to: routing, router)
                return
            }
            if envelope.sender.role == .actor {
                if let refusal = admitActorHello(envelope.sender, from: peer, routing: routing) {
                    refuse(refusal, to: routing, from: envelope.sender, router)
                    return
                }
                // A restarted actor (same id, new run nonce) replaces its old record.
                for (other, record) in actors where record.id == envelope.sender.id && other != routing {
                    actors[other] = nil
                    let line = "actor '\(record.id)' restarted (new run); forgetting its previous run"
                    if let line = membershipLines.admit("restarted", line) { logger.info("\(line)") }
                }
                let known = actors[routing] != nil
                guard known || makeRoomForActor(now) else {
                    refuseActor(envelope.sender, routing: routing, router)
                    return
                }
                var record = ActorRecord(id: envelope.sender.id, nonce: envelope.sender.runNonce, lastSeen: now)
                record.key = peer?.key
                record.teacherEndpoint = hello.teacherEndpoint
                actors[routing] = record
                if !known, let line = membershipLines.admit("joined", "actor '\(envelope.sender.id)' joined") {
                    logger.info("\(line)", metadata: ["version": "\(version)"])
                }
            }
            let settings = ActorSettings(
                control: state.control, maxEpisodeSteps: problem.method.maxEpisodeSteps,
                unrollSteps: problem.unrollSteps)
            let json = (try? String(decoding: JSONEncoder().encode(settings), as: UTF8.self)) ?? "{}"
            let welcome = Welcome(
                unrollPort: unrollPort, parametersPort: parametersPort, teacherEndpoint: teacherEndpoint,
                parameters: currentParameters(), actorSettingsJSON: json)
            reply(.welcome(welcome), to: routing, router)
        case .heartbeat(let beat):
            // A key cannot keep another key's actor alive (a routing id is free again once its
            // actor disconnects).
            if var record = actors[routing], authorization.mayUpdate(recordKey: record.key, from: peer) {
                if !record.alive, let line = membershipLines.admit("back", "actor '\(record.id)' is back") {
                    logger.notice("\(line)")
                }
                record.lastSeen = now
                record.alive = true
                record.envSteps = beat.envSteps
                record.version = beat.parameterVersion
                record.unrollsWithheld = beat.unrollsWithheld
                actors[routing] = record
            }
            reply(
                .heartbeat(Heartbeat(sequence: beat.sequence, envSteps: envSteps, parameterVersion: version)),
                to: routing, router)
        case .getParams(let request):
            if request.haveVersion < version { reply(.parameters(currentParameters()), to: routing, router) }
        case .control(let command):
            handle(command, from: envelope.sender, peer: peer, routing: routing, router)
        default:
            break
        }
    }

    private func handle(
        _ command: Control, from client: Sender, peer: AuthenticatedPeer?, routing: [UInt8], _ router: ZMQSocket
    ) {
        if let refusal = authorization.refusal(of: command, from: peer) {
            refuse(refusal, to: routing, from: client, inReplyTo: command.requestID, router)
            return
        }
        var echo = command
        echo.accepted = true
        echo.token = ""
        switch command.command {
        case .stop:
            logger.notice("stop requested by \(client.role) '\(client.id)'")
            stopActorsAtEnd = true
            StopSignal.request()
        case .swapTeacher:
            // Applied once the new teacher passed its check (`superviseSwap` answers).
            startSwap(command, from: client, routing: routing, router)
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
                    .error(ErrorReply(code: .incompatible, message: message, inReplyTo: command.requestID)),
                    to: routing, router)
                return
            }
            logger.notice("distillation weight λ set to \(command.lambdas[0]) by \(client.role) '\(client.id)'")
        case .status:
            break
        }
        echo.statusJSON = statusJSON()
        reply(.control(echo), to: routing, router)
    }

    private func reply(_ message: Message, to routing: [UInt8], _ router: ZMQSocket) {
        _ = try? router.send([routing, codec.encode(Envelope(sender: sender, message: message))], dontWait: true)
    }

    private func sweepLiveness(_ now: Int64) {
        for (routing, record) in actors
        where record.alive && now - record.lastSeen > Int64(configuration.actorTimeoutMilliseconds) {
            actors[routing]!.alive = false
            let line = "actor '\(record.id)' missed its heartbeats: marked dead; learning goes on from the others"
            if let line = membershipLines.admit("dead", line) { logger.warning("\(line)") }
        }
        if actors.values.contains(where: \.alive) { lastActorAliveAt = now }
        forgetDeadActors(now)
    }

    /// Forgets dead actors heard from longer ago than the forget window.
    private func forgetDeadActors(_ now: Int64) {
        let window = Int64(
            configuration.forgetDeadActorsAfterMilliseconds ?? 20 * configuration.actorTimeoutMilliseconds)
        for (routing, record) in actors where !record.alive && now - record.lastSeen > window {
            actors[routing] = nil
        }
    }

    /// Whether a new actor record fits (forgetting the longest-dead one if the table is full).
    private func makeRoomForActor(_ now: Int64) -> Bool {
        guard actors.count >= configuration.maxActors else { return true }
        // One pass, no sort: a flood of Hellos to a full table costs O(table) each.
        guard
            let oldest = actors.lazy.filter({ !$0.value.alive }).min(by: { $0.value.lastSeen < $1.value.lastSeen })
        else { return false }
        actors[oldest.key] = nil
        return true
    }

    /// Refuses a Hello because every record of the full table belongs to a live actor.
    private func refuseActor(_ client: Sender, routing: [UInt8], _ router: ZMQSocket) {
        actorsRefused += 1
        let message =
            "this learner tracks at most \(configuration.maxActors) actors and all are alive; "
            + "retry later, or give the learner a larger --max-actors"
        if let line = peerLines.admit("actor table full", "refused \(client.role) '\(client.id)': \(message)") {
            logger.warning("\(line)")
        }
        reply(.error(ErrorReply(code: .unavailable, message: message)), to: routing, router)
    }

    private func stopActors(_ router: ZMQSocket) {
        for (routing, record) in actors where record.alive {
            reply(.control(Control(command: .stop)), to: routing, router)
        }
    }

    // MARK: Metrics, checkpoints, summary

    private func exactReturns() -> (student: Double, teacher: Double?) {
        let mdp = problem.environment.mdp
        if referenceTeacherReturn == nil, let teacher = problem.referenceTeacher {
            referenceTeacherReturn = (try? PolicyEvaluation.expectedReturn(mdp, policy: teacher.probabilities)) ?? .nan
        }
        let table = state.student.stateTable()
        // Warm-started from the previous row's values: a few sparse sweeps, not a dense solve.
        if let values = PolicyEvaluation.iterativeValues(
            mdp, policy: table, initial: studentValuesForMetrics, tolerance: 1e-7)
        {
            studentValuesForMetrics = values
            return (zip(mdp.startDistribution, values).reduce(0) { $0 + $1.0 * $1.1 }, referenceTeacherReturn)
        }
        return ((try? PolicyEvaluation.expectedReturn(mdp, policy: table)) ?? .nan, referenceTeacherReturn)
    }

    private func writeMetrics() {
        if !divergenceReported && state.student.parameters.logits.contains(where: { !$0.isFinite }) {
            divergenceReported = true
            logger.error(
                """
                the student diverged: its logits are no longer finite (actors keep their last finite \
                parameters); lower --learning-rate or shorten the policy lag (--max-in-flight on the actors)
                """)
        }
        let (student, teacher) = exactReturns()
        let elapsed = monotonicSeconds() - startSeconds
        let row = MetricsRow(
            seconds: elapsed, envSteps: envSteps, updates: updates, version: version,
            stepsPerSecond: window.steps > 0 ? Double(window.steps) / max(elapsed - lastMetrics.seconds, 1e-9) : 0,
            studentReturn: student, teacherReturn: teacher ?? .nan, klPerEpisode: window.klPerEpisode,
            episodeReturn: window.meanReturn, meanLag: window.meanLag, maxLag: window.maxLag,
            actorsAlive: actors.values.filter(\.alive).count, teacherID: teachers.current, rejected: rejections.total)
        metrics?.append(row)
        lastMetrics = row
        window = MetricsWindow()
        let interval = configuration.progressIntervalSeconds
        if interval > 0 && row.seconds >= nextProgressSeconds {
            nextProgressSeconds = row.seconds + interval
            func f(_ x: Double) -> String { x.isFinite ? String(format: "%.3f", x) : "n/a" }
            logger.info(
                Logger.Message(
                    stringLiteral:
                        "progress: version \(version), \(envSteps) env steps (\(String(format: "%.0f", row.stepsPerSecond))/s), "
                        + "exact return \(f(row.studentReturn)) (teacher \(f(row.teacherReturn))), "
                        + "KL/episode \(f(row.klPerEpisode)), lag \(String(format: "%.1f", row.meanLag)) updates "
                        + "(max \(String(format: "%.0f", row.maxLag))), \(row.actorsAlive) actors alive"))
        }
    }

    private func statusJSON() -> String {
        String(decoding: (try? RecordCoding.encode(status())) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// The answer to a status command: the latest metrics row and the learner's tables.
    private func status() -> LearnerStatus {
        let row = lastMetrics
        var status = LearnerStatus()
        status.version = version
        status.envSteps = envSteps
        status.updates = updates
        status.stepsPerSecond = row.stepsPerSecond
        status.studentReturn = row.studentReturn.finiteOrNil
        status.teacherReturn = row.teacherReturn.finiteOrNil
        status.klPerEpisode = row.klPerEpisode.finiteOrNil
        status.meanLag = row.meanLag
        status.maxLag = row.maxLag
        status.actorsAlive = actors.values.filter(\.alive).count
        status.actorsKnown = actors.count
        status.teacherID = teachers.current
        status.teacherEndpoint = teacherEndpoint
        status.rejected = rejections.total
        status.controlAccess = accessName
        status.environment = problem.environmentIdentity
        status.refusedHandshakes = socketFactory?.rejectedHandshakes ?? 0
        status.resumedFromVersion = resumedFrom
        status.actorsListed = min(actors.count, Self.actorsListed)
        status.actorsRefused = actorsRefused
        status.unrollConnections = unrollConnections?.connections ?? 0
        status.unrollConnectionsRefused = unrollConnections?.refused ?? 0
        status.maxUnrollBytes = unrollBudget?.maxUnrollBytes ?? 0
        status.unrollQueueCapBytes = unrollBudget?.queuedBytesCap ?? 0
        // At most `actorsListed` entries (live ones first), so the answer stays far below a
        // client's message limit however many actors there were; the counts cover them all.
        status.actors = Self.listed(actors.values).map { record in
            LearnerStatus.Actor(
                id: record.id, alive: record.alive, version: record.version, envSteps: record.envSteps,
                unrollsWithheld: record.unrollsWithheld, runNonce: String(record.nonce, radix: 16))
        }
        return status
    }

    /// Unroll connections accepted whatever `unrollQueueBytes` says.
    static let minUnrollConnections = 16

    /// Largest control message a peer may send (Hello, Heartbeat, GetParams, Control).
    static let maxControlMessageBytes = 64 << 10

    /// Actors listed by name in a status answer (about 200 bytes each).
    static let actorsListed = 100

    /// The `actorsListed` actors a status answer names: live ones first, then by id.
    static func listed(_ records: Dictionary<[UInt8], ActorRecord>.Values) -> [ActorRecord] {
        Array(records.sorted { ($0.alive ? 0 : 1, $0.id) < ($1.alive ? 0 : 1, $1.id) }.prefix(actorsListed))
    }

    /// What unroll connections may make this learner hold (see `UnrollBudget`).
    static func unrollBudget(_ problem: LearnerProblem, _ configuration: LearnerConfiguration) -> UnrollBudget {
        var budget = UnrollBudget(
            unrollSteps: problem.unrollSteps, maxEpisodeSteps: problem.method.maxEpisodeSteps,
            actionCount: problem.environment.mdp.actionCount, maxMessageBytes: configuration.maxMessageBytes)
        // At least `minUnrollConnections`, so that a run with very large unrolls (4,000 actions,
        // long episodes) still serves a cluster; the cap is then that many connections' worth.
        budget.maxConnections = max(
            Self.minUnrollConnections, configuration.unrollQueueBytes / budget.bytesPerConnection)
        return budget
    }

    /// Writes a checkpoint; returns nil without a checkpoint directory, else what happened
    /// ("written: FILE" or "failed: REASON"; summary.json records the final one).
    @discardableResult
    private func checkpoint() -> (outcome: String, failure: RuntimeError?)? {
        guard let directory = configuration.checkpointDirectory else { return nil }
        // No RNG state: the learner draws no random numbers (actors own the sampling).
        let snapshot = Checkpoint(
            state.snapshot, version: version, configurationJSON: problem.configurationJSON,
            createdUnixMilliseconds: UInt64(Date().timeIntervalSince1970 * 1000))
        do {
            let file = try CheckpointStore(directory: directory).write(snapshot, sender: sender)
            logger.debug("checkpoint written", metadata: ["file": "\(file.lastPathComponent)"])
            lastDurableVersion = version
            return ("written: \(file.lastPathComponent)", nil)
        } catch {
            let failure =
                error as? RuntimeError ?? RuntimeError("\(error)", code: .checkpointWriteFailed)
            logger.error("checkpoint failed: \(failure); learning goes on and the next one will retry")
            return ("failed: \(failure)", failure)
        }
    }

    private func writeSummary(reason: String, finalCheckpoint: String?) {
        guard let directory = configuration.outputDirectory else { return }
        do {
            let data = try RecordCoding.encode(summary(reason: reason, finalCheckpoint: finalCheckpoint), pretty: true)
            try data.write(to: directory.appendingPathComponent("summary.json"), options: .atomic)
        } catch {
            logger.error("cannot write summary.json in \(directory.path): \(error)")
        }
    }

    /// What summary.json says about this run when it stops for `reason`.
    private func summary(reason: String, finalCheckpoint: String?) -> RunSummary {
        let (student, teacher) = exactReturns()
        let now = monotonicSeconds()
        let elapsed = now - startSeconds
        var summary = RunSummary()
        summary.method = problem.method.method.rawValue
        summary.environment = problem.environmentIdentity
        summary.stoppedBecause = reason
        summary.studentReturn = student.finiteOrNil
        if let teacher = teacher?.finiteOrNil {
            summary.teacherReturn = teacher
            summary.studentToTeacherReturn = teacher != 0 ? (student / teacher).finiteOrNil : nil
        }
        summary.envSteps = envSteps
        summary.envStepsThisRun = learnedSteps
        summary.updates = updates
        summary.version = version
        summary.wallSeconds = elapsed
        summary.envStepsPerSecond = elapsed > 0 ? Double(learnedSteps) / elapsed : 0
        // From the first unroll on: without start-up (teacher training, actors joining).
        let learning = firstUnrollSeconds.map { now - $0 } ?? 0
        summary.envStepsPerSecondLearning = learning > 0 ? Double(learnedSteps) / learning : 0
        summary.learningSeconds = learning
        summary.klPerEpisode = totals.klPerEpisode.finiteOrNil
        summary.meanPolicyLag = totals.meanLag
        summary.maxPolicyLag = totals.maxLag
        // The first switches only (a bounded list), and how many there were in all.
        summary.teachers = teachers.switches.map {
            RunSummary.TeacherSwitch(fromEnvSteps: $0.envSteps, teacherID: $0.teacher)
        }
        summary.teacherSwitches = teachers.switchCount
        summary.actorsSeen = actors.count
        summary.messagesRejected = rejections.total
        summary.unrollMessages = unrollMessages
        summary.unrollBytesMean = unrollMessages > 0 ? Double(unrollBytes) / Double(unrollMessages) : 0
        summary.resumedFromVersion = resumedFrom
        summary.finalCheckpoint = finalCheckpoint ?? "none (no --checkpoint-dir)"
        summary.distillVersion = BuildInfo.version
        summary.gitCommit = BuildInfo.commit
        summary.commandLine = BuildInfo.commandLine
        summary.launcherCommandLine = BuildInfo.launcherCommandLine
        return summary
    }
}

// MARK: Authorization (docs/security.md)

extension Learner {
    /// Decides how control commands are authorized, writes the run token when there is one,
    /// and says once at start what the network lets anybody do.
    fileprivate func setUpAuthorization() throws {
        teachers = TeacherRegistry(initial: problem.referenceTeacher?.identity)
        if let allowed = configuration.curve?.allowedClients {
            authorization = LearnerAuthorization(access: .keys)
            let operators = allowed.values.filter { $0 == .operator }.count
            logger.info(
                Logger.Message(
                    stringLiteral:
                        "clients are authenticated by their CURVE keys; \(operators) operator key(s) may stop, swap the "
                        + "teacher and set λ"))
            return
        }
        let network =
            configuration.curve == nil
            ? "the network is unauthenticated (no CURVE)"
            : "the network is encrypted but unauthenticated (CURVE without --curve-allow)"
        guard let directory = configuration.outputDirectory ?? configuration.checkpointDirectory else {
            authorization = LearnerAuthorization(access: .statusOnly)
            logger.warning(
                Logger.Message(
                    stringLiteral:
                        "\(network): any client that reaches these ports can push unrolls and ask for status; with no "
                        + "--out or --checkpoint-dir for a run token, stop, swap-teacher and set-lambda are disabled"))
            return
        }
        let token = RunToken.generate()
        let file = try RunToken.write(token, in: directory)
        authorization = LearnerAuthorization(access: .token(token))
        logger.warning(
            Logger.Message(
                stringLiteral:
                    "\(network): any client that reaches these ports can push unrolls and ask for status; stop, "
                    + "swap-teacher and set-lambda need the run token in \(file.path) (distill control --run-dir "
                    + "\(directory.path))"))
    }

    /// How control commands are authorized, for the status.
    fileprivate var accessName: String {
        switch authorization.access {
        case .keys: "operator-key"
        case .token: "run-token"
        case .statusOnly: "status-only"
        }
    }

    /// True when `unroll` from `actor` may be learned from: its key may push unrolls and speaks
    /// for the actor id it carries, and it names a teacher this learner announced. Notes
    /// teacher switches; refusals are counted (and logged, thinned).
    fileprivate func admit(_ unroll: Unroll, from actor: Sender) -> Bool {
        let refusal =
            authorization.refusal(of: .unroll, from: unrollPeer)
            ?? authorization.admitUnroll(id: actor.id, from: unrollPeer)
            ?? {
                let trusted = teachers.trustedOnFirstUse
                let (refusal, switchedFrom) = teachers.observe(unroll.teacherID, envSteps: envSteps)
                if trusted == nil, let first = teachers.trustedOnFirstUse {
                    logger.notice(
                        Logger.Message(
                            stringLiteral: "the first unroll names teacher '\(first)', not the configured "
                                + "'\(problem.referenceTeacher?.identity ?? "(none built)")': trusting it as this run's "
                                + "first teacher; unrolls may name no other until a checked swap"))
                }
                if let switchedFrom {
                    let line = "targets now come from teacher '\(unroll.teacherID)' (was '\(switchedFrom)')"
                    if let line = peerLines.admit("teacher switch", line) { logger.notice("\(line)") }
                }
                return refusal
            }()
        guard let refusal else { return true }
        let error = DecodingError(.unauthorized, refusal)
        if let line = rejections.record(error, from: "\(actor.role) '\(actor.id)'") { logger.warning("\(line)") }
        return false
    }

    /// Why an actor's Hello is refused, or nil (and then its id is bound to its key).
    fileprivate func admitActorHello(_ sender: Sender, from peer: AuthenticatedPeer?, routing: [UInt8]) -> String? {
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
    fileprivate func refuse(
        _ reason: String, to routing: [UInt8], from client: Sender, inReplyTo: UInt64 = 0, _ router: ZMQSocket
    ) {
        let error = DecodingError(.unauthorized, reason)
        if let line = rejections.record(error, from: "\(client.role) '\(client.id)'") { logger.warning("\(line)") }
        reply(.error(ErrorReply(code: .incompatible, message: reason, inReplyTo: inReplyTo)), to: routing, router)
    }

    /// Starts checking the teacher of a swap; `superviseSwap` applies or refuses it.
    fileprivate func startSwap(_ command: Control, from client: Sender, routing: [UInt8], _ router: ZMQSocket) {
        guard swapCheck == nil else {
            let message = "a swap to \(swapCheck!.probe.endpoint) is being checked: try again in a few seconds"
            reply(
                .error(ErrorReply(code: .unavailable, message: message, inReplyTo: command.requestID)), to: routing,
                router)
            return
        }
        guard let sockets = socketFactory else { return }
        var curve: CurveRole?
        if configuration.curve != nil {
            guard let key = configuration.teacherKey else {
                let message =
                    "with CURVE the learner checks a new teacher before a swap: start it with --teacher-key "
                    + "(the teacher servers' public key) and list its key on the teachers' --curve-allow"
                reply(
                    .error(ErrorReply(code: .incompatible, message: message, inReplyTo: command.requestID)),
                    to: routing, router)
                return
            }
            curve = .client(serverKey: key)
        }
        let mdp = problem.environment.mdp
        let probe = TeacherProbe(
            endpoint: command.teacherEndpoint,
            expectation: .init(
                environment: problem.environmentIdentity, stateCount: mdp.stateCount, actionCount: mdp.actionCount,
                needsQValues: state.rule.loss.needsActionValues),
            sockets: sockets, curve: curve, sender: sender, now: monotonicMilliseconds(),
            timeoutMilliseconds: configuration.swapCheckMilliseconds)
        logger.notice(
            Logger.Message(
                stringLiteral:
                    "\(client.role) '\(client.id)' asks to move every actor to the teacher server at "
                    + "\(command.teacherEndpoint): checking it first"))
        swapCheck = (probe, command, routing, client)
        superviseSwap(router, now: monotonicMilliseconds())
    }

    /// Applies or refuses a swap whose check ended, and goes back to the previous teacher when
    /// the new one's targets do not arrive within the window after a swap.
    fileprivate func superviseSwap(_ router: ZMQSocket, now: Int64) {
        if let check = swapCheck, let outcome = check.probe.poll(now: now) {
            swapCheck = nil
            switch outcome {
            case .refused(let reason):
                logger.warning("refused the swap to \(check.probe.endpoint): \(reason)")
                reply(
                    .error(ErrorReply(code: .incompatible, message: reason, inReplyTo: check.command.requestID)),
                    to: check.routing, router)
            case .passed(let teacherID, let stated):
                if !stated {
                    logger.warning(
                        Logger.Message(
                            stringLiteral: "the teacher '\(teacherID)' at \(check.probe.endpoint) does not say which "
                                + "environment it serves: only the shape of its answers was checked"))
                }
                logger.notice(
                    "moving every actor to the teacher server at \(check.probe.endpoint) (teacher '\(teacherID)')")
                swapWatch = (
                    teacherID, teacherEndpoint, now + Int64(configuration.swapWindowSeconds * 1000)
                )
                teachers.announce(teacherID)
                moveActors(to: check.probe.endpoint, router)
                var echo = check.command
                echo.accepted = true
                echo.token = ""
                echo.statusJSON = statusJSON()
                reply(.control(echo), to: check.routing, router)
            }
        }
        guard let watch = swapWatch else { return }
        if teachers.current == watch.teacherID {
            swapWatch = nil
        } else if now >= watch.deadline && !actors.values.contains(where: \.alive) {
            // Nobody could have sent its targets: the window starts again when actors are back.
            swapWatch?.deadline = now + Int64(configuration.swapWindowSeconds * 1000)
        } else if now >= watch.deadline {
            swapWatch = nil
            teachers.revert()
            let back = watch.previousEndpoint.isEmpty ? "the teachers they started with" : watch.previousEndpoint
            logger.warning(
                Logger.Message(
                    stringLiteral:
                        "no unroll with targets of teacher '\(watch.teacherID)' at \(teacherEndpoint) within "
                        + "\(configuration.swapWindowSeconds) s of the swap: moving the actors back to \(back)"))
            moveActors(to: watch.previousEndpoint, router)
        }
    }

    /// Tells every live actor to use the teacher at `endpoint` (empty: the one each said in its
    /// Hello), and hands it to actors joining later.
    private func moveActors(to endpoint: String, _ router: ZMQSocket) {
        teacherEndpoint = endpoint
        for (actorRouting, record) in actors where record.alive {
            let target = endpoint.isEmpty ? record.teacherEndpoint : endpoint
            guard !target.isEmpty else { continue }
            reply(.control(Control(command: .swapTeacher, teacherEndpoint: target)), to: actorRouting, router)
        }
    }
}

/// Sums over a stretch of unrolls, for one metrics row (or the whole run).
struct MetricsWindow {
    var steps: UInt64 = 0
    var episodes = 0
    var klSum = 0.0
    var klEpisodes = 0
    var returnSum = 0.0
    var lagSum = 0.0
    var lagWeight = 0.0
    var maxLag = 0.0

    /// Adds one episode; `klSample` is its Σ_t KL when the episode was in the KL subsample.
    mutating func add(steps: UInt64, klSample: Double?, returnSum: Double, lag: Double) {
        self.steps += steps
        episodes += 1
        if let klSample {
            klSum += klSample
            klEpisodes += 1
        }
        self.returnSum += returnSum
        lagSum += lag * Double(steps)
        lagWeight += Double(steps)
        maxLag = max(maxLag, lag)
    }

    var klPerEpisode: Double { klEpisodes > 0 ? klSum / Double(klEpisodes) : .nan }
    var meanReturn: Double { episodes > 0 ? returnSum / Double(episodes) : .nan }
    var meanLag: Double { lagWeight > 0 ? lagSum / lagWeight : 0 }
}
