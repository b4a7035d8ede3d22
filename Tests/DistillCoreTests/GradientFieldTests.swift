import DistillCore
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

    @Test func reportAsymmetryOfMethodsBeyondTable1() throws {
        for method in [
            Method.tdTeacherV, .tdZeroV, .klRegularised, .klRegularisedR, .kickstarting, .vGated, .baseline,
            .actorCritic,
        ] {
            let values = try Self.seeds.map { try Self.asymmetry(method, seed: $0) }
            print("asymmetry \(method.rawValue): \(values)")
            #expect(values.allSatisfy { $0.isFinite })
        }
    }

    @Test func asymmetryOfAKnownNonSymmetricLinearFieldIsExact() {
        // f(θ) = Aθ with A = [[1, 2], [0, 1]]: ‖A − Aᵀ‖_F / ‖A‖_F = √8 / √6.
        let j = GradientField.jacobian(at: [0.3, -0.2]) { t in [t[0] + 2 * t[1], t[1]] }
        #expect(abs(GradientField.asymmetry(j, size: 2) - (8.0 / 6.0).squareRoot()) < 1e-8)
    }
}
