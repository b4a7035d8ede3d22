/// A Codable description of the environment, enough to rebuild it (checkpoints record it).
public struct EnvironmentSpec: Sendable, Hashable, Codable {
    /// The environment kinds (`--env`).
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// The paper's random 20×20 gridworld (A.1/A.2).
        case gridworld
        /// The corridor of Sec. 4.2.
        case chain
        /// The gridworld with extra actions that stay put (Fig. 4).
        case manyActions = "many-actions"
        /// The counterexample of Fig. 2.
        case fig2
        /// A random small MDP (ours; tests and analysis).
        case random
        /// A tabular MDP from a JSON file.
        case file
        /// CartPole-v1 (no tabular MDP: a network student with `distill train`).
        case cartpole
        /// Acrobot-v1 (no tabular MDP).
        case acrobot
        /// MountainCar-v0 (no tabular MDP).
        case mountaincar
        /// Environments of a remote environment server at ``EnvironmentSpec/remote``
        /// (`--env remote:tcp://HOST:PORT`; docs/remote-environments.md). No tabular MDP.
        case remote

        /// Whether a tabular MDP is underneath (everything but classic control and remote ones).
        public var isTabular: Bool { ![.cartpole, .acrobot, .mountaincar, .remote].contains(self) }
    }

    /// Which environment.
    public var kind: Kind = .gridworld
    /// Seed of the generator (gridworld, many-actions, random).
    public var seed: UInt64 = 0
    /// Gridworld knobs (also for many-actions).
    public var gridworld = GridworldConfiguration()
    /// Number of actions of `many-actions` (4, 40, 400, 4000 in Fig. 4).
    public var manyActionsCount = 40
    /// Chain half-length T (corridor of 2T+1 cells).
    public var chainHalfLength = 5
    /// Overrides the environment's discount when set.
    public var discount: Double?
    /// Non-terminal states of `random`.
    public var randomStates = 5
    /// Actions of `random`.
    public var randomActions = 3
    /// Per-step end probability of `random`.
    public var randomEndProbability = 0.3
    /// The MDP itself for `file` (embedded so a checkpoint is self-contained).
    public var mdp: MDPDescription?
    /// Where `mdp` was read from (informational).
    public var path: String?
    /// The remote environment server's endpoint (`tcp://HOST:PORT`) for `remote`.
    public var remote: String?

    /// The defaults: the paper's gridworld with seed 0.
    public init() {}

    /// Builds the environment.
    public func build() throws -> Environment {
        if let d = discount, !(d >= 0 && d <= 1) {
            throw DistillError(.invalidConfiguration, "discount must be in [0, 1], got \(d)")
        }
        switch kind {
        case .gridworld, .manyActions:
            var g = gridworld
            if kind == .manyActions {
                guard manyActionsCount >= 4 else {
                    throw DistillError(
                        .invalidConfiguration, "many-actions needs at least 4 actions, got \(manyActionsCount)")
                }
                g.actionCount = manyActionsCount
            }
            if let d = discount { g.discount = d }
            return try Environments.gridworld(g, seed: seed)
        case .chain:
            return try Environments.chain(halfLength: chainHalfLength, discount: discount ?? 0.99)
        case .fig2:
            if let d = discount, d != 1 { throw DistillError(.invalidConfiguration, "fig2 is defined with γ = 1") }
            return Environments.fig2()
        case .random:
            return try Environments.random(
                states: randomStates, actions: randomActions, endProbability: randomEndProbability,
                discount: discount ?? 1, seed: seed)
        case .file:
            guard var m = mdp else {
                throw DistillError(.invalidConfiguration, "environment 'file' needs an MDP description (--env-file)")
            }
            if let d = discount { m.discount = d }
            return Environment(name: "file(\(path ?? "inline"))", mdp: try m.validated())
        case .remote:
            throw DistillError(
                .invalidConfiguration,
                "a remote environment has no tabular MDP: train a network student on it with distill train --env remote:tcp://HOST:PORT --student mlp:64,64 (the cluster and the exact analyses need a tabular environment)"
            )
        case .cartpole, .acrobot, .mountaincar:
            throw DistillError(
                .invalidConfiguration,
                "\(kind.rawValue) has no tabular MDP: train a network student on it with distill train --env \(kind.rawValue) --student mlp:64,64 (the cluster and the exact analyses need a tabular environment)"
            )
        }
    }
}

/// A Codable description of the teacher, enough to rebuild it given the environment.
public struct TeacherSpec: Sendable, Hashable, Codable {
    /// The teacher kinds (`--teacher`).
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// Tabular Q-learning, softmax(Q/T).
        case qLearning = "q-learning"
        /// Value iteration, greedy.
        case optimal
        /// Worst action with the optimal value function (Sec. 4.2).
        case adversarial
        /// A base teacher with flipped most-probable actions in a fraction of its states (Fig. 5).
        case noisy
        /// Uniform policy.
        case uniform
        /// Uniform policy, V ≡ 0 (TD + V_0).
        case zeroValue = "zero-value"
        /// The Fig. 2 loss `−4 π_θ(R|sR)` expressed as a teacher.
        case fig2
        /// A table from a JSON file.
        case file
    }

    /// How `V_π` is obtained.
    public enum ValueEstimate: String, Sendable, Hashable, Codable, CaseIterable {
        /// Policy evaluation.
        case exact
        /// Mean return of N rollouts per state (the paper uses 100).
        case monteCarlo = "monte-carlo"
    }

    /// Which teacher.
    public var kind: Kind = .qLearning
    /// Q-learning settings (also the base of `noisy` when its base is Q-learning).
    public var qLearning = QLearningConfiguration()
    /// Seed of the teacher's own randomness (Q-learning, noise, rollouts).
    public var seed: UInt64 = 0
    /// Fraction of visited states whose best action is flipped (`noisy`; Fig. 5: 0.15, 0.25).
    public var noiseFraction = 0.25
    /// The base teacher of `noisy`.
    public var noisyBase: Kind = .qLearning
    /// Exact or Monte-Carlo `V_π`.
    public var valueEstimate: ValueEstimate = .exact
    /// Rollouts per state for the Monte-Carlo value.
    public var valueRollouts = 100
    /// The table for `file` (embedded).
    public var table: TeacherDescription?
    /// Where `table` was read from (informational).
    public var path: String?
    /// Further kickstarting teachers (built with this spec's settings), each with its own constant λ
    /// in ``kickstartWeights``; the main teacher keeps the method's λ schedule.
    public var kickstartTeachers: [Kind] = []
    /// The λ of each of ``kickstartTeachers``.
    public var kickstartWeights: [Double] = []

    /// The defaults: Q-learning, T = 0.01, seed 0, exact values.
    public init() {}

    /// Builds the further kickstarting teachers for `environment`.
    public func buildKickstartTeachers(for environment: Environment) throws -> [Teacher] {
        guard kickstartTeachers.count == kickstartWeights.count else {
            throw DistillError(
                .invalidConfiguration,
                "\(kickstartTeachers.count) kickstarting teachers but \(kickstartWeights.count) weights: give one weight per teacher"
            )
        }
        guard kickstartWeights.allSatisfy({ $0 >= 0 && $0.isFinite }) else {
            throw DistillError(.invalidConfiguration, "kickstarting weights must be non-negative")
        }
        return try kickstartTeachers.map { kind in
            guard kind != .file else {
                throw DistillError(.invalidConfiguration, "a further kickstarting teacher cannot be a file")
            }
            var spec = self
            spec.kind = kind
            spec.kickstartTeachers = []
            spec.kickstartWeights = []
            return try spec.build(for: environment)
        }
    }

    /// Builds the teacher for `environment`.
    public func build(for environment: Environment) throws -> Teacher {
        let mdp = environment.mdp
        var teacher = try build(kind, mdp: mdp)
        if valueEstimate == .monteCarlo {
            guard valueRollouts > 0 else {
                throw DistillError(.invalidConfiguration, "value rollouts must be positive")
            }
            var rng = Xoshiro256StarStar(seed: seed &+ 0x5EED)
            teacher = teacher.withMonteCarloValues(mdp, rollouts: valueRollouts, rng: &rng)
        }
        return teacher
    }

    private func build(_ kind: Kind, mdp: TabularMDP) throws -> Teacher {
        switch kind {
        case .qLearning: return try Teachers.qLearning(mdp, qLearning, seed: seed)
        case .optimal: return try Teachers.optimal(mdp)
        case .adversarial: return try Teachers.adversarial(mdp)
        case .noisy:
            guard noisyBase != .noisy else {
                throw DistillError(.invalidConfiguration, "the base of a noisy teacher cannot be noisy")
            }
            return try Teachers.noisy(
                try build(noisyBase, mdp: mdp), fraction: noiseFraction, mdp: mdp, seed: seed &+ 1)
        case .uniform: return try Teachers.uniform(mdp)
        case .zeroValue: return Teachers.zeroValue(mdp)
        case .fig2:
            guard mdp.stateCount == 4 && mdp.actionCount == 2 else {
                throw DistillError(.invalidConfiguration, "teacher 'fig2' only fits environment 'fig2'")
            }
            return Teachers.fig2()
        case .file:
            guard let table else {
                throw DistillError(.invalidConfiguration, "teacher 'file' needs a table (--teacher-file)")
            }
            return try table.validated(for: mdp)
        }
    }
}

/// A Codable description of the method and its optimisation settings.
public struct MethodSpec: Sendable, Hashable, Codable {
    /// The distillation loss that replaces `H×(π‖π_θ)` (`--distill-loss`).
    public enum LossChoice: String, Sendable, Hashable, Codable, CaseIterable {
        /// `H×(π‖π_θ)` (Table 1).
        case crossEntropy = "cross-entropy"
        /// `−κ Σ_a π(a|s) π_θ(a|s)` (Fig. 2 with κ = 4).
        case agreement
    }

    /// The control policy kinds (`--control`).
    public enum ControlChoice: String, Sendable, Hashable, Codable, CaseIterable {
        /// The student.
        case student
        /// The teacher.
        case teacher
        /// Uniform.
        case uniform
        /// `β·π + (1−β)·π_θ` with β from ``MethodSpec/beta``.
        case mixture
    }

    /// The method (`--method`).
    public var method: Method = .nDistillR
    /// The distillation loss; nil picks `agreement` for the fig2 teacher and `cross-entropy` otherwise.
    public var distillationLoss: LossChoice?
    /// κ of the agreement loss (Fig. 2: 4).
    public var agreementScale = 4.0
    /// Rusu's temperature τ for `teacher-distill-kl` (Rusu et al.: 0.01).
    public var rusuTemperature = 0.01
    /// Overrides the method's control policy when set.
    public var control: ControlChoice?
    /// β of the mixture control policy over optimisation steps.
    public var beta: Schedule = .constant(0.5)
    /// Kickstarting's λ over optimisation steps (multiplies ℓ for every method).
    public var lambda: Schedule = .constant(1)
    /// SGD or Adam.
    public var optimiser: OptimiserKind = .sgd
    /// Step size (ours: 0.1).
    public var learningRate = 0.1
    /// V-trace clipping.
    public var clipping = VTraceClipping()
    /// Episodes per sampled update (ours: 8).
    public var episodesPerIteration = 8
    /// Episode cap; longer episodes are truncated (ours: 10 000).
    public var maxEpisodeSteps = 10_000
    /// Step size of the student critic.
    public var criticLearningRate = 0.1
    /// Target of the student critic.
    public var criticTarget: TabularCritic.Target = .monteCarlo
    /// Overrides whether the critic is subtracted as a baseline.
    public var baseline: Bool?
    /// Overrides how the return in the score term is estimated, for rules whose score term carries
    /// the environment reward (`+R`, `teacher-v-reward`, `baseline`): `bootstrapStudentValue` makes
    /// the TD(1) student of Fig. 5 (`r̂_t + γV̂_{π_θ}(s_{t+1})`). Rules without `r`, and the
    /// one-step rules (`td-teacher-v`, `td-zero-v`, `actor-critic`), keep their own.
    public var returnEstimate: ReturnEstimate?

    /// The defaults (n-distill+R, student control, SGD 0.1).
    public init() {}

    /// The rule at optimisation step `step` (λ applied), for a teacher of kind `teacherKind`.
    public func rule(at step: Int, teacherKind: TeacherSpec.Kind?) -> UpdateRule {
        let choice = distillationLoss ?? (teacherKind == .fig2 ? .agreement : .crossEntropy)
        let loss: DistillationLoss = choice == .agreement ? .agreement(scale: agreementScale) : .crossEntropy
        var r = method.rule(distillationLoss: loss, rusuTemperature: rusuTemperature)
        r.lossWeight = lambda.value(at: step)
        if let baseline { r.subtractsBaseline = baseline }
        if let returnEstimate, r.addsReward, r.returnEstimate == .monteCarlo { r.returnEstimate = returnEstimate }
        return r
    }

    /// The control policy at optimisation step `step`.
    public func controlPolicy(at step: Int) -> ControlPolicy {
        switch control {
        case nil: method.defaultControl
        case .student: .student
        case .teacher: .teacher
        case .uniform: .uniform
        case .mixture: .mixture(beta: beta.value(at: step))
        }
    }

    /// Checks ranges; the message names the setting.
    public func validate() throws {
        func bad(_ m: String) -> DistillError { DistillError(.invalidConfiguration, m) }
        guard learningRate > 0, learningRate.isFinite else {
            throw bad("learning rate must be positive, got \(learningRate)")
        }
        guard episodesPerIteration > 0 else { throw bad("episodes per iteration must be positive") }
        guard maxEpisodeSteps > 0 else { throw bad("max episode steps must be positive") }
        guard rusuTemperature > 0 else { throw bad("Rusu temperature must be positive") }
        guard criticLearningRate > 0, criticLearningRate <= 1 else {
            throw bad("critic learning rate must be in (0, 1]")
        }
        for step in [0, 1_000_000] {
            let b = beta.value(at: step)
            guard b >= 0, b <= 1 else { throw bad("β must stay in [0, 1], got \(b)") }
            guard lambda.value(at: step) >= 0 else { throw bad("λ must be non-negative") }
        }
    }
}

// MARK: - JSON holding only what applies

// config.json (and every configuration a checkpoint records) keeps only the settings that apply
// to the chosen environment, teacher and method: a chain run carries no gridworld knobs, an optimal
// teacher no Q-learning settings. A missing setting reads as its default, so files written before
// (with every field) are still read.

extension KeyedDecodingContainer {
    fileprivate func value<T: Decodable>(_ key: Key, or fallback: T) throws -> T {
        try decodeIfPresent(T.self, forKey: key) ?? fallback
    }
}

extension EnvironmentSpec {
    private enum CodingKeys: String, CodingKey {
        case kind, seed, gridworld, manyActionsCount, chainHalfLength, discount, randomStates, randomActions
        case randomEndProbability, mdp, path, remote
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = EnvironmentSpec()
        self.init()
        kind = try c.value(.kind, or: d.kind)
        seed = try c.value(.seed, or: d.seed)
        gridworld = try c.value(.gridworld, or: d.gridworld)
        manyActionsCount = try c.value(.manyActionsCount, or: d.manyActionsCount)
        chainHalfLength = try c.value(.chainHalfLength, or: d.chainHalfLength)
        discount = try c.decodeIfPresent(Double.self, forKey: .discount)
        randomStates = try c.value(.randomStates, or: d.randomStates)
        randomActions = try c.value(.randomActions, or: d.randomActions)
        randomEndProbability = try c.value(.randomEndProbability, or: d.randomEndProbability)
        mdp = try c.decodeIfPresent(MDPDescription.self, forKey: .mdp)
        path = try c.decodeIfPresent(String.self, forKey: .path)
        remote = try c.decodeIfPresent(String.self, forKey: .remote)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        try c.encode(seed, forKey: .seed)
        try c.encodeIfPresent(discount, forKey: .discount)
        switch kind {
        case .gridworld: try c.encode(gridworld, forKey: .gridworld)
        case .manyActions:
            try c.encode(gridworld, forKey: .gridworld)
            try c.encode(manyActionsCount, forKey: .manyActionsCount)
        case .chain: try c.encode(chainHalfLength, forKey: .chainHalfLength)
        case .random:
            try c.encode(randomStates, forKey: .randomStates)
            try c.encode(randomActions, forKey: .randomActions)
            try c.encode(randomEndProbability, forKey: .randomEndProbability)
        case .fig2, .cartpole, .acrobot, .mountaincar: break
        case .remote: try c.encodeIfPresent(remote, forKey: .remote)
        case .file:
            try c.encodeIfPresent(mdp, forKey: .mdp)
            try c.encodeIfPresent(path, forKey: .path)
        }
    }
}

extension TeacherSpec {
    private enum CodingKeys: String, CodingKey {
        case kind, qLearning, seed, noiseFraction, noisyBase, valueEstimate, valueRollouts, table, path
        case kickstartTeachers, kickstartWeights
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = TeacherSpec()
        self.init()
        kind = try c.value(.kind, or: d.kind)
        qLearning = try c.value(.qLearning, or: d.qLearning)
        seed = try c.value(.seed, or: d.seed)
        noiseFraction = try c.value(.noiseFraction, or: d.noiseFraction)
        noisyBase = try c.value(.noisyBase, or: d.noisyBase)
        valueEstimate = try c.value(.valueEstimate, or: d.valueEstimate)
        valueRollouts = try c.value(.valueRollouts, or: d.valueRollouts)
        table = try c.decodeIfPresent(TeacherDescription.self, forKey: .table)
        path = try c.decodeIfPresent(String.self, forKey: .path)
        kickstartTeachers = try c.value(.kickstartTeachers, or: d.kickstartTeachers)
        kickstartWeights = try c.value(.kickstartWeights, or: d.kickstartWeights)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        try c.encode(seed, forKey: .seed)
        let kinds = [kind] + (kind == .noisy ? [noisyBase] : []) + kickstartTeachers
        if kinds.contains(.qLearning) { try c.encode(qLearning, forKey: .qLearning) }
        if kind == .noisy {
            try c.encode(noiseFraction, forKey: .noiseFraction)
            try c.encode(noisyBase, forKey: .noisyBase)
        }
        try c.encode(valueEstimate, forKey: .valueEstimate)
        if valueEstimate == .monteCarlo { try c.encode(valueRollouts, forKey: .valueRollouts) }
        if kind == .file {
            try c.encodeIfPresent(table, forKey: .table)
            try c.encodeIfPresent(path, forKey: .path)
        }
        if !kickstartTeachers.isEmpty {
            try c.encode(kickstartTeachers, forKey: .kickstartTeachers)
            try c.encode(kickstartWeights, forKey: .kickstartWeights)
        }
    }
}

extension MethodSpec {
    private enum CodingKeys: String, CodingKey {
        case method, distillationLoss, agreementScale, rusuTemperature, control, beta, lambda, optimiser
        case learningRate, clipping, episodesPerIteration, maxEpisodeSteps, criticLearningRate, criticTarget
        case baseline, returnEstimate
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = MethodSpec()
        self.init()
        method = try c.value(.method, or: d.method)
        distillationLoss = try c.decodeIfPresent(LossChoice.self, forKey: .distillationLoss)
        agreementScale = try c.value(.agreementScale, or: d.agreementScale)
        rusuTemperature = try c.value(.rusuTemperature, or: d.rusuTemperature)
        control = try c.decodeIfPresent(ControlChoice.self, forKey: .control)
        beta = try c.value(.beta, or: d.beta)
        lambda = try c.value(.lambda, or: d.lambda)
        optimiser = try c.value(.optimiser, or: d.optimiser)
        learningRate = try c.value(.learningRate, or: d.learningRate)
        clipping = try c.value(.clipping, or: d.clipping)
        episodesPerIteration = try c.value(.episodesPerIteration, or: d.episodesPerIteration)
        maxEpisodeSteps = try c.value(.maxEpisodeSteps, or: d.maxEpisodeSteps)
        criticLearningRate = try c.value(.criticLearningRate, or: d.criticLearningRate)
        criticTarget = try c.value(.criticTarget, or: d.criticTarget)
        baseline = try c.decodeIfPresent(Bool.self, forKey: .baseline)
        returnEstimate = try c.decodeIfPresent(ReturnEstimate.self, forKey: .returnEstimate)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(method, forKey: .method)
        try c.encode(optimiser, forKey: .optimiser)
        try c.encode(learningRate, forKey: .learningRate)
        try c.encode(lambda, forKey: .lambda)
        try c.encode(clipping, forKey: .clipping)
        try c.encode(episodesPerIteration, forKey: .episodesPerIteration)
        try c.encode(maxEpisodeSteps, forKey: .maxEpisodeSteps)
        try c.encodeIfPresent(distillationLoss, forKey: .distillationLoss)
        // nil picks agreement for the fig2 teacher, which this spec does not know.
        if distillationLoss != .crossEntropy { try c.encode(agreementScale, forKey: .agreementScale) }
        if method == .teacherDistillKL { try c.encode(rusuTemperature, forKey: .rusuTemperature) }
        try c.encodeIfPresent(control, forKey: .control)
        if control == .mixture { try c.encode(beta, forKey: .beta) }
        if rule(at: 0, teacherKind: nil).needsStudentValues || baseline == true {
            try c.encode(criticLearningRate, forKey: .criticLearningRate)
            try c.encode(criticTarget, forKey: .criticTarget)
        }
        try c.encodeIfPresent(baseline, forKey: .baseline)
        try c.encodeIfPresent(returnEstimate, forKey: .returnEstimate)
    }
}
