import DistillCore
import Foundation
import Testing

/// The production exact update (and the sampled update's mean) against the independent reference
/// of ``Reference`` (issue 15, item 1).
@Suite struct ReferenceRuleTests {
    /// Random problems: γ < 1 and γ = 1, a tied student, a teacher with a zero probability.
    static let problems: [ReferenceProblem] = [
        ReferenceProblem(seed: 1, discount: 0.9),
        ReferenceProblem(seed: 2, discount: 1),
        ReferenceProblem(seed: 3, discount: 0.95, tied: true),
        ReferenceProblem(seed: 4, discount: 0.8, zeroTeacherProbability: true),
        ReferenceProblem(seed: 5, discount: 0.97),
    ]

    static let controls: [ControlPolicy] = [.student, .teacher, .uniform, .mixture(beta: 0.3)]

    /// The production rule configured like `options` (the way `MethodSpec.rule` configures it).
    static func production(
        _ method: Method, _ p: ReferenceProblem, _ o: Reference.Options = .init()
    ) throws -> [Double] {
        var rule = method.rule(
            distillationLoss: o.agreementScale.map { .agreement(scale: $0) } ?? .crossEntropy,
            rusuTemperature: o.rusuTemperature)
        rule.lossWeight = o.lossWeight
        if let b = o.baseline { rule.subtractsBaseline = b }
        if o.studentBootstrap && rule.addsReward && rule.returnEstimate == .monteCarlo {
            rule.returnEstimate = .bootstrapStudentValue
        }
        let context = UpdateContext(discount: p.mdp.discount, control: o.control, studentValues: o.critic)
        return try ExactUpdate.expectedUpdate(
            p.mdp, teacher: p.teacher, parameters: p.student, rule: rule, context: context,
            behaviour: o.behaviour.map { $0.flatMap { $0 } })
    }

    static func reference(_ method: Method, _ p: ReferenceProblem, _ o: Reference.Options = .init()) -> [Double] {
        Reference.expectedUpdate(
            method, mdp: p.mdp, teacher: p.teacher, student: p.student, discount: p.mdp.discount, options: o)
    }

    /// Compares production with the reference to 1e-9 (relative to 1 + |reference|).
    static func check(
        _ method: Method, _ p: ReferenceProblem, _ o: Reference.Options, _ label: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let prod = try production(method, p, o)
        let ref = reference(method, p, o)
        let distance = relativeDistance(prod, ref)
        #expect(
            distance <= 1e-9, "\(method.rawValue) \(label): production \(prod) vs reference \(ref)",
            sourceLocation: sourceLocation)
        // A reference that is identically zero would prove nothing.
        #expect(
            ref.contains { abs($0) > 1e-6 }, "\(method.rawValue) \(label): zero update", sourceLocation: sourceLocation)
    }

    @Test(arguments: Method.allCases)
    func exactUpdateMatchesTheReferenceUnderEveryControlPolicy(method: Method) throws {
        for (k, p) in Self.problems.enumerated() {
            for control in Self.controls {
                var o = Reference.Options()
                o.control = control
                try Self.check(method, p, o, "problem \(k), γ = \(p.mdp.discount), control \(control)")
            }
        }
    }

    @Test func kickstartingWeightsTheDistillationTermByLambda() throws {
        for (k, p) in Self.problems.enumerated() {
            for lambda in [0, 0.37, 2.5] {
                var o = Reference.Options()
                o.lossWeight = lambda
                try Self.check(.kickstarting, p, o, "problem \(k), λ = \(lambda)")
            }
        }
    }

    @Test func nDistillWeightsItsPseudoRewardByTheLossWeight() throws {
        for (k, p) in Self.problems.enumerated() {
            for method in [Method.nDistill, .nDistillR] {
                var o = Reference.Options()
                o.lossWeight = 0.6
                try Self.check(method, p, o, "problem \(k), weight 0.6")
            }
        }
    }

    /// A critic that gates some states on and others off, so a reversed gate changes the update.
    static func mixedCritic(_ p: ReferenceProblem) -> [Double] {
        (0..<p.mdp.stateCount).map { s in p.teacher.values[s] + (s % 2 == 0 ? 0.5 : -0.5) }
    }

    @Test func vGatedGatesOnTheTeacherValueExceedingTheCritic() throws {
        for (k, p) in Self.problems.enumerated() {
            let critic = Self.mixedCritic(p)
            for control in Self.controls {
                var o = Reference.Options()
                o.control = control
                o.critic = critic
                try Self.check(.vGated, p, o, "problem \(k), mixed critic, control \(control)")
            }
            // The exact student value as the critic (the production default).
            try Self.check(.vGated, p, .init(), "problem \(k), exact critic")
        }
    }

    @Test func baselinesAndStudentBootstrapsMatchTheReference() throws {
        for (k, p) in Self.problems.enumerated() {
            let critic = (0..<p.mdp.stateCount).map { Double($0 % 3) - 0.7 }
            for method in Method.allCases {
                // Off-policy control: Σ_a q ∇log π_θ ≠ 0, so a baseline's sign shows in expectation.
                for (baseline, control) in [(true, ControlPolicy.student), (false, .student), (true, .uniform)] {
                    var o = Reference.Options()
                    o.baseline = baseline
                    o.critic = critic
                    o.control = control
                    try Self.check(method, p, o, "problem \(k), baseline \(baseline), control \(control)")
                }
                var o = Reference.Options()
                o.studentBootstrap = true
                try Self.check(method, p, o, "problem \(k), TD(1) exact critic")
                o.critic = critic
                try Self.check(method, p, o, "problem \(k), TD(1) given critic")
            }
        }
    }

    @Test func agreementLossAndRusuTemperatureMatchTheReference() throws {
        for (k, p) in Self.problems.enumerated() {
            for method in [
                Method.teacherDistill, .onPolicyDistill, .onPolicyDistillR, .nDistill, .nDistillR, .kickstarting,
                .vGated,
            ] {
                var o = Reference.Options()
                o.agreementScale = 4
                try Self.check(method, p, o, "problem \(k), agreement κ = 4")
            }
            for tau in [0.3, 2.0] {
                var o = Reference.Options()
                o.rusuTemperature = tau
                o.control = .teacher
                try Self.check(.teacherDistillKL, p, o, "problem \(k), τ = \(tau)")
            }
        }
    }

    @Test func staleBehaviourSetsOnlyTheStateDistribution() throws {
        for (k, p) in Self.problems.enumerated() {
            var stale = p.student
            for i in 0..<stale.logits.count { stale.logits[i] = -0.5 * stale.logits[i] + 0.1 * Double(i % 3) }
            for method in Method.allCases {
                var o = Reference.Options()
                o.behaviour = Reference.studentRows(stale)
                try Self.check(method, p, o, "problem \(k), stale behaviour")
            }
        }
    }

    /// Fig. 2 with the tied sigmoid student and the agreement loss, every method that has ℓ or r.
    @Test(arguments: Method.allCases)
    func fig2MatchesTheReference(method: Method) throws {
        let env = Environments.fig2()
        var student = StudentParameters(rowOfState: env.tiedRows!, rowCount: 2, actionCount: 2)
        student.setRow(0, probabilities: [0.7, 0.3])
        student.setRow(1, probabilities: [0.4, 0.6])
        // Rusu's losses need Q-values: give the fig2 teacher some.
        let base = Teachers.fig2()
        let teacher = Teacher(
            identity: "fig2+q", stateCount: 4, actionCount: 2, probabilities: base.probabilities, values: base.values,
            actionValues: [0.1, 0.4, -0.3, 0.2, 0.5, -0.5, 0, 0])
        let p = ReferenceProblem(mdp: env.mdp, teacher: teacher, student: student)
        var o = Reference.Options()
        o.agreementScale = 4
        let prod = try Self.production(method, p, o)
        let ref = Self.reference(method, p, o)
        #expect(relativeDistance(prod, ref) <= 1e-9, "\(method.rawValue): \(prod) vs \(ref)")
    }

    /// The reference itself against the sigmoid closed form of Fig. 2 (derivation in
    /// `Fig2ClosedFormTests`): with p = π(R|s0), u = π(R|sL) = π(R|sR),
    /// on-policy-distill+R gives (∓p(1−p)(1−2u), ∓u(1−u)(2p−1)), n-distill+R replaces 1−2u by 1+2u.
    @Test func referenceReproducesTheFig2ClosedForm() {
        let env = Environments.fig2()
        for (p, u) in [(0.3, 0.6), (0.1, 0.1), (0.8, 0.25)] {
            var student = StudentParameters(rowOfState: env.tiedRows!, rowCount: 2, actionCount: 2)
            student.setRow(0, probabilities: [1 - p, p])
            student.setRow(1, probabilities: [1 - u, u])
            var o = Reference.Options()
            o.agreementScale = 4
            for (method, corrected) in [(Method.onPolicyDistillR, false), (.nDistillR, true)] {
                let ref = Reference.expectedUpdate(
                    method, mdp: env.mdp, teacher: Teachers.fig2(), student: student, discount: 1, options: o)
                let s0 = p * (1 - p) * (corrected ? 1 + 2 * u : 1 - 2 * u)
                let shared = u * (1 - u) * (2 * p - 1)
                let expected = [-s0, s0, -shared, shared]
                #expect(relativeDistance(ref, expected) <= 1e-12, "\(method.rawValue) p=\(p) u=\(u): \(ref)")
            }
        }
    }

    /// The reference's hand-derived loss gradients against central differences of its loss values.
    @Test func referenceLossGradientsMatchFiniteDifferences() {
        let t = [0.2, 0.5, 0.3]
        let qv = [0.3, -0.1, 0.25]
        let z0 = [0.4, -0.3, 0.1]
        let losses: [Reference.Loss] = [
            .crossEntropy, .reverseCrossEntropy, .agreement(4), .rusuKL(0.7), .rusuNLL, .rusuMSE,
        ]
        for loss in losses {
            let analytic = Reference.lossGradient(loss, pi: Reference.softmaxRow(z0), z: z0, t: t, qv: qv)
            let numeric = Reference.numericalGradient(z0) { z in
                Reference.lossValue(loss, pi: Reference.softmaxRow(z), z: z, t: t, qv: qv)
            }
            #expect(relativeDistance(analytic, numeric) <= 1e-7, "\(loss): \(analytic) vs \(numeric)")
        }
    }

    /// The reference's occupancies and values against a hand computation on a two-state chain:
    /// s0 →(a0: stay with 0.5, end 0.5; a1: to s1)→ …, s1 ends on any action with reward 1.
    @Test func referenceVisitsAndValuesOnAHandWorkedChain() {
        let mdp = TabularMDP(
            stateCount: 3, actionCount: 2, discount: 0.5, startDistribution: [1, 0, 0],
            isTerminal: [false, false, true]
        ) { s, a in
            switch (s, a) {
            case (0, 0): [Outcome(next: 0, probability: 0.5, reward: 0), Outcome(next: 2, probability: 0.5, reward: 0)]
            case (0, _): [Outcome(next: 1, probability: 1, reward: 0)]
            default: [Outcome(next: 2, probability: 1, reward: 1)]
            }
        }
        // Uniform policy. d(s0) = 1 + 0.25 d(s0) → 4/3; d(s1) = 0.5 d(s0) = 2/3.
        let uniform = [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]]
        let d = Reference.visits(mdp, uniform)
        #expect(abs(d[0] - 4.0 / 3) < 1e-12 && abs(d[1] - 2.0 / 3) < 1e-12 && d[2] == 0, "\(d)")
        // V(s1) = 1; V(s0) = 0.5·(0.5·γ·V(s0)) + 0.5·γ·V(s1) = 0.125 V(s0) + 0.25 → 2/7.
        let v = Reference.values(mdp, uniform)
        #expect(abs(v[1] - 1) < 1e-12 && abs(v[0] - 2.0 / 7) < 1e-12, "\(v)")
    }

    /// Off-policy control (uniform, mixture) with a critic: `Σ_a q ∇log π_θ ≠ 0`, so the sampled
    /// baseline's sign and the TD(1) bootstrap show in the mean.
    @Test(arguments: [Method.baseline, .actorCritic, .vGated])
    func sampledMeanMatchesTheReferenceUnderOffPolicyControlWithACritic(method: Method) throws {
        let p = ReferenceProblem(seed: 8, discount: 0.9)
        let critic = Self.mixedCritic(p)
        for control in [ControlPolicy.uniform, .mixture(beta: 0.5)] {
            var o = Reference.Options()
            o.critic = critic
            o.control = control
            let ref = Self.reference(method, p, o)
            let context = UpdateContext(discount: p.mdp.discount, control: control, studentValues: critic)
            let policy = StudentPolicy(p.student)
            var rng = Xoshiro256StarStar(seed: 777 &+ UInt64(Method.allCases.firstIndex(of: method)!))
            var buffer = EpisodeBuffer()
            var moments = RunningMoments(size: p.student.logits.count)
            var acc = UpdateAccumulator(rowCount: p.student.rowCount, actionCount: p.student.actionCount)
            for _ in 0..<20_000 {
                collectEpisode(
                    p.mdp, policy: policy, teacher: p.teacher, control: control, maxSteps: 10_000, rng: &rng,
                    into: &buffer)
                accumulateSampledUpdate(
                    TabularEpisode(buffer, teacher: p.teacher), policy: policy, rule: method.rule, context: context,
                    into: &acc)
                moments.add(acc.finish(policy: policy))
            }
            let bad = outsideConfidenceBand(mean: moments.mean, standardError: moments.standardError, exact: ref)
            #expect(bad.isEmpty, "\(method.rawValue) under \(control): \(bad)")
        }
    }

    /// The production sampled update's Monte-Carlo mean against the reference (not against
    /// `ExactUpdate`), with the Bonferroni-corrected 99 % band of `outsideConfidenceBand`.
    @Test(arguments: [
        Method.klRegularised, .teacherVReward, .nDistillR, .expEntropyRegularised, .vGated, .tdTeacherV,
    ])
    func sampledMeanMatchesTheReference(method: Method) throws {
        let p = ReferenceProblem(seed: 7, discount: 0.9)
        let critic = Self.mixedCritic(p)
        var o = Reference.Options()
        o.critic = critic
        let ref = Self.reference(method, p, o)
        let rule = method.rule
        let context = UpdateContext(discount: p.mdp.discount, control: .student, studentValues: critic)
        let policy = StudentPolicy(p.student)
        var rng = Xoshiro256StarStar(seed: 4242 &+ UInt64(Method.allCases.firstIndex(of: method)!))
        var buffer = EpisodeBuffer()
        var moments = RunningMoments(size: p.student.logits.count)
        var acc = UpdateAccumulator(rowCount: p.student.rowCount, actionCount: p.student.actionCount)
        for _ in 0..<20_000 {
            collectEpisode(
                p.mdp, policy: policy, teacher: p.teacher, control: .student, maxSteps: 10_000, rng: &rng,
                into: &buffer)
            accumulateSampledUpdate(
                TabularEpisode(buffer, teacher: p.teacher), policy: policy, rule: rule, context: context, into: &acc)
            moments.add(acc.finish(policy: policy))
        }
        let bad = outsideConfidenceBand(mean: moments.mean, standardError: moments.standardError, exact: ref)
        #expect(bad.isEmpty, "\(method.rawValue): \(bad)")
    }
}
