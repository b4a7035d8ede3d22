import DistillCore
import DistillExperiments
import Foundation
import Testing

/// Each `--quick` preset, run in-process on both cores, and its qualitative finding asserted with a
/// 95 % confidence interval of a paired difference (runs on the same MDP and seed).
@Suite(.serialized) struct QuickPresetTests {
    func run(_ name: ExperimentName) throws -> (ExperimentResults, [Finding]) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("experiment-\(name)-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let parameters = ExperimentParameters.preset(name, quick: true)
        try ExperimentDirectory.prepare(parameters, directory: directory)
        let experiment = try Experiment.make(parameters)
        let started = Date()
        try ExperimentRunner(experiment: experiment, directory: directory, workers: 2).run(experiment.runs) { _ in }
        let results = try ExperimentResults.load(experiment, directory: directory)
        #expect(results.count == experiment.runs.count)
        let findings = try ExperimentDirectory.summarise(results, directory: directory)
        print(
            "\(name) quick: \(experiment.runs.count) runs in \(String(format: "%.1f", Date().timeIntervalSince(started))) s"
        )
        for f in findings { print("  [\(f.verdict)] \(f.name): \(f.measured)") }
        return (results, findings)
    }

    func finding(_ findings: [Finding], _ name: String) throws -> Finding {
        try #require(findings.first { $0.name == name }, "finding '\(name)'")
    }

    @Test func fig2OnPolicyDistillRCyclesAndNDistillRConverges() throws {
        let (_, findings) = try run(.fig2)
        let exact = try finding(findings, "cycling vs convergence (exact)")
        #expect(exact.values["exact_on_policy_crossings_second_half"]! >= 2)
        #expect(exact.values["exact_on_policy_amplitude_second_half"]! > 0.5)
        #expect(exact.values["exact_n_distill_convergence_iteration"] != nil)
        let sampled = try #require(findings.first { $0.name.hasPrefix("cycling vs convergence (sampled") })
        // The swing of on-policy distill+R minus that of n-distill+R: its 95 % CI lies above 0.
        #expect(sampled.values["sampled_swing_difference_low"]! > 0)
        #expect(sampled.values["sampled_n_distill_final_p_right_low"]! > 0.9)
    }

    @Test func fig3StudentDrivenBeatsTeacherDriven() throws {
        let (_, findings) = try run(.fig3)
        for t in ["T=0", "T=0.01", "T=0.1"] {
            let f = try finding(findings, "speed of student-driven control, \(t)")
            // Mean return over the run, student-driven − teacher-driven, paired: CI above 0.
            #expect(f.values["area_student_minus_teacher_low"]! > 0, "\(t)")
            // Correction 8's measure is present (its ratios are reported, not asserted at 800 iterations).
            let full = try finding(findings, "steps to full teacher performance, \(t)")
            #expect(full.values["ratio_teacher_over_student_geomean_99"] != nil, "\(t)")
        }
    }

    @Test func fig4DistillationStillLearnsWithManyActions() throws {
        let (results, _) = try run(.fig4)
        let panel = "|A|=400"
        let onPolicy = results.values(.studentReturn, panel: panel, curve: Method.onPolicyDistill.rawValue)
        let entropy = results.values(.studentReturn, panel: panel, curve: Method.entropyRegularised.rawValue)
        let expected = results.values(.studentReturn, panel: panel, curve: Method.expEntropyRegularised.rawValue)
        // On-policy distillation (ℓ = H×) beats entropy-regularised at |A| = 400 (paper: "traditional
        // distillation still works"). The paper's exp-entropy > entropy-regularised is NOT asserted:
        // in our reproduction both collapse alike (docs/results/README.md, Fig. 4), printed here; the
        // mechanism (their variances differ by 1–3 %, and an exact critic of the pseudo-return does
        // not separate them either) is measured in Fig4VarianceTests.
        #expect(ExperimentResults.pairedDifference(onPolicy, entropy).lower > 0)
        print(
            "  fig4 |A|=400 exp-entropy − entropy-regularised: \(ExperimentResults.pairedDifference(expected, entropy).formatted())"
        )
    }

    @Test func fig5ValueAwareMethodsBeatCloningANoisyTeacher() throws {
        let (_, findings) = try run(.fig5)
        let f = try finding(findings, "final return, 25% noise, MC student")
        #expect(f.values["v-gated_minus_on_policy_distill_low"]! > 0)
        #expect(f.values["teacher-v-reward_minus_on_policy_distill_low"]! > 0)
    }

    @Test func fig6TeacherVRewardBeatsCloningAnAdversarialTeacher() throws {
        let (_, findings) = try run(.fig6)
        let f = try finding(findings, "adversarial teacher")
        for cloning in Experiment.cloningMethods {
            #expect(f.values["teacher_v_reward_minus_\(cloning.rawValue)_low"]! > 0, "\(cloning.rawValue)")
        }
    }

    @Test func rusuMSEIsTheWorstLoss() throws {
        let (results, _) = try run(.rusu)
        let panel = Experiment.rusuPanel
        let ret = { (c: String) in results.values(.studentReturn, panel: panel, curve: c) }
        let (kl, nll, mse) = (Experiment.rusuLosses[0].0, Experiment.rusuLosses[1].0, Experiment.rusuLosses[2].0)
        #expect(ExperimentResults.pairedDifference(ret(kl), ret(mse)).lower > 0)
        #expect(ExperimentResults.pairedDifference(ret(nll), ret(mse)).lower > 0)
    }

    @Test func faFindingsNetworkStudents() throws {
        let (_, findings) = try run(.faFindings)
        // Fig. 5 with an MLP student: v-gated and teacher-v-reward beat cloning the 25%-noisy teacher
        // (paired 95 % CI of the final-return difference above 0).
        let noisy = try finding(findings, "noisy teacher, network student")
        #expect(noisy.values["v-gated_minus_on_policy_distill_low"]! > 0)
        #expect(noisy.values["teacher-v-reward_minus_on_policy_distill_low"]! > 0)
        // Fig. 6: teacher-v-reward recovers from the adversarial teacher, cloning does not (CI above 1).
        let adversarial = try finding(findings, "adversarial teacher, network student")
        #expect(adversarial.values["teacher-v-reward_minus_on_policy_distill_low"]! > 1)
        // Fig. 2's MDP with an MLP on one-hot states (s_L and s_R told apart): on-policy distill+R does
        // NOT cycle (measured: it converges to π(R|s0) ≈ 0), n-distill+R converges to R (> 0.9 at s0).
        let fig2 = try finding(findings, "Fig. 2's MDP, network student")
        #expect(fig2.values["swing_difference_high"]! < 0.1)
        #expect(fig2.values["n_distill_final_p_right_s0_mean"]! > 0.9)
    }
}
