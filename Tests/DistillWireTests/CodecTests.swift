import DistillWire
import Testing

@Suite("Wire codec")
struct CodecTests {
    let codec = WireCodec()

    @Test("every message type round-trips field for field", arguments: Fixtures.envelopes)
    func roundTripsFieldForField(envelope: Envelope) throws {
        let decoded = try codec.decode(codec.encode(envelope))
        #expect(decoded == envelope)
    }

    @Test func everyMessageKindHasAFixture() {
        #expect(Set(Fixtures.messages.map(\.kind)) == Set(MessageKind.allCases))
    }

    @Test func parameterChecksumIsFNV1aOfLittleEndianBytes() {
        // FNV-1a 64 of the 4 bytes 00 00 80 3f (1.0f), computed by hand from the definition.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte: UInt8 in [0x00, 0x00, 0x80, 0x3f] { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        #expect(Checksum.fnv1a64([1.0]) == hash)
        #expect(Checksum.fnv1a64([]) == 0xcbf2_9ce4_8422_2325)
    }

    @Test func randomBytesAreRejectedAsMalformed() {
        var generator = SplitMix(seed: 1)
        var rejected = 0
        for length in 1...200 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            do {
                _ = try codec.decode(bytes)
            } catch {
                rejected += 1
                #expect(!error.message.isEmpty)
            }
        }
        #expect(rejected == 200)
    }

    @Test func emptyMessageIsRejected() {
        #expect(throws: DecodingError.self) { try codec.decode([]) }
    }

    @Test(
        "every truncation of a valid message is rejected or decodes to a valid message", arguments: Fixtures.envelopes)
    func truncationIsRejected(envelope: Envelope) {
        let bytes = codec.encode(envelope)
        var rejected = 0
        for length in 0..<bytes.count {
            // A cut at a field boundary is valid protobuf with fields missing: the validation
            // must still either reject it or produce a message that passes every check.
            if let decoded = try? codec.decode(Array(bytes.prefix(length))) {
                #expect(decoded != envelope)
                #expect((try? codec.decode(codec.encode(decoded))) == decoded)
            } else {
                rejected += 1
            }
        }
        #expect(rejected * 2 > bytes.count, "most cuts land inside a field and must be rejected")
    }

    @Test func wrongMessageTypeNamesBothTypes() throws {
        let bytes = codec.encode(Envelope(sender: Fixtures.sender, message: .heartbeat(Heartbeat(sequence: 1))))
        let error = try #require(throws: DecodingError.self) { try codec.decode(bytes, expecting: [.unroll]) }
        #expect(error.code == .unexpectedType)
        #expect(error.message.contains("expected Unroll, got Heartbeat"))
    }

    @Test func messageOverTheMaximumSizeIsRejected() throws {
        let small = WireCodec(maxMessageBytes: 1024)
        let big = Envelope(
            sender: Fixtures.sender,
            message: .parameters(
                Parameters(
                    version: 1, values: Tensor(shape: [1000], values: Array(repeating: 1, count: 1000)), envSteps: 0)))
        let error = try #require(throws: DecodingError.self) { try small.decode(codec.encode(big)) }
        #expect(error.code == .tooLarge)
        #expect(error.message.contains("exceeds the maximum of 1024 bytes"))
    }

    @Test("NaN and infinite floats are rejected, naming the field", arguments: [Float.nan, .infinity, -.infinity])
    func nonFiniteFloatsAreRejected(bad: Float) throws {
        var unroll = Fixtures.unroll
        unroll.rewards[1] = bad
        let error = try #require(throws: DecodingError.self) {
            try codec.decode(codec.encode(Envelope(sender: Fixtures.sender, message: .unroll(unroll))))
        }
        #expect(error.code == .invalidField)
        #expect(error.message.contains("Unroll.rewards[1]"))

        let raw = RawProtobuf.envelope(bodyField: 13, body: .parameters(shape: [2], values: [1, bad]))
        let rawError = try #require(throws: DecodingError.self) { try codec.decode(raw) }
        #expect(rawError.message.contains("Parameters.values.values[1]"))
    }

    @Test func shapeThatDoesNotMatchTheDataIsRejected() throws {
        let raw = RawProtobuf.envelope(bodyField: 13, body: .parameters(shape: [3, 2], values: [1, 2, 3, 4, 5]))
        let error = try #require(throws: DecodingError.self) { try codec.decode(raw) }
        #expect(error.code == .invalidField)
        #expect(error.message.contains("shape [3, 2] but 5 values"))
    }

    /// Found by fuzz-codec (docs/fuzzing.md): a TeacherReply whose q_values had shape [0, 3] and no
    /// values decoded with that shape, and its re-encoding (absent) decoded as `Tensor.empty`.
    @Test func tensorOfNoValuesDecodesAsAbsentAndRoundTrips() throws {
        var tensor = RawProtobuf()
        _ = tensor.packedUInts(1, [0, 3])
        _ = tensor.packedFloats(2, [])
        var body = RawProtobuf()
        _ = body.uint(1, 3)
        _ = body.message(2, tensor)
        _ = body.fixed64(3, Checksum.fnv1a64([]))
        let envelope = try codec.decode(RawProtobuf.envelope(bodyField: 13, body: body))
        guard case .parameters(let parameters) = envelope.message else {
            Issue.record("expected Parameters, got \(envelope.message.kind)")
            return
        }
        #expect(parameters.values == .empty)
        #expect(try codec.decode(codec.encode(envelope)) == envelope)
    }

    /// Found by reading what fuzz-checkpoint reaches (docs/fuzzing.md): `LearnerState.restore(from:)`
    /// converts these counters to Int, which trapped on a corrupt checkpoint at learner start.
    @Test("checkpoint counters beyond Int.max are rejected", arguments: [true, false])
    func checkpointCountersBeyondIntMaxAreRejected(steps: Bool) throws {
        var checkpoint = Checkpoint(
            version: 1, shape: [1], parameters: [0], envSteps: .max, updates: 1, configurationJSON: "{}",
            createdUnixMilliseconds: 0)
        if steps { checkpoint.optimiserSteps = UInt64(Int.max) + 1 } else { checkpoint.updates = .max }
        let error = try #require(throws: DecodingError.self) {
            try codec.decode(codec.encode(Envelope(sender: Fixtures.sender, message: .checkpoint(checkpoint))))
        }
        #expect(error.code == .invalidField)
        #expect(error.message.contains("the file is corrupt"))
        checkpoint.optimiserSteps = UInt64(Int.max)
        checkpoint.updates = UInt64(Int.max)
        #expect(throws: Never.self) {
            try codec.decode(codec.encode(Envelope(sender: Fixtures.sender, message: .checkpoint(checkpoint))))
        }
    }

    @Test func overflowingShapeIsRejected() throws {
        let raw = RawProtobuf.envelope(
            bodyField: 13, body: .parameters(shape: [1 << 31, 1 << 31, 1 << 31], values: [1]))
        #expect(throws: DecodingError.self) { try codec.decode(raw) }
    }

    @Test("unknown protocol versions are rejected", arguments: [0, 1, 3, 99] as [UInt64])
    func unknownProtocolVersionIsRejected(version: UInt64) throws {
        let raw = RawProtobuf.envelope(version: version, bodyField: 13, body: .parameters(shape: [1], values: [1]))
        let error = try #require(throws: DecodingError.self) { try codec.decode(raw) }
        #expect(error.code == .unsupportedVersion)
        if version == 1 {
            // An old peer is told what this build speaks and what to do.
            #expect(error.message.contains("protocol version 1 is not supported (this build speaks 2)"))
        }
    }

    @Test func aCheckpointWrittenByAVersion1BuildStillDecodes() throws {
        guard case .checkpoint(let checkpoint) = Fixtures.messages.first(where: { $0.kind == .checkpoint }) else {
            Issue.record("no checkpoint fixture")
            return
        }
        var bytes = codec.encode(Envelope(sender: Fixtures.sender, message: .checkpoint(checkpoint)))
        #expect(Array(bytes.prefix(2)) == [0x08, UInt8(currentProtocolVersion)])
        bytes[1] = 1
        #expect(try codec.decode(bytes).message == .checkpoint(checkpoint))
        // Only checkpoints: a version-1 message on the wire is still refused.
        var hello = codec.encode(Envelope(sender: Fixtures.sender, message: LearnerHello.message))
        hello[1] = 1
        #expect(throws: DecodingError.self) { try codec.decode(hello) }
    }

    @Test func corruptedParametersFailTheChecksum() throws {
        var tensor = RawProtobuf()
        _ = tensor.packedUInts(1, [2])
        _ = tensor.packedFloats(2, [1, 2])
        var body = RawProtobuf()
        _ = body.uint(1, 3)
        _ = body.message(2, tensor)
        _ = body.fixed64(3, Checksum.fnv1a64([1, 2.5]))
        let error = try #require(throws: DecodingError.self) {
            try codec.decode(RawProtobuf.envelope(bodyField: 13, body: body))
        }
        #expect(error.message.contains("checksum"))
    }

    @Test func unrollInconsistenciesAreRejectedWithTheField() throws {
        var cases: [(String, (inout Unroll) -> Void)] = []
        cases.append(("Unroll.actions[1]", { $0.actions[1] = 3 }))
        cases.append(("Unroll.observations has 4 entries", { $0.observations.removeLast() }))
        cases.append(("Unroll.behaviour_probabilities[0]", { $0.behaviourProbabilities[0] = 0 }))
        cases.append(("Unroll.teacher_probabilities row 1 sums to", { $0.teacherProbabilities.values[3] = 0.5 }))
        cases.append(
            (
                "Unroll.teacher_probabilities[0][0]",
                {
                    $0.teacherProbabilities.values[0] = -0.5; $0.teacherProbabilities.values[1] = 1
                }
            ))
        cases.append(("episode_terminated flags", { $0.episodeTerminated.append(true) }))
        cases.append(("Unroll.episode_lengths[0] is 0", { $0.episodeLengths[0] = 0 }))
        cases.append(
            ("Unroll.teacher_q_values has shape", { $0.teacherQValues = Tensor(shape: [1, 3], values: [1, 2, 3]) }))
        for (expected, corrupt) in cases {
            var unroll = Fixtures.unroll
            corrupt(&unroll)
            let error = try #require(throws: DecodingError.self) {
                try codec.decode(codec.encode(Envelope(sender: Fixtures.sender, message: .unroll(unroll))))
            }
            #expect(error.message.contains(expected), "\(error.message) should mention \(expected)")
        }
    }

    @Test func senderMustBeComplete() throws {
        for sender in [Sender(role: .actor, id: "", runNonce: 1), Sender(role: .actor, id: "a", runNonce: 0)] {
            let bytes = codec.encode(Envelope(sender: sender, message: .getParams(GetParams(haveVersion: 0))))
            #expect(throws: DecodingError.self) { try codec.decode(bytes) }
        }
    }
}

/// A tiny seeded generator so corruption tests are reproducible.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

private enum LearnerHello {
    static let message = Message.hello(
        Hello(environment: "gridworld(seed=1,20x20)", stateCount: 401, actionCount: 4, teacherEndpoint: ""))
}
