import ArgumentParser
import DistillCore
import Foundation

/// `distill analyze`: exact analysis of update rules on tabular MDPs (METHODS.md §4).
struct Analyze: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Exact analysis of an update rule: its expected update and whether it is a gradient field.",
        subcommands: [ExpectedUpdateCommand.self, GradientFieldCommand.self])
}

/// The student used by the analysis commands.
struct StudentOptions: ParsableArguments {
    @Flag(help: "Use random logits (uniform in [−1, 1], from --student-seed) instead of the initial student.")
    var randomStudent = false

    @Option(help: "Seed of --random-student (default: --seed).")
    var studentSeed: UInt64?

    func build(for environment: Environment, defaultSeed: UInt64) -> StudentParameters {
        var p = Trainer.initialStudent(for: environment)
        if randomStudent {
            var rng = Xoshiro256StarStar(seed: studentSeed ?? defaultSeed)
            for i in 0..<p.logits.count { p.logits[i] = 2 * rng.unitInterval() - 1 }
        }
        return p
    }
}

/// Everything a third party needs to recompute an expected update.
struct ExpectedUpdateReport: Codable {
    var formula: String
    var environment: EnvironmentSpec
    var environmentName: String
    var mdp: MDPDescription
    var teacherSpec: TeacherSpec
    var teacher: TeacherDescription
    var method: MethodSpec
    var rule: UpdateRule
    var control: ControlPolicy
    var discount: Double
    var teacherLogProbabilityFloor: Double
    var parameters: StudentParameters
    var studentPolicy: [[Double]]
    var studentValues: [Double]
    var visits: [Double]
    var update: [[Double]]
}

struct ExpectedUpdateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "expected-update",
        abstract: "Print the exact expected update of a method (per parameter row and action).",
        discussion: """
            The update is the expectation of one episode's sampled update (METHODS.md §4):
              Σ_s d(s) [ Σ_a q(a|s) ∇log π_θ(a|s) Q̂(s,a) − ∇ℓ(s) ]
            as the ascent direction on the student's logits. The student is the initial one (uniform; \
            fig2: π(R) = 0.1 in both rows) unless --random-student is given.

            Examples:
              distill analyze expected-update --env fig2 --teacher fig2 --method on-policy-distill+R
              distill analyze expected-update --env chain --teacher optimal --method teacher-v-reward --json
              distill analyze expected-update --env random --seed 3 --teacher uniform --method n-distill --random-student
            """)

    @OptionGroup var environment: EnvironmentOptions
    @OptionGroup var teacher: TeacherOptions
    @OptionGroup var method: MethodOptions
    @OptionGroup var student: StudentOptions

    @Flag(help: "Print JSON with the MDP, the teacher, the parameters and the update.")
    var json = false

    func run() throws {
        let (envSpec, env) = try environment.build()
        let (teacherSpec, mainTeacher) = try teacher.build(for: env, defaultSeed: environment.seed)
        let methodSpec = try method.spec()
        let further = try teacher.buildKickstartTeachers(for: env, defaultSeed: environment.seed)
        let baseRule = methodSpec.rule(at: 0, teacherKind: teacherSpec.kind)
        if !further.isEmpty && baseRule.loss != .crossEntropy {
            throw ValidationError("--kickstart-teacher needs a method with the cross-entropy loss")
        }
        let (teach, rule) = Kickstarting.apply(
            baseRule, teacher: mainTeacher, further: further, weights: teacherSpec.kickstartWeights)
        let control = methodSpec.controlPolicy(at: 0)
        let params = student.build(for: env, defaultSeed: environment.seed)
        let context = UpdateContext(discount: env.mdp.discount, control: control, clipping: methodSpec.clipping)
        let update = try validating {
            try ExactUpdate.expectedUpdate(env.mdp, teacher: teach, parameters: params, rule: rule, context: context)
        }
        let policy = StudentPolicy(params)
        let na = env.mdp.actionCount
        let rows = (0..<params.rowCount).map { Array(update[($0 * na)..<(($0 + 1) * na)]) }
        if json {
            let q = ExactUpdate.controlTable(control, policy: policy, teacher: teach)
            let report = ExpectedUpdateReport(
                formula:
                    "update[row][a] = Σ_{s: row(s)=row} d_q(s)·[Σ_b q(b|s)(1[b=a] − π_θ(a|s))(Q̂(s,b) − baseline(s)) − w(s)·∂ℓ(s)/∂z(s,a)], "
                    + "d_q = ρ0ᵀ(I − P_q)⁻¹ over non-terminal states, Q̂ the expected pseudo-return (METHODS.md §2, §4); "
                    + "teacher log-probabilities are floored at teacherLogProbabilityFloor",
                environment: envSpec, environmentName: env.name, mdp: env.mdp.jsonDescription, teacherSpec: teacherSpec,
                teacher: teach.jsonDescription, method: methodSpec, rule: rule, control: control,
                discount: env.mdp.discount,
                teacherLogProbabilityFloor: DistillCore.teacherLogProbabilityFloor, parameters: params,
                studentPolicy: (0..<params.rowCount).map { Array(policy.probabilities[($0 * na)..<(($0 + 1) * na)]) },
                studentValues: try PolicyEvaluation.values(env.mdp, policy: policy.stateTable()),
                visits: try PolicyEvaluation.visits(env.mdp, policy: q), update: rows)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.nonConformingFloatEncodingStrategy = .convertToString(
                positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        print(
            "environment \(env.name)  teacher \(teach.identity)  method \(method.method.rawValue)  control \(control)")
        print("rule \(rule.summary)")
        print("row  π_θ(·|row)  →  expected update (ascent direction on the logits)")
        var shown = 0
        for r in 0..<params.rowCount where rows[r].contains(where: { $0 != 0 }) {
            let p = (0..<na).map { String(format: "%.4f", policy.probabilities[r * na + $0]) }.joined(separator: " ")
            let u = rows[r].map { String(format: "%+.6e", $0) }.joined(separator: " ")
            print("\(r)  [\(p)]  →  [\(u)]")
            shown += 1
        }
        let norm = update.reduce(0) { $0 + $1 * $1 }.squareRoot()
        print("rows with a non-zero update: \(shown) of \(params.rowCount); ‖update‖ = \(norm)")
    }
}

/// The JSON output of `analyze gradient-field`.
struct GradientFieldReport: Codable {
    var environment: String
    var teacher: String
    var method: String
    var discount: Double
    var parameters: Int
    var step: Double
    var asymmetry: Double
}

struct GradientFieldCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gradient-field",
        abstract: "Print ‖J − Jᵀ‖_F / ‖J‖_F of the expected update's Jacobian (≈0 iff a gradient field).",
        discussion: """
            J is computed by central differences of the exact expected update with respect to the \
            student's logits (2·n exact updates for n logits). Table 1's "is ∇?" column is this check \
            with γ = 1: about 1e-9 for gradient fields, clearly non-zero for on-policy-distill. On the \
            20×20 gridworld (1604 logits, 401-state solves) it takes about half a minute.

            Examples:
              distill analyze gradient-field --env random --seed 1 --teacher uniform --method on-policy-distill --random-student
              distill analyze gradient-field --env random --seed 1 --teacher uniform --method n-distill --random-student
              distill analyze gradient-field --env chain --discount 1 --teacher optimal --method teacher-v-reward --json
            """)

    @OptionGroup var environment: EnvironmentOptions
    @OptionGroup var teacher: TeacherOptions
    @OptionGroup var method: MethodOptions
    @OptionGroup var student: StudentOptions

    @Option(help: "Central-difference step.")
    var step = 1e-5

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let (_, env) = try environment.build()
        let (teacherSpec, teach) = try teacher.build(for: env, defaultSeed: environment.seed)
        let methodSpec = try method.spec()
        let rule = methodSpec.rule(at: 0, teacherKind: teacherSpec.kind)
        let control = methodSpec.controlPolicy(at: 0)
        let params = student.build(for: env, defaultSeed: environment.seed)
        let context = UpdateContext(discount: env.mdp.discount, control: control, clipping: methodSpec.clipping)
        let n = params.logits.count
        var done = 0
        let started = Date()
        var lastReport = started
        let j = try validating {
            try GradientField.jacobian(at: params.logits, step: step) { theta in
                var p = params
                p.logits = theta
                let u = try ExactUpdate.expectedUpdate(
                    env.mdp, teacher: teach, parameters: p, rule: rule, context: context)
                done += 1
                if Date().timeIntervalSince(lastReport) > 2 {
                    lastReport = Date()
                    FileHandle.standardError.write(Data("gradient-field: \(done / 2) of \(n) Jacobian columns\n".utf8))
                }
                return u
            }
        }
        let asymmetry = GradientField.asymmetry(j, size: n)
        if json {
            let object = GradientFieldReport(
                environment: env.name, teacher: teach.identity, method: method.method.rawValue,
                discount: env.mdp.discount,
                parameters: n, step: step, asymmetry: asymmetry)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(object), as: UTF8.self))
        } else {
            print(
                "environment \(env.name)  teacher \(teach.identity)  method \(method.method.rawValue)  γ = \(env.mdp.discount)"
            )
            print(
                "‖J − Jᵀ‖_F / ‖J‖_F = \(asymmetry)   (\(n) logits, central differences h = \(step), \(String(format: "%.1f", Date().timeIntervalSince(started))) s)"
            )
        }
    }
}
