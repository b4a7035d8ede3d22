/// A named tabular environment: the MDP, plus the grid layout when it is a gridworld (for the
/// local-window observation used by function approximation).
public struct Environment: Sendable {
    /// A short identity, e.g. `gridworld(seed=3)`.
    public var name: String
    /// The MDP.
    public var mdp: TabularMDP
    /// The grid, for gridworlds.
    public var grid: GridLayout?
    /// For `fig2`: the tied student row of each state (s0 alone, sL and sR shared).
    public var tiedRows: [Int32]?

    /// Creates an environment.
    public init(name: String, mdp: TabularMDP, grid: GridLayout? = nil, tiedRows: [Int32]? = nil) {
        self.name = name
        self.mdp = mdp
        self.grid = grid
        self.tiedRows = tiedRows
    }
}

extension Environment {
    /// The environment's name and size and a hash of its dynamics, e.g.
    /// `gridworld(seed=3) [401 states, 4 actions, mdp 5c1f0e2a9b3d4478]`: two environments with
    /// this string equal have the same MDP (start distribution, terminal flags, discount and every
    /// outcome's next state, probability and reward, hashed with 64-bit FNV-1a over their IEEE-754
    /// bit patterns), so a file made for one (a network teacher) is refused on another — another
    /// seed, other knobs or another MDP file — however it is named.
    public var identity: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ word: UInt64) {
            for i in 0..<8 {
                hash ^= (word >> (8 * UInt64(i))) & 0xff
                hash = hash &* 0x100_0000_01b3
            }
        }
        mix(UInt64(mdp.stateCount))
        mix(UInt64(mdp.actionCount))
        mix(mdp.discount.bitPattern)
        for p in mdp.startDistribution { mix(p.bitPattern) }
        for t in mdp.isTerminal { mix(t ? 1 : 0) }
        for o in mdp.outcomeOffsets { mix(UInt64(UInt32(bitPattern: o))) }
        for n in mdp.outcomeNext { mix(UInt64(UInt32(bitPattern: n))) }
        for p in mdp.outcomeProbability { mix(p.bitPattern) }
        for r in mdp.outcomeReward { mix(r.bitPattern) }
        let hex = String(hash, radix: 16)
        return "\(name) [\(mdp.stateCount) states, \(mdp.actionCount) actions, mdp "
            + String(repeating: "0", count: 16 - hex.count) + hex + "]"
    }
}

/// The content of one gridworld cell (paper, Appendix A.1/A.2).
public enum GridCell: Sendable, Hashable, Codable {
    /// Nothing.
    case empty
    /// A wall: moving into it leaves the agent in place.
    case wall
    /// A non-terminal cell that gives `reward` when entered.
    case reward(Double)
    /// A terminal cell that gives `reward` when entered and ends the episode.
    case terminal(Double)
}

/// The layout of a generated gridworld: cells row by row and the start cell.
public struct GridLayout: Sendable, Hashable, Codable {
    /// Number of rows (= columns).
    public var size: Int
    /// Cells in row-major order; cell `(row, column)` is state `row·size + column`.
    public var cells: [GridCell]
    /// The start cell's state id.
    public var start: Int

    /// The local square window of side `2·radius+1` around `state`: per cell three floats
    /// `(is_wall, reward, is_terminal)`, off-grid cells read as walls. Row-major, channels last.
    /// This is the partially observable observation of the paper's Appendix A.1.
    public func window(around state: Int, radius: Int) -> [Float] {
        precondition(state >= 0 && state < size * size, "state \(state) is not a grid cell")
        precondition(radius >= 0, "radius must be non-negative")
        let row = state / size
        let col = state % size
        var out: [Float] = []
        out.reserveCapacity((2 * radius + 1) * (2 * radius + 1) * 3)
        for dr in -radius...radius {
            for dc in -radius...radius {
                let r = row + dr
                let c = col + dc
                guard r >= 0, r < size, c >= 0, c < size else {
                    out += [1, 0, 0]
                    continue
                }
                switch cells[r * size + c] {
                case .empty: out += [0, 0, 0]
                case .wall: out += [1, 0, 0]
                case .reward(let x): out += [0, Float(x), 0]
                case .terminal(let x): out += [0, Float(x), 1]
                }
            }
        }
        return out
    }
}

/// Parameters of the random gridworld generator (paper, Appendix A.1/A.2). Values marked
/// (default) in METHODS.md are not public in the paper; they are ours and documented as such.
public struct GridworldConfiguration: Sendable, Hashable, Codable {
    /// Grid side (paper: 20).
    public var size: Int = 20
    /// Slip probability η: the move is replaced by a uniformly random direction (default 0.1).
    public var slip: Double = 0.1
    /// Probability that the episode ends after any action (paper: 0.01).
    public var endProbability: Double = 0.01
    /// Probability of a wall per cell (default 0.1).
    public var wallProbability: Double = 0.1
    /// Probability of a non-terminal −1 reward per cell (default 0.08).
    public var penaltyProbability: Double = 0.08
    /// Probability of each terminal reward +10, +5, −5, −10 per cell (default 0.01 each).
    public var terminalProbability: Double = 0.01
    /// Discount γ (default 0.99).
    public var discount: Double = 0.99
    /// Number of actions: 4 moves, the rest leave the agent in place (`many-actions`, Fig. 4).
    public var actionCount: Int = 4

    /// The paper's gridworld with the documented defaults.
    public init() {}
}

/// Built-in environments (METHODS.md §5).
public enum Environments {
    /// Generates the paper's random gridworld (Appendix A.1/A.2) from `seed`.
    ///
    /// Cells are scanned row by row; each gets at most one of: wall, −1 reward, terminal +10, +5,
    /// −5, −10, with the configured probabilities; the centre start cell stays empty. States are
    /// the cells plus one absorbing "episode over" state (id `size²`). Actions 0–3 are L, R, U, D;
    /// moving into a wall or off the grid stays put; with probability η the move is replaced by a
    /// uniformly random direction. The reward of the cell arrived in (also when staying put) is
    /// received; arriving in a terminal cell ends the episode; otherwise the episode ends with
    /// probability `endProbability` after the action. Extra actions (`actionCount > 4`) leave the
    /// agent in place and do not slip.
    public static func gridworld(_ config: GridworldConfiguration = .init(), seed: UInt64) throws -> Environment {
        let n = config.size
        guard n >= 1 else { throw DistillError(.invalidConfiguration, "grid size must be at least 1") }
        guard config.actionCount >= 4 else {
            throw DistillError(.invalidConfiguration, "a gridworld needs at least the 4 move actions")
        }
        for (name, p) in [
            ("slip", config.slip), ("end probability", config.endProbability),
            ("wall probability", config.wallProbability),
            ("penalty probability", config.penaltyProbability), ("terminal probability", config.terminalProbability),
        ] where !(p >= 0 && p <= 1) {
            throw DistillError(.invalidConfiguration, "\(name) must be in [0, 1], got \(p)")
        }
        guard config.wallProbability + config.penaltyProbability + 4 * config.terminalProbability <= 1 else {
            throw DistillError(.invalidConfiguration, "cell probabilities (wall + penalty + 4 × terminal) exceed 1")
        }
        var rng = Xoshiro256StarStar(seed: seed)
        let start = (n / 2) * n + n / 2
        var cells = [GridCell](repeating: .empty, count: n * n)
        for i in 0..<(n * n) {
            let u = rng.unitInterval()
            var edge = config.wallProbability
            if u < edge {
                cells[i] = .wall
                continue
            }
            edge += config.penaltyProbability
            if u < edge {
                cells[i] = .reward(-1)
                continue
            }
            for value in [10.0, 5.0, -5.0, -10.0] {
                edge += config.terminalProbability
                if u < edge {
                    cells[i] = .terminal(value)
                    break
                }
            }
        }
        cells[start] = .empty
        let layout = GridLayout(size: n, cells: cells, start: start)
        let over = n * n
        let count = n * n + 1
        var terminal = [Bool](repeating: false, count: count)
        terminal[over] = true
        for i in 0..<(n * n) { if case .terminal = cells[i] { terminal[i] = true } }
        var startDist = [Double](repeating: 0, count: count)
        startDist[start] = 1
        func moved(_ s: Int, _ d: Int) -> Int {
            let r = s / n
            let c = s % n
            let (nr, nc) = [(r, c - 1), (r, c + 1), (r - 1, c), (r + 1, c)][d]
            guard nr >= 0, nr < n, nc >= 0, nc < n else { return s }
            if case .wall = cells[nr * n + nc] { return s }
            return nr * n + nc
        }
        func reward(_ s: Int) -> Double {
            switch cells[s] {
            case .reward(let x), .terminal(let x): x
            default: 0
            }
        }
        let mdp = TabularMDP(
            stateCount: count, actionCount: config.actionCount, discount: config.discount,
            startDistribution: startDist, isTerminal: terminal
        ) { s, a in
            var arrival: [Int: Double] = [:]
            if a < 4 {
                arrival[moved(s, a), default: 0] += 1 - config.slip
                for d in 0..<4 { arrival[moved(s, d), default: 0] += config.slip / 4 }
            } else {
                arrival[s] = 1
            }
            var list: [Outcome] = []
            for (next, p) in arrival.sorted(by: { $0.key < $1.key }) where p > 0 {
                let r = reward(next)
                if terminal[next] || config.endProbability == 0 {
                    list.append(Outcome(next: next, probability: p, reward: r))
                } else {
                    list.append(Outcome(next: next, probability: p * (1 - config.endProbability), reward: r))
                    list.append(Outcome(next: over, probability: p * config.endProbability, reward: r))
                }
            }
            return list
        }
        let name =
            config.actionCount == 4
            ? "gridworld(seed=\(seed))" : "many-actions(actions=\(config.actionCount),seed=\(seed))"
        return Environment(name: name, mdp: mdp, grid: layout)
    }

    /// The chain of Sec. 4.2: a corridor of `2T+1` cells, start in the middle, actions L (0) and
    /// R (1), reward −1 on entering the left end and +1 on entering the right end, both terminal.
    public static func chain(halfLength t: Int = 5, discount: Double = 0.99) throws -> Environment {
        guard t >= 1 else {
            throw DistillError(.invalidConfiguration, "chain half-length T must be at least 1, got \(t)")
        }
        let count = 2 * t + 1
        var terminal = [Bool](repeating: false, count: count)
        terminal[0] = true
        terminal[count - 1] = true
        var start = [Double](repeating: 0, count: count)
        start[t] = 1
        let mdp = TabularMDP(
            stateCount: count, actionCount: 2, discount: discount, startDistribution: start, isTerminal: terminal
        ) { s, a in
            let next = a == 0 ? s - 1 : s + 1
            let r: Double = next == 0 ? -1 : (next == count - 1 ? 1 : 0)
            return [Outcome(next: next, probability: 1, reward: r)]
        }
        return Environment(name: "chain(T=\(t))", mdp: mdp)
    }

    /// The counterexample of Fig. 2: `s0 →L→ sL`, `s0 →R→ sR`; from `sL`: L ends with −1, R with
    /// −2; from `sR`: L ends with 0, R with −3; γ = 1. States: 0 = s0, 1 = sL, 2 = sR, 3 = end.
    /// Actions: 0 = L, 1 = R. The student ties sL and sR to one parameter row (``Environment/tiedRows``).
    public static func fig2() -> Environment {
        let mdp = TabularMDP(
            stateCount: 4, actionCount: 2, discount: 1, startDistribution: [1, 0, 0, 0],
            isTerminal: [false, false, false, true]
        ) { s, a in
            switch (s, a) {
            case (0, 0): [Outcome(next: 1, probability: 1, reward: 0)]
            case (0, _): [Outcome(next: 2, probability: 1, reward: 0)]
            case (1, 0): [Outcome(next: 3, probability: 1, reward: -1)]
            case (1, _): [Outcome(next: 3, probability: 1, reward: -2)]
            case (2, 0): [Outcome(next: 3, probability: 1, reward: 0)]
            default: [Outcome(next: 3, probability: 1, reward: -3)]
            }
        }
        return Environment(name: "fig2", mdp: mdp, tiedRows: [0, 1, 1, 1])
    }

    /// A random small episodic MDP (ours, for tests and `analyze`): `states` non-terminal states
    /// plus one terminal state; each (s, a) moves to 1–3 random states, and reaches the terminal
    /// state with probability at least `endProbability`; rewards uniform in [−1, 1].
    public static func random(
        states: Int, actions: Int, endProbability: Double = 0.3, discount: Double = 1, seed: UInt64
    ) throws -> Environment {
        guard states >= 1, actions >= 1 else {
            throw DistillError(.invalidConfiguration, "random MDP needs states ≥ 1 and actions ≥ 1")
        }
        guard endProbability > 0, endProbability <= 1 else {
            throw DistillError(
                .invalidConfiguration, "random MDP end probability must be in (0, 1], got \(endProbability)")
        }
        var rng = Xoshiro256StarStar(seed: seed)
        var table: [[[Outcome]]] = []
        for _ in 0..<states {
            var row: [[Outcome]] = []
            for _ in 0..<actions {
                let k = 1 + Int(rng.next() % 3)
                var weights = (0..<k).map { _ in 0.2 + rng.unitInterval() }
                let total = weights.reduce(0, +)
                weights = weights.map { $0 / total * (1 - endProbability) }
                var list = weights.map {
                    Outcome(next: Int(rng.next() % UInt64(states)), probability: $0, reward: 2 * rng.unitInterval() - 1)
                }
                list.append(Outcome(next: states, probability: endProbability, reward: 2 * rng.unitInterval() - 1))
                row.append(list)
            }
            table.append(row)
        }
        var start = (0..<states).map { _ in rng.unitInterval() + 0.1 } + [0]
        let total = start.reduce(0, +)
        start = start.map { $0 / total }
        let mdp = TabularMDP(
            stateCount: states + 1, actionCount: actions, discount: discount, startDistribution: start,
            isTerminal: Array(repeating: false, count: states) + [true]
        ) { s, a in table[s][a] }
        return Environment(name: "random(states=\(states),actions=\(actions),seed=\(seed))", mdp: mdp)
    }
}
