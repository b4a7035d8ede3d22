/// What a remote environment server hosts (`RemoteEnvironmentDescription` in the proto): the
/// answer to ``EnvironmentRequest/Command/describe`` and ``EnvironmentRequest/Command/open``.
public struct RemoteEnvironmentDescription: Sendable, Equatable {
    /// Name, observation shape and dtype (float32 or uint8), action count.
    public var spec: WireEnvironmentSpec
    /// The time limit in steps (truncation), nil when none is declared.
    public var maxEpisodeSteps: Int?
    /// The declared bounds of one step's reward, nil when unknown.
    public var rewardRange: ClosedRange<Double>?
    /// Internal state values reported with every observation (0: none exposed).
    public var stateSize: Int
    /// The most environments the server hosts at once.
    public var capacity: Int
    /// Where the environment comes from, for a person.
    public var source: String

    /// Creates a description.
    public init(
        spec: WireEnvironmentSpec, maxEpisodeSteps: Int?, rewardRange: ClosedRange<Double>?, stateSize: Int,
        capacity: Int, source: String
    ) {
        self.spec = spec
        self.maxEpisodeSteps = maxEpisodeSteps
        self.rewardRange = rewardRange
        self.stateSize = stateSize
        self.capacity = capacity
        self.source = source
    }
}

/// A request to a remote environment server; answered by one ``EnvironmentReply`` or an
/// ``ErrorReply`` whose `inReplyTo` is ``requestID``.
public struct EnvironmentRequest: Sendable, Equatable {
    /// What to do (`EnvironmentRequest.Command` in the proto).
    public enum Command: Int32, Sendable, CaseIterable, CustomStringConvertible {
        /// Describe the environments.
        case describe = 1
        /// Reserve ``EnvironmentRequest/count`` environments.
        case open = 2
        /// Reset ``EnvironmentRequest/environments`` (seeded when ``EnvironmentRequest/seeds`` is given).
        case reset = 3
        /// Step each of ``EnvironmentRequest/environments`` with its action.
        case step = 4
        /// Release ``EnvironmentRequest/environments``.
        case close = 5

        /// The proto's name without its prefix, e.g. "STEP".
        public var description: String {
            switch self {
            case .describe: "DESCRIBE"
            case .open: "OPEN"
            case .reset: "RESET"
            case .step: "STEP"
            case .close: "CLOSE"
            }
        }
    }

    /// Chosen by the client, non-zero, echoed.
    public var requestID: UInt64
    /// The command.
    public var command: Command
    /// For ``Command/open``: how many.
    public var count: Int
    /// For reset, step and close: the server's indices.
    public var environments: [Int]
    /// For ``Command/step``: one action per environment.
    public var actions: [Int]
    /// For ``Command/reset``: one seed per environment, or empty for unseeded resets.
    public var seeds: [UInt64]

    /// Creates a request.
    public init(
        requestID: UInt64, command: Command, count: Int = 0, environments: [Int] = [], actions: [Int] = [],
        seeds: [UInt64] = []
    ) {
        self.requestID = requestID
        self.command = command
        self.count = count
        self.environments = environments
        self.actions = actions
        self.seeds = seeds
    }
}

/// A remote environment server's answer to an ``EnvironmentRequest``.
public struct EnvironmentReply: Sendable, Equatable {
    /// The request's id.
    public var requestID: UInt64
    /// For describe and open.
    public var description: RemoteEnvironmentDescription?
    /// For open: the reserved indices; for reset and step: the request's.
    public var environments: [Int]
    /// For reset and step: `[n] + observation shape`.
    public var observations: ObservationTensor
    /// For step: one reward per environment.
    public var rewards: [Double]
    /// For step: episode ended inside the environment.
    public var terminated: [Bool]
    /// For step: episode cut by the time limit.
    public var truncated: [Bool]
    /// For reset and step when the description's `stateSize` > 0: n × stateSize values.
    public var states: [Double]

    /// Creates a reply.
    public init(
        requestID: UInt64, description: RemoteEnvironmentDescription? = nil, environments: [Int] = [],
        observations: ObservationTensor = .empty, rewards: [Double] = [], terminated: [Bool] = [],
        truncated: [Bool] = [], states: [Double] = []
    ) {
        self.requestID = requestID
        self.description = description
        self.environments = environments
        self.observations = observations
        self.rewards = rewards
        self.terminated = terminated
        self.truncated = truncated
        self.states = states
    }
}
