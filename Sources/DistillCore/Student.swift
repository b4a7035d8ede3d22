import Foundation

/// The student's parameters `θ`: a flat table of softmax logits `z_θ`, one row of `|A|` logits per
/// parameter row, and the row each state reads (identity for tabular; shared rows for the tied
/// student of Fig. 2). The learner's master copy is Double; the wire format is Float.
public struct StudentParameters: Sendable, Hashable, Codable {
    /// Logits, row-major `[rowCount × actionCount]`.
    public var logits: [Double]
    /// Number of parameter rows.
    public let rowCount: Int
    /// Number of actions.
    public let actionCount: Int
    /// `rowOfState[s]`: the parameter row state `s` uses.
    public let rowOfState: [Int32]

    /// A tabular student (one row per state) with all logits zero (uniform policy).
    public init(stateCount: Int, actionCount: Int) {
        precondition(stateCount > 0 && actionCount > 0, "student needs states and actions")
        self.rowCount = stateCount
        self.actionCount = actionCount
        self.rowOfState = (0..<stateCount).map { Int32($0) }
        self.logits = [Double](repeating: 0, count: stateCount * actionCount)
    }

    /// A tied student: `rowOfState` maps states onto `rowCount` shared rows.
    public init(rowOfState: [Int32], rowCount: Int, actionCount: Int, logits: [Double]? = nil) {
        precondition(rowOfState.allSatisfy { $0 >= 0 && Int($0) < rowCount }, "row map points outside 0..<\(rowCount)")
        precondition(logits == nil || logits!.count == rowCount * actionCount, "logits have the wrong size")
        self.rowCount = rowCount
        self.actionCount = actionCount
        self.rowOfState = rowOfState
        self.logits = logits ?? [Double](repeating: 0, count: rowCount * actionCount)
    }

    /// Number of states the student covers.
    public var stateCount: Int { rowOfState.count }

    /// `π_θ(·|s) = softmax(z_θ(s,·))`.
    public func probabilities(state: Int) -> [Double] {
        let r = Int(rowOfState[state]) * actionCount
        return softmax(Array(logits[r..<(r + actionCount)]))
    }

    /// `π_θ(a|s)` for every state, row-major `[stateCount × actionCount]`.
    public func policyTable() -> [Double] {
        (0..<stateCount).flatMap { probabilities(state: $0) }
    }

    /// The logits as float32 (the wire format).
    public func float32Logits() -> [Float] { logits.map { Float($0) } }

    /// Replaces the logits by float32 values received over the wire.
    public mutating func setLogits(float32 values: [Float]) {
        precondition(values.count == logits.count, "got \(values.count) logits, expected \(logits.count)")
        logits = values.map { Double($0) }
    }

    /// Sets row `row` so that its policy is `probabilities` (logits = log p, with a floor).
    public mutating func setRow(_ row: Int, probabilities: [Double]) {
        precondition(probabilities.count == actionCount, "row needs \(actionCount) probabilities")
        for a in 0..<actionCount { logits[row * actionCount + a] = Foundation.log(max(probabilities[a], 1e-300)) }
    }
}

/// A per-version cache of the student's policy: probabilities, log-probabilities and running sums
/// per parameter row, computed once per parameter version so that the hot loop only reads.
public struct StudentPolicy: Sendable {
    /// Number of actions.
    public let actionCount: Int
    /// `rowOfState[s]`.
    public let rowOfState: [Int32]
    /// `π_θ(a|row)` row-major.
    public private(set) var probabilities: [Double]
    /// `log π_θ(a|row)` row-major.
    public private(set) var logProbabilities: [Double]
    /// Running sums of probabilities per row (last entry forced to 1), for sampling.
    public private(set) var cumulative: [Double]
    /// The raw logits `z_θ` row-major (Rusu's MSE regresses them).
    public private(set) var logits: [Double]

    /// Computes the cache for `parameters` (numerically stable log-softmax).
    public init(_ parameters: StudentParameters) {
        actionCount = parameters.actionCount
        rowOfState = parameters.rowOfState
        probabilities = [Double](repeating: 0, count: parameters.logits.count)
        logProbabilities = probabilities
        cumulative = probabilities
        logits = parameters.logits
        for r in 0..<parameters.rowCount { refresh(row: r, from: parameters) }
    }

    /// Recomputes the cache of one parameter row after its logits changed.
    public mutating func refresh(row r: Int, from parameters: StudentParameters) {
        let na = actionCount
        let base = r * na
        var m = -Double.infinity
        for a in 0..<na { m = max(m, parameters.logits[base + a]) }
        // One exp per action: e_a = exp(z_a − m) is kept in `probabilities` until normalised.
        var z = 0.0
        for a in 0..<na {
            let e = Foundation.exp(parameters.logits[base + a] - m)
            probabilities[base + a] = e
            z += e
        }
        let logZ = m + Foundation.log(z)
        let inverse = 1 / z
        var acc = 0.0
        for a in 0..<na {
            let x = parameters.logits[base + a]
            logits[base + a] = x
            logProbabilities[base + a] = x - logZ
            let p = probabilities[base + a] * inverse
            probabilities[base + a] = p
            acc += p
            cumulative[base + a] = acc
        }
        cumulative[base + na - 1] = 1
    }

    /// `π_θ(·|s)` for every state (expanding tied rows), row-major `[states × actions]`.
    public func stateTable() -> [Double] {
        rowOfState.flatMap { r in probabilities[(Int(r) * actionCount)..<((Int(r) + 1) * actionCount)] }
    }
}

/// The optimiser kinds.
public enum OptimiserKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// Plain stochastic gradient steps `θ ← θ + α·u`.
    case sgd
    /// Adam (Kingma & Ba 2015) on the update direction.
    case adam
    /// RMSProp (Tieleman & Hinton 2012; Rusu et al. 2016 distilled with it): the step divided by
    /// the root of a running mean of squared updates, `decay` 0.95 and `ε` 0.01 as DQN's.
    case rmsprop
}

/// An optimiser that applies an accumulated update direction `u` (the ascent direction of
/// METHODS.md eq. 1) to the parameters; its full state is Codable for checkpoints.
public struct Optimiser: Sendable, Hashable, Codable {
    /// SGD or Adam.
    public var kind: OptimiserKind
    /// Step size α.
    public var learningRate: Double
    /// Adam β1.
    public var beta1: Double = 0.9
    /// Adam β2.
    public var beta2: Double = 0.999
    /// Adam ε.
    public var epsilon: Double = 1e-8
    /// RMSProp's decay of the mean square.
    public var rmspropDecay: Double = 0.95
    /// RMSProp's ε, added to the root of the mean square.
    public var rmspropEpsilon: Double = 0.01
    /// Adam first moments (empty for SGD and RMSProp).
    public var firstMoment: [Double] = []
    /// Adam second moments, or RMSProp's mean square (empty for SGD).
    public var secondMoment: [Double] = []
    /// Number of steps taken.
    public var stepCount: Int = 0

    /// Creates an optimiser.
    public init(kind: OptimiserKind, learningRate: Double) {
        precondition(learningRate > 0 && learningRate.isFinite, "learning rate must be positive, got \(learningRate)")
        self.kind = kind
        self.learningRate = learningRate
    }

    /// Moves `parameters` along `update` (ascent).
    public mutating func apply(_ update: [Double], to parameters: inout StudentParameters) {
        precondition(
            update.count == parameters.logits.count,
            "update has \(update.count) entries, expected \(parameters.logits.count)")
        stepCount += 1
        switch kind {
        case .sgd:
            for i in 0..<update.count { parameters.logits[i] += learningRate * update[i] }
        case .adam:
            if firstMoment.count != update.count {
                firstMoment = [Double](repeating: 0, count: update.count)
                secondMoment = firstMoment
            }
            let c1 = 1 - Foundation.pow(beta1, Double(stepCount))
            let c2 = 1 - Foundation.pow(beta2, Double(stepCount))
            for i in 0..<update.count {
                firstMoment[i] = beta1 * firstMoment[i] + (1 - beta1) * update[i]
                secondMoment[i] = beta2 * secondMoment[i] + (1 - beta2) * update[i] * update[i]
                parameters.logits[i] +=
                    learningRate * (firstMoment[i] / c1) / ((secondMoment[i] / c2).squareRoot() + epsilon)
            }
        case .rmsprop:
            if secondMoment.count != update.count { secondMoment = [Double](repeating: 0, count: update.count) }
            for i in 0..<update.count {
                secondMoment[i] = rmspropDecay * secondMoment[i] + (1 - rmspropDecay) * update[i] * update[i]
                parameters.logits[i] += learningRate * update[i] / (secondMoment[i].squareRoot() + rmspropEpsilon)
            }
        }
    }
}

/// A tabular student critic `V̂_{π_θ}(s)`, learned from the student's own episodes; used as a
/// baseline, for `v-gated`'s gate and for TD(1) bootstrapping.
public struct TabularCritic: Sendable, Hashable, Codable {
    /// How the critic's target is formed.
    public enum Target: String, Sendable, Hashable, Codable {
        /// The sampled discounted return `Σ_{i≥t} γ^{i−t} r_i` (Monte Carlo).
        case monteCarlo = "mc"
        /// The one-step target `r_t + γ V̂(s_{t+1})` (TD).
        case temporalDifference = "td"
    }

    /// `V̂(s)`.
    public var values: [Double]
    /// Step size.
    public var learningRate: Double
    /// Target kind.
    public var target: Target

    /// A critic initialised to zero.
    public init(stateCount: Int, learningRate: Double = 0.1, target: Target = .monteCarlo) {
        values = [Double](repeating: 0, count: stateCount)
        self.learningRate = learningRate
        self.target = target
    }

    /// Updates the critic from one episode `s_0..s_T` with rewards `r_0..r_{T−1}`; `terminated`
    /// says whether `s_T` is terminal (else the tail is bootstrapped from `V̂(s_T)`).
    public mutating func update(states: [Int32], rewards: [Double], terminated: Bool, discount: Double) {
        let t = rewards.count
        precondition(states.count == t + 1, "need T+1 states for T rewards")
        var g = terminated ? 0 : values[Int(states[t])]
        for i in stride(from: t - 1, through: 0, by: -1) {
            let s = Int(states[i])
            let next = i + 1 == t ? (terminated ? 0 : values[Int(states[t])]) : values[Int(states[i + 1])]
            g = rewards[i] + discount * g
            let y = target == .monteCarlo ? g : rewards[i] + discount * next
            values[s] += learningRate * (y - values[s])
        }
    }
}
