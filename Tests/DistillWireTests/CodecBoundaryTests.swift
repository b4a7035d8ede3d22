import DistillWire
import Testing

/// The codec's validation at its boundaries: the last valid value is accepted, the first invalid
/// one is rejected naming the field (issue 15: a bound moved by one must fail a test).
@Suite("Wire codec boundaries")
struct CodecBoundaryTests {
    let codec = WireCodec()

    func decodeUnroll(_ change: (inout Unroll) -> Void) throws(DecodingError) -> Envelope {
        var unroll = Fixtures.unroll
        change(&unroll)
        return try codec.decode(codec.encode(Envelope(sender: Fixtures.sender, message: .unroll(unroll))))
    }

    func rejection(_ change: (inout Unroll) -> Void) -> String? {
        do {
            _ = try decodeUnroll(change)
            return nil
        } catch {
            return error.message
        }
    }

    @Test func actionsAreInZeroToActionCountExclusive() throws {
        // action_count is 3: 2 is the last valid action, 3 and −1 are not.
        _ = try decodeUnroll { $0.actions[1] = 2 }
        for bad: Int32 in [3, -1] {
            let message = rejection { $0.actions[1] = bad }
            #expect(message?.contains("Unroll.actions[1]") == true, "action \(bad): \(message ?? "accepted")")
        }
    }

    @Test func behaviourProbabilitiesAreInZeroExclusiveToOneInclusive() throws {
        _ = try decodeUnroll { $0.behaviourProbabilities[0] = 1 }
        _ = try decodeUnroll { $0.behaviourProbabilities[0] = 1e-6 }
        for bad: Float in [0, -0.25, 1.5] {
            let message = rejection { $0.behaviourProbabilities[0] = bad }
            #expect(
                message?.contains("Unroll.behaviour_probabilities[0]") == true,
                "behaviour \(bad): \(message ?? "accepted")")
        }
    }

    @Test func everyStateHasATeacherValue() {
        let short = rejection { $0.teacherValues.removeLast() }
        #expect(short?.contains("Unroll.teacher_values") == true, "\(short ?? "accepted")")
        let long = rejection { $0.teacherValues.append(1) }
        #expect(long?.contains("Unroll.teacher_values") == true, "\(long ?? "accepted")")
    }

    @Test func episodeLengthsAreAllPositive() {
        // The second episode (not only the first) is checked.
        let message = rejection {
            $0.episodeLengths = [3, 0]
        }
        #expect(message?.contains("Unroll.episode_lengths[1] is 0") == true, "\(message ?? "accepted")")
    }

    @Test func welcomePortsAreOneTo65535() throws {
        func welcome(_ unroll: Int, _ parameters: Int) -> Envelope {
            Envelope(
                sender: Fixtures.sender,
                message: .welcome(
                    Welcome(
                        unrollPort: unroll, parametersPort: parameters, teacherEndpoint: "tcp://127.0.0.1:1",
                        parameters: Parameters(version: 1, values: Tensor(shape: [1], values: [0]), envSteps: 0),
                        actorSettingsJSON: "{}")))
        }
        for (u, p) in [(1, 65535), (65535, 1)] { _ = try codec.decode(codec.encode(welcome(u, p))) }
        for (u, p) in [(0, 5000), (5000, 0), (65536, 5000), (5000, 65536)] {
            let error = try #require(throws: DecodingError.self, "ports \(u), \(p)") {
                try codec.decode(codec.encode(welcome(u, p)))
            }
            #expect(error.message.contains("Welcome ports"), "\(error.message)")
        }
    }

    @Test func messageOfExactlyTheMaximumSizeIsAcceptedAndOneByteMoreIsNot() throws {
        let bytes = codec.encode(
            Envelope(sender: Fixtures.sender, message: .getParams(GetParams(haveVersion: 3))))
        _ = try WireCodec(maxMessageBytes: bytes.count).decode(bytes)
        let error = try #require(throws: DecodingError.self) {
            try WireCodec(maxMessageBytes: bytes.count - 1).decode(bytes)
        }
        #expect(error.code == .tooLarge)
    }

    @Test func curveKeysAreFortyCharactersOfZ85() throws {
        let pair = try CurveKeyPair.generate()
        #expect(CurveKeyPair.isKey(pair.publicKey) && CurveKeyPair.isKey(pair.secretKey))
        #expect(!CurveKeyPair.isKey(String(pair.publicKey.dropLast())))
        #expect(!CurveKeyPair.isKey(pair.publicKey + "0"))
        #expect(!CurveKeyPair.isKey(String(pair.publicKey.dropLast()) + "~"))
        #expect(try CurveKeyPair(secretKey: pair.secretKey) == pair)
        #expect(throws: ZMQError.self) { try CurveKeyPair(secretKey: String(pair.secretKey.dropLast())) }
        #expect(throws: ZMQError.self) { try CurveKeyPair(secretKey: pair.secretKey + "0") }
        // 45 characters is valid Z85 (a multiple of 5) that decodes to 36 bytes: only the length
        // check stands between it and libzmq's 32-byte key buffer.
        #expect(throws: ZMQError.self) { try CurveKeyPair(secretKey: pair.secretKey + "00000") }
    }
}
