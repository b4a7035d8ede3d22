import ArgumentParser
import DistillCore
import DistillRuntime
import Foundation

/// `distill eval`: the return of a network file's policy on an environment.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Report the return of a student network file on an environment (95 % CI; exact on tabular ones).",
        discussion: """
            FILE is a network teacher file (docs/networks.md): DIR/student.safetensors of `distill train \
            --out`, or what `distill export` writes. Its policy (softmax of the logits at the file's τ) \
            plays --episodes sampled episodes: the mean return with its 95 % interval (1.96 s/√n). On a \
            tabular environment (the paper's gridworlds, chain, fig2, random, --env-file) the return is \
            the discounted one from the start distribution, and the exact return is printed too: the \
            policy read at every state's observation, then exact policy evaluation (the `exact_return` \
            of `distill train`); on a gridworld, --path-image draws the greedy path (most probable action, \
            most probable outcome) as a PNG. On cartpole, acrobot and mountaincar the return is the \
            undiscounted one, as gymnasium reports it. The environment flags must give the environment \
            the file was trained on (its teacher.environment.* metadata): another one is refused, naming it.

            Examples:
              distill eval --student runs/train-demo/student.safetensors --env gridworld --seed 3
              distill eval --student student.safetensors --env gridworld --seed 3 --path-image path.png --json
              distill eval --student runs/cartpole/student.safetensors --env cartpole --episodes 100
            """)

    @Option(help: ArgumentHelp("The network file (safetensors with teacher.* metadata).", valueName: "file"))
    var student: String

    @OptionGroup(title: "Environment") var environment: EnvironmentOptions

    @Option(help: "Sampled episodes (at least 2, for the interval).")
    var episodes = 1000

    @Option(help: "Seed of the sampled episodes.")
    var evaluationSeed: UInt64 = 1

    @Option(help: "Steps after which a sampled episode of a tabular environment is cut.")
    var maxSteps = 10_000

    @Option(help: ArgumentHelp("On a gridworld: draw the greedy path to this PNG file.", valueName: "file"))
    var pathImage: String?

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func validate() throws {
        guard (2...10_000_000).contains(episodes) else {
            throw ValidationError("--episodes must be in 2...10000000 (a CI needs two), got \(episodes)")
        }
        guard maxSteps > 0 else { throw ValidationError("--max-steps must be positive") }
    }

    /// What `eval` prints (`--json`: these keys; null when not applicable).
    struct Report: Encodable {
        var student: String
        var environment: String
        var episodes: Int
        var sampledReturn: Double
        var sampledReturnCI95: Double
        var discounted: Bool
        var exactReturn: Double?
        var greedyPath: [Int]?
        var pathImage: String?

        enum CodingKeys: String, CodingKey {
            case student, environment, episodes, discounted
            case sampledReturn = "sampled_return"
            case sampledReturnCI95 = "sampled_return_ci95"
            case exactReturn = "exact_return"
            case greedyPath = "greedy_path"
            case pathImage = "path_image"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(student, forKey: .student)
            try container.encode(environment, forKey: .environment)
            try container.encode(episodes, forKey: .episodes)
            try container.encode(sampledReturn, forKey: .sampledReturn)
            try container.encode(sampledReturnCI95, forKey: .sampledReturnCI95)
            try container.encode(discounted, forKey: .discounted)
            try container.encode(exactReturn, forKey: .exactReturn)
            try container.encode(greedyPath, forKey: .greedyPath)
            try container.encode(pathImage, forKey: .pathImage)
        }
    }

    func run() throws {
        let teacher = try validating { try NetworkTeacher.load(from: URL(fileURLWithPath: student)) }
        let spec = try environment.spec()
        let report: Report
        if spec.kind.isTabular {
            try checkMemory(spec)
            report = try evaluateTabular(teacher, try validating { try spec.build() })
        } else if spec.kind == .remote {
            let prototype = try remoteEnvironment(spec)
            report = try evaluateObserved(teacher, prototype)
            try prototype.client.checkHealthy()
        } else {
            var observed = ObservedEnvironmentSpec()
            observed.kind = try validating { try ObservedEnvironmentSpec.Kind.named(spec.kind.rawValue) }
            let prototype = try validating { try observed.build() }
            report = try evaluateObserved(teacher, prototype)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        print("student: \(report.student) on \(report.environment)")
        print(
            String(
                format: "sampled return: %.4f ± %.4f (95 %% CI, %d episodes, %@)", report.sampledReturn,
                report.sampledReturnCI95, report.episodes, report.discounted ? "discounted" : "undiscounted"))
        if let exact = report.exactReturn { print(String(format: "exact return: %.6f", exact)) }
        if let path = report.greedyPath {
            print("greedy path: \(path.count - 1) steps, states \(path.map(String.init).joined(separator: " "))")
        }
        if let image = report.pathImage { print("path image: \(image)") }
    }

    private func evaluateTabular(_ teacher: NetworkTeacher, _ env: Environment) throws -> Report {
        let observation: ObservationKind
        do {
            observation = try ObservationKind(parsing: teacher.observation)
        } catch {
            throw ValidationError(
                "\(student) reads observation '\(teacher.observation)', not one of a tabular environment "
                    + "(state-id, one-hot, image, window:K): give the environment it was trained on (\(teacher.environmentName))"
            )
        }
        if pathImage != nil && env.grid == nil {
            throw ValidationError("--path-image: \(env.name) is not a gridworld (there is no grid to draw)")
        }
        let table = try validating { try teacher.table(for: env, observation: observation) }
        let mdp = env.mdp
        let exact = try validating { try PolicyEvaluation.expectedReturn(mdp, policy: table.probabilities) }
        let sampled = TabularPolicyReport.sampledReturn(
            mdp, policy: table.probabilities, episodes: episodes, maxSteps: maxSteps, seed: evaluationSeed)
        var report = Report(
            student: student, environment: env.identity, episodes: episodes, sampledReturn: sampled.mean,
            sampledReturnCI95: sampled.halfWidth, discounted: true, exactReturn: exact)
        if let grid = env.grid {
            let path = TabularPolicyReport.greedyPath(
                mdp, policy: table.probabilities, from: grid.start, maxSteps: grid.size * grid.size)
            report.greedyPath = path
            if let pathImage {
                let image = GridPathImage(grid: grid, path: path)
                do {
                    try Data(image.png()).write(to: URL(fileURLWithPath: pathImage))
                } catch {
                    throw ValidationError("--path-image: cannot write \(pathImage): \(error.localizedDescription)")
                }
                report.pathImage = pathImage
            }
        }
        return report
    }

    private func evaluateObserved<Env: ObservedEnvironment>(
        _ teacher: NetworkTeacher, _ prototype: Env
    ) throws
        -> Report
    {
        let description = prototype.description
        if (try? ObservationKind(parsing: teacher.observation)) != nil {
            throw ValidationError(
                "\(student) was trained on \(teacher.environmentName) (teacher.environment.name), not on "
                    + "\(description.name): give the environment flags of that one (e.g. --env gridworld --seed N)")
        }
        try validating { try teacher.check(against: description, observation: description.name) }
        guard pathImage == nil else {
            throw ValidationError("--path-image: \(description.name) is not a gridworld (there is no grid to draw)")
        }
        let estimate = ObservedTrainer<Env>.evaluate(
            prototype: prototype, episodes: episodes, seed: evaluationSeed,
            policy: { observations, count in teacher.outputs(observations: observations, batch: count).probabilities })
        return Report(
            student: student, environment: description.name, episodes: episodes, sampledReturn: estimate.mean,
            sampledReturnCI95: estimate.halfWidth, discounted: false)
    }
}
