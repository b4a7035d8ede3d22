import DistillCore
import DistillWire

/// An environment hosted by a remote environment server (`--env remote:tcp://HOST:PORT`; the
/// server is examples/env-server/env_server.py, or anything speaking the same messages), seen as
/// an ``ObservedEnvironment`` so that ``ObservedBatch`` and ``ObservedTrainer`` use it unchanged.
///
/// Every copy of a prototype reserves its own environment on the server at its first reset
/// (COMMAND_OPEN) and releases it when the last copy sharing it goes away (COMMAND_CLOSE); a copy
/// made after a reset shares the server's environment with the original until one of them
/// resets. All environments of a process share one ``RemoteEnvironmentClient``: one round trip
/// per reset, and one per step of a whole ``ObservedBatch`` (``step(_:actions:generators:into:outcomes:)``).
///
/// A reset draws its gymnasium seed from the generator it is given, so a seeded run asks the
/// server for the same episodes. The time limit is the server's (its TimeLimit wrapper reports
/// `truncated`); ``elapsedSteps`` counts steps here for the caller.
///
/// `reset` and `step` cannot throw (the protocol's signature): when a round trip fails, the
/// failure is recorded on the client (``RemoteEnvironmentClient/failure``), the observation is
/// zeros and the step reports `terminated`, so every loop ends quickly; the caller checks
/// ``RemoteEnvironmentClient/checkHealthy()`` after each iteration and reports the error.
public struct RemoteEnvironment: ObservedEnvironment {
    /// The shared connection.
    public let client: RemoteEnvironmentClient
    public let description: EnvironmentDescription
    public var elapsedSteps = 0
    private var lease: Lease?
    private var current: RemoteEnvironmentClient.Observation

    /// Makes a prototype for the environments `client`'s server hosts, with discount `discount`
    /// (the server does not declare one). Reserves nothing until the first reset.
    public init(client: RemoteEnvironmentClient, discount: Double = 0.99) {
        self.client = client
        let remote = client.description
        let unbounded = EnvironmentDescription.RewardRange(
            min: -Double.greatestFiniteMagnitude, max: Double.greatestFiniteMagnitude)
        description = EnvironmentDescription(
            name: remote.spec.name,
            observation: .init(
                shape: remote.spec.observationShape, dtype: remote.spec.observationDType == .uint8 ? .uint8 : .float32),
            actionCount: remote.spec.actionCount,
            rewardRange: remote.rewardRange.map { .init(min: $0.lowerBound, max: $0.upperBound) } ?? unbounded,
            maxEpisodeSteps: remote.maxEpisodeSteps, discount: discount, tabular: false, stateSize: remote.stateSize,
            source: "remote environment server \(client.endpoint): \(remote.source)")
        current = .init(
            values: [Float](repeating: 0, count: remote.spec.observationSize),
            state: [Double](repeating: 0, count: remote.stateSize))
    }

    /// Connects to the server at `endpoint` and makes a prototype (see ``init(client:discount:)``).
    public init(
        endpoint: String, discount: Double = 0.99,
        timeoutMilliseconds: Int = RemoteEnvironmentClient.defaultTimeoutMilliseconds
    ) throws {
        self.init(
            client: try RemoteEnvironmentClient(endpoint: endpoint, timeoutMilliseconds: timeoutMilliseconds),
            discount: discount)
    }

    /// The server's index of this environment, nil before the first reset.
    public var serverIndex: Int? { lease?.index }

    public var internalState: [Double] { current.state }

    public mutating func reset(rng: inout Xoshiro256StarStar, into observation: UnsafeMutableBufferPointer<Float>) {
        let seed = rng.next()
        elapsedSteps = 0
        do {
            try client.checkHealthy()
            if lease == nil || !isKnownUniquelyReferenced(&lease) {
                lease = Lease(index: try client.open(count: 1)[0], client: client)
            }
            current = try client.reset([lease!.index], seeds: [seed])[0]
        } catch {
            client.record(error)
            current.values = [Float](repeating: 0, count: current.values.count)
        }
        observe(into: observation)
    }

    public mutating func step(
        _ action: Int, rng: inout Xoshiro256StarStar, into observation: UnsafeMutableBufferPointer<Float>
    ) -> ObservedStep {
        precondition(
            (0..<description.actionCount).contains(action),
            "\(description.name) action must be in 0..<\(description.actionCount), got \(action)")
        elapsedSteps += 1
        do {
            try client.checkHealthy()
            guard let lease else {
                throw RuntimeError("a remote environment was stepped before its first reset", code: .invalidInput)
            }
            let outcome = try client.step([lease.index], actions: [action])[0]
            current = outcome.observation
            observe(into: observation)
            return ObservedStep(reward: outcome.reward, terminated: outcome.terminated, truncated: outcome.truncated)
        } catch {
            client.record(error)
            current.values = [Float](repeating: 0, count: current.values.count)
            observe(into: observation)
            return ObservedStep(reward: 0, terminated: true, truncated: false)
        }
    }

    /// Steps all `environments` in one round trip when they share a client and each holds its own
    /// server environment (as in ``ObservedBatch``); otherwise one by one.
    public static func step(
        _ environments: inout [RemoteEnvironment], actions: [Int], generators: inout [Xoshiro256StarStar],
        into observations: UnsafeMutableBufferPointer<Float>, outcomes: inout [ObservedStep]
    ) {
        guard let client = environments.first?.client else { return }
        let indices = environments.compactMap { $0.client === client ? $0.lease?.index : nil }
        guard indices.count == environments.count, Set(indices).count == indices.count else {
            stepEach(&environments, actions: actions, generators: &generators, into: observations, outcomes: &outcomes)
            return
        }
        for (i, action) in actions.enumerated() {
            precondition(
                (0..<environments[i].description.actionCount).contains(action),
                "\(environments[i].description.name) action must be in 0..<\(environments[i].description.actionCount), got \(action)"
            )
            environments[i].elapsedSteps += 1
        }
        let count = observations.count / environments.count
        do {
            try client.checkHealthy()
            let results = try client.step(indices, actions: actions)
            for i in environments.indices {
                environments[i].current = results[i].observation
                outcomes[i] = ObservedStep(
                    reward: results[i].reward, terminated: results[i].terminated, truncated: results[i].truncated)
            }
        } catch {
            client.record(error)
            for i in environments.indices {
                environments[i].current.values = [Float](repeating: 0, count: count)
                outcomes[i] = ObservedStep(reward: 0, terminated: true, truncated: false)
            }
        }
        for i in environments.indices {
            environments[i].observe(
                into: UnsafeMutableBufferPointer(rebasing: observations[(i * count)..<((i + 1) * count)]))
        }
    }

    /// Remote environments are started by a reset only: the server offers no way to set a state.
    public mutating func setInternalState(_ state: [Double]) throws {
        throw RuntimeError(
            "a remote environment cannot be put in a given state: start it from a reset (a seed); to compare "
                + "with a native environment, set the native one to the remote one's internal state",
            code: .invalidInput)
    }

    public func observe(into observation: UnsafeMutableBufferPointer<Float>) {
        precondition(
            observation.count == current.values.count,
            "observation buffer has \(observation.count) floats, expected \(current.values.count)")
        _ = observation.update(fromContentsOf: current.values)
    }
}

/// One environment reserved on the server, released when the last copy holding it goes away.
private final class Lease: Sendable {
    let index: Int
    let client: RemoteEnvironmentClient

    init(index: Int, client: RemoteEnvironmentClient) {
        self.index = index
        self.client = client
    }

    deinit { client.close([index]) }
}
