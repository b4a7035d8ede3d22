/// How a tabular environment's state is shown to a network (`--observation`).
///
/// - `state-id`: one float, the state id. Shape `[1]`.
/// - `one-hot`: `|S|` floats, 1 at the state id (the absorbing end state included). Shape `[|S|]`.
/// - `image` (gridworlds): `[7, H, W]` planes, channel-major, row-major inside a plane:
///   0 wall (1), 1 non-terminal reward cell (its reward: −1 in the paper's worlds),
///   2–5 terminal cell with reward +10, +5, −5, −10 (1 each), 6 agent (1 at its cell; all zero
///   in the absorbing end state).
/// - `window:K` (gridworlds, K odd): `[6, K, K]`, the planes 0–5 of the image cropped to the K×K
///   square centred on the agent (egocentric); cells outside the grid read as wall (plane 0 = 1,
///   others 0). The agent plane is left out: the agent is always at the centre. In the absorbing
///   end state every value is 0.
public enum ObservationKind: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The state id.
    case stateID
    /// One-hot over the states.
    case oneHot
    /// The whole grid as planes.
    case image
    /// A K×K egocentric crop of the image (K odd).
    case window(Int)

    /// The planes of ``image``.
    public static let imageChannels = 7
    /// The planes of ``window(_:)``.
    public static let windowChannels = 6
    /// The terminal rewards with a plane each, in plane order (planes 2–5).
    public static let terminalRewards: [Double] = [10, 5, -5, -10]

    /// Parses `state-id`, `one-hot`, `image` or `window:K`; the error lists the forms.
    public init(parsing text: String) throws {
        switch text {
        case "state-id": self = .stateID
        case "one-hot": self = .oneHot
        case "image": self = .image
        default:
            if text.hasPrefix("window:") {
                let k = text.dropFirst("window:".count)
                guard let side = Int(k), side >= 1, side % 2 == 1 else {
                    throw DistillError(
                        .invalidConfiguration,
                        "observation '\(text)': the window side K must be an odd positive integer (e.g. window:5)")
                }
                self = .window(side)
            } else {
                throw DistillError(
                    .invalidConfiguration,
                    "unknown observation '\(text)': expected state-id, one-hot, image or window:K (K odd)")
            }
        }
    }

    /// The command-line form.
    public var description: String {
        switch self {
        case .stateID: "state-id"
        case .oneHot: "one-hot"
        case .image: "image"
        case .window(let k): "window:\(k)"
        }
    }

    /// Encodes as the command-line form.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    /// Decodes the command-line form.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        do { try self.init(parsing: text) } catch let e as DistillError {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: e.message)
        }
    }
}

/// A tabular ``Environment`` (a gridworld, or any MDP for `state-id`/`one-hot`) stepped through
/// observations. Steps sample the MDP itself (``TabularMDP/reset(_:)`` and
/// ``TabularMDP/step(_:_:_:)``), so a run matches the tabular code's dynamics draw for draw.
///
/// Because the MDP is underneath, ``observation(ofState:into:)`` renders ANY state's observation:
/// a network policy read at every state gives a tabular policy that policy evaluation scores
/// exactly (``observationTable()`` renders them all at once).
public struct TabularObservedEnvironment: ObservedEnvironment {
    /// The tabular environment.
    public let environment: Environment
    /// The renderer.
    public let observationKind: ObservationKind
    public let description: EnvironmentDescription
    /// The current state id.
    public private(set) var state: Int32
    public var elapsedSteps = 0
    /// Image planes 0–5 with the agent plane zero (`[7, H, W]`), for gridworld kinds.
    private let planes: [Float]

    /// Observes `environment` with `observation`; `maxEpisodeSteps` adds a time limit (truncation).
    /// Throws when the observation needs a grid that the environment lacks, or when a terminal
    /// cell's reward has no plane.
    public init(_ environment: Environment, observation: ObservationKind, maxEpisodeSteps: Int? = nil) throws {
        self.environment = environment
        observationKind = observation
        let mdp = environment.mdp
        if let limit = maxEpisodeSteps, limit < 1 {
            throw DistillError(.invalidConfiguration, "the time limit must be at least 1 step, got \(limit)")
        }
        let shape: [Int]
        var low: Float = 0
        var high: Float = 1
        var planes: [Float] = []
        switch observation {
        case .stateID:
            shape = [1]
            high = Float(mdp.stateCount - 1)
        case .oneHot:
            shape = [mdp.stateCount]
        case .image, .window:
            guard let grid = environment.grid else {
                throw DistillError(
                    .invalidConfiguration,
                    "observation '\(observation)' needs a gridworld; \(environment.name) has no grid (use state-id or one-hot)"
                )
            }
            let n = grid.size
            planes = [Float](repeating: 0, count: ObservationKind.imageChannels * n * n)
            for (i, cell) in grid.cells.enumerated() {
                switch cell {
                case .empty: break
                case .wall: planes[i] = 1
                case .reward(let r):
                    planes[n * n + i] = Float(r)
                    low = min(low, Float(r))
                    high = max(high, Float(r))
                case .terminal(let r):
                    guard let k = ObservationKind.terminalRewards.firstIndex(of: r) else {
                        throw DistillError(
                            .invalidConfiguration,
                            "cell \(i) is terminal with reward \(r); the image has planes only for terminal rewards "
                                + "\(ObservationKind.terminalRewards.map { "\($0)" }.joined(separator: ", "))")
                    }
                    planes[(2 + k) * n * n + i] = 1
                }
            }
            if case .window(let k) = observation {
                shape = [ObservationKind.windowChannels, k, k]
            } else {
                shape = [ObservationKind.imageChannels, n, n]
            }
        }
        self.planes = planes
        var rewardMin = 0.0
        var rewardMax = 0.0
        if let lo = mdp.outcomeReward.min(), let hi = mdp.outcomeReward.max() {
            rewardMin = lo
            rewardMax = hi
        }
        description = EnvironmentDescription(
            name: "\(environment.name) observed as \(observation)",
            observation: .init(shape: shape, dtype: .float32, low: [low], high: [high]),
            actionCount: mdp.actionCount, rewardRange: .init(min: rewardMin, max: rewardMax),
            maxEpisodeSteps: maxEpisodeSteps, discount: mdp.discount, tabular: true, stateSize: 1,
            source: "DistillCore tabular MDP (paper Appendix A.1/A.2 for gridworlds), sampled by TabularMDP.step")
        state = mdp.startStates[0]
    }

    /// The number of states `|S|` (the absorbing end state included).
    public var stateCount: Int { environment.mdp.stateCount }

    public var internalState: [Double] { [Double(state)] }

    /// Whether the current state is terminal (stepping from it is a precondition failure).
    public var isTerminal: Bool { environment.mdp.isTerminal[Int(state)] }

    public mutating func setInternalState(_ values: [Double]) throws {
        guard values.count == 1, let s = Int(exactly: values[0]), s >= 0, s < stateCount else {
            throw DistillError(
                .invalidConfiguration,
                "a tabular state is one state id in 0..<\(stateCount), got \(values.map { "\($0)" })")
        }
        guard !environment.mdp.isTerminal[s] else {
            throw DistillError(.invalidConfiguration, "state \(s) is terminal: no step can start from it")
        }
        state = Int32(s)
        elapsedSteps = 0
    }

    public mutating func reset(rng: inout Xoshiro256StarStar, into observation: UnsafeMutableBufferPointer<Float>) {
        state = environment.mdp.reset(&rng)
        elapsedSteps = 0
        observe(into: observation)
    }

    public mutating func step(
        _ action: Int, rng: inout Xoshiro256StarStar, into observation: UnsafeMutableBufferPointer<Float>
    ) -> ObservedStep {
        precondition(action >= 0 && action < environment.mdp.actionCount, "action \(action) out of range")
        let result = environment.mdp.step(state, action, &rng)
        state = result.next
        elapsedSteps += 1
        observe(into: observation)
        return ObservedStep(reward: result.reward, terminated: result.terminal, truncated: reachedTimeLimit())
    }

    public func observe(into out: UnsafeMutableBufferPointer<Float>) {
        observation(ofState: Int(state), into: out)
    }

    /// Writes the observation of state `s` (any state, terminal ones included).
    public func observation(ofState s: Int, into out: UnsafeMutableBufferPointer<Float>) {
        precondition(s >= 0 && s < stateCount, "state \(s) out of range 0..<\(stateCount)")
        precondition(out.count == description.observation.count, "observation buffer has the wrong size")
        switch observationKind {
        case .stateID:
            out[0] = Float(s)
        case .oneHot:
            out.update(repeating: 0)
            out[s] = 1
        case .image:
            _ = out.update(fromContentsOf: planes)
            let n = environment.grid!.size
            out[(ObservationKind.imageChannels - 1) * n * n..<ObservationKind.imageChannels * n * n].update(
                repeating: 0)
            if s < n * n { out[(ObservationKind.imageChannels - 1) * n * n + s] = 1 }
        case .window(let k):
            let n = environment.grid!.size
            guard s < n * n else {
                out.update(repeating: 0)
                return
            }
            let radius = k / 2
            let row = s / n
            let col = s % n
            for channel in 0..<ObservationKind.windowChannels {
                let outside: Float = channel == 0 ? 1 : 0
                for dr in 0..<k {
                    let r = row + dr - radius
                    for dc in 0..<k {
                        let c = col + dc - radius
                        let value =
                            (r >= 0 && r < n && c >= 0 && c < n) ? planes[channel * n * n + r * n + c] : outside
                        out[(channel * k + dr) * k + dc] = value
                    }
                }
            }
        }
    }

    /// The observation of state `s` (allocates).
    public func observation(ofState s: Int) -> [Float] {
        var out = [Float](repeating: 0, count: description.observation.count)
        out.withUnsafeMutableBufferPointer { observation(ofState: s, into: $0) }
        return out
    }

    /// Row-major `[|S|, count]`: every state's observation, for reading a network policy at every
    /// state (then the exact evaluation of the tabular code applies).
    public func observationTable() -> [Float] {
        let count = description.observation.count
        var out = [Float](repeating: 0, count: stateCount * count)
        out.withUnsafeMutableBufferPointer { all in
            for s in 0..<stateCount {
                observation(
                    ofState: s, into: UnsafeMutableBufferPointer(rebasing: all[(s * count)..<((s + 1) * count)]))
            }
        }
        return out
    }
}
