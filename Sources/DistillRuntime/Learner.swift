import DistillCore
import DistillWire
import Foundation
import Logging

/// What a learner learns: the environment, the method (update rule, schedules, optimiser) and
/// the size of its batches.
public struct LearnerProblem: Sendable {
    /// The tabular environment (for shapes, exact metrics and checking actors' unrolls); nil for
    /// a network run on an environment without a tabular MDP (its `NetworkLearnerModel` says
    /// what actors observe).
    public var environment: Environment?
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
    /// Rusu's setting (network students, supervised losses, teacher control): the learner keeps
    /// the teacher's gameplay in a replay memory and learns from sampled minibatches; nil: the
    /// paper's path, each episode learned from once.
    public var replay: ReplaySpec?

    /// Creates a problem.
    public init(
        environment: Environment?, environmentIdentity: String, method: MethodSpec, teacherKind: TeacherSpec.Kind?,
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

/// Pulls unrolls, applies the update rule with V-trace correction for policy lag, publishes
/// parameters, answers its clients, tracks actor liveness, writes metrics and checkpoints.
///
/// The ZeroMQ shell around `LearnerCore`: the core decides what every message means and what
/// to send; this class owns the sockets, the clock, the swap's teacher check, checkpoints,
/// metrics and the summary.
public final class Learner<Model: LearnerModel>: RoleLoop {
    private let problem: LearnerProblem
    /// The learner's protocol behaviour and learning step, without I/O.
    private var core: LearnerCore<Model>
    private let configuration: LearnerConfiguration
    private let sender: Sender
    private let logger: Logger
    private let codec: WireCodec
    /// Set by a stop command (or, for the `distill` command's token, a signal): the loop ends cleanly.
    private let stop: StopToken

    /// The parameter version: +1 per update, continued across restarts from the checkpoint.
    public private(set) var version: UInt64 {
        get { core.version }
        set { core.version = newValue }
    }
    /// The one learning step's state (shared with `distill train`), as the core holds it.
    private var state: LearnerState<Model.Trainee> { core.state }
    private var updates: UInt64 { UInt64(state.updates) }
    private var envSteps: UInt64 { state.environmentSteps }
    private var resumedFrom: UInt64?

    // What the core knows, read by the status, metrics and summary builders below.
    private var actors: [[UInt8]: ActorRecord] { core.actors }
    private var teacherEndpoint: String { core.teacherEndpoint }
    private var authorization: LearnerAuthorization {
        get { core.authorization }
        set { core.authorization = newValue }
    }
    private var teachers: TeacherRegistry {
        get { core.teachers }
        set { core.teachers = newValue }
    }
    private var rejections: RejectionLog { core.rejections }
    private var window: MetricsWindow {
        get { core.window }
        set { core.window = newValue }
    }
    private var totals: MetricsWindow { core.totals }
    private var learnedSteps: UInt64 { core.learnedSteps }
    private var unrollMessages: UInt64 { core.unrollMessages }
    private var unrollBytes: UInt64 { core.unrollBytes }
    private var actorsRefused: UInt64 { core.actorsRefused }

    /// The teacher check of a swap in progress (its socket is the shell's).
    private var probe: TeacherProbe?
    private var startSeconds = monotonicSeconds()
    private var metrics: MetricsFile?
    private var lastMetrics = MetricsRow()
    private var nextProgressSeconds = 0.0
    private var returnsCache = ReturnsCache()
    private var nextMetricsAtSteps: UInt64 = 0
    private var firstUnrollSeconds: Double?
    // Cheap timers for the summary: two clock reads per unroll message and per publication.
    private var unrollSeconds = 0.0
    private var publishSeconds = 0.0
    private var replayTooLargeReported = false
    private var socketFactory: SocketFactory?
    private var divergenceReported = false
    private var unrollBudget: UnrollBudget?
    private var unrollConnections: ConnectionCap?
    /// The version of the newest checkpoint this run wrote, or nil.
    private var lastDurableVersion: UInt64?
    /// Why the learner gave up (no live actor for `giveUpAfterSeconds`), or nil.
    public var gaveUp: String? { core.gaveUp }

    /// Creates a learner around `core` that runs until `stop` is requested (or its step limit);
    /// resumes from the newest checkpoint in `checkpointDirectory` if any.
    public init(core: LearnerCore<Model>, sender: Sender, logger: Logger, stop: StopToken) throws {
        self.problem = core.problem
        self.stop = stop
        self.configuration = core.configuration
        self.sender = sender
        self.logger = logger
        codec = WireCodec(maxMessageBytes: configuration.maxMessageBytes)
        self.core = core
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
            try core.restore(LearnerSnapshot(checkpoint))
        } catch let error as DistillError {
            throw RuntimeError(
                "the checkpoint \(file.path) does not fit this run: \(error.message)", code: .checkpointMismatch)
        }
        if let rows = checkpoint.replay {
            if let reason = core.restoreReplay(rows) {
                logger.warning(
                    "the replay memory starts empty: \(reason) (\(rows.count) rows in \(file.lastPathComponent))")
            } else {
                logger.notice(
                    "resumed the replay memory: \(rows.count) rows of \(rows.capacity), \(rows.appended) appended")
            }
        } else if core.replayMemory != nil {
            logger.warning("the replay memory starts empty: \(file.lastPathComponent) holds none")
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
        let budget = Self.unrollBudget(core)
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
        core.ports = (try Endpoint(parsing: unrolls).port, try Endpoint(parsing: params).port)
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
        var nextCheckpoint = monotonicSeconds() + configuration.checkpointIntervalSeconds
        var nextMetrics = monotonicSeconds() + configuration.metricsIntervalSeconds
        core.start(now: monotonicMilliseconds())
        startSeconds = monotonicSeconds()
        let out = (router: router, pub: pub)

        while !stop.isRequested {
            if core.stepLimitReached() { break }
            let ready = try poller.poll(timeoutMilliseconds: 10)
            if !ready[0].isEmpty {
                // Bounded drain: the control socket and publication stay responsive under load.
                var drained = 0
                while drained < 16, let frames = try pull.receive(dontWait: true) {
                    drained += 1
                    let peer = AuthenticatedPeer(userID: pull.lastUserID)
                    let taking = monotonicSeconds()
                    let effects = core.receiveUnroll(frames, peer: peer, now: monotonicMilliseconds())
                    unrollSeconds += monotonicSeconds() - taking
                    perform(effects, out)
                    if firstUnrollSeconds == nil && core.unrollMessages > 0 { firstUnrollSeconds = monotonicSeconds() }
                }
            }
            if !ready[2].isEmpty && cap.update() > 0 {
                perform(
                    core.connectionsCut(
                        open: cap.connections, limit: cap.limit, bytesPerConnection: budget.bytesPerConnection),
                    out)
            }
            perform(core.takeReceipts(), out)
            if !ready[1].isEmpty {
                while let frames = try router.receive(dontWait: true) {
                    // The peer the ZAP handler authenticated (CURVE with an allow-list), else nil.
                    let peer = AuthenticatedPeer(userID: router.lastUserID)
                    perform(core.receiveControl(frames, peer: peer, now: monotonicMilliseconds()), out)
                }
            }
            let now = monotonicMilliseconds()
            pollTeacherCheck(now: now, out)
            perform(core.tick(now: now), out)
            if core.gaveUp != nil { break }
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
            gaveUp.map { "gave up: \($0)" } ?? (stop.isRequested ? stop.reason : "step limit reached")
        logger.info("learner stopping (\(reason))", metadata: ["version": "\(version)", "env_steps": "\(envSteps)"])
        publish(core.currentParameters(), pub)
        perform(core.stopActors(), out)
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

    // MARK: Carrying out what the core says

    private func perform(_ effects: [LearnerEffect], _ sockets: (router: ZMQSocket, pub: ZMQSocket)) {
        for effect in effects {
            switch effect {
            case .reply(let routing, let message):
                reply(message, to: routing, sockets.router)
            case .replyWithStatus(let routing, var echo):
                echo.statusJSON = statusJSON()
                reply(.control(echo), to: routing, sockets.router)
            case .publish(let parameters):
                publish(parameters, sockets.pub)
            case .log(let line):
                logger.log(level: line.level, Logger.Message(stringLiteral: line.message), metadata: line.metadata)
            case .checkTeacher(let check):
                startTeacherCheck(check, sockets)
            case .stop:
                stop.request()
            }
        }
    }

    private func publish(_ parameters: Parameters, _ pub: ZMQSocket) {
        let publishing = monotonicSeconds()
        defer { publishSeconds += monotonicSeconds() - publishing }
        let bytes = codec.encode(Envelope(sender: sender, message: .parameters(parameters)))
        _ = try? pub.send(bytes, dontWait: true)
    }

    private func reply(_ message: Message, to routing: [UInt8], _ router: ZMQSocket) {
        _ = try? router.send([routing, codec.encode(Envelope(sender: sender, message: message))], dontWait: true)
    }

    /// Starts querying the teacher of a swap (a probe that cannot even start answers at once).
    private func startTeacherCheck(_ check: TeacherCheck, _ sockets: (router: ZMQSocket, pub: ZMQSocket)) {
        guard let factory = socketFactory else { return }
        probe = TeacherProbe(
            endpoint: check.endpoint, expectation: check.expectation, sockets: factory,
            curve: check.serverKey.map { .client(serverKey: $0) }, sender: sender, now: monotonicMilliseconds(),
            timeoutMilliseconds: check.timeoutMilliseconds)
        pollTeacherCheck(now: monotonicMilliseconds(), sockets)
    }

    /// Hands the outcome of the swap's teacher check to the core once there is one.
    private func pollTeacherCheck(now: Int64, _ sockets: (router: ZMQSocket, pub: ZMQSocket)) {
        guard let outcome = probe?.poll(now: now) else { return }
        probe = nil
        perform(core.teacherChecked(outcome, now: now), sockets)
    }

    // MARK: Metrics, checkpoints, summary

    private func writeMetrics() {
        if !divergenceReported && core.model.hasDiverged(state.student) {
            divergenceReported = true
            logger.error(
                """
                the student diverged: its logits are no longer finite (actors keep their last finite \
                parameters); lower --learning-rate or shorten the policy lag (--max-in-flight on the actors)
                """)
        }
        let (student, teacher) = core.model.metricsReturns(of: state.student, cache: &returnsCache)
        let elapsed = monotonicSeconds() - startSeconds
        let row = MetricsRow(
            seconds: elapsed, envSteps: envSteps, updates: updates, version: version,
            stepsPerSecond: window.steps > 0 ? Double(window.steps) / max(elapsed - lastMetrics.seconds, 1e-9) : 0,
            studentReturn: student, teacherReturn: teacher ?? .nan, klPerEpisode: window.klPerEpisode,
            episodeReturn: window.meanReturn, meanLag: window.meanLag, maxLag: window.maxLag,
            actorsAlive: actors.values.filter(\.alive).count, teacherID: teachers.current, rejected: rejections.total)
        metrics?.append(row, tasks: returnsCache.tasks)
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
                        + (row.studentReturn.isFinite
                            ? "exact return \(f(row.studentReturn))" : "episode return \(f(row.episodeReturn))")
                        + " (teacher \(f(row.teacherReturn))), "
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
        status.tasks = returnsCache.tasks.isEmpty ? nil : returnsCache.tasks
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
    static var minUnrollConnections: Int { 16 }

    /// Largest control message a peer may send (Hello, Heartbeat, GetParams, Control).
    static var maxControlMessageBytes: Int { 64 << 10 }

    /// Actors listed by name in a status answer (about 200 bytes each).
    static var actorsListed: Int { 100 }

    /// The `actorsListed` actors a status answer names: live ones first, then by id.
    static func listed(_ records: Dictionary<[UInt8], ActorRecord>.Values) -> [ActorRecord] {
        Array(records.sorted { ($0.alive ? 0 : 1, $0.id) < ($1.alive ? 0 : 1, $1.id) }.prefix(actorsListed))
    }

    /// What unroll connections may make this learner hold (see `UnrollBudget`).
    static func unrollBudget(_ core: LearnerCore<Model>) -> UnrollBudget {
        let (problem, configuration) = (core.problem, core.configuration)
        var budget = UnrollBudget(
            unrollSteps: problem.unrollSteps, maxEpisodeSteps: core.model.maxEpisodeSteps,
            actionCount: core.model.actionCount, observationSize: core.model.observationSize,
            maxMessageBytes: configuration.maxMessageBytes)
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
        // The learning state's generator (it draws the replay minibatches) is in the snapshot.
        var snapshot = Checkpoint(
            core.snapshot, version: version, configurationJSON: problem.configurationJSON,
            createdUnixMilliseconds: UInt64(Date().timeIntervalSince1970 * 1000))
        snapshot.replay = checkpointedReplay()
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

    /// The replay memory for a checkpoint, unless it would make the file larger than a checkpoint
    /// may be (`checkpointReplayBytes`; said once in the log).
    private func checkpointedReplay() -> ReplayRows? {
        guard let memory = core.replayMemory else { return nil }
        // Measured before the rows are copied: a memory too large is not copied at each checkpoint.
        let doubles = memory.count * (memory.actionCount * (memory.hasActionValues ? 3 : 2) + 1)
        let bytes = 4 * memory.count * memory.observationSize + 8 * doubles
        guard bytes <= Self.checkpointReplayBytes else {
            if !replayTooLargeReported {
                replayTooLargeReported = true
                let limit = Self.checkpointReplayBytes >> 20
                logger.warning(
                    """
                    the replay memory (\(bytes >> 20) MiB) is not checkpointed: a checkpoint holds at most \
                    \(limit) MiB of it; a resumed learner starts it empty (lower --replay-size)
                    """)
            }
            return nil
        }
        return core.replayRows
    }

    /// The largest replay memory a checkpoint holds: well inside the 64 MiB a checkpoint file may be.
    static var checkpointReplayBytes: Int { 48 << 20 }

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
        let (student, teacher) = core.model.finalReturns(of: state.student, cache: &returnsCache)
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
        summary.tasks = returnsCache.tasks.isEmpty ? nil : returnsCache.tasks
        summary.actorsSeen = actors.count
        summary.messagesRejected = rejections.total
        summary.unrollMessages = unrollMessages
        summary.unrollBytesMean = unrollMessages > 0 ? Double(unrollBytes) / Double(unrollMessages) : 0
        // Where the time went (docs/benchmarks.md, `distill bench cluster --env cartpole`).
        let reported = actors.values.filter { $0.observationMicroseconds + $0.inferenceMicroseconds > 0 }
        if !reported.isEmpty {
            summary.actorObservationSeconds = Double(reported.map(\.observationMicroseconds).reduce(0, +)) / 1e6
            summary.actorInferenceSeconds = Double(reported.map(\.inferenceMicroseconds).reduce(0, +)) / 1e6
        }
        summary.learnerUnrollSeconds = unrollSeconds
        summary.learnerPublishSeconds = publishSeconds
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
