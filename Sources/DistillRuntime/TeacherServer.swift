import DistillCore
import DistillWire
import Foundation
import Logging

/// Settings of a teacher server.
public struct TeacherServerConfiguration: Sendable {
    /// Endpoint of the ROUTER socket, e.g. "tcp://*:5556".
    public var bind: String
    /// Flush the pending queries once they hold this many rows.
    public var maxBatchRows: Int = 4096
    /// Flush the pending queries once the oldest has waited this long, in milliseconds.
    public var batchDeadlineMilliseconds: Int = 2
    /// Seconds between status lines in the log.
    public var statusIntervalSeconds: Double = 10
    /// Largest message accepted.
    public var maxMessageBytes = WireCodec.defaultMaxMessageBytes
    /// CURVE keys (and allow-list), or nil for plain TCP.
    public var curve: CurveConfiguration?
    /// Give up (stop, with `gaveUp` set) after this many seconds without a query; 0: never.
    /// Actors query at least every 2 s while they live (a keep-alive when their cache answers all).
    public var giveUpAfterSeconds: Double = 0
    /// The environment the teacher serves, as `Hello.environment` names it: stated in every
    /// reply, so a learner can refuse a swap to a teacher of another environment.
    public var environmentIdentity = ""

    /// Creates a configuration with the default batching.
    public init(bind: String) {
        self.bind = bind
    }
}

/// Counters a teacher server keeps (and logs).
public struct TeacherServerStatistics: Sendable {
    /// Queries answered.
    public var queries: UInt64 = 0
    /// Rows (states) answered.
    public var rows: UInt64 = 0
    /// Batches flushed.
    public var batches: UInt64 = 0
    /// Messages rejected.
    public var rejected: UInt64 = 0
    /// Queries waiting when a batch was answered, at most (the queue depth).
    public var maxQueueDepth = 0
    /// Milliseconds from a query's arrival to its reply, summed (for the mean) and at most.
    public var latencyMillisecondsTotal: Int64 = 0
    public var latencyMillisecondsMax: Int64 = 0

    /// Σ over batches of min(rows / maxBatchRows, 1).
    public var batchFillTotal: Double = 0

    /// Rows per batch on average.
    public var meanBatchRows: Double { batches == 0 ? 0 : Double(rows) / Double(batches) }
    /// Mean over batches of min(rows / maxBatchRows, 1): 1 when every batch was full.
    public var meanBatchFill: Double { batches == 0 ? 0 : batchFillTotal / Double(batches) }
    /// Milliseconds from arrival to reply on average.
    public var meanLatencyMilliseconds: Double {
        queries == 0 ? 0 : Double(latencyMillisecondsTotal) / Double(queries)
    }
}

/// Serves one fixed teacher: for each batch of observations, its probabilities, values and
/// (when it has them) Q-values. Queries from all clients are batched together and flushed on a
/// full batch or a deadline, whichever comes first (for a neural teacher that is one forward
/// pass; for a table it bounds the per-message overhead the same way).
public struct TeacherServer: RoleLoop {
    private let teacher: Teacher
    /// A network teacher over observations (then `teacher` is an empty stand-in).
    private let network: NetworkTeacher?
    /// The environment spec a network teacher serves.
    public let environmentSpec: WireEnvironmentSpec?
    private let configuration: TeacherServerConfiguration
    private let sender: Sender
    private let logger: Logger
    /// Set when the server should stop (for the `distill` command's token, by a signal).
    private let stop: StopToken
    private let codec: WireCodec
    private let teacherVersion: UInt64 = 1
    // Float copies of the tables, made once: replies are copies of rows.
    private let probabilities: [Float]
    private let values: [Float]
    private let actionValues: [Float]?
    private var pending: [(routing: [UInt8], query: TeacherQuery, arrived: Int64)] = []
    private var pendingRows = 0
    private var oldestPendingMilliseconds: Int64 = 0
    private var rejections = RejectionLog()
    private var peerLines = LogThrottle()
    private var refusedHandshakes = 0
    /// What the server has done so far.
    public private(set) var statistics = TeacherServerStatistics()
    /// Why the server gave up (no query for `giveUpAfterSeconds`), or nil.
    public private(set) var gaveUp: String?
    private var lastQueryAt: Int64 = 0

    /// Creates a server for `teacher`.
    public init(
        teacher: Teacher, configuration: TeacherServerConfiguration, sender: Sender, logger: Logger, stop: StopToken
    ) {
        self.stop = stop
        self.teacher = teacher
        self.configuration = configuration
        self.sender = sender
        self.logger = logger
        self.codec = WireCodec(maxMessageBytes: configuration.maxMessageBytes)
        self.probabilities = teacher.probabilities.map { Float($0) }
        self.values = teacher.values.map { Float($0) }
        self.actionValues = teacher.actionValues.map { $0.map { Float($0) } }
        self.network = nil
        self.environmentSpec = nil
    }

    /// Creates a server for a network teacher over observations (issue 12): the queries of all
    /// clients are gathered until `maxBatchRows` rows or the deadline and answered by one forward
    /// pass of `NetworkTeacher.outputs`.
    public init(
        network: NetworkTeacher, configuration: TeacherServerConfiguration, sender: Sender, logger: Logger,
        stop: StopToken
    ) {
        self.stop = stop
        self.teacher = Teacher(
            identity: network.identity, stateCount: 0, actionCount: network.environment.actionCount, probabilities: [],
            values: [])
        self.network = network
        self.environmentSpec = WireEnvironmentSpec(
            name: network.environment.name, observationShape: network.environment.observationShape,
            actionCount: network.environment.actionCount)
        self.configuration = configuration
        self.sender = sender
        self.logger = logger
        self.codec = WireCodec(maxMessageBytes: configuration.maxMessageBytes)
        self.probabilities = []
        self.values = []
        self.actionValues = nil
    }

    /// Serves until a stop is requested.
    public mutating func run() throws {
        let sockets = try SocketFactory(maxMessageBytes: configuration.maxMessageBytes, curve: configuration.curve)
        let router = try sockets.open(.router, highWaterMark: 10_000, curve: .server)
        defer { router.close() }
        let bound = try sockets.bind(router, configuration.bind, purpose: "teacher")
        announceEndpoint("teacher", bound)
        logger.info(
            "teacher server ready",
            metadata: [
                "endpoint": "\(bound)", "teacher": "\(teacher.identity)",
                "serves": "\(environmentSpec.map(\.description) ?? "\(teacher.stateCount) states")",
            ])
        var poller = ZMQPoller()
        poller.add(router)
        var nextStatus = monotonicSeconds() + configuration.statusIntervalSeconds
        lastQueryAt = monotonicMilliseconds()
        while !stop.isRequested {
            let wait =
                pending.isEmpty
                ? 50
                : max(
                    0,
                    Int(
                        oldestPendingMilliseconds + Int64(configuration.batchDeadlineMilliseconds)
                            - monotonicMilliseconds()))
            if try !poller.poll(timeoutMilliseconds: wait)[0].isEmpty {
                // Drain what is queued now, flushing whenever a batch fills.
                while let frames = try router.receive(dontWait: true) {
                    try accept(frames, on: router)
                    if pendingRows >= configuration.maxBatchRows { try flush(router) }
                }
            }
            if !pending.isEmpty
                && monotonicMilliseconds() - oldestPendingMilliseconds >= Int64(configuration.batchDeadlineMilliseconds)
            {
                try flush(router)
            }
            refusedHandshakes = sockets.rejectedHandshakes
            if monotonicSeconds() >= nextStatus {
                nextStatus += configuration.statusIntervalSeconds
                logStatus()
            }
            let idle = Double(monotonicMilliseconds() - lastQueryAt) / 1000
            if configuration.giveUpAfterSeconds > 0 && idle >= configuration.giveUpAfterSeconds {
                gaveUp = "no query for \(String(format: "%.1f", idle)) s"
                break
            }
        }
        try flush(router)
        logger.info("teacher server stopping (\(gaveUp.map { "gave up: \($0)" } ?? stop.reason))")
        logStatus()
    }

    private func logStatus() {
        logger.info(
            "teacher server status",
            metadata: [
                "queries": "\(statistics.queries)", "rows": "\(statistics.rows)", "batches": "\(statistics.batches)",
                "rejected": "\(rejections.total) (\(rejections.summary))",
                "refused_handshakes": "\(refusedHandshakes)",
                "mean_batch_rows": "\(String(format: "%.1f", statistics.meanBatchRows))",
                "batch_fill": "\(String(format: "%.3f", statistics.meanBatchFill))",
                "max_queue_depth": "\(statistics.maxQueueDepth)",
                "mean_latency_ms": "\(String(format: "%.2f", statistics.meanLatencyMilliseconds))",
                "max_latency_ms": "\(statistics.latencyMillisecondsMax)",
                "serves": "\(environmentSpec.map(\.description) ?? configuration.environmentIdentity)",
            ])
    }

    private mutating func accept(_ frames: [[UInt8]], on router: ZMQSocket) throws {
        guard frames.count == 2 else {
            // A ROUTER sees [routing id, payload]: anything else is not our protocol.
            reject(
                DecodingError(.malformed, "expected one payload frame, got \(frames.count - 1)"), routing: frames.first,
                router)
            return
        }
        let query: TeacherQuery
        do {
            let envelope = try codec.decode(frames[1], expecting: [.teacherQuery])
            guard case .teacherQuery(let q) = envelope.message else { return }
            query = q
        } catch {
            reject(error, routing: frames[0], router)
            return
        }
        if let spec = environmentSpec {
            guard !query.observations.isEmpty else {
                refuse(
                    query.queryID,
                    "this teacher is a network over \(spec): send observations, not state ids or features",
                    routing: frames[0], router)
                return
            }
            guard query.observations.rowShape == spec.observationShape,
                query.observations.dtype == spec.observationDType
            else {
                refuse(
                    query.queryID,
                    "observations of shape \(query.observations.rowShape) \(query.observations.dtype) do not fit this "
                        + "teacher, which serves \(spec): is the actor running the same environment?",
                    routing: frames[0], router)
                return
            }
            lastQueryAt = monotonicMilliseconds()
            if pending.isEmpty { oldestPendingMilliseconds = lastQueryAt }
            pending.append((frames[0], query, lastQueryAt))
            pendingRows += query.observations.rowCount
            return
        }
        guard query.features.isEmpty && query.observations.isEmpty else {
            refuse(query.queryID, "this teacher is tabular: send state_ids, not features", routing: frames[0], router)
            return
        }
        if let bad = query.stateIDs.first(where: { Int($0) >= teacher.stateCount }) {
            refuse(
                query.queryID,
                "state id \(bad) is out of range for this teacher's \(teacher.stateCount) states: "
                    + "is the actor running the same environment (and seed) as the teacher?",
                routing: frames[0], router)
            return
        }
        lastQueryAt = monotonicMilliseconds()
        if pending.isEmpty { oldestPendingMilliseconds = lastQueryAt }
        pending.append((frames[0], query, lastQueryAt))
        pendingRows += query.stateIDs.count
    }

    private mutating func reject(_ error: DecodingError, routing: [UInt8]?, _ router: ZMQSocket) {
        statistics.rejected += 1
        if let line = rejections.record(error, from: "a teacher client") { logger.warning("\(line)") }
        guard let routing else { return }
        let reply = ErrorReply(code: error.code.replyCode, message: error.message)
        _ = try? router.send([routing, codec.encode(Envelope(sender: sender, message: .error(reply)))], dontWait: true)
    }

    private mutating func refuse(_ queryID: UInt64, _ message: String, routing: [UInt8], _ router: ZMQSocket) {
        statistics.rejected += 1
        if let line = peerLines.admit("refused a query", "refused a query: \(message)") { logger.warning("\(line)") }
        let reply = ErrorReply(code: .incompatible, message: message, inReplyTo: queryID)
        _ = try? router.send([routing, codec.encode(Envelope(sender: sender, message: .error(reply)))], dontWait: true)
    }

    /// Answers every pending query (one batch).
    private mutating func flush(_ router: ZMQSocket) throws {
        guard !pending.isEmpty else { return }
        statistics.maxQueueDepth = max(statistics.maxQueueDepth, pending.count)
        statistics.batchFillTotal += min(1, Double(pendingRows) / Double(configuration.maxBatchRows))
        if let network {
            try flushNetwork(network, router)
            return
        }
        let na = teacher.actionCount
        let now = monotonicMilliseconds()
        for (routing, query, arrived) in pending {
            noteLatency(now - arrived)
            var probabilities = [Float]()
            probabilities.reserveCapacity(query.stateIDs.count * na)
            var values = [Float]()
            values.reserveCapacity(query.stateIDs.count)
            var q = [Float]()
            for state in query.stateIDs {
                let s = Int(state)
                probabilities.append(contentsOf: self.probabilities[(s * na)..<((s + 1) * na)])
                values.append(self.values[s])
                if let actionValues { q.append(contentsOf: actionValues[(s * na)..<((s + 1) * na)]) }
            }
            let rows = query.stateIDs.count
            let reply = TeacherReply(
                queryID: query.queryID, teacherID: teacher.identity, teacherVersion: teacherVersion,
                probabilities: Tensor(shape: [rows, na], values: probabilities), values: values,
                qValues: q.isEmpty ? .empty : Tensor(shape: [rows, na], values: q), cacheable: true,
                environment: configuration.environmentIdentity)
            // ROUTER drops replies to peers that left; the client retries on its own.
            _ = try router.send(
                [routing, codec.encode(Envelope(sender: sender, message: .teacherReply(reply)))], dontWait: true)
            statistics.queries += 1
            statistics.rows += UInt64(rows)
        }
        statistics.batches += 1
        pending.removeAll(keepingCapacity: true)
        pendingRows = 0
    }

    private mutating func noteLatency(_ milliseconds: Int64) {
        statistics.latencyMillisecondsTotal += milliseconds
        statistics.latencyMillisecondsMax = max(statistics.latencyMillisecondsMax, milliseconds)
    }

    /// Answers every pending query with one forward pass of the network over all their rows.
    private mutating func flushNetwork(_ network: NetworkTeacher, _ router: ZMQSocket) throws {
        let na = teacher.actionCount
        var batch = [Float]()
        batch.reserveCapacity(pendingRows * (environmentSpec?.observationSize ?? 1))
        for entry in pending { batch.append(contentsOf: entry.query.observations.floats()) }
        let outputs = network.outputs(observations: batch, batch: pendingRows)
        let now = monotonicMilliseconds()
        var row = 0
        for (routing, query, arrived) in pending {
            noteLatency(now - arrived)
            let rows = query.observations.rowCount
            let range = row..<(row + rows)
            var probabilities = outputs.probabilities[(row * na)..<((row + rows) * na)].map { Float($0) }
            // Renormalised in float32 so that every row is a distribution within the codec's tolerance.
            for r in 0..<rows {
                let sum = probabilities[(r * na)..<((r + 1) * na)].reduce(0, +)
                for a in 0..<na { probabilities[r * na + a] /= sum }
            }
            let values = outputs.values[range].map { Float($0) }
            let q = outputs.actionValues.map { Array($0[(row * na)..<((row + rows) * na)]).map { Float($0) } }
            row += rows
            let reply = TeacherReply(
                queryID: query.queryID, teacherID: teacher.identity, teacherVersion: teacherVersion,
                probabilities: Tensor(shape: [rows, na], values: probabilities), values: values,
                qValues: q.map { Tensor(shape: [rows, na], values: $0) } ?? .empty, cacheable: false,
                environment: environmentSpec?.name ?? "", environmentSpec: environmentSpec)
            _ = try router.send(
                [routing, codec.encode(Envelope(sender: sender, message: .teacherReply(reply)))], dontWait: true)
            statistics.queries += 1
            statistics.rows += UInt64(rows)
        }
        statistics.batches += 1
        pending.removeAll(keepingCapacity: true)
        pendingRows = 0
    }
}
