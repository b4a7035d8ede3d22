import DistillCore
import Testing

/// The decision tree of `distill recommend` (paper, Fig. 1), checked exhaustively and against the
/// mathematics its reasons appeal to.
@Suite struct RecommendationTests {
    /// Every one of the 2⁵ answer sets, walked to its leaf.
    static let allLeaves: [([RecommendationQuestion: Bool], Recommendation)] = (0..<32).map { bits in
        var answers: [RecommendationQuestion: Bool] = [:]
        for (index, question) in RecommendationQuestion.allCases.enumerated() {
            answers[question] = bits & (1 << index) != 0
        }
        guard case .done(let recommendation) = MethodRecommender.walk(answers) else {
            fatalError("a full answer set must reach a leaf")
        }
        return (answers, recommendation)
    }

    @Test func everyLeafIsOneOfTheSevenMethodsOfFigure1AndEachIsReachable() {
        // Fig. 1's caption: teacher distill, on-policy distill, on-policy distill+R, entropy
        // regularised, N-distill, exp. entropy regularised, teacher V reward.
        let expected: Set<Method> = [
            .teacherDistill, .onPolicyDistill, .onPolicyDistillR, .entropyRegularisedR, .nDistill,
            .expEntropyRegularisedR, .teacherVReward,
        ]
        #expect(Set(Self.allLeaves.map(\.1.method)) == expected)
    }

    @Test func thePathAsksOnlyWhatItNeedsAndRecordsEveryAnswerItUsed() {
        for (answers, recommendation) in Self.allLeaves {
            let asked = recommendation.steps.map(\.question)
            #expect(Set(asked).count == asked.count, "a question asked twice: \(asked)")
            for step in recommendation.steps { #expect(answers[step.question] == step.answer) }
            // Walking with only the path's answers reaches the same leaf: nothing off the path matters.
            var onPath: [RecommendationQuestion: Bool] = [:]
            for step in recommendation.steps { onPath[step.question] = step.answer }
            #expect(MethodRecommender.walk(onPath) == .done(recommendation))
            // Dropping the last answer makes the tree ask exactly that question.
            if let last = recommendation.steps.last {
                onPath[last.question] = nil
                #expect(MethodRecommender.walk(onPath) == .ask(last.question))
            }
        }
        #expect(MethodRecommender.walk([:]) == .ask(.outsideTeacherStates))
    }

    @Test func theTeacherDrivenLeafIsTheOnlyOneThatSamplesWithTheTeacher() {
        for (answers, recommendation) in Self.allLeaves {
            let teacherDriven = recommendation.method.defaultControl == .teacher
            #expect(teacherDriven == (answers[.outsideTeacherStates] == false), "\(recommendation.method.rawValue)")
        }
    }

    /// Where the user asked for convergence guarantees, the recommended update must be a gradient
    /// field: its expected update's Jacobian is symmetric (γ = 1, random MDPs, finite differences).
    /// Where they did not and the teacher-driven branch was not taken, the tree's pick is on-policy
    /// distill (+R), whose Jacobian is measurably not symmetric (Thm 1).
    @Test func guaranteedLeavesAreGradientFieldsAndTheOthersAreNot() throws {
        var checked: [Method: Double] = [:]
        for (answers, recommendation) in Self.allLeaves where checked[recommendation.method] == nil {
            let method = recommendation.method
            var worst = 0.0
            var best = Double.infinity
            for seed: UInt64 in [201, 202] {
                let problem = try RandomProblem(seed: seed, states: 4, actions: 3, discount: 1)
                let context = UpdateContext(discount: 1, control: method.defaultControl)
                let a = try GradientField.expectedUpdateAsymmetry(
                    problem.mdp, teacher: problem.teacher, parameters: problem.student, rule: method.rule,
                    context: context, step: 1e-4)
                worst = max(worst, a)
                best = min(best, a)
            }
            if answers[.needGuarantees] == true || answers[.outsideTeacherStates] == false {
                #expect(worst <= 1e-6, "\(method.rawValue): ‖J − Jᵀ‖/‖J‖ = \(worst)")
            } else {
                #expect(best >= 1e-2, "\(method.rawValue): ‖J − Jᵀ‖/‖J‖ = \(best)")
            }
            checked[method] = worst
        }
        #expect(checked.count == 7)
    }
}
