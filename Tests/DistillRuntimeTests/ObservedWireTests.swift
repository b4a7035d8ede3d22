import DistillCore
import DistillNN
import DistillRuntime
import DistillWire
import Foundation
import Testing

/// Observed episodes through the wire: CartPole episodes with a network teacher's rows become an
/// `Unroll` with an observation tensor, survive encoding and decoding, and teach
/// `LearnerState<NetworkStudent>` exactly what the same (float32-rounded) episodes teach it in
/// one process; network parameters travel with their architecture and are refused elsewhere.
@Suite("Observed environments on the wire")
struct ObservedWireTests {
    static let cartPole = CartPole(maxEpisodeSteps: 40)
    static var spec: WireEnvironmentSpec { WireEnvironmentSpec(cartPole.description) }

    /// Episodes of CartPole under random actions with a small network teacher's outputs.
    static func episodes(count: Int, seed: UInt64) throws -> [ObservedEpisode] {
        let description = cartPole.description
        let network = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: "mlp:16"), inputShape: description.observation.shape,
            actionCount: 2, seed: 9)
        let teacher = try NetworkTeacher(
            network: network, kind: .policy, temperature: 1, observation: description.name,
            environment: .init(description))
        var rng = Xoshiro256StarStar(seed: seed)
        var episodes: [ObservedEpisode] = []
        for _ in 0..<count {
            var env = cartPole
            var observation = [Float](repeating: 0, count: 4)
            observation.withUnsafeMutableBufferPointer { env.reset(rng: &rng, into: $0) }
            var episode = ObservedEpisode(actionCount: 2)
            episode.observationRows = observation
            while true {
                let action = Int(rng.next() % 2)
                let step = observation.withUnsafeMutableBufferPointer { env.step(action, rng: &rng, into: $0) }
                episode.actions.append(Int32(action))
                episode.rewards.append(step.reward)
                episode.behaviour.append(0.5)
                episode.observationRows.append(contentsOf: observation)
                if step.terminated || step.truncated {
                    episode.terminated = step.terminated
                    break
                }
            }
            let rows = episode.length + 1
            let outputs = teacher.outputs(observations: episode.observationRows, batch: rows)
            // As the wire carries them: float32.
            episode.teacherProbabilities = outputs.probabilities.map { Double(Float($0)) }
            episode.teacherLogProbabilities = episode.teacherProbabilities.map {
                log(max($0, teacherLogProbabilityFloor))
            }
            episode.teacherValues = outputs.values.map { Double(Float($0)) }
            episodes.append(episode)
        }
        return episodes
    }

    static func roundTrip(_ unroll: Unroll) throws -> Unroll {
        let codec = WireCodec()
        let sender = Sender(role: .actor, id: "actor-1", runNonce: 7)
        guard
            case .unroll(let decoded) = try codec.decode(
                codec.encode(Envelope(sender: sender, message: .unroll(unroll)))
            ).message
        else { throw DecodingError(.malformed, "not an unroll") }
        return decoded
    }

    @Test func episodesSurviveTheWireFieldForField() throws {
        let episodes = try Self.episodes(count: 5, seed: 3)
        let unroll = ObservedUnroll.unroll(
            episodes, spec: Self.spec, sequence: 4, parameterVersion: 2, teacherID: "net", teacherVersion: 1)
        let back = try ObservedUnroll.episodes(of: Self.roundTrip(unroll), spec: Self.spec)
        #expect(back.count == episodes.count)
        for (a, b) in zip(episodes, back) {
            #expect(a.observationRows == b.observationRows)
            #expect(a.actions == b.actions && a.rewards == b.rewards && a.behaviour == b.behaviour)
            #expect(a.terminated == b.terminated)
            #expect(a.teacherProbabilities == b.teacherProbabilities && a.teacherValues == b.teacherValues)
            #expect(a.teacherLogProbabilities == b.teacherLogProbabilities)
        }
    }

    @Test func theLearningStepLearnsTheSameFromTheWire() throws {
        let episodes = try Self.episodes(count: 8, seed: 4)
        let decoded = try ObservedUnroll.episodes(
            of: Self.roundTrip(
                ObservedUnroll.unroll(
                    episodes, spec: Self.spec, sequence: 0, parameterVersion: 0, teacherID: "net", teacherVersion: 1)),
            spec: Self.spec)
        var method = MethodSpec()
        method.method = .onPolicyDistill
        method.optimiser = .adam
        method.learningRate = 0.001
        method.episodesPerIteration = 8
        func state() throws -> LearnerState<NetworkStudent> {
            let student = try StudentSpec(architecture: "mlp:64,64", seed: 2).buildNetwork(
                for: Self.cartPole.description, method: method)
            return try LearnerState(
                method: method, teacherKind: nil, discount: Self.cartPole.description.discount, stateCount: 0,
                actionCount: 2, student: student, seed: 1)
        }
        var local = try state()
        var remote = try state()
        for episode in episodes { local.accumulate(episode) }
        for episode in decoded { remote.accumulate(episode) }
        #expect(local.updateDue && remote.updateDue)
        _ = local.applyUpdate()
        _ = remote.applyUpdate()
        #expect(local.student.network.parameters == remote.student.network.parameters)
        #expect(local.updates == 1)
    }

    @Test func unrollsOfAnotherEnvironmentOrOfStateIdsAreRefused() throws {
        let episodes = try Self.episodes(count: 2, seed: 5)
        let unroll = ObservedUnroll.unroll(
            episodes, spec: Self.spec, sequence: 0, parameterVersion: 0, teacherID: "net", teacherVersion: 1)
        let acrobot = WireEnvironmentSpec(name: "Acrobot-v1", observationShape: [6], actionCount: 3)
        let error = try #require(throws: DecodingError.self) { try ObservedUnroll.episodes(of: unroll, spec: acrobot) }
        #expect(error.message.contains("Acrobot-v1"), "\(error.message)")
        var tabular = unroll
        tabular.observationTensor = .empty
        #expect(throws: DecodingError.self) { try ObservedUnroll.episodes(of: tabular, spec: Self.spec) }
    }

    @Test func networkParametersCarryTheirArchitectureAndAreRefusedElsewhere() throws {
        let shape = Self.cartPole.description.observation.shape
        let source = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: "mlp:64,64"), inputShape: shape, actionCount: 2, seed: 1)
        let target = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: "mlp:64,64"), inputShape: shape, actionCount: 2, seed: 2)
        let other = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: "mlp:32"), inputShape: shape, actionCount: 2, seed: 3)
        let codec = WireCodec()
        let sent = NetworkParameters.parameters(of: source, version: 5, envSteps: 100)
        let bytes = codec.encode(
            Envelope(sender: Sender(role: .learner, id: "l", runNonce: 1), message: .parameters(sent)))
        guard case .parameters(let received) = try codec.decode(bytes).message else {
            Issue.record("not parameters")
            return
        }
        #expect(received.architecture == "mlp:64,64")
        try NetworkParameters.apply(received, to: target)
        #expect(target.parameters == source.parameters)
        let before = other.parameters
        let error = try #require(throws: DecodingError.self) { try NetworkParameters.apply(received, to: other) }
        #expect(error.message.contains("mlp:64,64") && error.message.contains("mlp:32"), "\(error.message)")
        #expect(other.parameters == before)
    }

    /// The parameter broadcast's encode and decode cost at 0.1 to 5 MB (printed for
    /// docs/networks.md; a 2×64 CartPole student is 18 KB).
    @Test func parameterMessagesOf0point1To5MBEncodeAndDecodeQuickly() throws {
        let codec = WireCodec()
        let sender = Sender(role: .learner, id: "l", runNonce: 1)
        for megabytes in [0.1, 1, 5] {
            let count = Int(megabytes * 1_000_000 / 4)
            let parameters = Parameters(
                version: 1, values: DistillWire.Tensor(shape: [count], values: (0..<count).map { Float($0 % 97) / 97 }),
                envSteps: 0, architecture: "mlp:1024,1024")
            let clock = ContinuousClock()
            var bytes: [UInt8] = []
            let encoding = clock.measure {
                bytes = codec.encode(Envelope(sender: sender, message: .parameters(parameters)))
            }
            var decoded: Envelope?
            let decoding = clock.measure { decoded = try? codec.decode(bytes) }
            #expect(decoded != nil)
            print("parameters \(megabytes) MB (\(bytes.count) bytes): encode \(encoding), decode \(decoding)")
            #expect(encoding + decoding < .seconds(1))
        }
    }
}
