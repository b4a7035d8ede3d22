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
    /// Give up (stop as at the step limit, with `gaveUp` set) once no actor has been alive for
    /// this many seconds; 0: never (wait for actors to come back).
    public var giveUpAfterSeconds: Double = 0

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
    private var currentTeacherID = ""
    private var previousTeacherID = ""
    private var swapPending = false
    private var teacherSwitches: [(envSteps: UInt64, teacher: String)] = []
    private var rejections = RejectionLog()
    private var stopActorsAtEnd = false
    private var startSeconds = monotonicSeconds()
    private var window = MetricsWindow()
    private var totals = MetricsWindow()
    private var metrics: MetricsFile?
    private var lastMetrics = MetricsRow()
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
                """)
        }
        do {
            try state.restore(from: LearnerSnapshot(checkpoint))
        } catch let error as DistillError {
            throw RuntimeError("the checkpoint \(file.path) does not fit this run: \(error.message)")
        }
        version = checkpoint.version
        resumedFrom = checkpoint.version
        logger.notice(
            "resumed from checkpoint", metadata: ["file": "\(file.lastPathComponent)", "version": "\(version)"])
    }

    /// Learns until a stop is requested or `maxEnvSteps` is reached; always ends with a final
    /// publication, checkpoint, metrics row and summary.
    public func run() throws {
        let sockets = try SocketFactory(maxMessageBytes: configuration.maxMessageBytes, curve: configuration.curve)
        socketFactory = sockets
        let pull = try sockets.open(.pull, highWaterMark: 4, curve: .server)
        // Small kernel buffers too: unrolls queued anywhere are policy lag.
        try pull.set(.receiveBuffer(bytes: 256 << 10))
        let pub = try sockets.open(.pub, highWaterMark: 16, curve: .server)
        let router = try sockets.open(.router, highWaterMark: 10_000, curve: .server)
        defer { for socket in [pull, pub, router] { socket.close() } }
        let unrolls = try sockets.bind(pull, configuration.bindUnrolls, purpose: "unroll")
        let params = try sockets.bind(pub, configuration.bindParameters, purpose: "parameter")
        let control = try sockets.bind(router, configuration.bindControl, purpose: "control")
        unrollPort = try Endpoint(parsing: unrolls).port
        parametersPort = try Endpoint(parsing: params).port
        announceEndpoint("unrolls", unrolls)
        announceEndpoint("parameters", params)
        announceEndpoint("control", control)
        if let directory = configuration.outputDirectory {
            metrics = try MetricsFile(directory: directory, appending: resumedFrom != nil)
        }
        logger.info(
            "learner ready",
            metadata: [
                "control": "\(control)", "method": "\(problem.method.method.rawValue)", "version": "\(version)",
                "env": "\(problem.environmentIdentity)",
            ])

        var poller = ZMQPoller()
        poller.add(pull)
        poller.add(router)
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
                    learn(from: frames)
                    if version - publishedVersion >= UInt64(configuration.publishEveryUpdates) {
                        publish(pub)
                        publishedVersion = version
                        lastPublished = monotonicMilliseconds()
                    }
                }
            }
            sendReceipts(router)
            if !ready[1].isEmpty {
                while let frames = try router.receive(dontWait: true) { serve(frames, on: router) }
            }
            let now = monotonicMilliseconds()
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
        checkpoint()
        writeSummary(reason: reason)
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
        if unroll.teacherID != currentTeacherID {
            // Unrolls still in flight from the teacher just replaced are stragglers, not a switch
            // back; a commanded swap to it again is a switch.
            let straggler = unroll.teacherID == previousTeacherID && !swapPending
            if !straggler {
                if !currentTeacherID.isEmpty {
                    logger.notice("targets now come from teacher '\(unroll.teacherID)' (was '\(currentTeacherID)')")
                }
                previousTeacherID = currentTeacherID
                currentTeacherID = unroll.teacherID
                swapPending = false
                teacherSwitches.append((envSteps, unroll.teacherID))
            }
        }
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
                logger.error("refused a client: \(message)")
                reply(.error(ErrorReply(code: .incompatible, message: message)), to: routing, router)
                return
            }
            if envelope.sender.role == .actor {
                // A restarted actor (same id, new run nonce) replaces its old record.
                for (other, record) in actors where record.id == envelope.sender.id && other != routing {
                    actors[other] = nil
                    logger.info("actor '\(record.id)' restarted (new run); forgetting its previous run")
                }
                let known = actors[routing] != nil
                actors[routing] = ActorRecord(id: envelope.sender.id, nonce: envelope.sender.runNonce, lastSeen: now)
                if !known { logger.info("actor '\(envelope.sender.id)' joined", metadata: ["version": "\(version)"]) }
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
            if var record = actors[routing] {
                if !record.alive { logger.notice("actor '\(record.id)' is back") }
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
            handle(command, from: envelope.sender, routing: routing, router)
        default:
            break
        }
    }

    private func handle(_ command: Control, from client: Sender, routing: [UInt8], _ router: ZMQSocket) {
        var echo = command
        echo.accepted = true
        switch command.command {
        case .stop:
            logger.notice("stop requested by \(client.role) '\(client.id)'")
            stopActorsAtEnd = true
            StopSignal.request()
        case .swapTeacher:
            logger.notice("moving every actor to the teacher server at \(command.teacherEndpoint)")
            teacherEndpoint = command.teacherEndpoint
            swapPending = true
            for (actorRouting, record) in actors where record.alive {
                reply(
                    .control(Control(command: .swapTeacher, teacherEndpoint: command.teacherEndpoint)),
                    to: actorRouting, router)
            }
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
            logger.warning("actor '\(record.id)' missed its heartbeats: marked dead; learning goes on from the others")
        }
        if actors.values.contains(where: \.alive) { lastActorAliveAt = now }
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
            actorsAlive: actors.values.filter(\.alive).count, teacherID: currentTeacherID, rejected: rejections.total)
        metrics?.append(row)
        lastMetrics = row
        window = MetricsWindow()
    }

    private func statusJSON() -> String {
        let row = lastMetrics
        let status: [String: Any] = [
            "version": version, "env_steps": envSteps, "updates": updates, "steps_per_second": row.stepsPerSecond,
            "student_return": row.studentReturn.isFinite ? row.studentReturn : NSNull(),
            "teacher_return": row.teacherReturn.isFinite ? row.teacherReturn : NSNull(),
            "kl_per_episode": row.klPerEpisode.isFinite ? row.klPerEpisode : NSNull(), "mean_lag": row.meanLag,
            "max_lag": row.maxLag, "actors_alive": actors.values.filter(\.alive).count, "actors_known": actors.count,
            "teacher_id": currentTeacherID, "teacher_endpoint": teacherEndpoint, "rejected": rejections.total,
            "refused_handshakes": socketFactory?.rejectedHandshakes ?? 0,
            "resumed_from_version": resumedFrom.map { $0 as Any } ?? NSNull(),
            "actors": actors.values.sorted { $0.id < $1.id }.map { record -> [String: Any] in
                [
                    "id": record.id, "alive": record.alive, "version": record.version, "env_steps": record.envSteps,
                    "unrolls_withheld": record.unrollsWithheld, "run_nonce": String(record.nonce, radix: 16),
                ]
            },
        ]
        let data =
            (try? JSONSerialization.data(withJSONObject: jsonSafe(status), options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    private func checkpoint() {
        guard let directory = configuration.checkpointDirectory else { return }
        // No RNG state: the learner draws no random numbers (actors own the sampling).
        let snapshot = Checkpoint(
            state.snapshot, version: version, configurationJSON: problem.configurationJSON,
            createdUnixMilliseconds: UInt64(Date().timeIntervalSince1970 * 1000))
        do {
            let file = try CheckpointStore(directory: directory).write(snapshot, sender: sender)
            logger.debug("checkpoint written", metadata: ["file": "\(file.lastPathComponent)"])
        } catch {
            logger.error("checkpoint failed: \(error); learning goes on and the next one will retry")
        }
    }

    private func writeSummary(reason: String) {
        guard let directory = configuration.outputDirectory else { return }
        let (student, teacher) = exactReturns()
        let elapsed = monotonicSeconds() - startSeconds
        var summary: [String: Any] = [
            "method": problem.method.method.rawValue, "environment": problem.environmentIdentity,
            "stopped_because": reason,
            "student_return": student.isFinite ? student : NSNull(), "env_steps": envSteps,
            "env_steps_this_run": learnedSteps, "updates": updates, "version": version, "wall_seconds": elapsed,
            "env_steps_per_second": elapsed > 0 ? Double(learnedSteps) / elapsed : 0,
            // From the first unroll on: without start-up (teacher training, actors joining).
            "env_steps_per_second_learning": firstUnrollSeconds.map { first in
                let span = monotonicSeconds() - first
                return span > 0 ? Double(learnedSteps) / span : 0
            } ?? 0,
            "learning_seconds": firstUnrollSeconds.map { monotonicSeconds() - $0 } ?? 0,
            "kl_per_episode": totals.klPerEpisode.isFinite ? totals.klPerEpisode : NSNull(),
            "mean_policy_lag": totals.meanLag, "max_policy_lag": totals.maxLag,
            "teachers": teacherSwitches.map {
                ["from_env_steps": $0.envSteps, "teacher_id": $0.teacher] as [String: Any]
            },
            "actors_seen": actors.count, "messages_rejected": rejections.total, "unroll_messages": unrollMessages,
            "unroll_bytes_mean": unrollMessages > 0 ? Double(unrollBytes) / Double(unrollMessages) : 0,
            "resumed_from_version": resumedFrom.map { $0 as Any } ?? NSNull(),
            "distill_version": BuildInfo.version, "git_commit": BuildInfo.commit,
            "command_line": BuildInfo.commandLine,
        ]
        if let launcher = BuildInfo.launcherCommandLine { summary["launcher_command_line"] = launcher }
        if let teacher, teacher.isFinite {
            summary["teacher_return"] = teacher
            summary["student_to_teacher_return"] = teacher != 0 ? student / teacher : NSNull()
        }
        do {
            let data = try JSONSerialization.data(
                withJSONObject: jsonSafe(summary), options: [.prettyPrinted, .sortedKeys])
            try data.write(to: directory.appendingPathComponent("summary.json"), options: .atomic)
        } catch {
            logger.error("cannot write summary.json in \(directory.path): \(error)")
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

/// The object with every non-finite number replaced by null: JSON has no NaN or infinity, and a
/// diverged run must still leave its summary behind.
func jsonSafe(_ value: Any) -> Any {
    switch value {
    case let number as Double: return number.isFinite ? number : NSNull()
    case let dictionary as [String: Any]: return dictionary.mapValues(jsonSafe)
    case let array as [Any]: return array.map(jsonSafe)
    default: return value
    }
}
