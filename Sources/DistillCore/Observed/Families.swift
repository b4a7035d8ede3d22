/// Seed lists on the command line: `0-99`, `3`, `1,4,9`, `0-9,20-29` (inclusive ranges, in the
/// order given; duplicates are an error).
public enum SeedList {
    /// The most seeds one list may name.
    public static let maximumCount = 1_000_000

    /// Parses `text`; the error names the piece at fault. `what` names the flag in messages.
    public static func parse(_ text: String, what: String = "seeds") throws -> [UInt64] {
        func bad(_ m: String) -> DistillError { DistillError(.invalidConfiguration, "\(what) '\(text)': \(m)") }
        let trimmed = text.filter { !$0.isWhitespace }
        guard !trimmed.isEmpty else { throw bad("empty; expected e.g. 0-99 or 1,4,9") }
        var seeds: [UInt64] = []
        var seen = Set<UInt64>()
        for piece in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            guard !piece.isEmpty else { throw bad("an empty item between commas") }
            let bounds = piece.split(separator: "-", omittingEmptySubsequences: false)
            let range: ClosedRange<UInt64>
            switch bounds.count {
            case 1:
                guard let s = UInt64(bounds[0]) else { throw bad("'\(piece)' is not a non-negative integer") }
                range = s...s
            case 2:
                guard let lo = UInt64(bounds[0]), let hi = UInt64(bounds[1]) else {
                    throw bad("'\(piece)' is not a range of non-negative integers like 0-99")
                }
                guard lo <= hi else { throw bad("range '\(piece)' runs backwards (\(lo) > \(hi))") }
                range = lo...hi
            default:
                throw bad("'\(piece)' is not a seed or a range like 0-99")
            }
            guard range.upperBound - range.lowerBound < UInt64(maximumCount - seeds.count) else {
                throw bad("more than \(maximumCount) seeds")
            }
            for s in range {
                guard seen.insert(s).inserted else { throw bad("seed \(s) is named twice") }
                seeds.append(s)
            }
        }
        return seeds
    }
}

/// A family of the paper's gridworlds, one per seed, all with the same knobs (so the same
/// observation shape): training seeds for multi-task work and disjoint held-out seeds for
/// generalisation tests (`--seeds 0-99 --held-out 100-109`).
public struct GridworldFamily: Sendable, Hashable, Codable {
    /// The generator's knobs, shared by every member.
    public var configuration: GridworldConfiguration
    /// The training seeds.
    public var seeds: [UInt64]
    /// The held-out seeds (disjoint from ``seeds``).
    public var heldOut: [UInt64]

    /// A family; throws when there is no training seed or the two lists overlap.
    public init(configuration: GridworldConfiguration = .init(), seeds: [UInt64], heldOut: [UInt64] = []) throws {
        guard !seeds.isEmpty else { throw DistillError(.invalidConfiguration, "a gridworld family needs a seed") }
        let overlap = Set(seeds).intersection(heldOut)
        guard overlap.isEmpty else {
            throw DistillError(
                .invalidConfiguration,
                "held-out seeds overlap the training seeds: \(overlap.sorted().prefix(5).map { "\($0)" }.joined(separator: ", "))"
            )
        }
        self.configuration = configuration
        self.seeds = seeds
        self.heldOut = heldOut
    }

    /// The family from command-line lists (see ``SeedList``).
    public init(configuration: GridworldConfiguration = .init(), seeds: String, heldOut: String?) throws {
        try self.init(
            configuration: configuration, seeds: try SeedList.parse(seeds, what: "--seeds"),
            heldOut: try heldOut.map { try SeedList.parse($0, what: "--held-out") } ?? [])
    }

    /// The gridworld of `seed`.
    public func environment(seed: UInt64) throws -> Environment {
        try Environments.gridworld(configuration, seed: seed)
    }

    /// The gridworld of `seed` observed with `observation`.
    public func observed(
        seed: UInt64, observation: ObservationKind, maxEpisodeSteps: Int? = nil
    ) throws
        -> TabularObservedEnvironment
    {
        try TabularObservedEnvironment(
            environment(seed: seed), observation: observation, maxEpisodeSteps: maxEpisodeSteps)
    }

    /// Every training member observed with `observation`.
    public func trainingEnvironments(
        observation: ObservationKind, maxEpisodeSteps: Int? = nil
    ) throws
        -> [TabularObservedEnvironment]
    {
        try seeds.map { try observed(seed: $0, observation: observation, maxEpisodeSteps: maxEpisodeSteps) }
    }

    /// Every held-out member observed with `observation`.
    public func heldOutEnvironments(
        observation: ObservationKind, maxEpisodeSteps: Int? = nil
    ) throws
        -> [TabularObservedEnvironment]
    {
        try heldOut.map { try observed(seed: $0, observation: observation, maxEpisodeSteps: maxEpisodeSteps) }
    }
}

/// A Codable description of an observed environment, enough to rebuild it (`distill env --env`).
public struct ObservedEnvironmentSpec: Sendable, Hashable, Codable {
    /// The environment names.
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// CartPole-v1.
        case cartpole
        /// Acrobot-v1.
        case acrobot
        /// MountainCar-v0.
        case mountaincar
        /// The paper's gridworld (tabular).
        case gridworld
        /// The gridworld with extra actions (tabular).
        case manyActions = "many-actions"
        /// The chain (tabular).
        case chain
        /// Fig. 2's MDP (tabular).
        case fig2
        /// A random small MDP (tabular).
        case random
        /// A tabular MDP from a JSON file.
        case file

        /// Other spellings accepted by ``named(_:)`` (gymnasium ids among them).
        static let aliases: [String: Kind] = [
            "cartpole-v1": .cartpole, "cart-pole": .cartpole, "acrobot-v1": .acrobot,
            "mountaincar-v0": .mountaincar, "mountain-car": .mountaincar,
        ]

        /// Whether a tabular MDP is underneath.
        public var isTabular: Bool { ![.cartpole, .acrobot, .mountaincar].contains(self) }

        /// Looks up a name (case-insensitive; gymnasium ids such as `CartPole-v1` work); an unknown
        /// name gets a "did you mean" with the closest known one.
        public static func named(_ name: String) throws -> Kind {
            let key = name.lowercased()
            if let kind = Kind(rawValue: key) ?? aliases[key] { return kind }
            let candidates = allCases.map(\.rawValue) + aliases.keys.sorted()
            let best = candidates.min { editDistance(key, $0) < editDistance(key, $1) }!
            let known = allCases.map(\.rawValue).joined(separator: ", ")
            let hint = editDistance(key, best) <= max(2, best.count / 3) ? " Did you mean '\(best)'?" : ""
            throw DistillError(.invalidConfiguration, "unknown environment '\(name)'.\(hint) Known: \(known).")
        }
    }

    /// Which environment.
    public var kind: Kind = .cartpole
    /// The tabular environment's spec (gridworld knobs, seed, file), for tabular kinds.
    public var tabular = EnvironmentSpec()
    /// The observation of tabular kinds.
    public var observation: ObservationKind = .stateID
    /// The time limit: nil keeps the environment's own (classic control: gymnasium's 500, 500,
    /// 200; tabular: none); 0 removes it.
    public var maxEpisodeSteps: Int?

    /// CartPole-v1.
    public init() {}

    /// Builds the environment.
    public func build() throws -> any ObservedEnvironment {
        if let m = maxEpisodeSteps, m < 0 {
            throw DistillError(.invalidConfiguration, "the time limit must be non-negative (0 = none), got \(m)")
        }
        func limit(_ standard: Int?) -> Int? { maxEpisodeSteps.map { $0 == 0 ? nil : $0 } ?? standard }
        if !kind.isTabular && observation != .stateID {
            throw DistillError(
                .invalidConfiguration,
                "--observation applies to tabular environments; \(kind.rawValue) has its own observation")
        }
        switch kind {
        case .cartpole: return CartPole(maxEpisodeSteps: limit(CartPole.timeLimit))
        case .acrobot: return Acrobot(maxEpisodeSteps: limit(Acrobot.timeLimit))
        case .mountaincar: return MountainCar(maxEpisodeSteps: limit(MountainCar.timeLimit))
        case .gridworld, .manyActions, .chain, .fig2, .random, .file:
            var spec = tabular
            spec.kind = EnvironmentSpec.Kind(rawValue: kind.rawValue)!
            return try TabularObservedEnvironment(spec.build(), observation: observation, maxEpisodeSteps: limit(nil))
        }
    }
}

/// The Levenshtein distance between two strings (for "did you mean").
func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a)
    let y = Array(b)
    var previous = Array(0...y.count)
    for i in 1...max(x.count, 1) where !x.isEmpty {
        var current = [i] + [Int](repeating: 0, count: y.count)
        for j in stride(from: 1, through: y.count, by: 1) {
            current[j] = Swift.min(
                previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return x.isEmpty ? y.count : previous[y.count]
}
