import DistillNN
import Foundation
import Testing

/// The optimisers against their closed-form first steps, a double-precision Adam over several
/// steps, checkpoint round trips, and clipping to the exact global norm.
@Suite struct OptimizerTests {
    static let theta: [Float] = [0.5, -1.25, 3, 0, 2, -0.75]
    static let g: [Float] = [0.3, -2, 1e-3, 0, -1e-6, 4]

    @Test func sgdStepsAgainstTheGradient() {
        var sgd = SGD(learningRate: 0.1)
        var p = Self.theta
        sgd.step(parameters: &p, gradients: Self.g)
        for i in p.indices { #expect(p[i] == Self.theta[i] - 0.1 * Self.g[i]) }
    }

    @Test func adamFirstStepIsLearningRateTimesGradientOverItsMagnitude() {
        var adam = Adam(parameterCount: Self.theta.count, learningRate: 0.01)
        var p = Self.theta
        adam.step(parameters: &p, gradients: Self.g)
        for i in p.indices {
            let gi = Double(Self.g[i])
            let expected = Double(Self.theta[i]) - 0.01 * gi / (abs(gi) + 1e-8)
            #expect(abs(Double(p[i]) - expected) <= 1e-6 * max(1, abs(expected)), "parameter \(i)")
        }
    }

    @Test func adamFollowsItsDefinitionOverSeveralSteps() {
        var adam = Adam(parameterCount: 3, learningRate: 0.05, beta1: 0.8, beta2: 0.99, epsilon: 1e-6)
        var p: [Float] = [1, -2, 0.5]
        var reference = p.map(Double.init)
        var m = [0.0, 0, 0]
        var v = [0.0, 0, 0]
        for t in 1...5 {
            let grad: [Float] = [Float(t) * 0.1, -0.3, Float(t % 2) - 0.5]
            adam.step(parameters: &p, gradients: grad)
            for i in 0..<3 {
                let gi = Double(grad[i])
                m[i] = 0.8 * m[i] + 0.2 * gi
                v[i] = 0.99 * v[i] + 0.01 * gi * gi
                let mHat = m[i] / (1 - pow(0.8, Double(t)))
                let vHat = v[i] / (1 - pow(0.99, Double(t)))
                reference[i] -= 0.05 * mHat / (vHat.squareRoot() + 1e-6)
            }
        }
        expectClose(p.map(Double.init), reference, tolerance: 1e-5, "Adam after 5 steps")
    }

    @Test func rmspropFirstStepMatchesItsClosedForm() {
        for centered in [false, true] {
            var rms = RMSProp(
                parameterCount: Self.theta.count, learningRate: 0.01, decay: 0.95, epsilon: 0.01, centered: centered)
            var p = Self.theta
            rms.step(parameters: &p, gradients: Self.g)
            for i in p.indices {
                let gi = Double(Self.g[i])
                let square = centered ? 0.95 * 0.05 * gi * gi : 0.05 * gi * gi
                let expected = Double(Self.theta[i]) - 0.01 * gi / (square + 0.01).squareRoot()
                #expect(abs(Double(p[i]) - expected) <= 1e-6 * max(1, abs(expected)), "centered \(centered), \(i)")
            }
        }
    }

    @Test func optimiserStateRoundTripsAndContinuesIdentically() throws {
        func check(_ make: () -> some Optimizer) throws {
            var a = make()
            var p = Self.theta
            for _ in 0..<3 { a.step(parameters: &p, gradients: Self.g) }
            var b = make()
            try b.importState(a.exportState())
            #expect(b.exportState() == a.exportState())
            var pa = p
            var pb = p
            a.step(parameters: &pa, gradients: Self.g)
            b.step(parameters: &pb, gradients: Self.g)
            #expect(pa == pb)
        }
        try check { SGD(learningRate: 0.2) }
        try check { Adam(parameterCount: Self.theta.count) }
        try check { RMSProp(parameterCount: Self.theta.count) }
        try check { RMSProp(parameterCount: Self.theta.count, centered: true) }
    }

    @Test func foreignOrMisSizedOptimiserStateIsAnError() {
        let adamState = Adam(parameterCount: 4).exportState()
        expectNetworkError(["\"adam\"", "\"rmsprop\""]) {
            var rms = RMSProp(parameterCount: 4)
            try rms.importState(adamState)
        }
        expectNetworkError(["adam state buffer", "4 values for 5 parameters"]) {
            var adam = Adam(parameterCount: 5)
            try adam.importState(adamState)
        }
        var missing = adamState
        missing.hyperparameters["beta2"] = nil
        expectNetworkError(["beta2"]) {
            var adam = Adam(parameterCount: 4)
            try adam.importState(missing)
        }
    }

    @Test func clippingScalesToTheExactGlobalNorm() {
        var g: [Float] = [3, -4, 12, 0]  // norm 13
        let before = clipGlobalNorm(&g, maxNorm: 6.5)
        #expect(before == 13)
        #expect(g == [1.5, -2, 6, 0])
        let norm = g.map { Double($0 * $0) }.reduce(0, +).squareRoot()
        #expect(abs(norm - 6.5) < 1e-6)
        var small: [Float] = [0.1, 0.2]
        let unchanged = small
        #expect(abs(clipGlobalNorm(&small, maxNorm: 1) - 0.223_606_8) < 1e-6)
        #expect(small == unchanged)
        var values = TestValues(seed: 5)
        var large = values.uniform(100_000)
        clipGlobalNorm(&large, maxNorm: 1)
        #expect(abs(large.map { Double($0) * Double($0) }.reduce(0, +).squareRoot() - 1) < 1e-5)
    }
}
