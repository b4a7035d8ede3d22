import DistillCore
import Foundation
import Testing

/// Fig. 2 / Appendix C: on-policy distill + R cycles, n-distill + R converges.
@Suite struct Fig2Tests {
    /// Trains the tied sigmoid student of Fig. 2 with exact expected updates and plain gradient
    /// steps of size `sigmoidStep` on the sigmoid parameters `θ = z_R − z_L` (the logit rows get
    /// half of it, since `d(z_R − z_L) = 2·step·u_R` for a softmax row); records π(R|s0), π(R|sR)
    /// and the expected loss after every step.
    static func train(
        _ method: Method, steps: Int, sigmoidStep: Double
    ) throws -> (
        s0: [Double], sR: [Double], loss: [Double]
    ) {
        let env = Environments.fig2()
        let teacher = Teachers.fig2()
        let start = Foundation.log(0.1 / 0.9)
        var student = StudentParameters(
            rowOfState: env.tiedRows!, rowCount: 2, actionCount: 2, logits: [0, start, 0, start])
        let rule = method.rule(distillationLoss: .agreement(scale: 4))
        let context = UpdateContext(discount: 1, control: .student)
        var optimiser = Optimiser(kind: .sgd, learningRate: sigmoidStep / 2)
        var s0: [Double] = []
        var sR: [Double] = []
        var loss: [Double] = []
        for _ in 0..<steps {
            let u = try ExactUpdate.expectedUpdate(
                env.mdp, teacher: teacher, parameters: student, rule: rule, context: context)
            optimiser.apply(u, to: &student)
            let p = student.probabilities(state: 0)[1]
            let q = student.probabilities(state: 2)[1]
            s0.append(p)
            sR.append(q)
            loss.append(-4 * p * q)  // E[Σ_t ℓ(s_t)] = P(reach sR)·ℓ(sR)
        }
        return (s0, sR, loss)
    }

    static func crossings(_ x: [Double], level: Double = 0.5) -> Int {
        zip(x, x.dropFirst()).filter { ($0 - level) * ($1 - level) < 0 }.count
    }

    @Test func onPolicyDistillWithRewardKeepsCycling() throws {
        let run = try Self.train(.onPolicyDistillR, steps: 20_000, sigmoidStep: 1)
        let early = Self.crossings(Array(run.s0.prefix(10_000)))
        let late = Self.crossings(Array(run.s0.suffix(10_000)))
        let lateLoss = run.loss.suffix(5_000)
        print(
            "fig2 on-policy-distill+R: crossings of π(R|s0) = 0.5: first half \(early), second half \(late); late loss range \(lateLoss.min()!) … \(lateLoss.max()!)"
        )
        #expect(early >= 3 && late >= 3, "π(R|s0) should cross 0.5 again and again")
        #expect(lateLoss.max()! - lateLoss.min()! > 0.1, "the expected loss should not settle")
    }

    @Test func nDistillWithRewardConverges() throws {
        let run = try Self.train(.nDistillR, steps: 20_000, sigmoidStep: 1)
        print("fig2 n-distill+R: final π(R|s0) = \(run.s0.last!), π(R|sR) = \(run.sR.last!)")
        #expect(run.s0.last! > 0.99 && run.sR.last! > 0.99)
        #expect(Self.crossings(Array(run.s0.suffix(10_000))) == 0)
    }
}
