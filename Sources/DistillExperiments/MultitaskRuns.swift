import DistillCore
import DistillNN
import Foundation

/// The gridworlds of a multi-task run: the tasks it trains on (each with its own Q-learning
/// teacher, the run configuration's teacher with the task's seed) and the held-out ones it is
/// evaluated on without a teacher.
public struct MultitaskRunSpec: Sendable, Hashable, Codable {
    /// The generator's knobs, shared by every gridworld.
    public var gridworld: GridworldConfiguration
    /// The training gridworlds' seeds, task 0 first.
    public var seeds: [UInt64]
    /// The held-out gridworlds' seeds.
    public var heldOut: [UInt64]
    /// How the student is told its task (none for a student of one task).
    public var label: MultitaskGridworlds.TaskLabel

    /// The gridworlds `seeds` (tasks) and `heldOut` of `gridworld`, the student told its task by `label`.
    public init(
        gridworld: GridworldConfiguration, seeds: [UInt64], heldOut: [UInt64], label: MultitaskGridworlds.TaskLabel
    ) {
        self.gridworld = gridworld
        self.seeds = seeds
        self.heldOut = heldOut
        self.label = label
    }

    /// Checks that a student of architecture `student` can be told its task this way: one head per
    /// task for a head selector, one head otherwise, and a label for several tasks; returns the
    /// parsed architecture.
    @discardableResult
    public func validate(student: String) throws -> NetworkArchitecture {
        let architecture: NetworkArchitecture
        do { architecture = try NetworkArchitecture(parsing: student) } catch let error as NetworkError {
            throw DistillError(.invalidConfiguration, "multitask student: \(error.message)")
        }
        let k = seeds.count
        switch label {
        case .headSelector where architecture.heads != k:
            throw DistillError(
                .invalidConfiguration,
                "a multi-head student of \(k) tasks needs heads:\(k) in its architecture, not \"\(student)\"")
        case .none where k != 1:
            throw DistillError(
                .invalidConfiguration,
                "a student of \(k) tasks must be told its task (a task input or one head per task)")
        case .input where architecture.heads != 1, .none where architecture.heads != 1:
            throw DistillError(
                .invalidConfiguration,
                "\"\(student)\" has several heads: only a student told its task by a head selector reads them")
        default: break
        }
        _ = try family()
        return architecture
    }

    /// The family the seeds describe (it refuses overlapping lists).
    public func family() throws -> GridworldFamily {
        try GridworldFamily(configuration: gridworld, seeds: seeds, heldOut: heldOut)
    }
}

/// The share of the teacher's return that `student` keeps, normalised by the uniform random
/// policy's: `(student − uniform) / (teacher − uniform)`, 0 for chance and 1 for the teacher (the
/// Atari convention; Rusu et al.'s percentages are of raw scores, whose random level is near 0 in
/// most games, whereas a gridworld's raw return can be near 0 or negative for a good teacher, where
/// a raw ratio means nothing). Nan when the teacher is no better than chance.
func teacherShare(_ student: Double, teacher: Double, uniform: Double) -> Double {
    teacher > uniform + 1e-9 ? (student - uniform) / (teacher - uniform) : .nan
}

/// The geometric mean of shares, each floored at 1 % (a share at or below 0 would make it 0 or
/// undefined; Rusu et al. summarise ten games by it).
func geometricMeanShare(_ shares: [Double]) -> Double {
    guard !shares.isEmpty, shares.allSatisfy({ !$0.isNaN }) else { return .nan }
    return Foundation.exp(shares.reduce(0) { $0 + Foundation.log(max($1, 0.01)) } / Double(shares.count))
}

/// Trains one multi-task (or one-task) network student over the union of its gridworlds and records,
/// exactly, the return, the teacher's, the KL per state, the mean and geometric mean over tasks of
/// the share of each task's teacher's return, and the mean return on the held-out gridworlds.
///
/// Held out, a task-input student reads an all-zero task id (no task is its own) and a multi-head
/// student plays the mixture of its heads' policies (`π = (1/K) Σ_k π_k`: no head is the task's).
func executeMultitask(
    _ run: RunSpec, _ spec: NetworkRunSpec, _ tasks: MultitaskRunSpec, evaluation: [Int], metrics: [Metric]
) throws -> RunTable {
    var configuration = run.configuration
    configuration.evaluateEvery = 0
    try configuration.method.validate()
    let family = try tasks.family()
    let environments = try family.seeds.map { try family.environment(seed: $0) }
    let union = try MultitaskGridworlds(environments)
    let teachers = try zip(family.seeds, environments).map { seed, environment in
        var t = configuration.teacher
        t.seed = seed
        return try t.build(for: environment)
    }
    let teacherReturns = try zip(teachers, environments).map {
        try PolicyEvaluation.expectedReturn($1.mdp, policy: $0.probabilities)
    }
    let uniformReturns = try environments.map {
        let na = $0.mdp.actionCount
        return try PolicyEvaluation.expectedReturn(
            $0.mdp, policy: [Double](repeating: 1 / Double(na), count: $0.mdp.stateCount * na))
    }
    let teacher = union.teacher(teachers)
    let observation = try ObservationKind(parsing: spec.observation)
    let architecture = try tasks.validate(student: spec.student)
    let k = environments.count
    let (rows, shape) = try union.observationTable(observation, label: tasks.label, architecture: architecture)
    let network: PolicyValueNetwork
    do {
        network = try PolicyValueNetwork(
            architecture: architecture, inputShape: shape, actionCount: union.environment.mdp.actionCount,
            seed: configuration.seed)
    } catch let error as NetworkError {
        throw DistillError(.invalidConfiguration, "multitask student \(spec.student): \(error.message)")
    }
    let student = try NetworkStudent(
        network: network,
        optimizer: NetworkOptimizer(
            configuration.method.optimiser, learningRate: configuration.method.learningRate,
            parameterCount: network.parameterCount),
        observations: rows)
    // The held-out gridworlds' input tables: one per policy of the mixture.
    let heldOut = try family.heldOut.map { seed in
        let environment = try family.environment(seed: seed)
        let readings: [Int?] = tasks.label == .headSelector ? Array(0..<k) : [nil]
        let tables = try readings.map {
            try MultitaskGridworlds.observationTable(
                environment, observation, label: tasks.label, task: $0, of: k, architecture: architecture
            ).rows
        }
        return (environment, tables)
    }
    var trainer = try StudentTrainer(configuration, environment: union.environment, teacher: teacher, student: student)
    let problem = try Problem(environment: union.environment, teacher: teacher)
    var table = RunTable(metrics: metrics)
    let started = Date()
    func record() throws {
        table.iterations.append(trainer.iteration)
        table.environmentSteps.append(trainer.totalEnvironmentSteps)
        table.wallSeconds.append(Date().timeIntervalSince(started))
        let parameters = trainer.parameters
        var values = problem.measure(metrics, parameters: parameters)
        let policy = StudentPolicy(parameters).stateTable()
        let shares = try (0..<k).map {
            teacherShare(
                try union.taskReturn(policy, task: $0), teacher: teacherReturns[$0], uniform: uniformReturns[$0])
        }
        var heldOutReturns: [Double] = []
        for (environment, tables) in heldOut {
            var mixture = [Double](repeating: 0, count: environment.mdp.stateCount * environment.mdp.actionCount)
            for rows in tables {
                for (i, p) in networkPolicyTable(network, rows: rows).enumerated() {
                    mixture[i] += p / Double(tables.count)
                }
            }
            heldOutReturns.append(try PolicyEvaluation.expectedReturn(environment.mdp, policy: mixture))
        }
        for (i, metric) in metrics.enumerated() {
            switch metric {
            case .teacherShareMean: values[i] = shares.reduce(0, +) / Double(k)
            case .teacherShareGeometricMean: values[i] = geometricMeanShare(shares)
            case .heldOutReturn: values[i] = MeanInterval(heldOutReturns).mean
            default: break
            }
        }
        for (i, v) in values.enumerated() { table.values[i].append(v) }
    }
    try loop(
        iterations: configuration.iterations, evaluation: evaluation, current: { trainer.iteration },
        step: { _ = try trainer.runIteration() }, record: record)
    return table
}
