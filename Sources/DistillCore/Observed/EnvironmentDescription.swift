/// What a learner needs to know about an observed environment before it sees a step: the shape
/// and type of the observations, the number of actions, the declared reward bounds, the time
/// limit and the discount (`distill env spec` prints it as JSON).
public struct EnvironmentDescription: Sendable, Hashable, Codable {
    /// The element type of an observation.
    public enum DType: String, Sendable, Hashable, Codable, CaseIterable {
        /// 32-bit floats (every environment here; observations are written as `Float`).
        case float32
        /// Bytes (pixel observations of remote environments; none of the built-in ones).
        case uint8
    }

    /// The observation: its shape (row-major, e.g. `[C, H, W]` for images), element type and
    /// optional per-element bounds (the same count as the shape's product, or one value for all).
    public struct ObservationSpec: Sendable, Hashable, Codable {
        /// The shape, outermost dimension first.
        public var shape: [Int]
        /// The element type.
        public var dtype: DType
        /// Lower bounds per element (`-inf` where unbounded), or nil when not declared.
        public var low: [Float]?
        /// Upper bounds per element (`+inf` where unbounded), or nil when not declared.
        public var high: [Float]?

        /// Creates an observation spec.
        public init(shape: [Int], dtype: DType = .float32, low: [Float]? = nil, high: [Float]? = nil) {
            self.shape = shape
            self.dtype = dtype
            self.low = low
            self.high = high
        }

        /// The number of elements of one observation (the product of ``shape``).
        public var count: Int { shape.reduce(1, *) }

        private enum CodingKeys: String, CodingKey { case shape, dtype, low, high }

        /// Encodes infinite bounds as the strings `"inf"` / `"-inf"` (JSON has no infinity).
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(shape, forKey: .shape)
            try c.encode(dtype, forKey: .dtype)
            try c.encodeIfPresent(low.map { $0.map(BoundValue.init) }, forKey: .low)
            try c.encodeIfPresent(high.map { $0.map(BoundValue.init) }, forKey: .high)
        }

        /// Decodes what ``encode(to:)`` writes.
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            shape = try c.decode([Int].self, forKey: .shape)
            dtype = try c.decode(DType.self, forKey: .dtype)
            low = try c.decodeIfPresent([BoundValue].self, forKey: .low)?.map(\.value)
            high = try c.decodeIfPresent([BoundValue].self, forKey: .high)?.map(\.value)
        }
    }

    /// The declared bounds of one step's reward: a learner may reject a reward outside them as
    /// implausible (a corrupted or foreign unroll).
    public struct RewardRange: Sendable, Hashable, Codable {
        /// The smallest reward a step can give.
        public var min: Double
        /// The largest reward a step can give.
        public var max: Double

        /// Creates a reward range.
        public init(min: Double, max: Double) {
            self.min = min
            self.max = max
        }

        /// Whether `reward` lies in the range.
        public func contains(_ reward: Double) -> Bool { reward >= min && reward <= max }
    }

    /// A short identity, e.g. `CartPole-v1` or `gridworld(seed=3)`.
    public var name: String
    /// The observation.
    public var observation: ObservationSpec
    /// The number of discrete actions (actions are `0..<actionCount`).
    public var actionCount: Int
    /// The declared reward bounds of one step.
    public var rewardRange: RewardRange
    /// The time limit: after this many steps the episode is TRUNCATED (`truncated` = true,
    /// `terminated` = false unless the last step also terminated). Nil: no limit.
    public var maxEpisodeSteps: Int?
    /// The discount γ used by learners on this environment.
    public var discount: Double
    /// Whether a tabular MDP is underneath (then a policy can be evaluated exactly by reading it
    /// at every state's observation, ``TabularObservedEnvironment/observation(ofState:into:)``).
    public var tabular: Bool
    /// The number of internal state values (``ObservedEnvironment/internalState``).
    public var stateSize: Int
    /// Where the dynamics and constants come from.
    public var source: String

    /// Creates a description.
    public init(
        name: String, observation: ObservationSpec, actionCount: Int, rewardRange: RewardRange,
        maxEpisodeSteps: Int?, discount: Double, tabular: Bool, stateSize: Int, source: String
    ) {
        self.name = name
        self.observation = observation
        self.actionCount = actionCount
        self.rewardRange = rewardRange
        self.maxEpisodeSteps = maxEpisodeSteps
        self.discount = discount
        self.tabular = tabular
        self.stateSize = stateSize
        self.source = source
    }
}

/// A float bound that encodes infinities as the strings `"inf"` and `"-inf"`.
private struct BoundValue: Codable {
    var value: Float
    init(_ value: Float) { self.value = value }
    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let text = try? c.decode(String.self) {
            switch text {
            case "inf": value = .infinity
            case "-inf": value = -.infinity
            default:
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "bound '\(text)' is not a number")
            }
        } else {
            value = try c.decode(Float.self)
        }
    }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        if value.isInfinite { try c.encode(value > 0 ? "inf" : "-inf") } else { try c.encode(value) }
    }
}
