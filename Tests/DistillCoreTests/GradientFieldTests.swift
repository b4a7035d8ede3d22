import DistillCore
import Foundation
import Testing

/// Table 1's "is ∇?" column from the symmetry of the expected update's Jacobian (γ = 1).
@Suite struct GradientFieldTests {
    static let seeds: [UInt64] = [101, 102, 103]

    static func asymmetry(_ method: Method, seed: UInt64) throws -> Double {
        let problem = try RandomProblem(seed: seed, states: 4, actions: 3, discount: 1)
        let context = UpdateContext(discount: 1, control: method.defaultControl)
        return try GradientField.expectedUpdateAsymmetry(
            problem.mdp, teacher: problem.teacher, parameters: problem.student, rule: method.rule, context: context,
            step: 1e-4)
    }

    @Test(arguments: [
        Method.teacherDistill, .entropyRegularised, .entropyRegularisedR, .nDistill, .nDistillR, .expEntropyRegularised,
        .expEntropyRegularisedR, .teacherVReward, .teacherDistillKL, .teacherDistillNLL, .teacherDistillMSE,
    ])
    func gradientFieldMethodsHaveASymmetricJacobian(method: Method) throws {
        for seed in Self.seeds {
            let a = try Self.asymmetry(method, seed: seed)
            print("asymmetry \(method.rawValue) seed \(seed): \(a)")
            #expect(a <= 1e-6, "\(method.rawValue) seed \(seed): ‖J − Jᵀ‖/‖J‖ = \(a)")
        }
    }

    @Test(arguments: [Method.onPolicyDistill, .onPolicyDistillR])
    func onPolicyDistillIsNotAGradientField(method: Method) throws {
        for seed in Self.seeds {
            let a = try Self.asymmetry(method, seed: seed)
            print("asymmetry \(method.rawValue) seed \(seed): \(a)")
            #expect(a >= 1e-2, "\(method.rawValue) seed \(seed): ‖J − Jᵀ‖/‖J‖ = \(a)")
        }
    }

    @Test func asymmetryOfMethodsBeyondTable1() throws {
        for method in [
            Method.tdTeacherV, .tdZeroV, .klRegularised, .klRegularisedR, .kickstarting, .vGated, .baseline,
            .actorCritic,
        ] {
            let values = try Self.seeds.map { try Self.asymmetry(method, seed: $0) }
            print("asymmetry \(method.rawValue): \(values)")
            #expect(values.allSatisfy { $0.isFinite })
            switch method {
            case .klRegularised, .klRegularisedR, .baseline, .actorCritic:
                // Gradients of E_{π_θ}Σ(log π − log π_θ [+ r]) and of the return (an exact critic
                // changes nothing in expectation): symmetric Jacobians.
                #expect(values.allSatisfy { $0 <= 1e-6 }, "\(method.rawValue): \(values)")
            case .tdTeacherV, .tdZeroV, .kickstarting:
                // Bootstraps from a fixed V and the on-policy distillation term are not gradients.
                #expect(values.allSatisfy { $0 >= 1e-2 }, "\(method.rawValue): \(values)")
            default:
                // v-gated: a gradient only where its gate happens to be shut everywhere.
                #expect(values.contains { $0 >= 1e-2 }, "\(method.rawValue): \(values)")
            }
        }
    }

    @Test func asymmetryOfAKnownNonSymmetricLinearFieldIsExact() {
        // f(θ) = Aθ with A = [[1, 2], [0, 1]]: ‖A − Aᵀ‖_F / ‖A‖_F = √8 / √6.
        let j = GradientField.jacobian(at: [0.3, -0.2]) { t in [t[0] + 2 * t[1], t[1]] }
        #expect(abs(GradientField.asymmetry(j, size: 2) - (8.0 / 6.0).squareRoot()) < 1e-8)
    }
}

/// Every method checked for a property it must have (issue 15, item 2): the expected update of
/// a gradient-field method is the finite-difference gradient of its objective; the others equal
/// a known field in a case where the paper says they must (shaping that telescopes, a bootstrap
/// from the true value, a gate that is always open or always shut, a frozen-occupancy
/// semi-gradient). A sign, a γ or a gate-direction mutation breaks these.
@Suite struct MethodPropertyTests {
    /// γ = 1 for the gradient checks (the outer sum is undiscounted); γ = 0.9 for the identities.
    static let episodic = ReferenceProblem(seed: 21, discount: 1)
    static let discounted = ReferenceProblem(seed: 22, discount: 0.9)

    static func update(
        _ rule: UpdateRule, _ p: ReferenceProblem, control: ControlPolicy = .student, teacher: Teacher? = nil,
        parameters: StudentParameters? = nil
    ) throws -> [Double] {
        try ExactUpdate.expectedUpdate(
            p.mdp, teacher: teacher ?? p.teacher, parameters: parameters ?? p.student, rule: rule,
            context: UpdateContext(discount: p.mdp.discount, control: control))
    }

    /// `∇_θ E_{π_θ}[Σ_t f(π_θ, s_t, a_t, s_{t+1}, r_t)]` by central differences (reference code).
    static func objectiveGradient(
        _ p: ReferenceProblem, _ f: @escaping ([[Double]], StudentParameters, Int, Int, Int, Double) -> Double
    ) -> [Double] {
        Reference.numericalGradient(p.student.logits) { theta in
            var s = p.student
            s.logits = theta
            let pi = Reference.studentRows(s)
            return Reference.episodeSum(p.mdp, pi) { st, a, next, r in f(pi, s, st, a, next, r) }
        }
    }

    static func ell(
        _ loss: Reference.Loss, _ p: ReferenceProblem, _ pi: [[Double]], _ s: StudentParameters, _ st: Int
    )
        -> Double
    {
        if p.mdp.isTerminal[st] { return 0 }
        let na = p.mdp.actionCount
        let r = Int(s.rowOfState[st])
        return Reference.lossValue(
            loss, pi: pi[st], z: Array(s.logits[(r * na)..<((r + 1) * na)]), t: Reference.teacherRows(p.teacher)[st],
            qv: Array(p.teacher.actionValues![(st * na)..<((st + 1) * na)]))
    }

    /// `∇ E_{π_θ} Σ_t r_t`.
    static func returnGradient(_ p: ReferenceProblem) -> [Double] {
        objectiveGradient(p) { _, _, _, _, _, r in r }
    }

    static func expectClose(
        _ x: [Double], _ y: [Double], _ tolerance: Double, _ label: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(relativeDistance(x, y) <= tolerance, "\(label): \(x) vs \(y)", sourceLocation: sourceLocation)
        #expect(y.contains { abs($0) > 1e-6 }, "\(label): zero field", sourceLocation: sourceLocation)
    }

    @Test(arguments: Method.allCases)
    func everyMethodHasItsDefiningProperty(method: Method) throws {
        let p = Self.episodic
        let name = method.rawValue
        let fd = 1e-6
        let teacherLog = { (s: Int, a: Int) in Reference.teacherLog(Reference.teacherRows(p.teacher)[s][a]) }
        switch method {
        case .teacherDistill, .teacherDistillKL, .teacherDistillNLL, .teacherDistillMSE:
            // −Σ_s d_π(s) ℓ_θ(s), d under the teacher (independent of θ).
            let loss: Reference.Loss =
                method == .teacherDistill
                ? .crossEntropy
                : method == .teacherDistillKL ? .rusuKL(0.01) : method == .teacherDistillNLL ? .rusuNLL : .rusuMSE
            let d = Reference.visits(p.mdp, Reference.teacherRows(p.teacher))
            let g = Reference.numericalGradient(p.student.logits) { theta in
                var s = p.student
                s.logits = theta
                let pi = Reference.studentRows(s)
                return -(0..<p.mdp.stateCount).reduce(0) { $0 + d[$1] * Self.ell(loss, p, pi, s, $1) }
            }
            Self.expectClose(try Self.update(method.rule, p, control: .teacher), g, fd, name)
        case .onPolicyDistill:
            // The semi-gradient of −Σ_s d(s) ℓ_θ(s) with the occupancy d frozen at θ (not a gradient, Thm 1).
            let d = Reference.visits(p.mdp, Reference.studentRows(p.student))
            let g = Reference.numericalGradient(p.student.logits) { theta in
                var s = p.student
                s.logits = theta
                let pi = Reference.studentRows(s)
                return -(0..<p.mdp.stateCount).reduce(0) { $0 + d[$1] * Self.ell(.crossEntropy, p, pi, s, $1) }
            }
            Self.expectClose(try Self.update(method.rule, p), g, fd, name)
        case .onPolicyDistillR, .kickstarting:
            // At the teacher the distillation term vanishes: the update is the return's gradient;
            // elsewhere it is that plus λ × on-policy-distill.
            var atTeacher = p.student
            for s in 0..<p.mdp.stateCount {
                atTeacher.setRow(s, probabilities: Reference.teacherRows(p.teacher)[s])
            }
            let q = ReferenceProblem(mdp: p.mdp, teacher: p.teacher, student: atTeacher)
            Self.expectClose(try Self.update(method.rule, q), Self.returnGradient(q), fd, "\(name) at the teacher")
            var rule = method.rule
            rule.lossWeight = 0.4
            let distill = try Self.update(Method.onPolicyDistill.rule, p)
            let combined = zip(Self.returnGradient(p), distill).map { $0 + 0.4 * $1 }
            Self.expectClose(try Self.update(rule, p), combined, fd, "\(name) λ = 0.4")
        case .entropyRegularised, .entropyRegularisedR, .expEntropyRegularised, .expEntropyRegularisedR:
            // ∇ E Σ_t (log π(a_t|s_t) [+ r_t]); exp-entropy is the same objective with less variance.
            let plusR = method == .entropyRegularisedR || method == .expEntropyRegularisedR
            let g = Self.objectiveGradient(p) { _, _, s, a, _, r in teacherLog(s, a) + (plusR ? r : 0) }
            Self.expectClose(try Self.update(method.rule, p), g, fd, name)
        case .nDistill, .nDistillR:
            // ∇ E Σ_t (−ℓ_θ(s_t) [+ r_t]) (Thm 2).
            let plusR = method == .nDistillR
            let g = Self.objectiveGradient(p) { pi, s, st, _, _, r in
                -Self.ell(.crossEntropy, p, pi, s, st) + (plusR ? r : 0)
            }
            Self.expectClose(try Self.update(method.rule, p), g, fd, name)
        case .klRegularised, .klRegularisedR:
            // ∇ E Σ_t (log π(a_t|s_t) − log π_θ(a_t|s_t) [+ r_t]).
            let plusR = method == .klRegularisedR
            let g = Self.objectiveGradient(p) { pi, _, s, a, _, r in teacherLog(s, a) - log(pi[s][a]) + (plusR ? r : 0)
            }
            Self.expectClose(try Self.update(method.rule, p), g, fd, name)
        case .teacherVReward:
            // Potential-based shaping telescopes: with γ = 1 the update is the return's gradient, and
            // for γ < 1 it equals plain REINFORCE on r with the same discount (V_π(s_t) is a baseline).
            Self.expectClose(try Self.update(method.rule, p), Self.returnGradient(p), fd, "\(name) γ = 1")
            let q = Self.discounted
            Self.expectClose(
                try Self.update(method.rule, q), try Self.update(UpdateRule(addsReward: true), q), 1e-9,
                "\(name) γ = 0.9")
        case .tdTeacherV, .actorCritic:
            // Bootstrapping from the student's own exact value is REINFORCE on r, at any γ.
            for q in [p, Self.discounted] {
                let pi = Reference.studentRows(q.student)
                let own = Teacher(
                    identity: "student", stateCount: q.mdp.stateCount, actionCount: q.mdp.actionCount,
                    probabilities: pi.flatMap { $0 }, values: Reference.values(q.mdp, pi))
                Self.expectClose(
                    try Self.update(method.rule, q, teacher: own), try Self.update(UpdateRule(addsReward: true), q),
                    1e-9,
                    "\(name) γ = \(q.mdp.discount)")
            }
            Self.expectClose(try Self.update(Method.baseline.rule, p), Self.returnGradient(p), fd, "baseline")
        case .tdZeroV:
            // The semi-gradient of Σ_s d(s) Σ_a π_θ(a|s) r̄(s,a) with the occupancy frozen.
            let d = Reference.visits(p.mdp, Reference.studentRows(p.student))
            let g = Reference.numericalGradient(p.student.logits) { theta in
                var s = p.student
                s.logits = theta
                let pi = Reference.studentRows(s)
                var total = 0.0
                for st in 0..<p.mdp.stateCount where !p.mdp.isTerminal[st] {
                    for a in 0..<p.mdp.actionCount {
                        for o in Reference.outcomes(p.mdp, st, a) { total += d[st] * pi[st][a] * o.p * o.r }
                    }
                }
                return total
            }
            Self.expectClose(try Self.update(method.rule, p), g, fd, name)
        case .vGated:
            // Gate always open (V_π far above V_θ): on-policy-distill+R; always shut: the return's gradient.
            for (shift, expected) in [
                (100.0, try Self.update(Method.onPolicyDistillR.rule, p)), (-100.0, Self.returnGradient(p)),
            ] {
                let t = Teacher(
                    identity: "shifted", stateCount: p.mdp.stateCount, actionCount: p.mdp.actionCount,
                    probabilities: p.teacher.probabilities, values: p.teacher.values.map { $0 + shift })
                Self.expectClose(try Self.update(method.rule, p, teacher: t), expected, fd, "\(name) shift \(shift)")
            }
        case .baseline:
            Self.expectClose(try Self.update(method.rule, p), Self.returnGradient(p), fd, name)
        }
    }
}
