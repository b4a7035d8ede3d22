import DistillRuntime
import DistillTestSupport
import DistillWire
import Foundation
import Testing

/// Issue 10, item 3: the status, summary and metrics records have one definition each
/// (Records.swift), and docs/schemas/*.schema.json describes exactly what they emit: every key a
/// record writes is documented with its type, and every key the schema requires is written.
@Suite("Typed records and their documented schemas")
struct RecordSchemaTests {
    static let schemas = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/schemas")

    /// A JSON value, read strictly: a whole number is an integer, true is not a number.
    indirect enum JSON: Codable, Equatable {
        case null, bool(Bool), integer(Int64), number(Double), string(String), array([JSON]), object([String: JSON])

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .null
            } else if let value = try? container.decode(Bool.self) {
                self = .bool(value)
            } else if let value = try? container.decode(Int64.self) {
                self = .integer(value)
            } else if let value = try? container.decode(Double.self) {
                self = .number(value)
            } else if let value = try? container.decode(String.self) {
                self = .string(value)
            } else if let value = try? container.decode([JSON].self) {
                self = .array(value)
            } else {
                self = .object(try container.decode([String: JSON].self))
            }
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .null: try container.encodeNil()
            case .bool(let value): try container.encode(value)
            case .integer(let value): try container.encode(value)
            case .number(let value): try container.encode(value)
            case .string(let value): try container.encode(value)
            case .array(let value): try container.encode(value)
            case .object(let value): try container.encode(value)
            }
        }

        /// The JSON Schema type name of this value.
        var kind: String {
            switch self {
            case .null: "null"
            case .bool: "boolean"
            case .integer: "integer"
            case .number: "number"
            case .string: "string"
            case .array: "array"
            case .object: "object"
            }
        }

        subscript(_ key: String) -> JSON? {
            if case .object(let fields) = self { fields[key] } else { nil }
        }

        var strings: [String] {
            if case .array(let items) = self {
                items.compactMap { if case .string(let s) = $0 { s } else { nil } }
            } else if case .string(let s) = self {
                [s]
            } else {
                []
            }
        }
    }

    static func schema(_ name: String) throws -> JSON {
        try JSONDecoder().decode(JSON.self, from: Data(contentsOf: schemas.appendingPathComponent(name)))
    }

    static func json(_ record: some Encodable) throws -> JSON {
        try JSONDecoder().decode(JSON.self, from: RecordCoding.encode(record))
    }

    /// Where `value` disagrees with `schema`: keys emitted but not documented, required keys not
    /// emitted, values of another type than documented, strings outside an enum.
    static func problems(_ value: JSON, _ schema: JSON, at path: String = "") -> [String] {
        let types = schema["type"]?.strings ?? []
        let kind = value.kind
        guard types.contains(kind) || (kind == "integer" && types.contains("number")) else {
            return ["\(path.isEmpty ? "the record" : path) is \(kind), documented as \(types)"]
        }
        if let allowed = schema["enum"]?.strings, case .string(let text) = value, !allowed.contains(text) {
            return ["\(path) is '\(text)', documented as one of \(allowed)"]
        }
        switch value {
        case .object(let fields):
            func child(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
            var found: [String] = []
            for (key, field) in fields.sorted(by: { $0.key < $1.key }) {
                guard let documented = schema["properties"]?[key] else {
                    found.append("\(child(key)) is emitted but not in the schema")
                    continue
                }
                found += problems(field, documented, at: child(key))
            }
            for key in schema["required"]?.strings ?? [] where fields[key] == nil {
                found.append("\(child(key)) is required by the schema but not emitted")
            }
            return found
        case .array(let items):
            guard let itemSchema = schema["items"] else { return [] }
            return items.enumerated().flatMap { problems($1, itemSchema, at: "\(path)[\($0)]") }
        default:
            return []
        }
    }

    /// Every key of the schema that `value` does not emit.
    static func undocumentedAbsences(_ value: JSON, _ schema: JSON) -> [String] {
        guard case .object(let properties) = schema["properties"] ?? .null else { return [] }
        return properties.keys.filter { value[$0] == nil }.sorted()
    }

    static var populatedStatus: LearnerStatus {
        var status = LearnerStatus()
        (status.version, status.envSteps, status.updates, status.stepsPerSecond) = (7, 4000, 7, 1234.5)
        (status.studentReturn, status.teacherReturn, status.klPerEpisode) = (0.5, 0.9, 1.25)
        (status.meanLag, status.maxLag, status.actorsAlive, status.actorsKnown) = (1.5, 3, 1, 2)
        (status.teacherID, status.teacherEndpoint, status.rejected) = ("optimal", "tcp://127.0.0.1:5556", 3)
        (status.controlAccess, status.environment, status.refusedHandshakes) = ("run-token", "gridworld", 1)
        (status.resumedFromVersion, status.actorsListed, status.actorsRefused) = (5, 2, 0)
        (status.unrollConnections, status.unrollConnectionsRefused) = (1, 0)
        (status.maxUnrollBytes, status.unrollQueueCapBytes) = (65536, 1 << 20)
        status.actors = [
            .init(id: "actor-0", alive: true, version: 7, envSteps: 4000, unrollsWithheld: 0, runNonce: "1f"),
            .init(id: "actor-1", alive: false, version: 2, envSteps: 10, unrollsWithheld: 3, runNonce: "a0"),
        ]
        status.tasks = populatedTasks
        return status
    }

    /// A multi-task run's returns per task, the second with a student return not yet known.
    static let populatedTasks = [
        TaskReturn(
            task: 0, environment: "gridworld(seed=1)", teacher: "task 0: optimal", studentReturn: 0.75,
            teacherReturn: 0.8, uniformReturn: 0.1),
        TaskReturn(
            task: 1, environment: "gridworld(seed=2)", teacher: "task 1: optimal", studentReturn: .nan,
            teacherReturn: 0.5, uniformReturn: 0.5),
    ]

    static var populatedSummary: RunSummary {
        var summary = RunSummary()
        (summary.method, summary.environment, summary.stoppedBecause) = ("n-distill+R", "gridworld", "SIGTERM")
        (summary.studentReturn, summary.teacherReturn, summary.studentToTeacherReturn) = (0.5, 1, 0.5)
        (summary.envSteps, summary.envStepsThisRun, summary.updates, summary.version) = (9000, 4000, 90, 90)
        (summary.wallSeconds, summary.envStepsPerSecond) = (2.5, 1600)
        (summary.envStepsPerSecondLearning, summary.learningSeconds) = (2000, 2)
        (summary.klPerEpisode, summary.meanPolicyLag, summary.maxPolicyLag) = (0.1, 1.5, 4)
        summary.teachers = [.init(fromEnvSteps: 0, teacherID: "optimal"), .init(fromEnvSteps: 500, teacherID: "u")]
        (summary.teacherSwitches, summary.actorsSeen, summary.messagesRejected) = (2, 2, 1)
        (summary.unrollMessages, summary.unrollBytesMean, summary.resumedFromVersion) = (40, 2048.5, 12)
        (summary.actorObservationSeconds, summary.actorInferenceSeconds) = (0.75, 1.25)
        (summary.learnerUnrollSeconds, summary.learnerPublishSeconds) = (0.5, 0.125)
        (summary.finalCheckpoint, summary.distillVersion, summary.gitCommit) = ("written: c", "0.1.0", "abc")
        summary.commandLine = ["distill", "learner"]
        summary.launcherCommandLine = ["distill", "cluster"]
        summary.tasks = populatedTasks
        return summary
    }

    static let populatedRow = MetricsRow(
        seconds: 1.5, envSteps: 4000, updates: 7, version: 7, stepsPerSecond: 2666.5, studentReturn: 0.5,
        teacherReturn: 0.9, klPerEpisode: 1.25, episodeReturn: 0.25, meanLag: 1.5, maxLag: 3, actorsAlive: 2,
        teacherID: "optimal", rejected: 1)

    @Test func theStatusEmitsExactlyItsDocumentedKeysWhetherKnownOrNot() throws {
        let schema = try Self.schema("learner-status.schema.json")
        let populated = try Self.json(Self.populatedStatus)
        #expect(Self.problems(populated, schema) == [])
        #expect(Self.undocumentedAbsences(populated, schema) == [], "a documented key no record emits")
        // Unknown values are null, and still there: lab scripts read status["student_return"].
        let empty = try Self.json(LearnerStatus())
        #expect(Self.problems(empty, schema) == [])
        #expect(empty["student_return"] == .null && empty["resumed_from_version"] == .null)
    }

    @Test func theSummaryEmitsExactlyItsDocumentedKeysWhetherKnownOrNot() throws {
        let schema = try Self.schema("run-summary.schema.json")
        let populated = try Self.json(Self.populatedSummary)
        #expect(Self.problems(populated, schema) == [])
        #expect(Self.undocumentedAbsences(populated, schema) == [], "a documented key no record emits")
        let empty = try Self.json(RunSummary())
        #expect(Self.problems(empty, schema) == [])
        #expect(empty["teacher_return"] == nil && empty["student_return"] == .null)
    }

    @Test func metricsRowsAreTheDocumentedColumnsInTheDocumentedOrder() throws {
        let schema = try Self.schema("metrics-row.schema.json")
        #expect(MetricsRow.header.split(separator: ",").map(String.init) == schema["x-csv-columns"]?.strings)
        let populated = try Self.json(Self.populatedRow)
        #expect(Self.problems(populated, schema) == [])
        #expect(Self.undocumentedAbsences(populated, schema) == [])
        #expect(Self.problems(try Self.json(MetricsRow()), schema) == [], "not measured yet is null")
    }

    @Test func recordsReadBackAsTheyWereWritten() throws {
        let status = Self.populatedStatus
        #expect(
            try RecordCoding.decode(LearnerStatus.self, from: RecordCoding.encode(status), what: "status") == status)
        let summary = Self.populatedSummary
        #expect(
            try RecordCoding.decode(RunSummary.self, from: RecordCoding.encode(summary, pretty: true), what: "s")
                == summary)
        #expect(
            try RecordCoding.decode(MetricsRow.self, from: RecordCoding.encode(Self.populatedRow), what: "r")
                == Self.populatedRow)
        // The summary's layout lab scripts grep for ("key" : value).
        let text = String(decoding: try RecordCoding.encode(summary, pretty: true), as: UTF8.self)
        #expect(text.contains(#""stopped_because" : "SIGTERM""#), "\(text)")
    }

    @Test func metricsCSVReadsBackIncludingQuotedTeachersAndEmptyCells() throws {
        var row = Self.populatedRow
        row.teacherID = #"a "quoted", teacher"#
        var unmeasured = MetricsRow()
        unmeasured.seconds = 2
        let text = [MetricsRow.header, row.csvLine, unmeasured.csvLine].joined(separator: "\n") + "\n"
        let rows = try MetricsRow.rows(csv: text)
        #expect(rows.count == 2)
        #expect(rows.first == row)
        #expect(rows.last?.studentReturn.isNaN == true && rows.last?.seconds == 2)
        let broken = try #require(throws: RuntimeError.self) {
            try MetricsRow.rows(csv: MetricsRow.header + "\n1.0,x,2\n")
        }
        #expect(broken.code == .invalidRecord && broken.description.contains("env_steps"), "\(broken)")
        let missing = try #require(throws: RuntimeError.self) { try MetricsRow.rows(csv: "seconds,version\n1,2\n") }
        #expect(missing.description.contains("no column 'env_steps'"), "\(missing)")
    }

    @Test func aRecordThatDoesNotDecodeIsAnErrorNamingTheKey() throws {
        func error(_ text: String) -> RuntimeError? {
            do {
                _ = try RecordCoding.decode(LearnerStatus.self, from: Data(text.utf8), what: "the answer")
                return nil
            } catch {
                return error as? RuntimeError
            }
        }
        guard case .object(var fields) = try Self.json(Self.populatedStatus) else { return }
        fields["version"] = nil
        let withoutVersion = String(decoding: try JSONEncoder().encode(JSON.object(fields)), as: UTF8.self)
        #expect(error(withoutVersion)?.description.contains("the key 'version' is missing") == true)
        #expect(error(withoutVersion)?.code == .invalidRecord)
        // A value that may be null may also be missing (a reader of an older writer): it reads as nil.
        fields["version"] = .integer(7)
        fields["student_return"] = nil
        let withoutReturn = try JSONEncoder().encode(JSON.object(fields))
        #expect(try RecordCoding.decode(LearnerStatus.self, from: withoutReturn, what: "s").studentReturn == nil)
        #expect(error(#"{"version": "seven"}"#)?.description.contains("'version' is not a whole number") == true)
        #expect(error("no JSON at all")?.description.contains("is not JSON") == true)
        let actor = error(
            String(decoding: try RecordCoding.encode(Self.populatedStatus), as: UTF8.self)
                .replacingOccurrences(of: #""alive":true"#, with: #""alive":"yes""#))
        #expect(
            actor?.description.contains("'actors[0].alive' is not true or false") == true,
            "\(String(describing: actor))")
    }

    /// `ControlClient.status` against a fake learner whose answer is not a status: a clear error
    /// with the code `.invalidRecord`, no crash and no empty status.
    @Test func aStatusAnswerThatIsNotAStatusIsAnErrorNotAnEmptyStatus() async throws {
        let answers = ["{}", "[1, 2]", String(decoding: try RecordCoding.encode(Self.populatedStatus), as: UTF8.self)]
        let ready = DispatchSemaphore(value: 0)
        let bound = Bound()
        let learner = Thread {
            guard let sockets = try? SocketFactory(), let router = try? sockets.open(.router),
                let endpoint = try? sockets.bind(router, "tcp://127.0.0.1:*", purpose: "fake control")
            else {
                ready.signal()
                return
            }
            defer { router.close() }
            bound.set(endpoint)
            ready.signal()
            let codec = WireCodec()
            for answer in answers {
                guard let frames = try? router.receive(), frames.count == 2,
                    case .control(let request)? = try? codec.decode(frames[1]).message
                else { return }
                let reply = Control(command: .status, accepted: true, statusJSON: answer, requestID: request.requestID)
                let envelope = Envelope(sender: .starting(role: .learner, id: "fake"), message: .control(reply))
                _ = try? router.send([frames[0], codec.encode(envelope)])
            }
        }
        learner.start()
        ready.wait()
        let endpoint = try #require(bound.get())
        let outcomes = try await onOwnThread { () -> [String] in
            let client = try ControlClient(learner: endpoint, sender: .starting(role: .tool, id: "test"))
            return answers.map { _ in
                do {
                    return "status version \(try client.status(timeoutMilliseconds: 5000).version)"
                } catch let error as RuntimeError {
                    return "\(error.code): \(error.description)"
                } catch {
                    return "\(error)"
                }
            }
        }
        #expect(outcomes.count == 3)
        #expect(outcomes[0].hasPrefix("invalid-record: ") && outcomes[0].contains("is missing"), "\(outcomes)")
        #expect(outcomes[1].hasPrefix("invalid-record: ") && outcomes[1].contains(endpoint), "\(outcomes)")
        #expect(outcomes[2] == "status version 7", "\(outcomes)")
    }

    /// The fake learner's endpoint, handed from its thread to the test.
    final class Bound: @unchecked Sendable {
        private let lock = NSLock()
        private var endpoint: String?
        func set(_ value: String) { lock.withLock { endpoint = value } }
        func get() -> String? { lock.withLock { endpoint } }
    }
}
