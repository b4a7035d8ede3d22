import DistillWire
import Testing

/// The remote environment messages are checked on decoding like every other message: counts that
/// disagree, ids and commands that are missing, and descriptions a network cannot use are refused
/// with a message naming the field; valid ones survive the round trip (Fixtures).
@Suite("Remote environment messages")
struct EnvironmentMessageTests {
    let codec = WireCodec()
    let sender = Sender(role: .actor, id: "actor-1", runNonce: 7)

    func decodeError(_ message: Message) -> String? {
        do {
            _ = try codec.decode(codec.encode(Envelope(sender: sender, message: message)))
            return nil
        } catch {
            return error.message
        }
    }

    static let spec = WireEnvironmentSpec(name: "CartPole-v1", observationShape: [4], actionCount: 2)

    static func description(
        _ spec: WireEnvironmentSpec = spec, range: ClosedRange<Double>? = nil, capacity: Int = 8
    )
        -> RemoteEnvironmentDescription
    {
        RemoteEnvironmentDescription(
            spec: spec, maxEpisodeSteps: 500, rewardRange: range, stateSize: 4, capacity: capacity, source: "test")
    }

    @Test func requestsWithoutIdOrWithDisagreeingCountsAreRefused() {
        let cases: [(EnvironmentRequest, String)] = [
            (EnvironmentRequest(requestID: 0, command: .describe), "request_id is 0"),
            (EnvironmentRequest(requestID: 1, command: .open, count: 0), "count is 0"),
            (EnvironmentRequest(requestID: 1, command: .reset), "names 0 environments"),
            (EnvironmentRequest(requestID: 1, command: .step, environments: [1, 1], actions: [0, 0]), "twice"),
            (EnvironmentRequest(requestID: 1, command: .step, environments: [1, 2], actions: [0]), "1 actions for 2"),
            (EnvironmentRequest(requestID: 1, command: .step, environments: [1], actions: [-3]), "negative"),
            (EnvironmentRequest(requestID: 1, command: .reset, environments: [1, 2], seeds: [5]), "1 seeds for 2"),
            (EnvironmentRequest(requestID: 1, command: .close, environments: []), "names 0 environments"),
        ]
        for (request, expected) in cases {
            let error = decodeError(.environmentRequest(request))
            #expect(error?.contains(expected) == true, "\(request): \(error ?? "accepted")")
        }
    }

    @Test func repliesWhoseArraysDisagreeAreRefused() {
        let two = ObservationTensor(rows: 2, rowShape: [4], float32: [Float](repeating: 0, count: 8))
        let cases: [(EnvironmentReply, String)] = [
            (EnvironmentReply(requestID: 1, environments: [0], observations: two), "2 observations for 1"),
            (EnvironmentReply(requestID: 1, environments: [0, 1], observations: two, rewards: [1]), "1 rewards for 2"),
            (
                EnvironmentReply(requestID: 1, environments: [0, 1], observations: two, terminated: [true]),
                "1 terminated for 2"
            ),
            (
                EnvironmentReply(requestID: 1, environments: [0, 1], observations: two, states: [1, 2, 3]),
                "3 state values"
            ),
            (
                EnvironmentReply(
                    requestID: 1, environments: [0, 1],
                    observations: ObservationTensor(dtype: .boolPacked, shape: [2, 4], data: [0])),
                "float32 or uint8"
            ),
            (
                EnvironmentReply(
                    requestID: 1, environments: [0],
                    observations: ObservationTensor(rows: 1, rowShape: [2], float32: [1, .nan])),
                "not finite"
            ),
            (EnvironmentReply(requestID: 1, environments: [0], rewards: [.infinity]), "rewards[0]"),
        ]
        for (reply, expected) in cases {
            let error = decodeError(.environmentReply(reply))
            #expect(error?.contains(expected) == true, "\(reply): \(error ?? "accepted")")
        }
    }

    @Test func descriptionsANetworkCannotUseAreRefused() {
        let packed = WireEnvironmentSpec(
            name: "bits", observationShape: [8], observationDType: .boolPacked, actionCount: 2)
        let cases: [(RemoteEnvironmentDescription, String)] = [
            (Self.description(packed), "float32 or uint8"),
            (Self.description(range: 2...2), ""),  // a one-point range is valid
            (Self.description(capacity: 0), "capacity is 0"),
            (
                Self.description(WireEnvironmentSpec(name: "", observationShape: [4], actionCount: 2)),
                "needs a name"
            ),
            (
                Self.description(WireEnvironmentSpec(name: "x", observationShape: [4], actionCount: 0)),
                "action_count >= 1"
            ),
        ]
        for (description, expected) in cases {
            let error = decodeError(.environmentReply(EnvironmentReply(requestID: 1, description: description)))
            if expected.isEmpty {
                #expect(error == nil, "\(description): \(error ?? "")")
            } else {
                #expect(error?.contains(expected) == true, "\(description): \(error ?? "accepted")")
            }
        }
    }

    @Test func aDescriptionKeepsItsOptionalFields() throws {
        for description in [
            Self.description(range: -1...1), Self.description(),
            RemoteEnvironmentDescription(
                spec: Self.spec, maxEpisodeSteps: nil, rewardRange: nil, stateSize: 0, capacity: 1, source: ""),
        ] {
            let decoded = try codec.decode(
                codec.encode(
                    Envelope(sender: sender, message: .environmentReply(.init(requestID: 3, description: description))))
            )
            #expect(decoded.message == .environmentReply(.init(requestID: 3, description: description)))
        }
    }
}
