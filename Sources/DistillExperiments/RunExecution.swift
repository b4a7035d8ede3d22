import DistillCore
import Foundation

/// The environment, teacher and fixed reference quantities of one (MDP, teacher) pair, shared by
/// every run on it (the teacher's and the uniform policy's state visits are computed once).
public struct Problem: Sendable {
    /// The environment.
    public let environment: Environment
    /// The teacher.
    public let teacher: Teacher
    /// `Σ_a π log π` per state (minus the teacher's entropy), for KL = H× − H.
    let teacherNegativeEntropy: [Double]
    /// Undiscounted expected visits under the teacher (nil when its episodes need not end).
    let teacherVisits: [Double]?
    /// The same under the uniform policy.
    let uniformVisits: [Double]?
    /// The teacher's expected return (nil when the teacher is not a policy, as fig2's loss).
    let teacherReturn: Double?

    /// Builds the run's environment and teacher and the reference quantities.
    public init(_ run: RunSpec) throws {
        let environment = try run.configuration.environment.build()
        let teacher: Teacher
        switch run.teacherRecipe {
        case .configuration: teacher = try run.configuration.teacher.build(for: environment)
        case .liftedFromFourActions: teacher = try Problem.liftedTeacher(run.configuration, environment: environment)
        }
        try self.init(environment: environment, teacher: teacher)
    }

    /// Uses a prebuilt environment and teacher.
    public init(environment: Environment, teacher: Teacher) throws {
        self.environment = environment
        self.teacher = teacher
        let mdp = environment.mdp
        let na = mdp.actionCount
        var negativeEntropy = [Double](repeating: 0, count: mdp.stateCount)
        var isPolicy = true
        for s in 0..<mdp.stateCount where !mdp.isTerminal[s] {
            var total = 0.0
            for a in 0..<na {
                let p = teacher.probabilities[s * na + a]
                total += p
                if p > 0 { negativeEntropy[s] += p * Foundation.log(p) }
            }
            if abs(total - 1) > 1e-6 { isPolicy = false }
        }
        teacherNegativeEntropy = negativeEntropy
        func visitsOrNil(_ policy: [Double]) -> [Double]? { try? PolicyEvaluation.visits(mdp, policy: policy) }
        teacherVisits = isPolicy ? visitsOrNil(teacher.probabilities) : nil
        uniformVisits = visitsOrNil([Double](repeating: 1 / Double(na), count: mdp.stateCount * na))
        teacherReturn = isPolicy ? try? PolicyEvaluation.expectedReturn(mdp, policy: teacher.probabilities) : nil
    }

    /// ``TeacherRecipe/liftedFromFourActions``: the configured Q-learning teacher trained on the
    /// 4-action gridworld of the same seed; its greedy values `V(s) = max_a Q(s,a)` give every action of
    /// the many-action MDP the one-step backup `Q(s,a) = E[r + γV(s')]`; the policy is the ε-greedy
    /// `(1 − ε)·softmax(Q/T) + ε/|A|` of the paper's Q-learning teachers (Sec. 3.2: ε-greedy, ε = 0.1),
    /// so every action has a finite log-probability (−log(|A|/ε): 3.7 at |A| = 4, 10.6 at 4000).
    static func liftedTeacher(_ configuration: TrainingConfiguration, environment: Environment) throws -> Teacher {
        var fourActions = configuration.environment
        fourActions.kind = .gridworld
        let base = try configuration.teacher.build(for: try fourActions.build())
        guard let q4 = base.actionValues else {
            throw DistillError(.invalidConfiguration, "the lifted teacher needs a base teacher with Q-values")
        }
        let mdp = environment.mdp
        let na = mdp.actionCount
        let v = (0..<mdp.stateCount).map { s in
            mdp.isTerminal[s] ? 0 : (0..<base.actionCount).map { q4[s * base.actionCount + $0] }.max()!
        }
        let q = PolicyEvaluation.actionValues(mdp, stateValues: v)
        var policy: [Double] = []
        policy.reserveCapacity(mdp.stateCount * na)
        let epsilon = configuration.teacher.qLearning.epsilon
        for s in 0..<mdp.stateCount {
            let greedy = softmax(
                Array(q[(s * na)..<((s + 1) * na)]), temperature: configuration.teacher.qLearning.temperature)
            policy += greedy.map { (1 - epsilon) * $0 + epsilon / Double(na) }
        }
        return Teacher(
            identity: "lifted(\(base.identity),|A|=\(na))", stateCount: mdp.stateCount, actionCount: na,
            probabilities: policy, values: try PolicyEvaluation.values(mdp, policy: policy), actionValues: q)
    }

    /// The metrics of a student with `parameters` (exact, by policy evaluation).
    public func measure(_ metrics: [Metric], parameters: StudentParameters) -> [Double] {
        let mdp = environment.mdp
        let na = mdp.actionCount
        let policy = StudentPolicy(parameters)
        let needsKL = metrics.contains {
            [.klUnderStudent, .klUnderTeacher, .klUnderUniform, .klPerState].contains($0)
        }
        var kl = [Double](repeating: 0, count: mdp.stateCount)
        if needsKL {
            for s in 0..<mdp.stateCount where !mdp.isTerminal[s] {
                let row = Int(policy.rowOfState[s]) * na
                var crossEntropy = 0.0
                for a in 0..<na {
                    let p = teacher.probabilities[s * na + a]
                    if p > 0 { crossEntropy -= p * policy.logProbabilities[row + a] }
                }
                kl[s] = crossEntropy + teacherNegativeEntropy[s]
            }
        }
        func expectation(_ visits: [Double]?) -> Double {
            guard let visits else { return .infinity }
            return zip(visits, kl).reduce(0) { $0 + $1.0 * $1.1 }
        }
        return metrics.map { metric in
            switch metric {
            case .studentReturn:
                return (try? PolicyEvaluation.expectedReturn(mdp, policy: policy.stateTable())) ?? .nan
            case .teacherReturn: return teacherReturn ?? .nan
            case .klUnderStudent: return expectation(try? PolicyEvaluation.visits(mdp, policy: policy.stateTable()))
            case .klPerState:
                guard let visits = try? PolicyEvaluation.visits(mdp, policy: policy.stateTable()) else {
                    return .infinity
                }
                return expectation(visits) / max(visits.reduce(0, +), 1e-300)
            case .klUnderTeacher: return expectation(teacherVisits)
            case .klUnderUniform: return expectation(uniformVisits)
            case .rightAtStart: return parameters.probabilities(state: 0)[1]
            case .rightAtSecond: return parameters.probabilities(state: min(1, mdp.stateCount - 1))[1]
            // The multi-task experiment's own (MultitaskRuns.swift).
            case .teacherShareMean, .teacherShareGeometricMean, .heldOutReturn: return .nan
            }
        }
    }
}

/// A run's recorded table: one row per evaluation point.
public struct RunTable: Sendable, Hashable {
    /// Iterations after which each row was taken.
    public var iterations: [Int] = []
    /// Environment steps consumed up to each row.
    public var environmentSteps: [Int] = []
    /// Wall seconds since the run started.
    public var wallSeconds: [Double] = []
    /// The metrics, in column order.
    public var metrics: [Metric] = []
    /// `values[m][row]`.
    public var values: [[Double]] = []

    /// Creates an empty table with `metrics` columns.
    public init(metrics: [Metric]) {
        self.metrics = metrics
        values = metrics.map { _ in [] }
    }

    /// The column of `metric` (nil if not recorded).
    public func column(_ metric: Metric) -> [Double]? {
        metrics.firstIndex(of: metric).map { values[$0] }
    }

    /// The CSV text: `iteration,env_steps,wall_seconds,<metrics>`.
    public var csv: String {
        var lines = [(["iteration", "env_steps", "wall_seconds"] + metrics.map(\.rawValue)).joined(separator: ",")]
        for r in iterations.indices {
            var cells = ["\(iterations[r])", "\(environmentSteps[r])", String(format: "%.4f", wallSeconds[r])]
            cells += values.map { "\($0[r])" }
            lines.append(cells.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Parses ``csv``; throws naming the file's problem.
    public init(csv text: String, source: String) throws {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard !lines.isEmpty else { throw DistillError(.invalidConfiguration, "\(source): empty run file") }
        let header = lines.removeFirst().split(separator: ",").map(String.init)
        guard header.count >= 3, header[0] == "iteration" else {
            throw DistillError(.invalidConfiguration, "\(source): not a run file (header \(header.prefix(3)))")
        }
        var metrics: [Metric] = []
        for name in header.dropFirst(3) {
            guard let m = Metric(rawValue: name) else {
                throw DistillError(.invalidConfiguration, "\(source): unknown column '\(name)'")
            }
            metrics.append(m)
        }
        self.init(metrics: metrics)
        for (n, line) in lines.enumerated() {
            let cells = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard cells.count == header.count, let i = Int(cells[0]), let e = Int(cells[1]), let w = Double(cells[2])
            else {
                throw DistillError(.invalidConfiguration, "\(source): row \(n + 2) is malformed: \(line)")
            }
            iterations.append(i)
            environmentSteps.append(e)
            wallSeconds.append(w)
            for k in metrics.indices { values[k].append(Double(cells[3 + k]) ?? .nan) }
        }
    }
}

/// Trains one run and records its metrics at the experiment's evaluation points.
public func execute(_ run: RunSpec, problem: Problem, evaluation: [Int], metrics: [Metric]) throws -> RunTable {
    var configuration = run.configuration
    configuration.evaluateEvery = 0
    if configuration.student.isTabular {
        var trainer = try Trainer(configuration, environment: problem.environment, teacher: problem.teacher)
        return try record(
            &trainer, iterations: configuration.iterations, problem: problem, evaluation: evaluation,
            metrics: metrics)
    }
    // A network student: the same recording, its policy read at every state's observation (exact
    // metrics).
    try configuration.method.validate()
    let student = try configuration.student.buildNetwork(for: problem.environment, method: configuration.method)
    var trainer = try StudentTrainer(
        configuration, environment: problem.environment, teacher: problem.teacher, student: student)
    return try record(
        &trainer, iterations: configuration.iterations, problem: problem, evaluation: evaluation,
        metrics: metrics)
}

/// Runs `iterations` of `trainer`, recording the metrics at each evaluation point (0 = before the
/// first update).
func record<S: Student>(
    _ trainer: inout StudentTrainer<S>, iterations: Int, problem: Problem, evaluation: [Int], metrics: [Metric]
) throws -> RunTable {
    var table = RunTable(metrics: metrics)
    let started = Date()
    var next = 0
    func record() {
        table.iterations.append(trainer.iteration)
        table.environmentSteps.append(trainer.totalEnvironmentSteps)
        table.wallSeconds.append(Date().timeIntervalSince(started))
        for (k, v) in problem.measure(metrics, parameters: trainer.parameters).enumerated() {
            table.values[k].append(v)
        }
    }
    while next < evaluation.count && evaluation[next] <= 0 {
        record()
        next += 1
    }
    for _ in 0..<iterations {
        _ = try trainer.runIteration()
        while next < evaluation.count && evaluation[next] <= trainer.iteration {
            if evaluation[next] == trainer.iteration { record() }
            next += 1
        }
    }
    return table
}
