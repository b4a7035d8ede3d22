import DistillNN
import Foundation
import Testing

/// The whole policy–value network: its gradient against central differences of a double-precision
/// forward pass built from the reference layers, its initialisation, and its sign convention.
@Suite struct NetworkTests {
    /// Logits and values of the network's parameters `theta` in double precision.
    static func referenceOutputs(
        _ network: PolicyValueNetwork, _ x: [Double], batch: Int, _ theta: [Double]
    )
        -> (logits: [Double], values: [Double])
    {
        var offset = 0
        func run(_ layer: any Layer, _ input: [Double]) -> [Double] {
            let slice = Array(theta[offset..<(offset + layer.parameterCount)])
            offset += layer.parameterCount
            return Reference.forward(layer, input, batch: batch, slice)
        }
        var h = x
        for layer in network.torso { h = run(layer, h) }
        return (run(network.logitsHead, h), run(network.valueHead, h))
    }

    static func checkGradient(_ architecture: String, inputShape: [Int], actions: Int, batch: Int, seed: UInt64) throws
    {
        let network = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: architecture), inputShape: inputShape, actionCount: actions,
            seed: seed)
        var values = TestValues(seed: seed)
        // Parameters of order 1 (not the near-zero heads of the initialisation) so every path matters.
        network.parameters = values.uniform(network.parameterCount, scale: 0.6)
        let x = values.uniform(batch * network.inputSize)
        let gLogits = values.uniform(batch * actions)
        let gValues = values.uniform(batch)
        let (logits, outValues) = network.forward(x, batch: batch)
        network.zeroGradients()
        network.backward(logitGradient: gLogits, valueGradient: gValues)
        let xD = x.map(Double.init)
        let thetaD = network.parameters.map(Double.init)
        let reference = referenceOutputs(network, xD, batch: batch, thetaD)
        expectClose(logits.map(Double.init), reference.logits, tolerance: 1e-5, "\(architecture) logits")
        expectClose(outValues.map(Double.init), reference.values, tolerance: 1e-5, "\(architecture) values")
        let gl = gLogits.map(Double.init)
        let gv = gValues.map(Double.init)
        let numeric = Reference.gradient(
            of: {
                let out = referenceOutputs(network, xD, batch: batch, $0)
                return Reference.dot(gl, out.logits) + Reference.dot(gv, out.values)
            }, at: thetaD)
        expectClose(network.gradients.map(Double.init), numeric, tolerance: 1e-4, "\(architecture) ∂L/∂θ")
    }

    @Test func mlpGradientMatchesCentralDifferences() throws {
        try Self.checkGradient("mlp:6,5", inputShape: [4], actions: 3, batch: 5, seed: 1)
        try Self.checkGradient("mlp:7/tanh", inputShape: [5], actions: 4, batch: 3, seed: 2)
    }

    @Test func linearNetworkGradientMatchesCentralDifferences() throws {
        try Self.checkGradient("linear", inputShape: [6], actions: 4, batch: 3, seed: 3)
    }

    @Test func convolutionalGradientMatchesCentralDifferences() throws {
        try Self.checkGradient("conv:3x2,2x2/mlp:5", inputShape: [4, 5, 2], actions: 3, batch: 2, seed: 4)
        try Self.checkGradient("conv:3x3s2/tanh", inputShape: [5, 5, 2], actions: 2, batch: 3, seed: 5)
        try Self.checkGradient("mlp:4", inputShape: [2, 3, 2], actions: 2, batch: 2, seed: 6)
    }

    @Test func initialPolicyIsNearUniformAndSeeded() throws {
        let make = {
            try PolicyValueNetwork(
                architecture: NetworkArchitecture(parsing: "mlp:64,64"), inputShape: [20], actionCount: 5, seed: 42)
        }
        let a = try make()
        let b = try make()
        #expect(a.parameters == b.parameters)
        let other = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: "mlp:64,64"), inputShape: [20], actionCount: 5, seed: 43)
        #expect(other.parameters != a.parameters)
        var values = TestValues(seed: 9)
        let (logits, _) = a.forward(values.uniform(8 * 20), batch: 8)
        #expect(logits.map(abs).max()! < 0.1, "initial logits \(logits.map(abs).max()!) should be near 0")
        // He initialisation: the first layer's weights have standard deviation ≈ √(2/20).
        let w = a.tensor(named: "torso.0.weight")!.scalars
        let deviation = (w.map { Double($0 * $0) }.reduce(0, +) / Double(w.count)).squareRoot()
        #expect(abs(deviation - (2.0 / 20).squareRoot()) < 0.03)
    }

    /// Descending on −g (the backward convention for an ascent direction g) moves the logits along g.
    @Test func descentOnNegatedAscentDirectionRaisesThatLogit() throws {
        let network = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: "mlp:16"), inputShape: [3], actionCount: 3, seed: 7)
        let x: [Float] = [0.5, -0.2, 0.9]
        let before = network.forward(x, batch: 1).logits
        network.zeroGradients()
        network.backward(logitGradient: [0, -1, 0], valueGradient: [0])  // ascent direction e_1
        var sgd = SGD(learningRate: 0.1)
        network.step(&sgd)
        let after = network.forward(x, batch: 1).logits
        #expect(after[1] - before[1] > 0)
        #expect(after[1] - before[1] > abs(after[0] - before[0]))
    }

    @Test func batchesOfDifferentSizesGiveTheSameRows() throws {
        let network = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: "conv:4x3/mlp:8"), inputShape: [5, 5, 2], actionCount: 3,
            seed: 3)
        var values = TestValues(seed: 4)
        network.parameters = values.uniform(network.parameterCount, scale: 0.5)
        let x = values.uniform(6 * 50)
        let whole = network.forward(x, batch: 6)
        for row in [0, 5] {
            let single = network.forward(Array(x[(row * 50)..<(row * 50 + 50)]), batch: 1)
            expectClose(
                single.logits.map(Double.init), whole.logits[(row * 3)..<(row * 3 + 3)].map(Double.init),
                tolerance: 1e-6, "row \(row)")
            #expect(abs(single.values[0] - whole.values[row]) < 1e-5)
        }
        let tensorForm = network.forward(Tensor(shape: [6, 5, 5, 2], scalars: x))
        #expect(tensorForm.logits.shape == [6, 3])
        #expect(tensorForm.logits.scalars == whole.logits)
    }

    @Test func architectureThatDoesNotFitTheInputIsAnError() {
        expectNetworkError(["conv:4x3", "[height, width, channels]"]) {
            _ = try PolicyValueNetwork(
                architecture: NetworkArchitecture(parsing: "conv:4x3"), inputShape: [10], actionCount: 2, seed: 0)
        }
        expectNetworkError(["convolution 2 (8x3)", "larger than its 2×2 input"]) {
            _ = try PolicyValueNetwork(
                architecture: NetworkArchitecture(parsing: "conv:4x3,8x3"), inputShape: [4, 4, 1], actionCount: 2,
                seed: 0)
        }
        expectNetworkError(["action"]) {
            _ = try PolicyValueNetwork(architecture: NetworkArchitecture(), inputShape: [3], actionCount: 0, seed: 0)
        }
    }
}
