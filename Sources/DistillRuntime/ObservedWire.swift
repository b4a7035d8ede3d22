// Observed environments on the wire (issue 12, items 1, 3 and 4): episodes of CartPole and the
// other classic-control tasks into an `Unroll` with an observation tensor and back into the
// `ObservedEpisode`s the one learning step (`LearnerState<NetworkStudent>`) reads, and a network
// student's parameters as a flat float32 `Parameters` with its architecture and checksum.

import DistillCore
import DistillNN
import DistillWire
import Foundation

extension WireEnvironmentSpec {
    /// The spec of an observed environment as the network and the wire see it.
    public init(_ description: EnvironmentDescription) {
        self.init(
            name: description.name, observationShape: description.observation.shape,
            observationDType: description.observation.dtype == .uint8 ? .uint8 : .float32,
            actionCount: description.actionCount)
    }
}

/// Observed episodes to and from unrolls.
public enum ObservedUnroll {
    /// The unroll of `episodes` (each with its T + 1 observations and teacher rows) of an
    /// environment of `spec` (float32 observations). Probabilities, values and rewards are
    /// rounded to float32, as everything on the wire.
    public static func unroll(
        _ episodes: [ObservedEpisode], spec: WireEnvironmentSpec, sequence: UInt64, parameterVersion: UInt64,
        teacherID: String, teacherVersion: UInt64
    ) -> Unroll {
        let na = spec.actionCount
        let withQ = !episodes.isEmpty && episodes.allSatisfy { !$0.teacherActionValues.isEmpty }
        var observations = [Float]()
        var actions = [Int32]()
        var rewards = [Float]()
        var behaviour = [Float]()
        var probabilities = [Float]()
        var values = [Float]()
        var q = [Float]()
        for episode in episodes {
            observations.append(contentsOf: episode.observationRows)
            actions.append(contentsOf: episode.actions)
            rewards.append(contentsOf: episode.rewards.map { Float($0) })
            behaviour.append(contentsOf: episode.behaviour.map { Float($0) })
            probabilities.append(contentsOf: episode.teacherProbabilities.map { Float($0) })
            values.append(contentsOf: episode.teacherValues.map { Float($0) })
            if withQ { q.append(contentsOf: episode.teacherActionValues.map { Float($0) }) }
        }
        let rows = values.count
        var unroll = Unroll(
            sequence: sequence, parameterVersion: parameterVersion, teacherID: teacherID,
            teacherVersion: teacherVersion, actionCount: na,
            episodeLengths: episodes.map { UInt32($0.length) }, episodeTerminated: episodes.map(\.terminated),
            observations: [], actions: actions, rewards: rewards, behaviourProbabilities: behaviour,
            teacherProbabilities: Tensor(shape: [rows, na], values: probabilities), teacherValues: values,
            teacherQValues: withQ ? Tensor(shape: [rows, na], values: q) : .empty)
        unroll.observationTensor = ObservationTensor(rows: rows, rowShape: spec.observationShape, float32: observations)
        return unroll
    }

    /// The episodes of a decoded `unroll` for a learner of `spec`: refused (naming what differs)
    /// when it carries state ids, or observations or actions of another environment.
    /// `log π` is recomputed from the float32 probabilities with the floor of the rules.
    public static func episodes(of unroll: Unroll, spec: WireEnvironmentSpec) throws(DecodingError) -> [ObservedEpisode]
    {
        let tensor = unroll.observationTensor
        guard !tensor.isEmpty else {
            throw DecodingError(
                .invalidField,
                "the unroll carries state ids; this learner trains a network on \(spec): send observations")
        }
        guard tensor.rowShape == spec.observationShape, tensor.dtype == spec.observationDType,
            unroll.actionCount == spec.actionCount
        else {
            throw DecodingError(
                .invalidField,
                "the unroll's observations are \(tensor.rowShape) \(tensor.dtype) with \(unroll.actionCount) actions; "
                    + "this learner trains on \(spec)")
        }
        let na = spec.actionCount
        let width = spec.observationSize
        let observations = tensor.floats()
        let probabilities = unroll.teacherProbabilities.values
        let q = unroll.teacherQValues.values
        var episodes: [ObservedEpisode] = []
        episodes.reserveCapacity(unroll.episodeLengths.count)
        var step = 0
        var state = 0
        for (index, length) in unroll.episodeLengths.enumerated() {
            let steps = Int(length)
            let states = state..<(state + steps + 1)
            var episode = ObservedEpisode(actionCount: na)
            episode.observationRows = Array(observations[(states.lowerBound * width)..<(states.upperBound * width)])
            episode.actions = Array(unroll.actions[step..<(step + steps)])
            episode.rewards = unroll.rewards[step..<(step + steps)].map { Double($0) }
            episode.behaviour = unroll.behaviourProbabilities[step..<(step + steps)].map { Double($0) }
            episode.terminated = unroll.episodeTerminated[index]
            let rows = (states.lowerBound * na)..<(states.upperBound * na)
            episode.teacherProbabilities = probabilities[rows].map { Double($0) }
            episode.teacherLogProbabilities = episode.teacherProbabilities.map {
                log(max($0, teacherLogProbabilityFloor))
            }
            episode.teacherValues = unroll.teacherValues[states].map { Double($0) }
            if !q.isEmpty { episode.teacherActionValues = q[rows].map { Double($0) } }
            episodes.append(episode)
            step += steps
            state += steps + 1
        }
        return episodes
    }
}

/// A network student's parameters on the wire: the flat float32 vector of
/// `PolicyValueNetwork.parameters`, the architecture it belongs to, the FNV-1a checksum.
public enum NetworkParameters {
    /// The parameters of `network` at `version`.
    public static func parameters(of network: PolicyValueNetwork, version: UInt64, envSteps: UInt64) -> Parameters {
        Parameters(
            version: version, values: DistillWire.Tensor(shape: [network.parameterCount], values: network.parameters),
            envSteps: envSteps, architecture: network.architecture.description)
    }

    /// Loads `parameters` into `network`; refuses (leaving the network as it was) parameters of
    /// another architecture or size, or with a wrong checksum.
    public static func apply(_ parameters: Parameters, to network: PolicyValueNetwork) throws(DecodingError) {
        guard parameters.architecture == network.architecture.description else {
            throw DecodingError(
                .invalidField,
                "parameters of architecture '\(parameters.architecture)' do not fit this student "
                    + "('\(network.architecture.description)')")
        }
        guard parameters.values.values.count == network.parameterCount else {
            throw DecodingError(
                .invalidField,
                "\(parameters.values.values.count) parameters do not fit this \(network.architecture.description) "
                    + "student of \(network.parameterCount)")
        }
        guard parameters.hasValidChecksum else {
            throw DecodingError(.invalidField, "Parameters.checksum of version \(parameters.version) does not match")
        }
        network.parameters = parameters.values.values
    }
}
