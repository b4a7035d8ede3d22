import DistillCore
import DistillExperiments
import Foundation
import Testing

/// Issue 13's corrections 6–8: fig2's default step, the fig4 sensitivity run list, fig3's
/// "full teacher performance" measure. Run lists only (no training) except where said.
@Suite struct Issue13CorrectionsTests {
    @Test func fig2DefaultsToThePapersStepAndQuickKeepsTheFastOne() throws {
        let full = try Experiment.make(.preset(.fig2, quick: false))
        let quick = try Experiment.make(.preset(.fig2, quick: true))
        #expect(full.runs.allSatisfy { $0.configuration.method.learningRate == Experiment.fig2PaperStep })
        #expect(Experiment.fig2PaperStep == 0.014)
        #expect(quick.runs.allSatisfy { $0.configuration.method.learningRate == Experiment.fig2FastStep })
        var fast = ExperimentParameters.preset(.fig2, quick: false)
        fast.step = 0.5
        #expect(try Experiment.make(fast).runs.allSatisfy { $0.configuration.method.learningRate == 0.5 })
        fast.step = -1
        #expect(throws: DistillError.self) { try Experiment.make(fast) }
    }

    @Test func fig4SweepCoversTheWholeGridAndShards() throws {
        var p = ExperimentParameters.preset(.fig4Sweep, quick: false)
        p.mdps = 2
        let sweep = try Experiment.make(p)
        // 2 |A| × 5 steps × 2 baselines panels, 6 rules (bare and +R) each, per MDP.
        #expect(Set(sweep.runs.map(\.panel)).count == 20)
        #expect(sweep.runs.count == 2 * 20 * Experiment.fig4SweepMethods.count)
        let settings = Set(
            sweep.runs.map {
                "\($0.configuration.environment.manyActionsCount) \($0.configuration.method.learningRate) \($0.configuration.method.baseline!) \($0.curve)"
            })
        #expect(settings.count == 2 * 5 * 2 * 6)
        #expect(
            sweep.runs.allSatisfy {
                $0.configuration.iterations == 30_000 && $0.teacherRecipe == .liftedFromFourActions
            })
        let shares = (0..<16).map { Set(sweep.runs(shard: $0, of: 16).map(\.id)) }
        #expect(shares.reduce(Set<String>()) { $0.union($1) } == Set(sweep.runs.map(\.id)))
        #expect(shares.map(\.count).reduce(0, +) == sweep.runs.count)
        p.step = 0.01
        #expect(try Experiment.make(p).runs.allSatisfy { $0.configuration.method.learningRate == 0.01 })
    }
}
