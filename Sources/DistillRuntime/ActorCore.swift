// The actor's protocol behaviour without I/O (issue 10, item 2), as `LearnerCore` is the
// learner's: Hello with backoff, Welcome, parameters, receipts, heartbeats, teacher queries with
// backoff, stop, swap and give-up take the time they happen as `now` and return what to send.
// `Actor` is the ZeroMQ shell around it; `ActorCoreTests` drive it with a fake clock.

import DistillCore
import DistillWire
import Foundation
import Logging

/// What an actor core asks its shell to do, in order.
public enum ActorEffect: Sendable {
    /// Send `message` to the learner's control socket.
    case toLearner(Message)
    /// Send `message` to the teacher server.
    case toTeacher(Message)
    /// Connect the unroll and parameter sockets to these ports of the learner's host (a Welcome
    /// named them).
    case connectLearner(unrollPort: Int, parametersPort: Int)
    /// Move to the teacher server at this endpoint, then call
    /// `ActorCore.teacherConnected(_:)` (or keep the current one if it cannot be reached).
    case connectTeacher(String)
    /// Write a log line.
    case log(LogLine)
    /// Stop: the learner said so, or refused this actor (`ActorCore.refusal`).
    case stop
}

/// The actor's protocol behaviour, as a value, around its acting (`Acting`: a tabular student on
/// state ids, or a network student stepping N observed environments): it plays episodes with the
/// control policy at the newest parameters it holds, asks for the teacher's outputs of what it
/// visited, and hands whole unrolls to its shell to push.
///
/// Time is the `now` given to each call (monotonic milliseconds), never read inside:
///
/// ```
/// core.start(now:)
/// loop:
///     core.fromLearner / fromParameters / fromTeacher(payload, now:)  → sends, connects, stop
///     core.tick(now:)                              → Hello (backing off), heartbeat, keepalive, give-up
///     core.work(now:)                              → play, or query the teacher (with backoff)
///     core.unrollToPush(now:) / unrollPushed()     → when `wantsToPush`
/// ```
public struct ActorCore<Acting: ActorActing> {
    /// Where the actor is in its cycle.
    public enum Phase: Sendable, Equatable {
        /// No Welcome from the learner yet.
        case awaitingWelcome
        /// Playing episodes.
        case playing
        /// Waiting for the teacher's outputs of the states an unroll visited.
        case awaitingTeacher
        /// An unroll is complete: waiting for the credit (receipts) and the socket to push it.
        case sending
    }

    /// The student, environments and episodes.
    public private(set) var acting: Acting
    private let environmentIdentity: String
    private let configuration: ActorConfiguration
    private let codec: WireCodec

    /// Where the actor is in its cycle.
    public private(set) var phase = Phase.awaitingWelcome
    /// How the learner says actors act (from its Welcome).
    public private(set) var settings = ActorSettings(
        control: .student, maxEpisodeSteps: MethodSpec().maxEpisodeSteps, unrollSteps: ActorSettings.defaultUnrollSteps)
    /// The newest parameter version the actor holds (a network actor acts with it from its next
    /// unroll on).
    public private(set) var version: UInt64 = 0
    private var learnerNonce: UInt64 = 0
    private var learnerVersion: UInt64 = 0
    /// The teacher server the actor queries.
    public private(set) var teacherEndpoint: String

    private var pendingQuery: (query: TeacherQuery, askedAt: Int64, sentAt: Int64, backoff: Int)?
    private var nextQueryID: UInt64 = 1
    /// Unrolls pushed so far (the next one's sequence number).
    public private(set) var sequence: UInt64 = 0
    private var consumed: UInt64 = 0
    private var creditBlockedSince: Int64 = 0
    private var heartbeatSequence: UInt64 = 0
    /// Environment steps played.
    public var envSteps: UInt64 { acting.environmentSteps }
    /// Microseconds between a teacher query's first send and its answer, in total.
    private var teacherWaitMicroseconds: UInt64 = 0
    private var unrollsWithheld: UInt64 = 0
    private var teacherOutage = false
    /// Messages rejected, by code.
    public private(set) var rejections = RejectionLog()
    private var peerLines = LogThrottle()
    private var lastHelloAt: Int64 = 0
    /// Milliseconds between unanswered Hellos: 1 s, doubling up to 16 s, back to 1 s on a Welcome.
    public private(set) var helloIntervalMilliseconds: Int64 = 1000
    /// When the first of the unanswered Hellos went out.
    private var helloStartedAt: Int64 = 0
    private var needsHello = false
    private var lastHeartbeatAt: Int64 = 0
    private var lastParametersAt: Int64 = 0
    private var lastHeardFromLearnerAt: Int64 = 0
    private var lastTeacherQueryAt: Int64 = 0
    /// Why the learner refused this actor (another environment, another key's id), or nil:
    /// the shell then ends with an error.
    public private(set) var refusal: String?
    /// Why the actor gave up (`giveUpAfterSeconds` without a word from the learner), or nil.
    public private(set) var gaveUp: String?
    private var effects: [ActorEffect] = []

    /// The longest Hello interval of the backoff.
    public static var maxHelloIntervalMilliseconds: Int64 { 16_000 }

    /// Creates an actor core that acts with `acting`, its environment identified to the learner by
    /// `environmentIdentity`.
    public init(acting: Acting, environmentIdentity: String, configuration: ActorConfiguration) {
        self.acting = acting
        self.environmentIdentity = environmentIdentity
        self.configuration = configuration
        self.codec = WireCodec(maxMessageBytes: configuration.maxMessageBytes)
        teacherEndpoint = configuration.teacher
    }

    /// Starts the clocks: the give-up silence and the teacher keepalive count from `now`.
    public mutating func start(now: Int64) {
        lastHeardFromLearnerAt = now
        lastTeacherQueryAt = now
    }

    private mutating func takeEffects() -> [ActorEffect] {
        defer { effects.removeAll() }
        return effects
    }

    private mutating func log(_ level: Logger.Level, _ message: String, metadata: Logger.Metadata? = nil) {
        effects.append(.log(LogLine(level, message, metadata: metadata)))
    }

    /// True once `maxEnvSteps` were played.
    public var stepLimitReached: Bool {
        guard let limit = configuration.maxEnvSteps else { return false }
        return envSteps >= limit
    }

    /// True when the credit (unacknowledged unrolls below `maxUnrollsInFlight`) allows a push.
    public var hasCredit: Bool { sequence - consumed < UInt64(configuration.maxUnrollsInFlight) }

    /// Periodic work at `now`: Hello (1 s, doubling up to 16 s while unanswered), heartbeats,
    /// the teacher keepalive, and giving up after `giveUpAfterSeconds` without the learner.
    public mutating func tick(now: Int64) -> [ActorEffect] {
        if (phase == .awaitingWelcome || needsHello) && now - lastHelloAt >= helloIntervalMilliseconds {
            if lastHelloAt != 0 {
                // Back off (a learner that is down stays down a while) and say what to check,
                // once per doubling rather than once a second.
                let waited = String(format: "%.0f", Double(now - helloStartedAt) / 1000)
                log(
                    .notice,
                    "no answer from the learner at \(configuration.learner) after \(waited) s; "
                        + "next hello in \(2 * helloIntervalMilliseconds / 1000) s. Check that the learner runs, that "
                        + "this is its control endpoint (--bind-control; `distill probe` tests the route), and "
                        + "with CURVE that --learner-key is its public key and this actor's key is on its "
                        + "--curve-allow")
                helloIntervalMilliseconds = min(2 * helloIntervalMilliseconds, Self.maxHelloIntervalMilliseconds)
            } else {
                helloStartedAt = now
            }
            sendHello(now: now)
        }
        if now - lastHeartbeatAt >= Int64(configuration.heartbeatMilliseconds) { sendHeartbeat(now: now) }
        if pendingQuery == nil && now - lastTeacherQueryAt >= Int64(configuration.teacherKeepaliveMilliseconds) {
            sendTeacherKeepalive(now: now)
        }
        let silence = Double(now - lastHeardFromLearnerAt) / 1000
        if configuration.giveUpAfterSeconds > 0 && silence >= configuration.giveUpAfterSeconds {
            gaveUp = "no message from the learner at \(configuration.learner) for \(String(format: "%.1f", silence)) s"
        }
        return takeEffects()
    }

    // MARK: Acting

    /// One piece of work at `now`: plays episodes up to an unroll while playing, sends or
    /// retries the teacher query while waiting for it. Pushing is `unrollToPush(now:)`.
    public mutating func work(now: Int64) -> [ActorEffect] {
        switch phase {
        case .awaitingWelcome, .sending:
            break
        case .playing:
            play()
        case .awaitingTeacher:
            retryQueryIfDue(now: now)
        }
        return takeEffects()
    }

    /// Plays a slice of work, then moves on to what the acting needs.
    private mutating func play() {
        follow(acting.play(settings: settings))
    }

    private mutating func follow(_ need: ActingNeed) {
        switch need {
        case .play: phase = .playing
        case .teacher(let query): requestTeacher(query)
        case .push: phase = .sending
        }
    }

    private mutating func requestTeacher(_ query: TeacherQuery) {
        var query = query
        query.queryID = nextQueryID
        nextQueryID += 1
        pendingQuery = (query, 0, 0, configuration.teacherTimeoutMilliseconds)
        phase = .awaitingTeacher
    }

    private mutating func retryQueryIfDue(now: Int64) {
        guard var pending = pendingQuery else { return }
        guard pending.sentAt == 0 || now - pending.sentAt >= Int64(pending.backoff) else { return }
        if pending.sentAt != 0 {
            if !teacherOutage {
                teacherOutage = true
                log(
                    .warning,
                    "teacher at \(teacherEndpoint) is not answering; retrying with backoff, holding the unroll back")
            }
            unrollsWithheld += acting.holdsEpisodes ? 1 : 0
            pending.backoff = min(pending.backoff * 2, configuration.maxBackoffMilliseconds)
        } else {
            pending.askedAt = now
        }
        effects.append(.toTeacher(.teacherQuery(pending.query)))
        pending.sentAt = now
        lastTeacherQueryAt = now
        pendingQuery = pending
    }

    /// A one-row query whose answer is ignored: tells the teacher server this actor is alive.
    private mutating func sendTeacherKeepalive(now: Int64) {
        effects.append(.toTeacher(.teacherQuery(acting.keepaliveQuery(id: nextQueryID))))
        nextQueryID += 1
        lastTeacherQueryAt = now
    }

    /// Takes one message from the teacher server.
    public mutating func fromTeacher(_ payload: [UInt8], now: Int64) -> [ActorEffect] {
        handleTeacherReply(payload, now: now)
        return takeEffects()
    }

    private mutating func handleTeacherReply(_ payload: [UInt8], now: Int64) {
        let envelope: Envelope
        do {
            envelope = try codec.decode(payload, expecting: [.teacherReply, .error])
        } catch {
            if let line = rejections.record(error, from: "teacher \(teacherEndpoint)") { log(.warning, line) }
            return
        }
        switch envelope.message {
        case .error(let error):
            if let line = peerLines.admit("teacher refused", "teacher refused a query: \(error.message)") {
                log(.error, line)
            }
        case .teacherReply(let reply):
            guard let pending = pendingQuery, reply.queryID == pending.query.queryID else { return }  // a late answer
            let need: ActingNeed
            do {
                need = try acting.store(reply, for: pending.query)
            } catch {
                log(.error, error.description)
                return
            }
            if teacherOutage {
                teacherOutage = false
                log(.notice, "teacher at \(teacherEndpoint) answers again")
            }
            if pending.askedAt != 0 { teacherWaitMicroseconds += UInt64(max(0, now - pending.askedAt)) * 1000 }
            pendingQuery = nil
            follow(need)
        default:
            break
        }
    }

    /// The unroll to push now, or nil while the credit is used up (receipts are awaited; after
    /// 3 s without one the learner lost them, and the window is forgiven). Call
    /// `unrollPushed()` once the shell sent it.
    public mutating func unrollToPush(now: Int64) -> (unroll: Unroll?, effects: [ActorEffect]) {
        guard phase == .sending else { return (nil, []) }
        if sequence - consumed >= UInt64(configuration.maxUnrollsInFlight) {
            // Wait for receipts; if none come for long, the learner lost them (it restarted):
            // forgive the window rather than stall forever.
            if creditBlockedSince == 0 { creditBlockedSince = now }
            guard now - creditBlockedSince > 3000 else { return (nil, []) }
            log(.notice, "no receipts from the learner for 3 s; resuming with a fresh window")
            consumed = sequence
        }
        creditBlockedSince = 0
        return (acting.unroll(sequence: sequence), takeEffects())
    }

    /// The unroll of `unrollToPush` went out: play the next one.
    public mutating func unrollPushed() {
        sequence += 1
        acting.unrollPushed()
        phase = .playing
    }

    // MARK: The learner

    private mutating func sendHello(now: Int64) {
        effects.append(
            .toLearner(.hello(acting.hello(environment: environmentIdentity, teacherEndpoint: teacherEndpoint))))
        lastHelloAt = now
    }

    private mutating func sendHeartbeat(now: Int64) {
        heartbeatSequence += 1
        let beat = Heartbeat(
            sequence: heartbeatSequence, envSteps: envSteps, parameterVersion: version,
            unrollsWithheld: unrollsWithheld, messagesRejected: rejections.total,
            observationMicroseconds: acting.observationMicroseconds,
            inferenceMicroseconds: acting.inferenceMicroseconds + teacherWaitMicroseconds)
        effects.append(.toLearner(.heartbeat(beat)))
        lastHeartbeatAt = now
        // Parameters are published often; a long silence while the learner is ahead means we
        // missed them (slow joiner, dropped at the high-water mark): ask directly.
        if learnerVersion > version && lastHeartbeatAt - lastParametersAt > 1000 && phase != .awaitingWelcome {
            effects.append(.toLearner(.getParams(GetParams(haveVersion: version))))
        }
    }

    /// Takes one message from the learner's control socket.
    public mutating func fromLearner(_ payload: [UInt8], now: Int64) -> [ActorEffect] {
        handleLearnerMessage(payload, now: now)
        return takeEffects()
    }

    private mutating func handleLearnerMessage(_ payload: [UInt8], now: Int64) {
        let envelope: Envelope
        do {
            envelope = try codec.decode(
                payload, expecting: [.welcome, .heartbeat, .parameters, .control, .error, .unrollAck])
        } catch {
            if let line = rejections.record(error, from: "learner") { log(.warning, line) }
            return
        }
        lastHeardFromLearnerAt = now
        switch envelope.message {
        case .welcome(let welcome):
            if let problem = acting.incompatibility(with: welcome) {
                log(.error, "refusing the learner's welcome: \(problem)")
                refusal = problem
                effects.append(.stop)
                return
            }
            do {
                settings = try JSONDecoder().decode(ActorSettings.self, from: Data(welcome.actorSettingsJSON.utf8))
            } catch {
                log(.error, "the learner's actor settings are unreadable (\(error)); keeping \(settings)")
            }
            if learnerNonce != envelope.sender.runNonce { consumed = sequence }
            learnerNonce = envelope.sender.runNonce
            needsHello = false
            helloIntervalMilliseconds = 1000
            adopt(welcome.parameters, force: true, now: now)
            if !welcome.teacherEndpoint.isEmpty && welcome.teacherEndpoint != teacherEndpoint {
                effects.append(.connectTeacher(welcome.teacherEndpoint))
            }
            if phase == .awaitingWelcome { phase = .playing }
            log(
                .info, "joined the learner", metadata: ["version": "\(version)", "control": "\(settings.control.name)"])
            effects.append(.connectLearner(unrollPort: welcome.unrollPort, parametersPort: welcome.parametersPort))
        case .heartbeat(let beat):
            learnerVersion = beat.parameterVersion
            if envelope.sender.runNonce != learnerNonce && phase != .awaitingWelcome && !needsHello {
                log(.notice, "the learner restarted; joining it again")
                needsHello = true
                lastHelloAt = 0
            }
        case .parameters(let parameters):
            adopt(parameters, force: envelope.sender.runNonce != learnerNonce, now: now)
        case .unrollAck(let ack):
            if envelope.sender.runNonce == learnerNonce { consumed = max(consumed, min(ack.sequence + 1, sequence)) }
            learnerVersion = max(learnerVersion, ack.parameterVersion)
        case .control(let command):
            switch command.command {
            case .stop:
                log(.info, "the learner asked this actor to stop")
                effects.append(.stop)
            case .swapTeacher:
                if command.teacherEndpoint != teacherEndpoint {
                    effects.append(.connectTeacher(command.teacherEndpoint))
                }
            case .setLambda, .status:
                break
            }
        case .error(let error):
            log(.error, "the learner refused this actor: \(error.message)")
            if error.code == .incompatible {
                refusal = error.message
                effects.append(.stop)
            }
        default:
            break
        }
    }

    /// Takes one broadcast from the parameter socket.
    public mutating func fromParameters(_ payload: [UInt8], now: Int64) -> [ActorEffect] {
        do {
            let envelope = try codec.decode(payload, expecting: [.parameters])
            guard case .parameters(let parameters) = envelope.message else { return takeEffects() }
            lastHeardFromLearnerAt = now
            if envelope.sender.runNonce == learnerNonce { adopt(parameters, force: false, now: now) }
        } catch {
            // A corrupted broadcast fails its checksum here; the next one (or GetParams) heals it.
            if let line = rejections.record(error, from: "parameter broadcast") { log(.warning, line) }
        }
        return takeEffects()
    }

    private mutating func adopt(_ incoming: Parameters, force: Bool, now: Int64) {
        guard force || incoming.version > version else { return }
        if let problem = acting.receive(incoming) {
            log(.error, problem)
            return
        }
        version = incoming.version
        learnerVersion = max(learnerVersion, version)
        lastParametersAt = now
    }

    /// The shell moved to the teacher server at `endpoint` (`connectTeacher`): its targets
    /// replace the old teacher's, for the episodes already played too.
    public mutating func teacherConnected(_ endpoint: String) -> [ActorEffect] {
        log(.notice, "moving to the teacher server at \(endpoint) (was \(teacherEndpoint))")
        teacherEndpoint = endpoint
        teacherOutage = false
        // Targets of the finished episodes must all come from the new teacher.
        if let query = acting.forgetTeacher(pending: pendingQuery?.query) {
            requestTeacher(query)
        } else if phase == .awaitingTeacher {
            pendingQuery = nil
            phase = .playing
        }
        return takeEffects()
    }
}

extension ActorCore where Acting == TabularActing {
    /// Creates an actor core with a tabular student on `environment`, identified to the learner by
    /// `environmentIdentity`.
    public init(environment: Environment, environmentIdentity: String, configuration: ActorConfiguration) {
        self.init(
            acting: TabularActing(environment: environment, seed: configuration.seed),
            environmentIdentity: environmentIdentity, configuration: configuration)
    }
}
