import DistillCore
import DistillNN
import Foundation

/// A teacher that an experiment trains itself (actor-critic from scratch, deterministic seeds) and
/// caches in its run directory (`teachers/<key>.safetensors`), so that resumes and other runs reuse it.
public struct TrainedTeacherRecipe: Sendable, Hashable, Codable {
    /// The network (`mlp:64,64`, `conv:8x3/mlp:64`).
    public var architecture: String
    /// What it reads on a gridworld (`image`, `one-hot`); ignored on CartPole.
    public var observation: String = "image"
    /// Actor-critic iterations (8 episodes each).
    public var iterations: Int
    /// Adam's step.
    public var learningRate: Double
    /// Seed of its weights and sampling.
    public var seed: UInt64
    /// How the trained network's logits are read: `policy` (softmax of the logits) or `q-values`
    /// (the logits read as Q, π = softmax(Q/τ) with τ = 0.01: Rusu's losses need Q).
    public var readAs: NetworkTeacher.Kind = .policy
    /// Snapshots evaluated during training; the best one is the teacher (actor-critic can
    /// collapse late on CartPole, docs/networks.md).
    public var snapshots: Int = 4
}

/// Where a run's teacher comes from.
public enum NetworkRunTeacher: Sendable, Hashable, Codable {
    /// None (actor-critic from scratch): the teacher of `reference` gives the reference return.
    case none(reference: TrainedTeacherRecipe)
    /// A network trained by the experiment.
    case trained(TrainedTeacherRecipe)
    /// The run configuration's tabular teacher, read by state id (a privileged teacher).
    case table
}

/// A run whose student is a network (or a window-aliased table), in a domain where the teacher is
/// itself trained by the experiment or read by state id.
public struct NetworkRunSpec: Sendable, Hashable, Codable {
    /// The environment family.
    public enum Domain: String, Sendable, Hashable, Codable {
        /// CartPole-v1, sampled returns (ObservedTrainer).
        case cartpole
        /// The paper's gridworld, exact returns (StudentTrainer reading observations).
        case gridworld
    }
    /// The environment family.
    public var domain: Domain
    /// The teacher.
    public var teacher: NetworkRunTeacher
    /// The student's architecture; `tabular-window` is the exact window-aliased tabular student.
    public var student: String
    /// What the student observes on a gridworld (`image`, `one-hot`, `window:K`).
    public var observation: String = "image"
    /// Episodes per evaluation on CartPole.
    public var evaluationEpisodes: Int = 50
    /// Updates per recorded iteration (the exact tabular window student takes several).
    public var updatesPerIteration: Int = 1
    /// Several gridworlds played as tasks (the multitask experiment), or nil for one.
    public var tasks: MultitaskRunSpec? = nil

    /// The exact tabular student whose rows are the distinct window observations.
    public static let tabularWindow = "tabular-window"
}

/// Trains, caches and hands out the experiment-trained teachers (one thread trains a given teacher;
/// the others wait for it).
final class TeacherCache: @unchecked Sendable {
    let directory: URL
    private let condition = NSCondition()
    private var building: Set<String> = []
    private var loaded: [String: (teacher: NetworkTeacher, url: URL)] = [:]

    init(directory: URL) { self.directory = directory.appendingPathComponent("teachers") }

    /// The teacher's file name: its domain, MDP seed and recipe.
    static func key(_ recipe: TrainedTeacherRecipe, domain: NetworkRunSpec.Domain, mdpSeed: UInt64) -> String {
        let observation = domain == .cartpole ? "" : "-\(recipe.observation)-mdp\(mdpSeed)"
        return slug(
            "\(domain.rawValue)\(observation)-\(recipe.architecture)-ac\(recipe.iterations)-lr\(recipe.learningRate)-s\(recipe.seed)-best\(recipe.snapshots)"
        )
    }

    /// The file of the teacher, trained now if it is not on disk.
    func file(_ recipe: TrainedTeacherRecipe, domain: NetworkRunSpec.Domain, mdpSeed: UInt64) throws -> URL {
        let key = Self.key(recipe, domain: domain, mdpSeed: mdpSeed)
        let url = directory.appendingPathComponent(key + ".safetensors")
        condition.lock()
        while building.contains(key) { condition.wait() }
        if FileManager.default.fileExists(atPath: url.path) {
            condition.unlock()
            return url
        }
        building.insert(key)
        condition.unlock()
        defer {
            condition.lock()
            building.remove(key)
            condition.broadcast()
            condition.unlock()
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let temporary = directory.appendingPathComponent(".\(key).\(ProcessInfo.processInfo.processIdentifier).tmp")
        switch domain {
        case .cartpole: try trainCartPoleTeacher(recipe, to: temporary)
        case .gridworld: try trainGridworldTeacher(recipe, mdpSeed: mdpSeed, to: temporary)
        }
        _ = try? FileManager.default.removeItem(at: url)
        try FileManager.default.moveItem(at: temporary, to: url)
        return url
    }

    /// The teacher read as its recipe says.
    func teacher(
        _ recipe: TrainedTeacherRecipe, domain: NetworkRunSpec.Domain, mdpSeed: UInt64
    ) throws
        -> NetworkTeacher
    {
        let loaded = try NetworkTeacher.load(from: try file(recipe, domain: domain, mdpSeed: mdpSeed))
        guard recipe.readAs != loaded.kind else { return loaded }
        return try NetworkTeacher(
            network: loaded.network, kind: recipe.readAs, temperature: recipe.readAs.defaultTemperature,
            observation: loaded.observation, environment: loaded.environment, metadata: loaded.metadata,
            source: loaded.source)
    }

    static func actorCritic(_ recipe: TrainedTeacherRecipe, cartpole: Bool) -> MethodSpec {
        var m = MethodSpec()
        m.method = .actorCritic
        m.optimiser = .adam
        m.learningRate = recipe.learningRate
        m.episodesPerIteration = 8
        if cartpole { m.criticLearningRate = 1 }
        return m
    }

    func trainCartPoleTeacher(_ recipe: TrainedTeacherRecipe, to url: URL) throws {
        let method = Self.actorCritic(recipe, cartpole: true)
        let prototype = CartPole()
        let description = prototype.description
        let student = try StudentSpec(architecture: recipe.architecture, seed: recipe.seed).buildNetwork(
            for: description, method: method)
        var trainer = try ObservedTrainer(
            method: method, environments: [CartPole](repeating: prototype, count: 16), student: student, teacher: nil,
            seed: recipe.seed)
        var best = -Double.infinity
        let every = max(1, recipe.iterations / max(1, recipe.snapshots))
        for i in 1...max(1, recipe.iterations) {
            _ = trainer.runIteration()
            guard i % every == 0 || i == recipe.iterations else { continue }
            let r = trainer.evaluate(episodes: 100, seed: recipe.seed &+ 0xEA1 &+ UInt64(i)).mean
            if r > best {
                best = r
                try NetworkTeacher.save(
                    network: trainer.state.student.network, kind: .policy, temperature: 1,
                    observation: description.name, environment: NetworkTeacher.TrainingEnvironment(description),
                    to: url,
                    metadata: [
                        "run.student": recipe.architecture, "run.method": "actor-critic", "run.iterations": "\(i)",
                        "run.evaluation_return": "\(r)",
                    ])
            }
        }
    }

    func trainGridworldTeacher(_ recipe: TrainedTeacherRecipe, mdpSeed: UInt64, to url: URL) throws {
        var c = TrainingConfiguration()
        c.environment.kind = .gridworld
        c.environment.seed = mdpSeed
        c.teacher.kind = .uniform
        c.method = Self.actorCritic(recipe, cartpole: false)
        c.iterations = recipe.iterations
        c.evaluateEvery = 0
        c.seed = recipe.seed &+ mdpSeed
        c.student = StudentSpec(architecture: recipe.architecture, observation: recipe.observation, seed: c.seed)
        let environment = try c.environment.build()
        let unused = try c.teacher.build(for: environment)
        let student = try c.student.buildNetwork(for: environment, method: c.method)
        var trainer = try StudentTrainer(c, environment: environment, teacher: unused, student: student)
        var best = -Double.infinity
        let every = max(1, recipe.iterations / max(1, recipe.snapshots))
        for i in 1...max(1, recipe.iterations) {
            _ = try trainer.runIteration()
            guard i % every == 0 || i == recipe.iterations else { continue }
            let r = try PolicyEvaluation.expectedReturn(
                environment.mdp, policy: StudentPolicy(trainer.parameters).stateTable())
            if r > best {
                best = r
                try trainer.saveStudentAsTeacher(to: url)
            }
        }
    }
}

/// Trains one network run and records its metrics at the experiment's evaluation points.
func executeNetwork(
    _ run: RunSpec, _ spec: NetworkRunSpec, teachers: TeacherCache, evaluation: [Int], metrics: [Metric]
) throws -> RunTable {
    if let tasks = spec.tasks {
        return try executeMultitask(run, spec, tasks, evaluation: evaluation, metrics: metrics)
    }
    switch spec.domain {
    case .cartpole: return try executeCartPole(run, spec, teachers: teachers, evaluation: evaluation, metrics: metrics)
    case .gridworld:
        return try executeGridworld(run, spec, teachers: teachers, evaluation: evaluation, metrics: metrics)
    }
}

/// Calls `record` at each evaluation point while `step` advances the iteration count.
func loop(
    iterations: Int, evaluation: [Int], current: () -> Int, step: () throws -> Void, record: () throws -> Void
) throws {
    var next = 0
    while next < evaluation.count && evaluation[next] <= 0 {
        try record()
        next += 1
    }
    for _ in 0..<iterations {
        try step()
        while next < evaluation.count && evaluation[next] <= current() {
            if evaluation[next] == current() { try record() }
            next += 1
        }
    }
}

private func executeCartPole(
    _ run: RunSpec, _ spec: NetworkRunSpec, teachers: TeacherCache, evaluation: [Int], metrics: [Metric]
) throws -> RunTable {
    let configuration = run.configuration
    let prototype = CartPole()
    let description = prototype.description
    let reference: NetworkTeacher
    var teacher: NetworkTeacher?
    switch spec.teacher {
    case .none(let recipe): reference = try teachers.teacher(recipe, domain: .cartpole, mdpSeed: 0)
    case .trained(let recipe):
        reference = try teachers.teacher(recipe, domain: .cartpole, mdpSeed: 0)
        teacher = reference
    case .table:
        throw DistillError(.invalidConfiguration, "CartPole has no state table: its teacher must be a network")
    }
    let na = description.actionCount
    let teacherPolicy = { (o: [Float], n: Int) in reference.outputs(observations: o, batch: n).probabilities }
    // The teacher's return: the same episodes (seed) for every run.
    let teacherReturn = ObservedTrainer<CartPole>.evaluate(
        prototype: prototype, episodes: 200, seed: 0x7EAC_4E12, policy: teacherPolicy
    ).mean
    let student = try StudentSpec(architecture: spec.student, seed: configuration.seed).buildNetwork(
        for: description, method: configuration.method)
    var trainer = try ObservedTrainer(
        method: configuration.method, environments: [CartPole](repeating: prototype, count: 16), student: student,
        teacher: teacher, seed: configuration.seed, replay: configuration.replay)
    var table = RunTable(metrics: metrics)
    let started = Date()
    try loop(
        iterations: configuration.iterations, evaluation: evaluation, current: { trainer.iteration },
        step: { _ = trainer.runIteration() },
        record: {
            let network = trainer.state.student.network
            var klSum = 0.0
            var states = 0
            let estimate = ObservedTrainer<CartPole>.evaluate(
                prototype: prototype, episodes: spec.evaluationEpisodes,
                seed: configuration.seed &+ 0x9E37_79B9 &+ UInt64(trainer.iteration)
            ) { observations, count in
                let logits = network.forward(observations, batch: count).logits
                let t = teacherPolicy(observations, count)
                var rows = [Double](repeating: 0, count: count * na)
                var row = [Double](repeating: 0, count: na)
                for i in 0..<count {
                    softmaxRow(logits, row: i, into: &row)
                    for a in 0..<na {
                        rows[i * na + a] = row[a]
                        let p = t[i * na + a]
                        if p > 0 { klSum += p * (Foundation.log(p) - Foundation.log(max(row[a], 1e-300))) }
                    }
                }
                states += count
                return rows
            }
            table.iterations.append(trainer.iteration)
            table.environmentSteps.append(Int(trainer.totalEnvironmentSteps))
            table.wallSeconds.append(Date().timeIntervalSince(started))
            for (k, metric) in metrics.enumerated() {
                let v: Double
                switch metric {
                case .studentReturn: v = estimate.mean
                case .teacherReturn: v = teacherReturn
                case .klPerState: v = klSum / Double(max(1, states))
                default: v = .nan
                }
                table.values[k].append(v)
            }
        })
    return table
}

/// The distinct rows of the observation table of `kind`: the student rows of a tabular student
/// that sees only that observation (states with equal observations share a row).
func aliasedRows(_ environment: Environment, observation kind: ObservationKind) throws -> (rows: [Int32], count: Int) {
    let observed = try TabularObservedEnvironment(environment, observation: kind)
    let table = observed.observationTable()
    let n = environment.mdp.stateCount
    let size = table.count / n
    var ids: [[Float]: Int32] = [:]
    var rows: [Int32] = []
    for s in 0..<n {
        let key = Array(table[(s * size)..<((s + 1) * size)])
        if let id = ids[key] {
            rows.append(id)
        } else {
            let id = Int32(ids.count)
            ids[key] = id
            rows.append(id)
        }
    }
    return (rows, ids.count)
}

private func executeGridworld(
    _ run: RunSpec, _ spec: NetworkRunSpec, teachers: TeacherCache, evaluation: [Int], metrics: [Metric]
) throws -> RunTable {
    var configuration = run.configuration
    configuration.evaluateEvery = 0
    let environment = try configuration.environment.build()
    let mdpSeed = configuration.environment.seed
    let teacher: Teacher
    switch spec.teacher {
    case .table: teacher = try configuration.teacher.build(for: environment)
    case .none(let recipe), .trained(let recipe):
        let network = try teachers.teacher(recipe, domain: .gridworld, mdpSeed: mdpSeed)
        teacher = try network.table(for: environment, observation: try ObservationKind(parsing: recipe.observation))
    }
    let problem = try Problem(environment: environment, teacher: teacher)
    var table = RunTable(metrics: metrics)
    let started = Date()
    func record(_ iteration: Int, _ steps: Int, _ parameters: StudentParameters) {
        table.iterations.append(iteration)
        table.environmentSteps.append(steps)
        table.wallSeconds.append(Date().timeIntervalSince(started))
        for (k, v) in problem.measure(metrics, parameters: parameters).enumerated() { table.values[k].append(v) }
    }
    if spec.student == NetworkRunSpec.tabularWindow {
        // The exact window-aliased tabular student: expected updates of the rule on logits shared
        // by the states with equal observations.
        let (rows, count) = try aliasedRows(environment, observation: try ObservationKind(parsing: spec.observation))
        let tied = Environment(name: environment.name, mdp: environment.mdp, grid: environment.grid, tiedRows: rows)
        configuration.exact = true
        let student = TabularStudent(
            parameters: StudentParameters(rowOfState: rows, rowCount: count, actionCount: environment.mdp.actionCount),
            optimiser: Optimiser(kind: configuration.method.optimiser, learningRate: configuration.method.learningRate))
        var trainer = try StudentTrainer(configuration, environment: tied, teacher: teacher, student: student)
        let k = max(1, spec.updatesPerIteration)
        try loop(
            iterations: configuration.iterations, evaluation: evaluation, current: { trainer.iteration / k },
            step: { for _ in 0..<k { _ = try trainer.runIteration() } },
            record: { record(trainer.iteration / k, trainer.totalEnvironmentSteps, trainer.parameters) })
        return table
    }
    configuration.student = StudentSpec(
        architecture: spec.student, observation: spec.observation, seed: configuration.seed)
    let student = try configuration.student.buildNetwork(for: environment, method: configuration.method)
    var trainer = try StudentTrainer(configuration, environment: environment, teacher: teacher, student: student)
    try loop(
        iterations: configuration.iterations, evaluation: evaluation, current: { trainer.iteration },
        step: { _ = try trainer.runIteration() },
        record: { record(trainer.iteration, trainer.totalEnvironmentSteps, trainer.parameters) })
    return table
}

/// The number of parameters of `architecture` on a domain's observations (for the compression ratios).
public func parameterCount(_ architecture: String, domain: NetworkRunSpec.Domain, observation: String) throws -> Int {
    let arch = try NetworkArchitecture(parsing: architecture)
    switch domain {
    case .cartpole:
        let d = CartPole().description
        return try PolicyValueNetwork(
            architecture: arch, inputShape: d.observation.shape, actionCount: d.actionCount, seed: 0
        ).parameterCount
    case .gridworld:
        var e = EnvironmentSpec()
        e.kind = .gridworld
        let environment = try e.build()
        return try StudentSpec(architecture: architecture, observation: observation).buildNetwork(
            for: environment, method: MethodSpec()
        ).network.parameterCount
    }
}
