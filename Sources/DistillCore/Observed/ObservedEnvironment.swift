/// The outcome of one step of an ``ObservedEnvironment`` (the observation is written into the
/// caller's buffer).
public struct ObservedStep: Sendable, Hashable {
    /// The reward of the transition.
    public var reward: Double
    /// The episode ended inside the environment (a terminal state: pole fell, goal reached,
    /// terminal cell). A learner does not bootstrap past it.
    public var terminated: Bool
    /// The episode was cut by the time limit (``EnvironmentDescription/maxEpisodeSteps``) — not an
    /// end of the task: a learner may bootstrap from the last observation. Both flags can be true.
    public var truncated: Bool

    /// Creates a step outcome.
    public init(reward: Double, terminated: Bool, truncated: Bool) {
        self.reward = reward
        self.terminated = terminated
        self.truncated = truncated
    }

    /// Whether the episode is over (terminated or truncated): reset before stepping again.
    public var done: Bool { terminated || truncated }
}

/// An environment seen through observations and stepped one action at a time.
///
/// ## Observations without allocation
/// ``reset(rng:into:)`` and ``step(_:rng:into:)`` WRITE the observation into a caller-provided
/// buffer of exactly ``EnvironmentDescription/ObservationSpec/count`` floats, so a batched actor
/// keeps N environments of one concrete type in an array and one `[Float]` of N × count and steps
/// environment `i` into its slice, with no allocation per step:
///
/// ```swift
/// var envs = (0..<n).map { _ in CartPole() }
/// let count = envs[0].description.observation.count
/// var observations = [Float](repeating: 0, count: n * count)
/// observations.withUnsafeMutableBufferPointer { all in
///     for i in 0..<n {
///         let slot = UnsafeMutableBufferPointer(rebasing: all[(i * count)..<((i + 1) * count)])
///         let outcome = envs[i].step(actions[i], rng: &rngs[i], into: slot)
///         if outcome.done { envs[i].reset(rng: &rngs[i], into: slot) }
///     }
/// }
/// ```
///
/// ``ObservedBatch`` does exactly this. The `[Float]`-returning forms in the extension are for
/// tests and tools.
///
/// Randomness comes only from the generator passed in (the project's ``Xoshiro256StarStar``), so
/// a seed reproduces a run. The time limit is part of the environment: every step counts towards
/// ``elapsedSteps`` and the step that reaches ``EnvironmentDescription/maxEpisodeSteps`` reports
/// `truncated`. Stepping after the episode is over is allowed but means nothing (as in gymnasium);
/// callers reset.
public protocol ObservedEnvironment: Sendable {
    /// The observation shape, actions, reward bounds, time limit and discount.
    var description: EnvironmentDescription { get }

    /// Steps since the last reset or ``setInternalState(_:)``; truncation happens when it reaches
    /// the time limit. Settable so a test can start near the limit.
    var elapsedSteps: Int { get set }

    /// The internal state as numbers (CartPole: x, ẋ, θ, θ̇; a tabular environment: the state id),
    /// ``EnvironmentDescription/stateSize`` of them.
    var internalState: [Double] { get }

    /// Starts a new episode from the environment's start distribution and writes its first
    /// observation; ``elapsedSteps`` becomes 0.
    mutating func reset(rng: inout Xoshiro256StarStar, into observation: UnsafeMutableBufferPointer<Float>)

    /// Takes `action` (in `0..<actionCount`; a precondition) and writes the next observation.
    mutating func step(
        _ action: Int, rng: inout Xoshiro256StarStar, into observation: UnsafeMutableBufferPointer<Float>
    ) -> ObservedStep

    /// Puts the environment in `state` (as read from ``internalState``) without a reset;
    /// ``elapsedSteps`` becomes 0. Throws when the count is wrong or a value is out of range.
    mutating func setInternalState(_ state: [Double]) throws

    /// Writes the observation of the current state.
    func observe(into observation: UnsafeMutableBufferPointer<Float>)

    /// Steps every environment `i` with `actions[i]` and its generator, writing its observation
    /// into row `i` of `observations` (`environments.count` rows) and its outcome into
    /// `outcomes[i]`. ``ObservedBatch`` steps through this. The default is ``stepEach(_:actions:generators:into:outcomes:)``;
    /// an environment whose steps are round trips (a remote one) makes one for all of them.
    static func step(
        _ environments: inout [Self], actions: [Int], generators: inout [Xoshiro256StarStar],
        into observations: UnsafeMutableBufferPointer<Float>, outcomes: inout [ObservedStep])
}

extension ObservedEnvironment {
    /// Starts a new episode and returns its first observation (allocates; for tests and tools).
    public mutating func reset(rng: inout Xoshiro256StarStar) -> [Float] {
        var out = [Float](repeating: 0, count: description.observation.count)
        out.withUnsafeMutableBufferPointer { reset(rng: &rng, into: $0) }
        return out
    }

    /// Takes `action` and returns the next observation with the outcome (allocates; for tests and tools).
    public mutating func step(
        _ action: Int, rng: inout Xoshiro256StarStar
    ) -> (observation: [Float], step: ObservedStep) {
        var out = [Float](repeating: 0, count: description.observation.count)
        let outcome = out.withUnsafeMutableBufferPointer { step(action, rng: &rng, into: $0) }
        return (out, outcome)
    }

    /// The observation of the current state (allocates; for tests and tools).
    public func observation() -> [Float] {
        var out = [Float](repeating: 0, count: description.observation.count)
        out.withUnsafeMutableBufferPointer { observe(into: $0) }
        return out
    }

    public static func step(
        _ environments: inout [Self], actions: [Int], generators: inout [Xoshiro256StarStar],
        into observations: UnsafeMutableBufferPointer<Float>, outcomes: inout [ObservedStep]
    ) {
        stepEach(&environments, actions: actions, generators: &generators, into: observations, outcomes: &outcomes)
    }

    /// Steps the environments one after the other (the default of the batched step).
    public static func stepEach(
        _ environments: inout [Self], actions: [Int], generators: inout [Xoshiro256StarStar],
        into observations: UnsafeMutableBufferPointer<Float>, outcomes: inout [ObservedStep]
    ) {
        let count = observations.count / max(environments.count, 1)
        for i in environments.indices {
            let slot = UnsafeMutableBufferPointer(rebasing: observations[(i * count)..<((i + 1) * count)])
            outcomes[i] = environments[i].step(actions[i], rng: &generators[i], into: slot)
        }
    }

    /// Whether the step just taken reaches the time limit (for implementations: call after
    /// incrementing ``elapsedSteps``).
    @inlinable
    public func reachedTimeLimit() -> Bool {
        guard let limit = description.maxEpisodeSteps else { return false }
        return elapsedSteps >= limit
    }
}

/// N environments of one concrete type stepped together into one contiguous observation array
/// (row `i` is environment `i`'s observation), each with its own generator, resetting an
/// environment as soon as its episode ends. No allocation per step.
public struct ObservedBatch<Env: ObservedEnvironment>: Sendable {
    /// The environments.
    public private(set) var environments: [Env]
    /// The generators, one per environment.
    public private(set) var generators: [Xoshiro256StarStar]
    /// Row-major `[N, count]`: the current observation of each environment. After a step whose
    /// episode ended this is already the FIRST observation of the next episode; the last
    /// observation of the ended episode is in ``finalObservations``.
    public private(set) var observations: [Float]
    /// Row-major `[N, count]`: for environments whose episode ended on the last step, the
    /// observation it ended on (for bootstrapping after truncation); other rows are stale.
    public private(set) var finalObservations: [Float]
    /// The outcome of each environment's last step.
    public private(set) var outcomes: [ObservedStep]
    /// Floats per observation.
    public let observationCount: Int

    /// Makes `environments.count` environments with generators split from `seed`, and resets them.
    public init(_ environments: [Env], seed: UInt64) {
        precondition(!environments.isEmpty, "a batch needs at least one environment")
        var root = Xoshiro256StarStar(seed: seed)
        self.environments = environments
        generators = environments.map { _ in root.split() }
        observationCount = environments[0].description.observation.count
        precondition(
            environments.allSatisfy {
                $0.description.observation.count == environments[0].description.observation.count
            },
            "every environment of a batch has the same observation size")
        observations = [Float](repeating: 0, count: environments.count * observationCount)
        finalObservations = observations
        outcomes = Array(
            repeating: ObservedStep(reward: 0, terminated: false, truncated: false), count: environments.count)
        let count = observationCount
        observations.withUnsafeMutableBufferPointer { all in
            for i in 0..<self.environments.count {
                self.environments[i].reset(
                    rng: &generators[i],
                    into: UnsafeMutableBufferPointer(rebasing: all[(i * count)..<((i + 1) * count)]))
            }
        }
    }

    /// Steps every environment with its action (`actions.count` = N); ended episodes are reset.
    public mutating func step(_ actions: [Int]) {
        precondition(actions.count == environments.count, "one action per environment")
        let count = observationCount
        observations.withUnsafeMutableBufferPointer { all in
            Env.step(&environments, actions: actions, generators: &generators, into: all, outcomes: &outcomes)
            finalObservations.withUnsafeMutableBufferPointer { final in
                for i in 0..<environments.count {
                    let range = (i * count)..<((i + 1) * count)
                    let slot = UnsafeMutableBufferPointer(rebasing: all[range])
                    if outcomes[i].done {
                        _ = UnsafeMutableBufferPointer(rebasing: final[range]).update(fromContentsOf: slot)
                        environments[i].reset(rng: &generators[i], into: slot)
                    }
                }
            }
        }
    }

    /// Ends environment `i`'s episode before the environment would (a caller's time limit shorter
    /// than its own): its current observation becomes its row of ``finalObservations`` and it
    /// starts a new episode.
    public mutating func restart(_ i: Int) {
        precondition(environments.indices.contains(i), "environment \(i) of \(environments.count)")
        let range = (i * observationCount)..<((i + 1) * observationCount)
        finalObservations.replaceSubrange(range, with: observations[range])
        observations.withUnsafeMutableBufferPointer { all in
            environments[i].reset(rng: &generators[i], into: UnsafeMutableBufferPointer(rebasing: all[range]))
        }
    }
}
