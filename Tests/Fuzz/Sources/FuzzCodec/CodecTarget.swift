import DistillWire
import FuzzSupport

/// `WireCodec.decode` of arbitrary bytes, every message kind. Properties:
/// - decoding never crashes, hangs or leaks (libFuzzer with AddressSanitizer; the codec's own
///   count of C allocations it did not free, `WireCodec.leakedAllocations`, stays 0);
/// - a rejection has a message, and the rejection log accepts it;
/// - a decoded envelope re-encodes to bytes that decode to an equal envelope, and encoding that
///   envelope again gives the same bytes (the encoding is canonical);
/// - `decode(_:expecting:)` accepts the envelope for its own kind and refuses it, as
///   `unexpectedType`, for every other kind;
/// - a codec whose limit is one byte below the input refuses it as `tooLarge`.
enum CodecTarget {
    static let name = "fuzz-codec"

    static func test(_ bytes: [UInt8]) -> CInt {
        let codec = WireCodec()
        let envelope: Envelope
        do {
            envelope = try codec.decode(bytes)
        } catch {
            if error.message.isEmpty { FuzzDriver.violated(name, "a rejection (\(error.code)) without a message") }
            var log = RejectionLog(burst: 1)
            _ = log.record(error, from: "fuzz")
            checkNoLeak()
            return 0
        }
        let kind = envelope.message.kind
        let encoded = codec.encode(envelope)
        let again: Envelope
        do {
            again = try codec.decode(encoded)
        } catch {
            FuzzDriver.violated(name, "a decoded \(kind.rawValue) re-encodes to bytes that do not decode: \(error)")
        }
        guard again == envelope else {
            FuzzDriver.violated(
                name, "a decoded \(kind.rawValue) changes in a round trip:\n  first:  \(envelope)\n  second: \(again)")
        }
        guard codec.encode(again) == encoded else {
            FuzzDriver.violated(name, "encoding a decoded \(kind.rawValue) twice gives different bytes")
        }
        do {
            _ = try codec.decode(bytes, expecting: [kind])
        } catch {
            FuzzDriver.violated(name, "decode(expecting: [\(kind.rawValue)]) refuses a \(kind.rawValue): \(error)")
        }
        let others = Set(MessageKind.allCases).subtracting([kind])
        do {
            _ = try codec.decode(bytes, expecting: others)
            FuzzDriver.violated(name, "decode(expecting:) accepted a \(kind.rawValue) where it was not expected")
        } catch {
            guard error.code == .unexpectedType else {
                FuzzDriver.violated(name, "a \(kind.rawValue) where it was not expected gave \(error)")
            }
        }
        if bytes.count > 1 {
            do {
                _ = try WireCodec(maxMessageBytes: bytes.count - 1).decode(bytes)
                FuzzDriver.violated(name, "a codec limited to \(bytes.count - 1) bytes decoded \(bytes.count)")
            } catch {
                guard error.code == .tooLarge else {
                    FuzzDriver.violated(name, "an oversized message gave \(error), not tooLarge")
                }
            }
        }
        checkNoLeak()
        return 0
    }

    static func checkNoLeak() {
        let leaked = WireCodec.leakedAllocations
        if leaked != 0 { FuzzDriver.violated(name, "WireCodec leaked \(leaked) C allocations") }
    }

    /// One valid envelope of every kind, plus edge cases.
    static func seeds() throws -> [Seed] {
        let codec = WireCodec()
        let actor = Sender(role: .actor, id: "actor-0", runNonce: 0x1234_5678_9abc_def0)
        let learner = Sender(role: .learner, id: "learner", runNonce: 7)
        let teacher = Sender(role: .teacher, id: "teacher:optimal", runNonce: UInt64.max)
        let control = Sender(role: .control, id: "control é", runNonce: 1)
        let problem = FuzzProblem.shared
        let unroll = try problem.unroll(episodes: 2, sequence: 1, parameterVersion: 3, seed: 1)
        let table = Tensor(shape: [2, 3], values: [0.5, 0.25, 0.25, 0, 1, 0])
        let parameters = Parameters(
            version: 9, values: Tensor(shape: [2, 3], values: [0, 1, -2, 3.5, 1e3, -1e-3]), envSteps: 99)
        let messages: [(String, Sender, Message)] = [
            ("teacher-query-states", actor, .teacherQuery(TeacherQuery(queryID: 5, stateIDs: [0, 3, 24]))),
            (
                "teacher-query-features", actor,
                .teacherQuery(TeacherQuery(queryID: 6, features: Tensor(shape: [2, 2], values: [1, 2, 3, 4])))
            ),
            (
                "teacher-reply", teacher,
                .teacherReply(
                    TeacherReply(
                        queryID: 5, teacherID: "optimal", teacherVersion: 2, probabilities: table, values: [1.5, -2],
                        qValues: Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]), cacheable: true))
            ),
            (
                "teacher-reply-no-q", teacher,
                .teacherReply(
                    TeacherReply(
                        queryID: 5, teacherID: "t", teacherVersion: 0, probabilities: table, values: [0, 0],
                        cacheable: false))
            ),
            ("unroll", actor, .unroll(unroll)),
            ("parameters", learner, .parameters(parameters)),
            (
                "hello", actor,
                .hello(
                    Hello(
                        environment: "gridworld(seed=4,5x5)", stateCount: 26, actionCount: 4,
                        teacherEndpoint: "tcp://127.0.0.1:5555"))
            ),
            (
                "heartbeat", actor,
                .heartbeat(
                    Heartbeat(sequence: 3, envSteps: 1000, parameterVersion: 2, unrollsWithheld: 1, messagesRejected: 4)
                )
            ),
            ("get-params", actor, .getParams(GetParams(haveVersion: 0))),
            ("control-stop", control, .control(Control(command: .stop, requestID: 1))),
            (
                "control-swap", control,
                .control(Control(command: .swapTeacher, teacherEndpoint: "tcp://host:5556", requestID: 2))
            ),
            ("control-set-lambda", control, .control(Control(command: .setLambda, lambdas: [0.5, 2], requestID: 3))),
            (
                "control-status-reply", learner,
                .control(
                    Control(command: .status, accepted: true, statusJSON: #"{"version":3,"actors":[]}"#, requestID: 4))
            ),
            ("error", learner, .error(ErrorReply(code: .incompatible, message: "wrong environment", inReplyTo: 8))),
            (
                "checkpoint", learner,
                .checkpoint(
                    Checkpoint(
                        version: 4, shape: [2, 2], parameters: [0.5, -1, 2, 0],
                        optimiserState: [0, 0, 0, 0, 1, 1, 1, 1],
                        optimiserSteps: 4, critic: [1, 2], envSteps: 400, updates: 4, rngState: [1, 2, 3, 4],
                        configurationJSON: #"{"seed":4}"#, createdUnixMilliseconds: 1_700_000_000_000))
            ),
            (
                "welcome", learner,
                .welcome(
                    Welcome(
                        unrollPort: 5557, parametersPort: 5558, teacherEndpoint: "", parameters: parameters,
                        actorSettingsJSON: #"{"beta":0.5}"#))
            ),
            ("unroll-ack", learner, .unrollAck(UnrollAck(sequence: 12, parameterVersion: 13))),
        ]
        var seeds = messages.map { Seed($0.0, codec.encode(Envelope(sender: $0.1, message: $0.2))) }
        // Edge cases: nothing, one byte, an envelope without a body, a long sender id.
        seeds.append(Seed("empty", []))
        seeds.append(Seed("one-byte", [0x08]))
        let long = Sender(role: .tool, id: String(repeating: "x", count: 128), runNonce: 2)
        seeds.append(
            Seed("long-id-heartbeat", codec.encode(Envelope(sender: long, message: .heartbeat(Heartbeat(sequence: 1)))))
        )
        return seeds
    }
}
