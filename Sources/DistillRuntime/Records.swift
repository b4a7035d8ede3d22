import Foundation

// The records a run leaves for people and programs: the learner's status (the answer to
// `distill control status`), the run summary (summary.json) and the metrics rows (metrics.csv).
// Each is defined once, here; the learner builds them and every reader (launcher, control, plot,
// bench, tests) decodes them. Their JSON keys are documented in docs/schemas/*.schema.json and
// RecordSchemaTests keeps the two in step.

/// The learner's state as `distill control status` prints it (one JSON object; keys in snake_case).
public struct LearnerStatus: Codable, Sendable, Hashable {
    /// The parameter version: +1 per update, continued across restarts.
    public var version: UInt64 = 0
    /// Environment steps learned from, in total (across restarts).
    public var envSteps: UInt64 = 0
    /// Updates applied in total.
    public var updates: UInt64 = 0
    /// Environment steps per second over the latest metrics interval.
    public var stepsPerSecond = 0.0
    /// A multi-task run's exact returns per task at the latest metrics row (absent in other runs).
    public var tasks: [TaskReturn]?
    /// The student's exact expected return at the latest metrics row; null before it is known.
    @NullWhenAbsent public var studentReturn: Double? = nil
    /// The reference teacher's exact expected return; null without one.
    @NullWhenAbsent public var teacherReturn: Double? = nil
    /// Mean Σ_t KL(π ‖ π_θ) per episode over the latest metrics interval; null without a sample.
    @NullWhenAbsent public var klPerEpisode: Double? = nil
    /// Mean policy lag in updates over the latest metrics interval, weighted by steps.
    public var meanLag = 0.0
    /// Largest policy lag in updates over the latest metrics interval.
    public var maxLag = 0.0
    /// Actors heard from recently.
    public var actorsAlive = 0
    /// Actors in the learner's table, alive or not.
    public var actorsKnown = 0
    /// The teacher that produced the latest targets ("" before the first unroll).
    public var teacherID = ""
    /// The teacher endpoint handed to actors after a swap ("" before any swap).
    public var teacherEndpoint = ""
    /// Messages rejected so far.
    public var rejected: UInt64 = 0
    /// How control commands are authorized: "operator-key", "run-token" or "status-only".
    public var controlAccess = "status-only"
    /// The environment the learner serves (its identity string).
    public var environment = ""
    /// CURVE handshakes refused (keys outside the allow-list).
    public var refusedHandshakes = 0
    /// The checkpoint version this learner resumed from; null for a fresh run.
    @NullWhenAbsent public var resumedFromVersion: UInt64? = nil
    /// Entries in `actors` (at most 100, live ones first).
    public var actorsListed = 0
    /// Hellos refused because the actor table was full.
    public var actorsRefused: UInt64 = 0
    /// Unroll connections open now.
    public var unrollConnections = 0
    /// Unroll connections refused because of the global byte cap.
    public var unrollConnectionsRefused: UInt64 = 0
    /// Largest unroll message accepted, in bytes.
    public var maxUnrollBytes = 0
    /// Cap on the bytes queued unroll connections may make the learner hold.
    public var unrollQueueCapBytes = 0
    /// Up to `actorsListed` actors, live ones first, then by id.
    public var actors: [Actor] = []

    /// One actor as the learner sees it.
    public struct Actor: Codable, Sendable, Hashable {
        /// The actor's id (`--id`).
        public var id: String
        /// Whether the actor was heard from recently.
        public var alive: Bool
        /// The parameter version the actor last reported acting with.
        public var version: UInt64
        /// Environment steps the actor reported.
        public var envSteps: UInt64
        /// Unrolls the actor held back (teacher down, or its queue full).
        public var unrollsWithheld: UInt64
        /// The random nonce of the actor's process, in hexadecimal: it changes when the actor restarts.
        public var runNonce: String

        /// Creates an entry.
        public init(
            id: String, alive: Bool, version: UInt64, envSteps: UInt64, unrollsWithheld: UInt64, runNonce: String
        ) {
            self.id = id
            self.alive = alive
            self.version = version
            self.envSteps = envSteps
            self.unrollsWithheld = unrollsWithheld
            self.runNonce = runNonce
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case id, alive, version
            case envSteps = "env_steps"
            case unrollsWithheld = "unrolls_withheld"
            case runNonce = "run_nonce"
        }
    }

    /// A status with every count zero and nothing known.
    public init() {}

    /// The entry of actor `id`, if it is listed.
    public func actor(_ id: String) -> Actor? { actors.first { $0.id == id } }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case version, updates, rejected, environment, actors, tasks
        case envSteps = "env_steps"
        case stepsPerSecond = "steps_per_second"
        case studentReturn = "student_return"
        case teacherReturn = "teacher_return"
        case klPerEpisode = "kl_per_episode"
        case meanLag = "mean_lag"
        case maxLag = "max_lag"
        case actorsAlive = "actors_alive"
        case actorsKnown = "actors_known"
        case teacherID = "teacher_id"
        case teacherEndpoint = "teacher_endpoint"
        case controlAccess = "control_access"
        case refusedHandshakes = "refused_handshakes"
        case resumedFromVersion = "resumed_from_version"
        case actorsListed = "actors_listed"
        case actorsRefused = "actors_refused"
        case unrollConnections = "unroll_connections"
        case unrollConnectionsRefused = "unroll_connections_refused"
        case maxUnrollBytes = "max_unroll_bytes"
        case unrollQueueCapBytes = "unroll_queue_cap_bytes"
    }
}

/// What a learner leaves in OUT/summary.json when it stops (keys in snake_case).
public struct RunSummary: Codable, Sendable, Hashable {
    /// The update rule (`--method`).
    public var method = ""
    /// The environment (its identity string).
    public var environment = ""
    /// Why the learner stopped: "step limit reached", "SIGTERM", "gave up: …", ….
    public var stoppedBecause = ""
    /// The student's exact expected return at the end; null when it is not finite.
    @NullWhenAbsent public var studentReturn: Double? = nil
    /// The reference teacher's exact expected return; absent without one.
    public var teacherReturn: Double?
    /// `studentReturn / teacherReturn`; absent without a teacher return or when it is 0.
    public var studentToTeacherReturn: Double?
    /// Environment steps learned from, in total (across restarts).
    public var envSteps: UInt64 = 0
    /// Environment steps learned from by this process.
    public var envStepsThisRun: UInt64 = 0
    /// Updates applied in total.
    public var updates: UInt64 = 0
    /// The final parameter version.
    public var version: UInt64 = 0
    /// Seconds this process ran.
    public var wallSeconds = 0.0
    /// `envStepsThisRun / wallSeconds`.
    public var envStepsPerSecond = 0.0
    /// Environment steps per second from the first unroll on (without start-up).
    public var envStepsPerSecondLearning = 0.0
    /// Seconds from the first unroll to the end.
    public var learningSeconds = 0.0
    /// Mean Σ_t KL(π ‖ π_θ) per sampled episode over the run; null without a sample.
    @NullWhenAbsent public var klPerEpisode: Double? = nil
    /// Mean policy lag in updates over the run, weighted by steps.
    public var meanPolicyLag = 0.0
    /// Largest policy lag in updates over the run.
    public var maxPolicyLag = 0.0
    /// The first teacher switches (a bounded list), with the env step each began at.
    public var teachers: [TeacherSwitch] = []
    /// Teacher switches in all.
    public var teacherSwitches = 0
    /// A multi-task run's exact returns per task at the end (absent in other runs).
    public var tasks: [TaskReturn]?
    /// Actors in the learner's table at the end.
    public var actorsSeen = 0
    /// Messages rejected.
    public var messagesRejected: UInt64 = 0
    /// Unroll messages received.
    public var unrollMessages: UInt64 = 0
    /// Mean size of an unroll message in bytes.
    public var unrollBytesMean = 0.0
    /// Seconds the actors' environments spent stepping, summed over the actors' last heartbeats;
    /// null when no actor reported.
    @NullWhenAbsent public var actorObservationSeconds: Double? = nil
    /// Seconds in the actors' student forward passes and teacher waits, summed over their last
    /// heartbeats; null when no actor reported.
    @NullWhenAbsent public var actorInferenceSeconds: Double? = nil
    /// Seconds this learner spent taking unrolls in (decode, checks, updates); null for an older learner.
    @NullWhenAbsent public var learnerUnrollSeconds: Double? = nil
    /// Seconds this learner spent publishing parameters (encode, send); null for an older learner.
    @NullWhenAbsent public var learnerPublishSeconds: Double? = nil
    /// The checkpoint version this learner resumed from; null for a fresh run.
    @NullWhenAbsent public var resumedFromVersion: UInt64? = nil
    /// The final checkpoint: "written: FILE", "failed: REASON" or "none (no --checkpoint-dir)".
    public var finalCheckpoint = ""
    /// The release of the binary (`distill --version`).
    public var distillVersion = ""
    /// `git describe --always --dirty` of the checkout the binary sits in, or "unknown".
    public var gitCommit = ""
    /// The learner's command line.
    public var commandLine: [String] = []
    /// `distill cluster`'s command line, when it started the learner; absent otherwise.
    public var launcherCommandLine: [String]?

    /// Targets began to come from `teacherID` at env step `fromEnvSteps`.
    public struct TeacherSwitch: Codable, Sendable, Hashable {
        /// The environment step of the switch.
        public var fromEnvSteps: UInt64
        /// The teacher switched to.
        public var teacherID: String

        /// Creates a switch.
        public init(fromEnvSteps: UInt64, teacherID: String) {
            self.fromEnvSteps = fromEnvSteps
            self.teacherID = teacherID
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case fromEnvSteps = "from_env_steps"
            case teacherID = "teacher_id"
        }
    }

    /// An empty summary.
    public init() {}

    /// Reads OUT/summary.json.
    ///
    /// - Throws: `RuntimeError` (`.fileAccess` when it cannot be read, `.invalidRecord` when it is
    ///   not a summary).
    public static func read(_ file: URL) throws -> RunSummary {
        let data: Data
        do {
            data = try Data(contentsOf: file)
        } catch {
            throw RuntimeError("cannot read \(file.path): \(error.localizedDescription)", code: .fileAccess)
        }
        return try RecordCoding.decode(RunSummary.self, from: data, what: file.path)
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case method, environment, updates, version, teachers, tasks
        case stoppedBecause = "stopped_because"
        case studentReturn = "student_return"
        case teacherReturn = "teacher_return"
        case studentToTeacherReturn = "student_to_teacher_return"
        case envSteps = "env_steps"
        case envStepsThisRun = "env_steps_this_run"
        case wallSeconds = "wall_seconds"
        case envStepsPerSecond = "env_steps_per_second"
        case envStepsPerSecondLearning = "env_steps_per_second_learning"
        case learningSeconds = "learning_seconds"
        case klPerEpisode = "kl_per_episode"
        case meanPolicyLag = "mean_policy_lag"
        case maxPolicyLag = "max_policy_lag"
        case teacherSwitches = "teacher_switches"
        case actorsSeen = "actors_seen"
        case messagesRejected = "messages_rejected"
        case unrollMessages = "unroll_messages"
        case unrollBytesMean = "unroll_bytes_mean"
        case actorObservationSeconds = "actor_observation_seconds"
        case actorInferenceSeconds = "actor_inference_seconds"
        case learnerUnrollSeconds = "learner_unroll_seconds"
        case learnerPublishSeconds = "learner_publish_seconds"
        case resumedFromVersion = "resumed_from_version"
        case finalCheckpoint = "final_checkpoint"
        case distillVersion = "distill_version"
        case gitCommit = "git_commit"
        case commandLine = "command_line"
        case launcherCommandLine = "launcher_command_line"
    }
}

/// One row of a learner's metrics.csv (one a metrics interval). Non-finite numbers are values
/// not measured yet: an empty CSV cell, a JSON null.
public struct MetricsRow: Codable, Sendable, Hashable {
    /// Seconds since the learner started; in metrics.csv, continued across resumes (a resumed
    /// learner's rows start where the previous life's last row ended).
    public var seconds = 0.0
    /// Environment steps learned from, in total (across restarts).
    public var envSteps: UInt64 = 0
    /// Updates applied in total.
    public var updates: UInt64 = 0
    /// Parameter version.
    public var version: UInt64 = 0
    /// Environment steps per second since the previous row.
    public var stepsPerSecond = 0.0
    /// Exact expected return of the current student (policy evaluation on the MDP).
    public var studentReturn = Double.nan
    /// Exact expected return of the reference teacher.
    public var teacherReturn = Double.nan
    /// Mean over episodes since the previous row of Σ_t KL(π(s_t) ‖ π_θ(s_t)).
    public var klPerEpisode = Double.nan
    /// Mean discounted return of the episodes since the previous row.
    public var episodeReturn = Double.nan
    /// Mean policy lag (learner version − behaviour version), weighted by steps.
    public var meanLag = 0.0
    /// Largest policy lag since the previous row.
    public var maxLag = 0.0
    /// Actors heard from recently.
    public var actorsAlive = 0
    /// The teacher that produced the latest targets.
    public var teacherID = ""
    /// Messages rejected so far.
    public var rejected: UInt64 = 0

    /// A row with nothing measured.
    public init() {}

    /// Creates a row.
    public init(
        seconds: Double, envSteps: UInt64, updates: UInt64, version: UInt64, stepsPerSecond: Double,
        studentReturn: Double, teacherReturn: Double, klPerEpisode: Double, episodeReturn: Double, meanLag: Double,
        maxLag: Double, actorsAlive: Int, teacherID: String, rejected: UInt64
    ) {
        self.seconds = seconds
        self.envSteps = envSteps
        self.updates = updates
        self.version = version
        self.stepsPerSecond = stepsPerSecond
        self.studentReturn = studentReturn
        self.teacherReturn = teacherReturn
        self.klPerEpisode = klPerEpisode
        self.episodeReturn = episodeReturn
        self.meanLag = meanLag
        self.maxLag = maxLag
        self.actorsAlive = actorsAlive
        self.teacherID = teacherID
        self.rejected = rejected
    }

    /// The columns of metrics.csv, in order; also the row's JSON keys.
    public enum CodingKeys: String, CodingKey, CaseIterable, Sendable {
        case seconds
        case envSteps = "env_steps"
        case updates, version
        case stepsPerSecond = "steps_per_second"
        case studentReturn = "student_return"
        case teacherReturn = "teacher_return"
        case klPerEpisode = "kl_per_episode"
        case episodeReturn = "episode_return"
        case meanLag = "mean_lag"
        case maxLag = "max_lag"
        case actorsAlive = "actors_alive"
        case teacherID = "teacher_id"
        case rejected
    }

    /// The CSV header, matching `csvLine`.
    public static let header = CodingKeys.allCases.map(\.rawValue).joined(separator: ",")

    /// The numeric columns as (column name, value), in CSV order (all but `teacher_id`): the
    /// cells of ``csvLine`` as numbers, so that the learner's TensorBoard scalars
    /// (`EventFileWriter`) are what metrics.csv says; an empty cell (not measured) is NaN.
    public var scalars: [(tag: String, value: Double)] {
        zip(CodingKeys.allCases, Self.csvCells(csvLine)).compactMap { key, cell in
            key == .teacherID ? nil : (key.rawValue, cell.isEmpty ? .nan : Double(cell) ?? .nan)
        }
    }

    /// The row as CSV (empty cells for unknown values).
    public var csvLine: String {
        func number(_ value: Double) -> String { value.isFinite ? String(format: "%.6g", value) : "" }
        let teacher =
            teacherID.contains(",") || teacherID.contains("\"")
            ? "\"" + teacherID.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : teacherID
        return [
            String(format: "%.3f", seconds), String(envSteps), String(updates), String(version),
            String(format: "%.1f", stepsPerSecond), number(studentReturn), number(teacherReturn), number(klPerEpisode),
            number(episodeReturn), String(format: "%.3f", meanLag), String(format: "%.0f", maxLag), String(actorsAlive),
            teacher, String(rejected),
        ].joined(separator: ",")
    }

    /// The rows of a metrics.csv's text, read by the column names of its header (so a file with
    /// its columns in another order, or with more columns, still reads).
    ///
    /// - Throws: `RuntimeError` (`.invalidRecord`) naming the line and the column that is wrong.
    public static func rows(csv text: String) throws -> [MetricsRow] {
        let lines = text.split(whereSeparator: \.isNewline).map(String.init)
        guard let first = lines.first else { return [] }
        let header = csvCells(first)
        var column: [CodingKeys: Int] = [:]
        for key in CodingKeys.allCases {
            guard let index = header.firstIndex(of: key.rawValue) else {
                throw RuntimeError(
                    "metrics.csv has no column '\(key.rawValue)'; its header: \(first)", code: .invalidRecord)
            }
            column[key] = index
        }
        return try lines.dropFirst().enumerated().map { offset, line in
            let cells = csvCells(line)
            func cell(_ key: CodingKeys) throws -> String {
                let index = column[key]!
                guard index < cells.count else {
                    throw RuntimeError(
                        "metrics.csv line \(offset + 2) has \(cells.count) cells, no '\(key.rawValue)'",
                        code: .invalidRecord)
                }
                return cells[index]
            }
            func parsed<T: LosslessStringConvertible>(_ key: CodingKeys, _: T.Type = T.self) throws -> T {
                let text = try cell(key)
                guard let value = T(text) else {
                    throw RuntimeError(
                        "metrics.csv line \(offset + 2): '\(key.rawValue)' is '\(text)', not a \(T.self)",
                        code: .invalidRecord)
                }
                return value
            }
            func measured(_ key: CodingKeys) throws -> Double {
                try cell(key).isEmpty ? .nan : parsed(key)
            }
            return MetricsRow(
                seconds: try parsed(.seconds), envSteps: try parsed(.envSteps), updates: try parsed(.updates),
                version: try parsed(.version), stepsPerSecond: try parsed(.stepsPerSecond),
                studentReturn: try measured(.studentReturn), teacherReturn: try measured(.teacherReturn),
                klPerEpisode: try measured(.klPerEpisode), episodeReturn: try measured(.episodeReturn),
                meanLag: try parsed(.meanLag), maxLag: try parsed(.maxLag), actorsAlive: try parsed(.actorsAlive),
                teacherID: try cell(.teacherID), rejected: try parsed(.rejected))
        }
    }

    /// The cells of one CSV line; a cell in double quotes may hold commas and doubled quotes.
    static func csvCells(_ line: String) -> [String] {
        var cells: [String] = []
        var cell = ""
        var quoted = false
        var characters = line.makeIterator()
        while let character = characters.next() {
            switch (character, quoted) {
            case ("\"", false) where cell.isEmpty: quoted = true
            case ("\"", true):
                // A doubled quote inside quotes is one quote; a single one ends the quoted cell.
                var lookahead = characters
                if lookahead.next() == "\"" {
                    cell.append("\"")
                    characters = lookahead
                } else {
                    quoted = false
                }
            case (",", false):
                cells.append(cell)
                cell = ""
            default: cell.append(character)
            }
        }
        cells.append(cell)
        return cells
    }

    /// Reads a row; a missing or null measured value is NaN, as an empty CSV cell is.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func measured(_ key: CodingKeys) throws -> Double {
            try container.decodeIfPresent(Double.self, forKey: key) ?? .nan
        }
        self.init(
            seconds: try container.decode(Double.self, forKey: .seconds),
            envSteps: try container.decode(UInt64.self, forKey: .envSteps),
            updates: try container.decode(UInt64.self, forKey: .updates),
            version: try container.decode(UInt64.self, forKey: .version),
            stepsPerSecond: try container.decode(Double.self, forKey: .stepsPerSecond),
            studentReturn: try measured(.studentReturn), teacherReturn: try measured(.teacherReturn),
            klPerEpisode: try measured(.klPerEpisode), episodeReturn: try measured(.episodeReturn),
            meanLag: try container.decode(Double.self, forKey: .meanLag),
            maxLag: try container.decode(Double.self, forKey: .maxLag),
            actorsAlive: try container.decode(Int.self, forKey: .actorsAlive),
            teacherID: try container.decode(String.self, forKey: .teacherID),
            rejected: try container.decode(UInt64.self, forKey: .rejected))
    }

    /// Writes the row's columns as keys; NaN (not measured yet) as null.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        // Not measured yet is null, as it is an empty cell in the CSV: JSON has no NaN.
        func measured(_ value: Double, _ key: CodingKeys) throws {
            try container.encode(value.isFinite ? value : nil, forKey: key)
        }
        try container.encode(seconds, forKey: .seconds)
        try container.encode(envSteps, forKey: .envSteps)
        try container.encode(updates, forKey: .updates)
        try container.encode(version, forKey: .version)
        try container.encode(stepsPerSecond, forKey: .stepsPerSecond)
        try measured(studentReturn, .studentReturn)
        try measured(teacherReturn, .teacherReturn)
        try measured(klPerEpisode, .klPerEpisode)
        try measured(episodeReturn, .episodeReturn)
        try container.encode(meanLag, forKey: .meanLag)
        try container.encode(maxLag, forKey: .maxLag)
        try container.encode(actorsAlive, forKey: .actorsAlive)
        try container.encode(teacherID, forKey: .teacherID)
        try container.encode(rejected, forKey: .rejected)
    }
}

/// A record field that is always written, as JSON null when it has no value (a reader's
/// `status["student_return"]` then finds null, not a missing key); a missing key reads as nil.
@propertyWrapper
public struct NullWhenAbsent<Value: Codable & Sendable & Hashable>: Codable, Sendable, Hashable {
    /// The value, or nil for null.
    public var wrappedValue: Value?

    /// Wraps a value.
    public init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }

    /// Reads a value or null.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        wrappedValue = container.decodeNil() ? nil : try container.decode(Value.self)
    }

    /// Writes the value, or null without one.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue { try container.encode(wrappedValue) } else { try container.encodeNil() }
    }
}

extension KeyedDecodingContainer {
    /// A `NullWhenAbsent` field whose key is missing reads as nil (synthesised decoding calls this).
    func decode<Value>(_ type: NullWhenAbsent<Value>.Type, forKey key: Key) throws -> NullWhenAbsent<Value> {
        try decodeIfPresent(type, forKey: key) ?? NullWhenAbsent(wrappedValue: nil)
    }
}

/// How records are written and read: snake_case keys in sorted order, and decoding errors that
/// say which key was wrong.
public enum RecordCoding {
    /// Encodes a record as JSON (`pretty` for files a person reads, like summary.json).
    ///
    /// Non-finite numbers cannot be written as JSON numbers: the records hold them as nil (null);
    /// a non-finite number that slips through is written as a string ("NaN") rather than losing
    /// the whole record.
    public static func encode(_ record: some Encodable, pretty: Bool = false) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys] : [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return try encoder.encode(record)
    }

    /// Decodes a record; `what` names it in the error ("the learner's status", a file's path).
    ///
    /// - Throws: `RuntimeError` with code `.invalidRecord` naming the key that is missing or wrong.
    public static func decode<Record: Decodable>(_ type: Record.Type, from data: Data, what: String) throws -> Record {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        do {
            return try decoder.decode(type, from: data)
        } catch let error as DecodingError {
            throw RuntimeError(
                "\(what) is not a \(Record.self) (docs/file-formats.md): \(explain(error))", code: .invalidRecord)
        } catch {
            throw RuntimeError("\(what) is not a \(Record.self): \(error)", code: .invalidRecord)
        }
    }

    /// A decoding error in a sentence that names the key path.
    static func explain(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return keys.isEmpty ? "the top level" : String(keys.drop { $0 == "." })
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = context.codingPath.isEmpty ? "" : " in \(path(context))"
            return "the key '\(key.stringValue)' is missing\(parent)"
        case .typeMismatch(let type, let context):
            return "'\(path(context))' is not \(article(type))"
        case .valueNotFound(let type, let context):
            return "'\(path(context))' is null, expected \(article(type))"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty
                ? "it is not JSON (\(context.debugDescription))"
                : "'\(path(context))' has a value out of range or of the wrong kind"
        @unknown default:
            return "\(error)"
        }
    }

    private static func article(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is UInt64.Type, is Int.Type: "a whole number"
        case is Double.Type: "a number"
        default: "a \(type)"
        }
    }
}

extension Double {
    /// The number, or nil when it is not finite (a record's null: JSON has no NaN or infinity).
    var finiteOrNil: Double? { isFinite ? self : nil }
}
