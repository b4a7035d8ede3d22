import Foundation

/// Rusu et al.'s (2016) replay memory: the teacher plays, and each state it visits is stored with
/// its outputs there; the student is trained on minibatches sampled from the memory with a
/// supervised loss (KL(τ), NLL or MSE on the teacher's Q-values; FUNCTION-APPROXIMATION.md §5).
///
/// A fixed-capacity ring, allocated once: the `capacity + 1`-th row overwrites the oldest. A row is
/// what the supervised losses read — the observation `o` and the teacher's `π(·|o)`,
/// `log π(·|o)`, `V_π(o)` and, for a Q-network teacher, `Q(o,·)`. Actions and rewards are not kept:
/// no supervised loss reads them (the rules with a score term, which would, refuse replay:
/// ``ReplaySpec/check(_:)``).
///
/// The memory is the ``TeacherOutputs`` of its rows (slot = row index in `0..<capacity`), so the
/// losses' per-row gradients (``LossKernel``) read it directly.
public struct ReplayMemory: TeacherOutputs, Sendable {
    /// Rows the memory holds at most.
    public let capacity: Int
    /// Numbers per observation.
    public let observationSize: Int
    /// Number of actions.
    public let actionCount: Int
    /// Whether rows carry `Q(o,·)`.
    public let hasActionValues: Bool
    /// Rows stored now (`min(appended, capacity)`).
    public private(set) var count = 0
    /// Rows appended since creation (the next row goes to slot `appended % capacity`).
    public private(set) var appended = 0
    /// `[capacity × observationSize]`.
    public private(set) var observations: [Float]
    /// `π(·|o)`, `[capacity × actionCount]`.
    private var probabilities: [Double]
    /// `log π(·|o)`, floored as the teacher's (``teacherLogProbabilityFloor``).
    private var logProbabilities: [Double]
    /// `V_π(o)`, `[capacity]`.
    private var values: [Double]
    /// `Q(o,·)`, `[capacity × actionCount]`, or empty.
    private var actionValues: [Double]

    /// An empty memory of `capacity` rows; throws on sizes that are not positive.
    public init(capacity: Int, observationSize: Int, actionCount: Int, hasActionValues: Bool) throws {
        guard capacity > 0 else {
            throw DistillError(.invalidConfiguration, "the replay memory needs a positive capacity, got \(capacity)")
        }
        guard observationSize > 0 && actionCount > 0 else {
            throw DistillError(
                .invalidConfiguration,
                "a replay row needs observations and actions, got \(observationSize) numbers and \(actionCount) actions"
            )
        }
        // float observations; π, log π and Q per action and V in Double.
        let rowBytes = 4 * observationSize + 8 * (3 * actionCount + 1)
        let (bytes, overflow) = capacity.multipliedReportingOverflow(by: rowBytes)
        let available = ProcessInfo.processInfo.physicalMemory / 2
        guard !overflow && UInt64(bytes) <= available else {
            throw DistillError(
                .invalidConfiguration,
                "a replay memory of \(capacity) rows of \(rowBytes) bytes needs \(overflow ? "more than this machine has" : "\(bytes >> 20) MiB"); "
                    + "half of this machine's memory is \(available >> 20) MiB: lower --replay-size")
        }
        self.capacity = capacity
        self.observationSize = observationSize
        self.actionCount = actionCount
        self.hasActionValues = hasActionValues
        observations = [Float](repeating: 0, count: capacity * observationSize)
        probabilities = [Double](repeating: 0, count: capacity * actionCount)
        logProbabilities = probabilities
        values = [Double](repeating: 0, count: capacity)
        actionValues = hasActionValues ? probabilities : []
    }

    /// The slot the next row goes to.
    public var nextSlot: Int { appended % capacity }

    /// The rows stored, slot by slot (`0..<count`), as a checkpoint keeps them.
    public var storedRows:
        (
            observations: [Float], probabilities: [Double], logProbabilities: [Double], values: [Double],
            actionValues: [Double]
        )
    {
        let na = count * actionCount
        return (
            Array(observations.prefix(count * observationSize)), Array(probabilities.prefix(na)),
            Array(logProbabilities.prefix(na)), Array(values.prefix(count)),
            hasActionValues ? Array(actionValues.prefix(na)) : []
        )
    }

    /// A memory of `capacity` rows holding `rows` (``storedRows`` of a memory that had `appended`
    /// rows appended): a resumed learner samples from the same rows and appends where it left off.
    /// Throws when the sizes disagree or a number is not finite.
    public init(
        capacity: Int, observationSize: Int, actionCount: Int, hasActionValues: Bool, appended: Int,
        rows: (
            observations: [Float], probabilities: [Double], logProbabilities: [Double], values: [Double],
            actionValues: [Double]
        )
    ) throws {
        try self.init(
            capacity: capacity, observationSize: observationSize, actionCount: actionCount,
            hasActionValues: hasActionValues)
        let count = rows.values.count
        let na = count * actionCount
        guard appended >= 0, count == min(appended, capacity), rows.observations.count == count * observationSize,
            rows.probabilities.count == na, rows.logProbabilities.count == na,
            rows.actionValues.count == (hasActionValues ? na : 0)
        else {
            throw DistillError(
                .invalidConfiguration,
                "\(count) replay rows (\(appended) appended) do not fit a memory of \(capacity) rows of "
                    + "\(observationSize) numbers and \(actionCount) actions\(hasActionValues ? " with Q-values" : "")")
        }
        guard rows.observations.allSatisfy(\.isFinite), rows.probabilities.allSatisfy(\.isFinite),
            rows.logProbabilities.allSatisfy(\.isFinite), rows.values.allSatisfy(\.isFinite),
            rows.actionValues.allSatisfy(\.isFinite)
        else {
            throw DistillError(.invalidConfiguration, "the replay rows are not all finite")
        }
        observations.replaceSubrange(0..<rows.observations.count, with: rows.observations)
        probabilities.replaceSubrange(0..<na, with: rows.probabilities)
        logProbabilities.replaceSubrange(0..<na, with: rows.logProbabilities)
        values.replaceSubrange(0..<count, with: rows.values)
        if hasActionValues { actionValues.replaceSubrange(0..<na, with: rows.actionValues) }
        self.appended = appended
        self.count = count
    }

    /// Stores `observation` with row `row` of the teacher's batched `outputs` (its answer at that
    /// observation), overwriting the oldest row when full.
    public mutating func append(observation: ArraySlice<Float>, outputs: NetworkTeacher.Outputs, row: Int) {
        let na = actionCount
        let q = outputs.actionValues.map { $0[(row * na)..<(row * na + na)] }
        append(
            observation: observation, probabilities: outputs.probabilities[(row * na)..<(row * na + na)],
            logProbabilities: outputs.logProbabilities[(row * na)..<(row * na + na)], value: outputs.values[row],
            actionValues: q)
    }

    /// Stores one row, overwriting the oldest when full.
    public mutating func append(
        observation: ArraySlice<Float>, probabilities p: ArraySlice<Double>, logProbabilities lp: ArraySlice<Double>,
        value: Double, actionValues q: ArraySlice<Double>?
    ) {
        precondition(observation.count == observationSize, "an observation of \(observationSize) numbers")
        precondition(p.count == actionCount && lp.count == actionCount, "one probability per action")
        precondition(hasActionValues == (q != nil), "Q-values exactly when the memory keeps them")
        let slot = nextSlot
        let na = actionCount
        observations.replaceSubrange((slot * observationSize)..<((slot + 1) * observationSize), with: observation)
        probabilities.replaceSubrange((slot * na)..<((slot + 1) * na), with: p)
        logProbabilities.replaceSubrange((slot * na)..<((slot + 1) * na), with: lp)
        values[slot] = value
        if let q { actionValues.replaceSubrange((slot * na)..<((slot + 1) * na), with: q) }
        appended += 1
        count = min(appended, capacity)
    }

    /// `size` slots drawn uniformly, with replacement, from the rows stored (each with probability
    /// `1/count`), with `rng`.
    public func sample(_ size: Int, using rng: inout Xoshiro256StarStar) -> [Int] {
        precondition(count > 0, "sampling an empty replay memory")
        precondition(size > 0, "a minibatch needs at least one row")
        return (0..<size).map { _ in Int.random(in: 0..<count, using: &rng) }
    }

    /// The observation in `slot`.
    public func observation(_ slot: Int) -> ArraySlice<Float> {
        observations[(slot * observationSize)..<((slot + 1) * observationSize)]
    }

    /// The observations of `slots`, row-major `[slots.count × observationSize]`.
    public func observations(_ slots: [Int]) -> [Float] {
        var batch = [Float]()
        batch.reserveCapacity(slots.count * observationSize)
        for s in slots { batch.append(contentsOf: observation(s)) }
        return batch
    }

    public func teacherProbability(_ slot: Int, _ action: Int) -> Double { probabilities[slot * actionCount + action] }
    public func teacherLogProbability(_ slot: Int, _ action: Int) -> Double {
        logProbabilities[slot * actionCount + action]
    }
    public func teacherValue(_ slot: Int) -> Double { values[slot] }
    public func teacherActionValue(_ slot: Int, _ action: Int) -> Double {
        precondition(hasActionValues, "this loss reads Q-values: the memory was filled from a teacher without them")
        return actionValues[slot * actionCount + action]
    }
}

/// Rusu's setting for `distill train` (`--replay-size`, `--replay-batch`, `--replay-ratio`): the
/// teacher controls, each environment step is stored in a ``ReplayMemory`` of `capacity` rows, and
/// each optimisation step (iteration) is one minibatch of `batchSize` rows drawn uniformly from the
/// memory. `updatesPerStep` is the replay ratio: minibatch updates per environment step stored
/// (0.25 = one update every 4 steps, DQN's and Rusu's cadence); every stored row is then drawn
/// `updatesPerStep × batchSize` times on average while the memory is not yet overwriting.
/// Updates start once the memory holds one minibatch.
///
/// Without it (nil), the paper's path: every rule on fresh episodes of its control policy, each
/// used once.
public struct ReplaySpec: Sendable, Hashable, Codable {
    /// Rows of the memory (`--replay-size`).
    public var capacity: Int
    /// Rows per minibatch (`--replay-batch`).
    public var batchSize: Int
    /// Minibatch updates per environment step stored (`--replay-ratio`).
    public var updatesPerStep: Double

    /// The defaults of the options: minibatches of 32, one update per 4 environment steps (DQN's).
    public static let defaultBatchSize = 32
    /// One update per 4 environment steps.
    public static let defaultUpdatesPerStep = 0.25

    /// A memory of `capacity` rows, sampled in minibatches of `batchSize`, `updatesPerStep` updates
    /// per environment step.
    public init(
        capacity: Int, batchSize: Int = ReplaySpec.defaultBatchSize,
        updatesPerStep: Double = ReplaySpec.defaultUpdatesPerStep
    ) {
        self.capacity = capacity
        self.batchSize = batchSize
        self.updatesPerStep = updatesPerStep
    }

    /// Checks the sizes, and that `method` can learn from stored teacher gameplay: a supervised
    /// rule (a loss, no score term, no value gate) whose control is the teacher.
    public func check(_ method: MethodSpec) throws {
        guard (1...100_000_000).contains(capacity) else {
            throw DistillError(.invalidConfiguration, "--replay-size must be in 1...100000000 rows, got \(capacity)")
        }
        guard (1...capacity).contains(batchSize) else {
            throw DistillError(
                .invalidConfiguration,
                "--replay-batch must be in 1...\(capacity) (at most the memory's --replay-size), got \(batchSize)")
        }
        guard updatesPerStep > 0 && updatesPerStep <= 1_000 && updatesPerStep.isFinite else {
            throw DistillError(
                .invalidConfiguration,
                "--replay-ratio (minibatch updates per environment step) must be in (0, 1000], got \(updatesPerStep)")
        }
        let rule = method.rule(at: 0, teacherKind: nil)
        guard rule.isSupervised else {
            throw DistillError(
                .invalidConfiguration,
                "method \(method.method.rawValue) cannot learn from a replay memory: its update has a score-function "
                    + "term (or a value gate) that needs the return of episodes played by the control policy now, not "
                    + "stored teacher states; replay takes the supervised losses: teacher-distill, teacher-distill-kl, "
                    + "teacher-distill-nll, teacher-distill-mse")
        }
        guard method.controlPolicy(at: 0) == .teacher else {
            let why =
                method.control == nil
                ? "method \(method.method.rawValue)'s control is the student"
                : "--control \(method.control!.rawValue) makes another policy play"
            throw DistillError(
                .invalidConfiguration,
                "a replay memory holds the teacher's gameplay (Rusu's setting), so the teacher controls; \(why): use "
                    + "teacher-distill(-kl, -nll, -mse) without --control, or drop the --replay-* options for the "
                    + "paper's on-policy path")
        }
    }
}

extension UpdateRule {
    /// Whether the update is a sum of per-state losses `−∇ℓ(s)` alone (no score-function term, no
    /// value gate): then any state the teacher visited, stored and sampled again, gives an unbiased
    /// term of the same objective under the memory's state distribution.
    public var isSupervised: Bool { loss != .none && !hasScoreTerm && !gatesLossOnValue }
}
