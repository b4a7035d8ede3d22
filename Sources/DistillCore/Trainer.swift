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
    /// The student: tabular (the default) or a network on an observation of each state.
    public var student = StudentSpec()
    /// Environments stepped together on an environment without a tabular MDP (CartPole, …).
    public var environments = 16
    /// Episodes of each sampled evaluation on such an environment (mean return with a 95 % CI).
    public var evaluationEpisodes = 100
    /// Rusu's setting (teacher-driven gameplay through a replay memory, minibatch updates; a
    /// network student and a supervised loss), or nil for the paper's on-policy path (the default).
    public var replay: ReplaySpec?

    /// The defaults.
    public init() {}

    /// Reads a configuration; fields it lacks (files written before they existed) keep their
    /// defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = TrainingConfiguration()
        environment = try c.decodeIfPresent(EnvironmentSpec.self, forKey: .environment) ?? defaults.environment
        teacher = try c.decodeIfPresent(TeacherSpec.self, forKey: .teacher) ?? defaults.teacher
        method = try c.decodeIfPresent(MethodSpec.self, forKey: .method) ?? defaults.method
        iterations = try c.decodeIfPresent(Int.self, forKey: .iterations) ?? defaults.iterations
        exact = try c.decodeIfPresent(Bool.self, forKey: .exact) ?? defaults.exact
        evaluateEvery = try c.decodeIfPresent(Int.self, forKey: .evaluateEvery) ?? defaults.evaluateEvery
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? defaults.seed
        student = try c.decodeIfPresent(StudentSpec.self, forKey: .student) ?? defaults.student
        environments = try c.decodeIfPresent(Int.self, forKey: .environments) ?? defaults.environments
        evaluationEpisodes =
            try c.decodeIfPresent(Int.self, forKey: .evaluationEpisodes) ?? defaults.evaluationEpisodes
        replay = try c.decodeIfPresent(ReplaySpec.self, forKey: .replay)
    }
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

/// The single-process trainer of a tabular student.
public typealias Trainer = StudentTrainer<TabularStudent>

/// The single-process trainer: sampled (or, for a tabular student, exact) updates through the one
/// learning step (``LearnerState``) that the learner role also uses. The environment has a tabular
/// MDP underneath, so every student's policy can be read at every state and evaluated exactly.
public struct StudentTrainer<S: Student>: Sendable {
    /// The configuration.
    public let configuration: TrainingConfiguration
    /// The environment.
    public let environment: Environment
    /// The teacher.
    public let teacher: Teacher
    /// Further kickstarting teachers (their λ are `configuration.teacher.kickstartWeights`).
    public let kickstartTeachers: [Teacher]
    /// The learning state: student, optimiser, critic, schedules, counters, RNG.
    public private(set) var state: LearnerState<S>
    private var buffer = EpisodeBuffer()
    /// The teacher's gameplay, with `configuration.replay` (Rusu's setting).
    public private(set) var memory: ReplayMemory?
    /// Minibatch updates owed to the environment steps stored.
    private var replayCredit = 0.0

    /// The student's logits at every state.
    public var parameters: StudentParameters { state.student.tabularParameters }
    /// The student critic (zero when the rule needs none).
    public var critic: TabularCritic {
        state.critic
            ?? TabularCritic(
                stateCount: environment.mdp.stateCount, learningRate: configuration.method.criticLearningRate,
                target: configuration.method.criticTarget)
    }
    /// The sampling generator.
    public var rng: Xoshiro256StarStar { state.rng }
    /// Optimisation steps done.
    public var iteration: Int { state.updates }
    /// Environment steps consumed.
    public var totalEnvironmentSteps: Int { Int(state.environmentSteps) }

    /// Trains `student` on a prebuilt environment and teacher(s).
    public init(
        _ configuration: TrainingConfiguration, environment: Environment, teacher: Teacher,
        kickstartTeachers: [Teacher] = [], student: S
    ) throws {
        guard configuration.iterations >= 0 else {
            throw DistillError(.invalidConfiguration, "iterations must be non-negative")
        }
        if configuration.exact && S.self != TabularStudent.self {
            throw DistillError(
                .invalidConfiguration, "exact expected updates need a tabular student; sample episodes instead")
        }
        self.configuration = configuration
        self.environment = environment
        self.teacher = teacher
        self.kickstartTeachers = kickstartTeachers
        let rule = configuration.method.rule(at: 0, teacherKind: configuration.teacher.kind)
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
        if let replay = configuration.replay {
            try replay.check(configuration.method)
            guard let network = student as? NetworkStudent else {
                throw DistillError(
                    .invalidConfiguration,
                    "a replay memory trains a network student on minibatches of observations; give --student, e.g. mlp:64,64"
                )
            }
            guard !configuration.exact else {
                throw DistillError(.invalidConfiguration, "--exact and a replay memory exclude each other")
            }
            guard kickstartTeachers.isEmpty else {
                throw DistillError(
                    .invalidConfiguration,
                    "the replay memory stores one teacher's outputs; further kickstarting teachers (--kickstart-teacher) are not mixed into it"
                )
            }
            memory = try ReplayMemory(
                capacity: replay.capacity, observationSize: network.network.inputSize,
                actionCount: environment.mdp.actionCount, hasActionValues: teacher.actionValues != nil)
        }
        state = try LearnerState(
            method: configuration.method, teacherKind: configuration.teacher.kind, environment: environment,
            student: student,
            kickstart: try KickstartTeachers(
                teachers: kickstartTeachers, weights: configuration.teacher.kickstartWeights),
            seed: configuration.seed)
    }

    /// Runs one optimisation step and returns its metrics.
    public mutating func runIteration() throws -> IterationRecord {
        let spec = configuration.method
        let mdp = environment.mdp
        let control = state.control
        var record = IterationRecord(
            iteration: state.updates + 1, environmentSteps: 0, episodes: 0,
            totalEnvironmentSteps: totalEnvironmentSteps, lossWeight: state.effectiveRule.lossWeight, updateNorm: 0)
        if case .mixture(let b) = control { record.beta = b }
        let outcome: UpdateOutcome
        if configuration.exact, var tabular = state as? LearnerState<TabularStudent> {
            outcome = try tabular.applyExactUpdate(mdp, teacher: teacher)
            state = tabular as! LearnerState<S>
        } else if let replay = configuration.replay, var network = state as? LearnerState<NetworkStudent> {
            outcome = replayIteration(replay, state: &network, record: &record)
            state = network as! LearnerState<S>
        } else {
            // The tabular fast path: the step's teacher is the kickstarting mixture as a table
            // (the learner role forms the same mixture per step, `KickstartEpisode`).
            let (stepTeacher, rule) = Kickstarting.apply(
                state.rule, teacher: teacher, further: kickstartTeachers,
                weights: configuration.teacher.kickstartWeights)
            let context = state.context
            var returns = 0.0
            var crossEntropy = 0.0
            let o = TabularTeacherOutputs(self.teacher)  // metrics against the main teacher
            let current = state.student.tabularPolicy()
            var steps = 0
            var rng = state.rng
            // Moved out of `self` (so that the closure below reads it while `state` is modified)
            // and back afterwards: the buffer's storage is reused, never copied.
            var buffer = self.buffer
            self.buffer = EpisodeBuffer()
            for _ in 0..<spec.episodesPerIteration {
                collectEpisode(
                    mdp, policy: current, teacher: stepTeacher, control: control, maxSteps: spec.maxEpisodeSteps,
                    rng: &rng, into: &buffer)
                state.withStudent { $0.accumulate(buffer, teacher: stepTeacher, rule: rule, context: context) }
                state.learnCritic(from: TabularEpisode(buffer, teacher: stepTeacher))
                steps += buffer.length
                var discount = 1.0
                for t in 0..<buffer.length {
                    returns += discount * buffer.reward(t)
                    discount *= mdp.discount
                    let s = Int(buffer.state(t))
                    crossEntropy += LossKernel.value(
                        .crossEntropy, o, slot: s, policy: current, row: Int(current.rowOfState[s]))
                }
            }
            self.buffer = buffer
            state.rng = rng
            state.countEnvironmentSteps(steps)
            record.environmentSteps = steps
            record.episodes = spec.episodesPerIteration
            record.sampledReturn = returns / Double(spec.episodesPerIteration)
            record.sampledCrossEntropy = crossEntropy / Double(spec.episodesPerIteration)
            outcome = state.applyUpdate()
        }
        switch outcome {
        case .applied(let norm): record.updateNorm = norm
        case .refused(let reason): throw DistillError(.invalidConfiguration, "update refused: \(reason)")
        }
        record.totalEnvironmentSteps = totalEnvironmentSteps
        let every = configuration.evaluateEvery
        if every > 0 && (iteration % every == 0 || iteration == configuration.iterations) {
            record.exact = try ExactMetrics(mdp, teacher: self.teacher, parameters: parameters)
        }
        return record
    }
}

extension StudentTrainer {
    /// Rusu's setting on a tabular environment: the teacher plays whole episodes, each step's
    /// observation (the student's, by state id) and the teacher's outputs there go into the memory,
    /// until the replay ratio owes an update; then one minibatch drawn uniformly from the memory.
    private mutating func replayIteration(
        _ replay: ReplaySpec, state: inout LearnerState<NetworkStudent>, record: inout IterationRecord
    ) -> UpdateOutcome {
        let mdp = environment.mdp
        let na = mdp.actionCount
        let n = state.student.network.inputSize
        let o = TabularTeacherOutputs(teacher)
        var policy: StudentPolicy?
        var returns = 0.0
        var crossEntropy = 0.0
        while replayCredit < 1 {
            let current = policy ?? state.student.tabularPolicy()
            policy = current
            collectEpisode(
                mdp, policy: current, teacher: teacher, control: .teacher,
                maxSteps: configuration.method.maxEpisodeSteps, rng: &state.rng, into: &buffer)
            var discount = 1.0
            for t in 0..<buffer.length {
                let s = Int(buffer.state(t))
                memory!.append(
                    observation: state.student.observations[(s * n)..<(s * n + n)],
                    probabilities: teacher.probabilities[(s * na)..<(s * na + na)],
                    logProbabilities: teacher.logProbabilities[(s * na)..<(s * na + na)], value: teacher.values[s],
                    actionValues: teacher.actionValues.map { $0[(s * na)..<(s * na + na)] })
                if memory!.count >= replay.batchSize { replayCredit += replay.updatesPerStep }
                returns += discount * buffer.reward(t)
                discount *= mdp.discount
                crossEntropy += LossKernel.value(
                    .crossEntropy, o, slot: s, policy: current, row: Int(current.rowOfState[s]))
            }
            state.countEnvironmentSteps(buffer.length)
            record.environmentSteps += buffer.length
            record.episodes += 1
        }
        if record.episodes > 0 {
            record.sampledReturn = returns / Double(record.episodes)
            record.sampledCrossEntropy = crossEntropy / Double(record.episodes)
        }
        replayCredit -= 1
        let slots = memory!.sample(replay.batchSize, using: &state.rng)
        let rule = state.effectiveRule
        let memory = self.memory!
        state.withStudent { $0.accumulateSupervised(memory, slots: slots, loss: rule.loss, weight: rule.lossWeight) }
        return state.applyUpdate()
    }
}

extension StudentTrainer where S == TabularStudent {
    /// Builds the environment and teacher from the configuration (files already embedded).
    public init(_ configuration: TrainingConfiguration) throws {
        try configuration.method.validate()
        let environment = try configuration.environment.build()
        try self.init(
            configuration, environment: environment, teacher: try configuration.teacher.build(for: environment),
            kickstartTeachers: try configuration.teacher.buildKickstartTeachers(for: environment))
    }

    /// A fresh tabular student (``initialStudent(for:)``) on a prebuilt environment and teacher(s).
    public init(
        _ configuration: TrainingConfiguration, environment: Environment, teacher: Teacher,
        kickstartTeachers: [Teacher] = []
    ) throws {
        try configuration.method.validate()
        try self.init(
            configuration, environment: environment, teacher: teacher, kickstartTeachers: kickstartTeachers,
            student: try TabularStudent.initial(for: environment, method: configuration.method))
    }

    /// The optimiser state.
    public var optimiser: Optimiser { state.student.optimiser }

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
