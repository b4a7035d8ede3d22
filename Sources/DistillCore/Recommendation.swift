/// The paper's rule of thumb for choosing a distillation method (Czarnecki et al. 2019, Fig. 1).
///
/// Fig. 1 is a picture that our copy of the paper does not carry as text. This tree is rebuilt
/// from the questions the paper names for it (will the student act outside the teacher's states?
/// are convergence guarantees needed? is the teacher strong? does the teacher have a value
/// function?) and from the findings of its Sections 3–4, with one further question, the size of
/// the action space, that Fig. 4 shows decides between the two entropy-regularised forms. Every
/// leaf is one of the seven methods Fig. 1's caption names, and every reason cites where the paper
/// supports it.
public enum RecommendationQuestion: String, Sendable, Hashable, CaseIterable, Codable {
    /// Will the student be used in states the teacher's own trajectories rarely visit?
    case outsideTeacherStates = "outside-teacher-states"
    /// Must the update be a gradient vector field (a loss that training provably descends)?
    case needGuarantees = "need-guarantees"
    /// Does the teacher have a value function V_π the learner can query?
    case teacherHasValue = "teacher-has-value"
    /// Is the teacher near-optimal on the task the student is judged on?
    case teacherStrong = "teacher-strong"
    /// Is the action space large (hundreds of actions or more)?
    case largeActionSpace = "large-action-space"

    /// The question as a person is asked it.
    public var prompt: String {
        switch self {
        case .outsideTeacherStates:
            "Will the student act in states the teacher itself rarely visits (its own mistakes, a different start)?"
        case .needGuarantees:
            "Do you need convergence guarantees, i.e. an update that is the gradient of a loss?"
        case .teacherHasValue: "Does the teacher provide a value function V (e.g. an actor-critic teacher)?"
        case .teacherStrong: "Is the teacher near-optimal for the reward the student is judged on?"
        case .largeActionSpace: "Is the action space large (hundreds of actions or more)?"
        }
    }
}

/// One answered question on the way to a method, with why the answer leads where it does.
public struct RecommendationStep: Sendable, Hashable, Codable {
    /// The question.
    public var question: RecommendationQuestion
    /// The answer given.
    public var answer: Bool
    /// What the answer implies, with the paper's evidence.
    public var reason: String
}

/// The method the tree picks, the control policy it runs under, and the path that led there.
public struct Recommendation: Sendable, Hashable, Codable {
    /// The method (a `--method` name).
    public var method: Method
    /// The path of answered questions.
    public var steps: [RecommendationStep]
    /// Why this method, at the leaf.
    public var summary: String
}

/// Where the tree stands: either a question still to answer or the recommendation.
public enum RecommendationState: Sendable, Hashable {
    /// The next question on the path.
    case ask(RecommendationQuestion)
    /// The leaf.
    case done(Recommendation)
}

/// Walks the decision tree with the answers known so far.
public enum MethodRecommender {
    /// The next question, or the recommendation once the path is answered. Answers to questions off
    /// the path are ignored.
    public static func walk(_ answers: [RecommendationQuestion: Bool]) -> RecommendationState {
        var steps: [RecommendationStep] = []
        func ask(_ question: RecommendationQuestion, yes: String, no: String) -> Bool? {
            guard let answer = answers[question] else { return nil }
            steps.append(RecommendationStep(question: question, answer: answer, reason: answer ? yes : no))
            return answer
        }
        func leaf(_ method: Method, _ summary: String) -> RecommendationState {
            .done(Recommendation(method: method, steps: steps, summary: summary))
        }

        guard
            let outside = ask(
                .outsideTeacherStates,
                yes: "The student must learn from its own state distribution: sample trajectories with the "
                    + "student (Sec. 3.2, Fig. 3: student-driven control reaches the teacher's return about 3x "
                    + "faster than teacher-driven and 10x faster than uniform).",
                no: "The student is judged where the teacher goes: teacher-driven sampling fits the teacher best "
                    + "there (Fig. 3: teacher-driven control wins only on the KL measured under the teacher's "
                    + "distribution), and it is plain supervised learning, a gradient field.")
        else { return .ask(.outsideTeacherStates) }
        if !outside {
            return leaf(
                .teacherDistill,
                "Teacher distill: trajectories from the teacher, cross-entropy to its policy (Rusu et al. 2016; "
                    + "Table 1: a gradient field).")
        }

        guard
            let guarantees = ask(
                .needGuarantees,
                yes: "Use a method whose update is the gradient of a loss (Table 1's gradient-field column).",
                no: "A method that is not a gradient field is acceptable; the common on-policy forms are "
                    + "simple and work well in practice.")
        else { return .ask(.needGuarantees) }

        if !guarantees {
            guard
                let strong = ask(
                    .teacherStrong,
                    yes: "Cloning a strong teacher is enough; no reward is needed.",
                    no: "Add the environment's reward so the student can improve on the teacher (Fig. 5: +R "
                        + "forms saturate higher than pure cloning of a noisy teacher).")
            else { return .ask(.teacherStrong) }
            return strong
                ? leaf(
                    .onPolicyDistill,
                    "On-policy distill: student-driven cross-entropy to the teacher (Table 1). Not a gradient "
                        + "field (Thm 1) but it converges in the tabular case without reward.")
                : leaf(
                    .onPolicyDistillR,
                    "On-policy distill + R: as on-policy distill, plus the task reward. It can cycle forever "
                        + "(Fig. 2); answer yes to the guarantees question if that matters.")
        }

        guard
            let hasValue = ask(
                .teacherHasValue,
                yes: "The teacher's V can shape the reward: r + γV(s') − V(s) keeps the optimal policy of the "
                    + "task, so even a bad teacher cannot mislead the student (Sec. 4.2; Fig. 6: it still learns "
                    + "from an adversarial teacher; Fig. 5: it reaches the teacher's level under 25 % noise).",
                no: "Only the teacher's policy is available: distil it through a gradient-field rule.")
        else { return .ask(.teacherHasValue) }
        if hasValue {
            return leaf(
                .teacherVReward,
                "Teacher V reward: RL on the reward shaped by the teacher's value (Sec. 4.2), a gradient field "
                    + "robust to a weak teacher.")
        }

        guard
            let strong = ask(
                .teacherStrong,
                yes: "Follow the teacher: N-distill is on-policy distill made a gradient field by its reward "
                    + "term (Sec. 3.1, Thm 2); it converges where on-policy distill + R cycles (Fig. 2).",
                no: "The teacher may be wrong: optimise the task reward with the teacher as a regulariser.")
        else { return .ask(.teacherStrong) }
        if strong {
            return leaf(
                .nDistill,
                "N-distill: ℓ = H×(π‖π_θ) with the next state's cross-entropy as reward (Sec. 3.1); add +R "
                    + "(n-distill+R) when the task reward is available.")
        }

        guard
            let large = ask(
                .largeActionSpace,
                yes: "With many actions the entropy-regularised reward log π(a|s) is dominated by the many "
                    + "actions the teacher gives near-zero mass (Fig. 4: entropy-regularised collapses at 4000 "
                    + "actions); the expected form averages it out (Sec. 3.3).",
                no: "Entropy-regularised RL toward the teacher (Distral-style) is sound at this size.")
        else { return .ask(.largeActionSpace) }
        return large
            ? leaf(
                .expEntropyRegularisedR,
                "Exp. entropy regularised + R: the reward with the teacher's expected log-probability as a "
                    + "regulariser (Sec. 3.3), a gradient field that keeps learning with thousands of actions.")
            : leaf(
                .entropyRegularisedR,
                "Entropy regularised + R: the reward plus log π(a|s) of the teacher (Teh et al. 2017; Table 1), a "
                    + "gradient field.")
    }
}
