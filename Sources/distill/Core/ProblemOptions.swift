import ArgumentParser
import DistillCore
import DistillNN
import Foundation

/// `--env`: an environment kind, or `remote:tcp://HOST:PORT` (a remote environment server).
struct EnvironmentChoice: ExpressibleByArgument {
    /// The kind.
    var kind: EnvironmentSpec.Kind
    /// For `remote`: the endpoint after `remote:`.
    var remote: String?

    init(_ kind: EnvironmentSpec.Kind) { self.kind = kind }

    init?(argument: String) {
        if argument.hasPrefix("remote:") {
            kind = .remote
            remote = String(argument.dropFirst("remote:".count))
        } else if let kind = EnvironmentSpec.Kind(rawValue: argument), kind != .remote {
            self.kind = kind
        } else {
            return nil
        }
    }

    static var allValueStrings: [String] {
        EnvironmentSpec.Kind.allCases.filter { $0 != .remote }.map(\.rawValue) + ["remote:tcp://HOST:PORT"]
    }

    var defaultValueDescription: String { remote.map { "remote:\($0)" } ?? kind.rawValue }
}

extension TeacherSpec.Kind: ExpressibleByArgument {}
extension TeacherSpec.ValueEstimate: ExpressibleByArgument {}
extension Method: ExpressibleByArgument {}
extension MethodSpec.LossChoice: ExpressibleByArgument {}
extension MethodSpec.ControlChoice: ExpressibleByArgument {}
extension OptimiserKind: ExpressibleByArgument {}
extension TabularCritic.Target: ExpressibleByArgument {}

/// How a schedule is shaped on the command line.
enum ScheduleShape: String, CaseIterable, ExpressibleByArgument {
    case constant, linear, exponential
}

/// Reads a file for a command; DistillCore itself does no I/O.
func readInputFile(_ path: String, flag: String) throws -> Data {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ValidationError("\(flag): cannot read '\(path)' (missing or unreadable)")
    }
    return data
}

/// Turns a DistillCore error into a command-line validation error with the same message.
func validating<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as DistillError {
        throw ValidationError(error.message)
    }
}

/// `--env`, `--env-file`, `--seed` and the environment knobs (shared with the runtime commands).
struct EnvironmentOptions: ParsableArguments {
    /// The single source of every default below.
    static let defaults = EnvironmentSpec()

    @Option(
        help:
            "Environment kind (ignored with --env-file); remote:tcp://HOST:PORT: a remote environment server's, for network students (distill train, eval; docs/remote-environments.md)."
    )
    var env = EnvironmentChoice(EnvironmentOptions.defaults.kind)

    @Option(help: ArgumentHelp("Tabular MDP as a JSON file (schema in the README); replaces --env.", valueName: "path"))
    var envFile: String?

    @Option(help: "Seed of the environment generator; also the default seed of the teacher and of the run.")
    var seed: UInt64 = EnvironmentOptions.defaults.seed

    @Option(help: "Gridworld side length (the paper's).")
    var gridSize = EnvironmentOptions.defaults.gridworld.size

    @Option(help: "Gridworld slip probability η.")
    var slip = EnvironmentOptions.defaults.gridworld.slip

    @Option(help: "Gridworld probability that the episode ends after an action (the paper's).")
    var endProbability = EnvironmentOptions.defaults.gridworld.endProbability

    @Option(help: "Gridworld wall probability per cell.")
    var wallProbability = EnvironmentOptions.defaults.gridworld.wallProbability

    @Option(help: "Gridworld −1 reward probability per cell.")
    var penaltyProbability = EnvironmentOptions.defaults.gridworld.penaltyProbability

    @Option(help: "Gridworld probability of each terminal reward +10, +5, −5, −10 per cell.")
    var terminalProbability = EnvironmentOptions.defaults.gridworld.terminalProbability

    @Option(help: "Number of actions of many-actions (Fig. 4: 4, 40, 400, 4000).")
    var actions = EnvironmentOptions.defaults.manyActionsCount

    @Option(help: "Chain half-length T (corridor of 2T+1 cells; Sec. 4.2's).")
    var chainLength = EnvironmentOptions.defaults.chainHalfLength

    @Option(help: "Non-terminal states of the random MDP.")
    var randomStates = EnvironmentOptions.defaults.randomStates

    @Option(help: "Actions of the random MDP.")
    var randomActions = EnvironmentOptions.defaults.randomActions

    @Option(help: "Override the environment's discount γ (gridworld default 0.99, chain 0.99, fig2 1).")
    var discount: Double?

    /// The Codable description (reads --env-file).
    func spec() throws -> EnvironmentSpec {
        var spec = EnvironmentSpec()
        spec.kind = env.kind
        if let remote = env.remote {
            guard remote.hasPrefix("tcp://") else {
                throw ValidationError(
                    "--env remote:\(remote): a remote environment server is named remote:tcp://HOST:PORT, e.g. remote:tcp://127.0.0.1:5560"
                )
            }
            spec.remote = remote
        }
        spec.seed = seed
        spec.gridworld.size = gridSize
        spec.gridworld.slip = slip
        spec.gridworld.endProbability = endProbability
        spec.gridworld.wallProbability = wallProbability
        spec.gridworld.penaltyProbability = penaltyProbability
        spec.gridworld.terminalProbability = terminalProbability
        spec.manyActionsCount = actions
        spec.chainHalfLength = chainLength
        spec.randomStates = randomStates
        spec.randomActions = randomActions
        spec.discount = discount
        if let envFile {
            spec.kind = .file
            spec.path = envFile
            let data = try readInputFile(envFile, flag: "--env-file")
            spec.mdp = try validating { try JSONInput.decode(MDPDescription.self, from: data, what: "MDP") }
        }
        return spec
    }

    /// Builds the environment; errors become `ValidationError`s naming the problem.
    func build() throws -> (EnvironmentSpec, Environment) {
        let s = try spec()
        try checkMemory(s)
        return (s, try validating { try s.build() })
    }
}

/// `--teacher`, `--teacher-file` and the teacher knobs (shared with the runtime commands).
struct TeacherOptions: ParsableArguments {
    /// The single source of every default below.
    static let defaults = TeacherSpec()

    @Option(help: "Teacher kind (ignored with --teacher-file).")
    var teacher: TeacherSpec.Kind = TeacherOptions.defaults.kind

    @Option(
        help: ArgumentHelp(
            "Teacher as a file, replacing --teacher: a JSON table (docs/file-formats.md) or a network teacher "
                + "(safetensors, docs/networks.md), read at every state's observation.", valueName: "path"))
    var teacherFile: String?

    @Option(
        help: ArgumentHelp(
            "Teacher policy temperature T: softmax(Q/T) of q-learning, 0 = greedy (Fig. 3: 0, 0.01, 0.1; "
                + "\(TeacherOptions.defaults.qLearning.temperature) if not given); softmax(logits/T) of a network "
                + "--teacher-file (if not given: the file's teacher.temperature).", valueName: "T"))
    var temperature: Double?

    @Option(help: "Q-learning ε of the ε-greedy behaviour (the paper's).")
    var epsilon = TeacherOptions.defaults.qLearning.epsilon

    @Option(help: "Q-learning step size (ours).")
    var qLearningRate = TeacherOptions.defaults.qLearning.learningRate

    @Option(help: "Q-learning environment steps (ours).")
    var qLearningSteps = TeacherOptions.defaults.qLearning.steps

    @Option(help: "Noisy teacher: fraction of visited states whose best action is flipped (Fig. 5: 0.15, 0.25).")
    var noise = TeacherOptions.defaults.noiseFraction

    @Option(help: "Base teacher of the noisy teacher.")
    var noisyBase: TeacherSpec.Kind = TeacherOptions.defaults.noisyBase

    @Option(help: "Seed of the teacher's randomness (default: --seed).")
    var teacherSeed: UInt64?

    @Option(help: "How V_π is obtained: policy evaluation or rollouts per state.")
    var teacherValue: TeacherSpec.ValueEstimate = TeacherOptions.defaults.valueEstimate

    @Option(help: "Rollouts per state for --teacher-value monte-carlo (the paper's).")
    var valueRollouts = TeacherOptions.defaults.valueRollouts

    @Option(help: "A further kickstarting teacher (repeatable; kinds as --teacher), mixed into the main one's loss.")
    var kickstartTeacher: [TeacherSpec.Kind] = []

    @Option(help: "The constant λ of each --kickstart-teacher, in the same order (repeatable).")
    var kickstartWeight: [Double] = []

    /// The Codable description (reads --teacher-file). `environment` builds the environment, which
    /// a network teacher file is read on (its table is embedded, as a JSON table's is).
    func spec(defaultSeed: UInt64, environment: () throws -> Environment) throws -> TeacherSpec {
        var spec = TeacherSpec()
        spec.kind = teacher
        spec.qLearning.temperature = temperature ?? TeacherOptions.defaults.qLearning.temperature
        spec.qLearning.epsilon = epsilon
        spec.qLearning.learningRate = qLearningRate
        spec.qLearning.steps = qLearningSteps
        spec.noiseFraction = noise
        spec.noisyBase = noisyBase
        spec.seed = teacherSeed ?? defaultSeed
        spec.valueEstimate = teacherValue
        spec.valueRollouts = valueRollouts
        guard kickstartTeacher.count == kickstartWeight.count else {
            throw ValidationError("give one --kickstart-weight per --kickstart-teacher")
        }
        spec.kickstartTeachers = kickstartTeacher
        spec.kickstartWeights = kickstartWeight
        if let teacherFile {
            spec.kind = .file
            spec.path = teacherFile
            let data = try readInputFile(teacherFile, flag: "--teacher-file")
            if SafetensorsFile.looksLikeSafetensors(data) || teacherFile.hasSuffix(".safetensors") {
                spec.table = try validating {
                    var network = try NetworkTeacher.load(from: URL(fileURLWithPath: teacherFile))
                    if let temperature { network = try network.withTemperature(temperature) }
                    return try network.tableDescription(for: try environment())
                }
            } else {
                spec.table = try validating {
                    try JSONInput.decode(TeacherDescription.self, from: data, what: "teacher")
                }
            }
        }
        return spec
    }

    /// The teacher of an environment without states to tabulate (cartpole, acrobot,
    /// mountaincar): a network teacher file, read at every observation, or none.
    func observedSpec(environment kind: EnvironmentSpec.Kind) throws -> TeacherSpec {
        guard kickstartTeacher.isEmpty else {
            throw ValidationError(
                "--kickstart-teacher: further teachers are tables by state id; \(kind.rawValue) has none (one --teacher-file only)"
            )
        }
        var spec = TeacherSpec()
        if let file = teacherFile {
            guard temperature == nil else {
                throw ValidationError(
                    "--temperature: on \(kind.rawValue) the teacher file's own τ (teacher.temperature) is used")
            }
            spec.kind = .file
            spec.path = file
        }
        return spec
    }

    /// Builds the teacher for `environment`.
    func build(for environment: Environment, defaultSeed: UInt64) throws -> (TeacherSpec, Teacher) {
        let s = try spec(defaultSeed: defaultSeed) { environment }
        return (s, try validating { try s.build(for: environment) })
    }

    /// Builds the further kickstarting teachers.
    func buildKickstartTeachers(for environment: Environment, defaultSeed: UInt64) throws -> [Teacher] {
        let s = try spec(defaultSeed: defaultSeed) { environment }
        return try validating { try s.buildKickstartTeachers(for: environment) }
    }
}

/// `--method`, the control policy, schedules and optimiser (shared with the runtime commands).
struct MethodOptions: ParsableArguments {
    /// The single source of every default below.
    static let defaults = MethodSpec()

    @Option(help: "Update rule (docs/methods.md describes each).")
    var method: Method = MethodOptions.defaults.method

    @Option(help: "Control policy (default: the method's, Table 1).")
    var control: MethodSpec.ControlChoice?

    @Option(help: "Mixture control β at the start.")
    var beta = MethodOptions.defaults.beta.value(at: 0)

    @Option(help: "Mixture β at the end of --beta-steps (linear anneal; default: constant β).")
    var betaEnd: Double?

    @Option(help: "Steps over which β anneals linearly to --beta-end.")
    var betaSteps = 1000

    @Option(help: "Weight λ of the distillation loss ℓ (kickstarting's λ).")
    var lambda = MethodOptions.defaults.lambda.value(at: 0)

    @Option(
        help: "λ schedule: linear goes to 0 over --lambda-steps, exponential multiplies by --lambda-decay per step.")
    var lambdaSchedule: ScheduleShape = .constant

    @Option(help: "Steps of the linear λ anneal.")
    var lambdaSteps = 1000

    @Option(help: "Per-step factor of the exponential λ decay.")
    var lambdaDecay = 0.999

    @Option(
        help:
            "Distillation loss: cross-entropy (Table 1) or agreement (Fig. 2); default: agreement for the fig2 teacher."
    )
    var distillLoss: MethodSpec.LossChoice?

    @Option(help: "κ of the agreement loss −κ·Σ π π_θ (Fig. 2's).")
    var agreementScale = MethodOptions.defaults.agreementScale

    @Option(help: "Rusu temperature τ of teacher-distill-kl (Rusu et al.'s).")
    var rusuTemperature = MethodOptions.defaults.rusuTemperature

    @Option(help: "Optimiser (rmsprop: decay 0.95, ε 0.01, as DQN's).")
    var optimiser: OptimiserKind = MethodOptions.defaults.optimiser

    @Option(help: "Learning rate (ours).")
    var learningRate = MethodOptions.defaults.learningRate

    @Option(help: "V-trace ρ̄ (clip of the score-function weight).")
    var rhoBar = MethodOptions.defaults.clipping.rhoBar

    @Option(help: "V-trace c̄ (clip of the trace weights).")
    var cBar = MethodOptions.defaults.clipping.cBar

    @Option(help: "V-trace λ (trace decay).")
    var traceLambda = MethodOptions.defaults.clipping.lambda

    @Option(help: "Episodes per sampled update (ours).")
    var episodesPerIteration = MethodOptions.defaults.episodesPerIteration

    @Option(help: "Episode cap; longer episodes are truncated (ours).")
    var maxEpisodeSteps = MethodOptions.defaults.maxEpisodeSteps

    @Option(help: "Step size of the tabular student critic.")
    var criticLearningRate = MethodOptions.defaults.criticLearningRate

    @Option(help: "Student critic target: Monte Carlo or one-step TD.")
    var criticTarget: TabularCritic.Target = MethodOptions.defaults.criticTarget

    @Flag(
        inversion: .prefixedNo,
        help: "Subtract the student critic as a baseline (default: only baseline and actor-critic).")
    var baseline: Bool?

    /// The Codable description.
    func spec() throws -> MethodSpec {
        var spec = MethodSpec()
        spec.method = method
        spec.control = control
        spec.beta = betaEnd.map { .linear(start: beta, end: $0, steps: betaSteps) } ?? .constant(beta)
        switch lambdaSchedule {
        case .constant: spec.lambda = .constant(lambda)
        case .linear: spec.lambda = .linear(start: lambda, end: 0, steps: lambdaSteps)
        case .exponential: spec.lambda = .exponential(initial: lambda, decay: lambdaDecay)
        }
        spec.distillationLoss = distillLoss
        spec.agreementScale = agreementScale
        spec.rusuTemperature = rusuTemperature
        spec.optimiser = optimiser
        spec.learningRate = learningRate
        guard rhoBar > 0, cBar > 0, traceLambda >= 0, traceLambda <= 1 else {
            throw ValidationError("--rho-bar and --c-bar must be positive and --trace-lambda in [0, 1]")
        }
        spec.clipping = VTraceClipping(rhoBar: rhoBar, cBar: cBar, lambda: traceLambda)
        spec.episodesPerIteration = episodesPerIteration
        spec.maxEpisodeSteps = maxEpisodeSteps
        spec.criticLearningRate = criticLearningRate
        spec.criticTarget = criticTarget
        spec.baseline = baseline
        try validating { try spec.validate() }
        return spec
    }
}
