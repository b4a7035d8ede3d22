import DistillNN
import Testing

/// Every layer's forward pass against a direct double-precision implementation, and its backward
/// pass (input and parameter gradients) against central differences of that implementation.
///
/// Tolerance: the Float layer sums at most ~100 products of O(1) terms, so its relative error is
/// at most ~100 × 6e-8 ≈ 6e-6; central differences of the Double reference are exact to ~1e-9
/// (every layer here is smooth at the test points: ReLU inputs stay ≥ 0.05 from the kink). 1e-4
/// leaves margin without hiding a wrong index (which gives O(1) errors).
@Suite struct LayerGradientTests {
    static let tolerance = 1e-4

    static func check(_ layer: any Layer, batch: Int, seed: UInt64, margin: Float = 0) {
        var values = TestValues(seed: seed)
        let x = values.uniform(batch * layer.inputSize, margin: margin)
        let theta = values.uniform(layer.parameterCount, scale: 0.5)
        let upstream = values.uniform(batch * layer.outputSize)
        var y = [Float](repeating: 0, count: batch * layer.outputSize)
        var dTheta = [Float](repeating: 0, count: max(layer.parameterCount, 1))
        var dx = [Float](repeating: 0, count: batch * layer.inputSize)
        let thetaOrDummy = theta.isEmpty ? [Float(0)] : theta
        x.withUnsafeBufferPointer { x in
            thetaOrDummy.withUnsafeBufferPointer { p in
                y.withUnsafeMutableBufferPointer { y in
                    layer.forward(x.baseAddress!, batch: batch, parameters: p.baseAddress!, output: y.baseAddress!)
                }
                upstream.withUnsafeBufferPointer { g in
                    y.withUnsafeBufferPointer { y in
                        dTheta.withUnsafeMutableBufferPointer { dp in
                            dx.withUnsafeMutableBufferPointer { dx in
                                layer.backward(
                                    input: x.baseAddress!, output: y.baseAddress!, outputGradient: g.baseAddress!,
                                    batch: batch, parameters: p.baseAddress!, parameterGradients: dp.baseAddress!,
                                    inputGradient: dx.baseAddress!)
                            }
                        }
                    }
                }
            }
        }
        let xD = x.map(Double.init)
        let thetaD = theta.map(Double.init)
        let gD = upstream.map(Double.init)
        let name = "\(type(of: layer)) \(layer.inputShape)→\(layer.outputShape)"
        expectClose(
            y.map(Double.init), Reference.forward(layer, xD, batch: batch, thetaD), tolerance: 1e-5, "\(name) forward")
        let numericInput = Reference.gradient(
            of: { Reference.dot(gD, Reference.forward(layer, $0, batch: batch, thetaD)) }, at: xD)
        expectClose(dx.map(Double.init), numericInput, tolerance: tolerance, "\(name) ∂L/∂input")
        if !theta.isEmpty {
            let numericTheta = Reference.gradient(
                of: { Reference.dot(gD, Reference.forward(layer, xD, batch: batch, $0)) }, at: thetaD)
            expectClose(dTheta.map(Double.init), numericTheta, tolerance: tolerance, "\(name) ∂L/∂θ")
        }
    }

    @Test func linearGradientsMatchCentralDifferences() {
        Self.check(Linear(inputs: 7, outputs: 5), batch: 4, seed: 1)
        Self.check(Linear(inputs: 1, outputs: 1), batch: 1, seed: 2)
        Self.check(Linear(inputs: 30, outputs: 3), batch: 9, seed: 3)
    }

    @Test func reluGradientsMatchCentralDifferencesAwayFromTheKink() {
        Self.check(ReLU(shape: [11]), batch: 3, seed: 4, margin: 0.05)
        Self.check(ReLU(shape: [2, 3, 2]), batch: 2, seed: 5, margin: 0.05)
    }

    @Test func tanhGradientsMatchCentralDifferences() {
        Self.check(Tanh(shape: [13]), batch: 3, seed: 6)
    }

    @Test func flattenIsTheIdentityOnRowMajorData() {
        Self.check(Flatten(shape: [3, 2, 4]), batch: 3, seed: 7)
    }

    @Test func conv2dGradientsMatchCentralDifferences() {
        Self.check(Conv2d(inputShape: [5, 6, 2], outChannels: 3, kernel: 3), batch: 2, seed: 8)
        Self.check(Conv2d(inputShape: [7, 7, 3], outChannels: 2, kernel: 3, stride: 2), batch: 2, seed: 9)
        Self.check(Conv2d(inputShape: [4, 5, 1], outChannels: 4, kernel: 2, stride: 3), batch: 3, seed: 10)
        Self.check(Conv2d(inputShape: [3, 3, 2], outChannels: 2, kernel: 3), batch: 2, seed: 11)
        Self.check(Conv2d(inputShape: [6, 4, 2], outChannels: 3, kernel: 1), batch: 2, seed: 12)
    }

    /// The im2col + GEMM forward pass against a naive direct convolution loop, on larger shapes.
    @Test func conv2dForwardMatchesDirectConvolution() {
        let shapes: [(input: [Int], out: Int, kernel: Int, stride: Int)] = [
            ([10, 10, 4], 16, 3, 1), ([10, 10, 4], 8, 3, 2), ([9, 12, 3], 5, 4, 1), ([8, 8, 16], 32, 3, 1),
        ]
        for (index, shape) in shapes.enumerated() {
            let conv = Conv2d(
                inputShape: shape.input, outChannels: shape.out, kernel: shape.kernel, stride: shape.stride)
            var values = TestValues(seed: 100 + UInt64(index))
            let batch = 3
            let x = values.uniform(batch * conv.inputSize)
            let theta = values.uniform(conv.parameterCount, scale: 0.3)
            var y = [Float](repeating: 0, count: batch * conv.outputSize)
            x.withUnsafeBufferPointer { x in
                theta.withUnsafeBufferPointer { p in
                    y.withUnsafeMutableBufferPointer { y in
                        conv.forward(x.baseAddress!, batch: batch, parameters: p.baseAddress!, output: y.baseAddress!)
                    }
                }
            }
            let expected = Reference.convolve(conv, x.map(Double.init), batch: batch, theta.map(Double.init))
            expectClose(y.map(Double.init), expected, tolerance: 1e-5, "conv \(shape)")
        }
    }

    @Test func parameterGradientsAccumulateAcrossBackwardCalls() {
        // Two backward passes of the same batch give twice the gradient of one.
        let layer = Linear(inputs: 3, outputs: 2)
        let x: [Float] = [1, 2, 3, -1, 0.5, 2]
        let theta: [Float] = [0.1, 0.2, 0.3, -0.4, 0.5, -0.6, 0.01, 0.02]
        let g: [Float] = [1, -1, 0.5, 2]
        var y = [Float](repeating: 0, count: 4)
        var dTheta = [Float](repeating: 0, count: 8)
        x.withUnsafeBufferPointer { x in
            theta.withUnsafeBufferPointer { p in
                y.withUnsafeMutableBufferPointer {
                    layer.forward(x.baseAddress!, batch: 2, parameters: p.baseAddress!, output: $0.baseAddress!)
                }
                for _ in 0..<2 {
                    g.withUnsafeBufferPointer { g in
                        y.withUnsafeBufferPointer { y in
                            dTheta.withUnsafeMutableBufferPointer { dp in
                                layer.backward(
                                    input: x.baseAddress!, output: y.baseAddress!, outputGradient: g.baseAddress!,
                                    batch: 2, parameters: p.baseAddress!, parameterGradients: dp.baseAddress!,
                                    inputGradient: nil)
                            }
                        }
                    }
                }
            }
        }
        // ∂L/∂W[o,i] = Σ_b g[b,o]·x[b,i]; W[0,0]: 1·1 + 0.5·(−1) = 0.5, twice = 1; bias[1]: (−1 + 2)·2 = 2.
        #expect(dTheta[0] == 1)
        #expect(dTheta[7] == 2)
    }
}
