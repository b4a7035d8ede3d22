import Foundation

/// Everything a training run is: the problem, the method, the run length. Codable so that
/// metrics and checkpoints can record it.
public struct TrainingConfiguration: Sendable, Hashable, Codable {
    /// The environment.
    public var environment = EnvironmentSpec()
    /// The teacher.
    public var teacher = TeacherSpec()
    /// The method and optimiser.
    public var method = MethodSpec()
    /// Number of optimisation steps.
    public var iterations = 1000
    /// Use exact expected updates instead of sampled ones.
    public var exact = false
    /// Compute exact metrics every this many iterations (and at the last one); 0 = never.
    public var evaluateEvery = 100
    /// Seed of the run's sampling.
    public var seed: UInt64 = 0

    /// The defaults.
    public init() {}
}

/// One row of training metrics.
public struct IterationRecord: Sendable, Hashable, Codable {
    /// 1-based optimisation step.
    public var iteration: Int
    /// Environment steps consumed by this step's update (0 for exact updates).
    public var environmentSteps: Int
    /// Episodes consumed by this step's update.
    public var episodes: Int
    /// Environment steps consumed so far.
    public var totalEnvironmentSteps: Int
    /// Mean discounted return of this step's episodes (under the control policy).
    public var sampledReturn: Double?
    /// Mean of `Σ_t H×(π(s_t)‖π_θ(s_t))` over this step's episodes (under the control policy).
    public var sampledCrossEntropy: Double?
    /// Exact metrics after the step, when evaluated.
    public var exact: ExactMetrics?
    /// λ used (weight of ℓ).
    public var lossWeight: Double
    /// β of the mixture control (nil for other controls).
    public var beta: Double?
    /// Euclidean norm of the applied update direction.
    public var updateNorm: Double
}

/// The single-process trainer: sampled (or exact) updates of a tabular student.
public struct Trainer: Sendable {
    /// The configuration.
    public let configuration: TrainingConfiguration
    /// The environment.
    public let environment: Environment
    /// The teacher.
    public let teacher: Teacher
    /// Further kickstarting teachers (their λ are `configuration.teacher.kickstartWeights`).
    public let kickstartTeachers: [Teacher]
    /// The student.
    public private(set) var parameters: StudentParameters
    /// The optimiser state.
    public private(set) var optimiser: Optimiser
    /// The student critic.
    public private(set) var critic: TabularCritic
    /// The sampling generator.
    public private(set) var rng: Xoshiro256StarStar
    /// Optimisation steps done.
    public private(set) var iteration = 0
    /// Environment steps consumed.
    public private(set) var totalEnvironmentSteps = 0
    private var buffer = EpisodeBuffer()
    private var policy: StudentPolicy
    private var accumulator: UpdateAccumulator

    /// Builds the environment and teacher from the configuration (files already embedded).
    public init(_ configuration: TrainingConfiguration) throws {
        try configuration.method.validate()
        guard configuration.iterations >= 0 else {
            throw DistillError(.invalidConfiguration, "iterations must be non-negative")
        }
        let environment = try configuration.environment.build()
        try self.init(
            configuration, environment: environment, teacher: try configuration.teacher.build(for: environment),
            kickstartTeachers: try configuration.teacher.buildKickstartTeachers(for: environment))
    }

    /// Uses a prebuilt environment and teacher(s).
    public init(
        _ configuration: TrainingConfiguration, environment: Environment, teacher: Teacher,
        kickstartTeachers: [Teacher] = []
    ) throws {
        self.configuration = configuration
        self.environment = environment
        self.teacher = teacher
        self.kickstartTeachers = kickstartTeachers
        let rule = configuration.method.rule(at: 0, teacherKind: configuration.teacher.kind)
        guard kickstartTeachers.count == configuration.teacher.kickstartWeights.count else {
            throw DistillError(.invalidConfiguration, "give one kickstarting weight per further teacher")
        }
        if !kickstartTeachers.isEmpty && rule.loss != .crossEntropy {
            throw DistillError(
                .invalidConfiguration,
                "several kickstarting teachers combine cross-entropy losses; method \(configuration.method.method.rawValue) has \(rule.loss)"
            )
        }
        if rule.loss.needsActionValues && teacher.actionValues == nil {
            throw DistillError(
                .invalidConfiguration,
                "method \(configuration.method.method.rawValue) needs teacher Q-values; teacher \(teacher.identity) has none"
            )
        }
        let usesTeacherControl: Bool
        switch configuration.method.controlPolicy(at: 0) {
        case .teacher, .mixture: usesTeacherControl = true
        case .student, .uniform: usesTeacherControl = false
        }
        if usesTeacherControl && !configuration.exact {
            let na = teacher.actionCount
            for s in 0..<environment.mdp.stateCount where !environment.mdp.isTerminal[s] {
                let total = (0..<na).reduce(0) { $0 + teacher.probabilities[s * na + $1] }
                guard abs(total - 1) < 1e-6 else {
                    throw DistillError(
                        .invalidConfiguration,
                        "teacher \(teacher.identity) is not a distribution in state \(s) (sums to \(total)); it cannot be a control policy"
                    )
                }
            }
        }
        parameters = Trainer.initialStudent(for: environment)
        policy = StudentPolicy(parameters)
        accumulator = UpdateAccumulator(rowCount: parameters.rowCount, actionCount: parameters.actionCount)
        optimiser = Optimiser(kind: configuration.method.optimiser, learningRate: configuration.method.learningRate)
        critic = TabularCritic(
            stateCount: environment.mdp.stateCount, learningRate: configuration.method.criticLearningRate,
            target: configuration.method.criticTarget)
        rng = Xoshiro256StarStar(seed: configuration.seed)
    }

    /// The initial student: uniform tabular logits; for fig2 the tied sigmoid student with
    /// π(R) = 0.1 in both parameter rows (Fig. 2).
    public static func initialStudent(for environment: Environment) -> StudentParameters {
        let mdp = environment.mdp
        if let rows = environment.tiedRows {
            let rowCount = Int(rows.max()!) + 1
            var p = StudentParameters(rowOfState: rows, rowCount: rowCount, actionCount: mdp.actionCount)
            for r in 0..<rowCount { p.setRow(r, probabilities: [0.9, 0.1]) }
            return p
        }
        return StudentParameters(stateCount: mdp.stateCount, actionCount: mdp.actionCount)
    }

    /// Runs one optimisation step and returns its metrics.
    public mutating func runIteration() throws -> IterationRecord {
        let spec = configuration.method
        let (teacher, rule) = Kickstarting.apply(
            spec.rule(at: iteration, teacherKind: configuration.teacher.kind), teacher: self.teacher,
            further: kickstartTeachers, weights: configuration.teacher.kickstartWeights)
        let control = spec.controlPolicy(at: iteration)
        let mdp = environment.mdp
        var record = IterationRecord(
            iteration: iteration + 1, environmentSteps: 0, episodes: 0, totalEnvironmentSteps: totalEnvironmentSteps,
            lossWeight: rule.lossWeight, updateNorm: 0)
        if case .mixture(let b) = control { record.beta = b }
        if configuration.exact {
            let context = UpdateContext(discount: mdp.discount, control: control, clipping: spec.clipping)
            let update = try ExactUpdate.expectedUpdate(
                mdp, teacher: teacher, parameters: parameters, rule: rule, context: context)
            optimiser.apply(update, to: &parameters)
            policy = StudentPolicy(parameters)
            record.updateNorm = update.reduce(0) { $0 + $1 * $1 }.squareRoot()
        } else {
            let context = UpdateContext(
                discount: mdp.discount, control: control, clipping: spec.clipping,
                studentValues: rule.needsStudentValues ? critic.values : nil)
            var returns = 0.0
            var crossEntropy = 0.0
            let o = TabularTeacherOutputs(self.teacher)  // metrics against the main teacher
            let current = policy
            var episodes: [EpisodeBuffer] = []
            record.environmentSteps = collectAndAccumulate(
                mdp, teacher: teacher, policy: current, rule: rule, context: context,
                episodes: spec.episodesPerIteration,
                maxSteps: spec.maxEpisodeSteps, rng: &rng, buffer: &buffer, into: &accumulator
            ) { episode in
                var discount = 1.0
                for t in 0..<episode.length {
                    returns += discount * episode.reward(t)
                    discount *= mdp.discount
                    let s = Int(episode.state(t))
                    crossEntropy += LossKernel.value(
                        .crossEntropy, o, slot: s, policy: current, row: Int(current.rowOfState[s]))
                }
                if rule.needsStudentValues { episodes.append(episode) }
            }
            // The critic learns after the update is accumulated, so the update used the critic
            // of the parameters that generated the episodes.
            for e in episodes {
                critic.update(states: e.states, rewards: e.rewards, terminated: e.terminated, discount: mdp.discount)
            }
            record.episodes = spec.episodesPerIteration
            record.sampledReturn = returns / Double(spec.episodesPerIteration)
            record.sampledCrossEntropy = crossEntropy / Double(spec.episodesPerIteration)
            if optimiser.kind == .sgd {
                // Sparse fast path: only rows the episodes touched change.
                let squared = accumulator.applyStochasticGradientStep(
                    learningRate: optimiser.learningRate, to: &parameters, policy: &policy)
                optimiser.stepCount += 1
                record.updateNorm = squared.squareRoot()
            } else {
                let update = accumulator.finish(policy: policy)
                optimiser.apply(update, to: &parameters)
                policy = StudentPolicy(parameters)
                record.updateNorm = update.reduce(0) { $0 + $1 * $1 }.squareRoot()
            }
        }
        iteration += 1
        totalEnvironmentSteps += record.environmentSteps
        record.totalEnvironmentSteps = totalEnvironmentSteps
        let every = configuration.evaluateEvery
        if every > 0 && (iteration % every == 0 || iteration == configuration.iterations) {
            record.exact = try ExactMetrics(mdp, teacher: self.teacher, parameters: parameters)
        }
        return record
    }
}

/// `accumulateSampledUpdate` for an episode record whose teacher outputs are looked up from a
/// tabular teacher (the fast path of `distill train` and `distill bench core`); same rule code as
/// the trajectory path.
public func accumulateSampledUpdate(
    episode: EpisodeBuffer, teacher: Teacher, policy: StudentPolicy, rule: UpdateRule, context: UpdateContext,
    into acc: inout UpdateAccumulator
) {
    precondition(teacher.actionCount == policy.actionCount, "teacher and student disagree on |A|")
    precondition(!rule.loss.needsActionValues || teacher.actionValues != nil, "this loss needs teacher Q-values")
    if episode.length == 0 {
        acc.episodes += 1
        return
    }
    episode.stateStorage.withUnsafeBufferPointer { states in
        episode.actionStorage.withUnsafeBufferPointer { actions in
            episode.rewardStorage.withUnsafeBufferPointer { rewards in
                episode.behaviourStorage.withUnsafeBufferPointer { behaviour in
                    teacher.probabilities.withUnsafeBufferPointer { p in
                        teacher.logProbabilities.withUnsafeBufferPointer { lp in
                            teacher.values.withUnsafeBufferPointer { v in
                                teacher.actionValueTable.withUnsafeBufferPointer { q in
                                    let view = UnsafeTabularEpisode(
                                        states: states.baseAddress!, actions: actions.baseAddress!,
                                        rewards: rewards.baseAddress!, behaviour: behaviour.baseAddress!,
                                        probabilities: p.baseAddress!, logProbabilities: lp.baseAddress!,
                                        values: v.baseAddress!,
                                        actionValues: q.baseAddress, actionCount: teacher.actionCount,
                                        length: episode.length,
                                        terminated: episode.terminated)
                                    accumulateSampledUpdate(
                                        view, policy: policy, rule: rule, context: context, into: &acc)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The fast path of `distill train` and `distill bench core`: collects `episodes` episodes with
/// `context.control` and accumulates the rule's sampled update of each; returns the environment
/// steps consumed. `inspect` sees each episode after it is accumulated (metrics, critic).
public func collectAndAccumulate(
    _ mdp: TabularMDP, teacher: Teacher, policy: StudentPolicy, rule: UpdateRule, context: UpdateContext, episodes: Int,
    maxSteps: Int, rng: inout Xoshiro256StarStar, buffer: inout EpisodeBuffer, into acc: inout UpdateAccumulator,
    inspect: (EpisodeBuffer) -> Void = { _ in }
) -> Int {
    var steps = 0
    for _ in 0..<episodes {
        collectEpisode(
            mdp, policy: policy, teacher: teacher, control: context.control, maxSteps: maxSteps, rng: &rng,
            into: &buffer)
        accumulateSampledUpdate(
            episode: buffer, teacher: teacher, policy: policy, rule: rule, context: context, into: &acc)
        steps += buffer.length
        inspect(buffer)
    }
    return steps
}
