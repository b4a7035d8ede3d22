import DistillNN
import Foundation
import Testing

/// The multi-controller network (`…/heads:K`, Rusu et al. 2016 §4.3): each row's one-hot selector
/// picks its head; its forward pass and gradient against a double-precision reference that runs
/// every head and keeps the selected one, the unselected heads untouched, and its file round trip.
@Suite struct MultiHeadNetworkTests {
    /// Rows of `observationSize` scalars each followed by the one-hot selector of `heads[row]`.
    static func rows(_ observations: [Float], observationSize: Int, heads: [Int], of count: Int) -> [Float] {
        var x: [Float] = []
        for (row, head) in heads.enumerated() {
            x += observations[(row * observationSize)..<((row + 1) * observationSize)]
            x += (0..<count).map { $0 == head ? 1 : 0 }
        }
        return x
    }

    /// The selected head's logits and value per row, from every head's outputs in double precision.
    static func referenceOutputs(
        _ network: PolicyValueNetwork, _ observations: [Double], heads: [Int], _ theta: [Double]
    ) -> (logits: [Double], values: [Double]) {
        let all = NetworkTests.referenceOutputs(network, observations, batch: heads.count, theta)
        let na = network.actionCount
        let k = network.heads
        var logits: [Double] = []
        var values: [Double] = []
        for (row, head) in heads.enumerated() {
            logits += all.logits[((row * k + head) * na)..<((row * k + head + 1) * na)]
            values.append(all.values[row * k + head])
        }
        return (logits, values)
    }

    static func checkGradient(
        _ architecture: String, inputShape: [Int], actions: Int, heads: [Int], seed: UInt64
    )
        throws
    {
        let network = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: architecture), inputShape: inputShape, actionCount: actions,
            seed: seed)
        let size = inputShape.reduce(1, *)
        #expect(network.inputSize == size + network.heads)
        var values = TestValues(seed: seed)
        network.parameters = values.uniform(network.parameterCount, scale: 0.6)
        let observations = values.uniform(heads.count * size)
        let x = rows(observations, observationSize: size, heads: heads, of: network.heads)
        let gLogits = values.uniform(heads.count * actions)
        let gValues = values.uniform(heads.count)
        let (logits, outValues) = network.forward(x, batch: heads.count)
        network.zeroGradients()
        network.backward(logitGradient: gLogits, valueGradient: gValues)
        let oD = observations.map(Double.init)
        let thetaD = network.parameters.map(Double.init)
        let reference = referenceOutputs(network, oD, heads: heads, thetaD)
        expectClose(logits.map(Double.init), reference.logits, tolerance: 1e-5, "\(architecture) logits")
        expectClose(outValues.map(Double.init), reference.values, tolerance: 1e-5, "\(architecture) values")
        let gl = gLogits.map(Double.init)
        let gv = gValues.map(Double.init)
        let numeric = Reference.gradient(
            of: {
                let out = referenceOutputs(network, oD, heads: heads, $0)
                return Reference.dot(gl, out.logits) + Reference.dot(gv, out.values)
            }, at: thetaD)
        expectClose(network.gradients.map(Double.init), numeric, tolerance: 1e-4, "\(architecture) ∂L/∂θ")
        // A head no row selected gets no gradient at all.
        for k in 0..<network.heads where !heads.contains(k) {
            for name in ["logits.weight", "logits.bias", "value.weight", "value.bias"] {
                let p = try #require(network.parameterTensors.first { $0.name == "head.\(k).\(name)" })
                #expect(network.gradients[p.offset..<(p.offset + p.count)].allSatisfy { $0 == 0 }, "head.\(k).\(name)")
            }
        }
    }

    @Test func selectedHeadGradientMatchesCentralDifferences() throws {
        try Self.checkGradient("mlp:6,5/heads:3", inputShape: [4], actions: 3, heads: [0, 2, 2, 0, 2], seed: 21)
        try Self.checkGradient("linear/heads:2", inputShape: [5], actions: 4, heads: [1, 0, 1], seed: 22)
        try Self.checkGradient("conv:3x2/mlp:4/heads:4", inputShape: [4, 4, 2], actions: 2, heads: [3, 1], seed: 23)
    }

    @Test func eachHeadIsItsOwnNetworkOnTheSharedTorso() throws {
        // Head k's output is what a one-head network with the torso and head k's weights computes.
        let multi = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: "mlp:5/heads:3"), inputShape: [4], actionCount: 2, seed: 7)
        var values = TestValues(seed: 8)
        multi.parameters = values.uniform(multi.parameterCount, scale: 0.5)
        let single = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: "mlp:5"), inputShape: [4], actionCount: 2, seed: 0)
        let o = values.uniform(4)
        for k in 0..<3 {
            for p in single.parameterTensors {
                let name = p.name.hasPrefix("torso.") ? p.name : "head.\(k).\(p.name)"
                let source = try #require(multi.tensor(named: name), "\(name)")
                #expect(source.shape == p.shape)
                single.parameters.replaceSubrange(p.offset..<(p.offset + p.count), with: source.scalars)
            }
            let x = Self.rows(o, observationSize: 4, heads: [k], of: 3)
            let a = multi.forward(x, batch: 1)
            let b = single.forward(o, batch: 1)
            #expect(a.logits == b.logits, "head \(k)")
            #expect(a.values == b.values, "head \(k)")
        }
    }

    @Test func multiHeadNetworkRoundTripsThroughSafetensorsWithNamedHeads() throws {
        let network = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: "conv:2x3/mlp:6/heads:3/tanh"), inputShape: [5, 5, 2],
            actionCount: 4, seed: 9)
        var values = TestValues(seed: 10)
        network.parameters = values.uniform(network.parameterCount, scale: 0.5)
        let file = network.safetensorsFile()
        #expect(file.metadata["distill.architecture"] == "conv:2x3/mlp:6/heads:3/tanh")
        #expect(file.metadata["distill.input_shape"] == "5,5,2")
        for k in 0..<3 {
            #expect(file.tensors["head.\(k).logits.weight"]?.shape == [4, 6])
            #expect(file.tensors["head.\(k).logits.bias"]?.shape == [4])
            #expect(file.tensors["head.\(k).value.weight"]?.shape == [1, 6])
            #expect(file.tensors["head.\(k).value.bias"]?.shape == [1])
        }
        #expect(file.tensors["logits.weight"] == nil)
        let loaded = try PolicyValueNetwork.load(file, source: "multi.safetensors").network
        #expect(loaded.architecture.description == "conv:2x3/mlp:6/heads:3/tanh")
        #expect(loaded.heads == 3)
        #expect(loaded.parameters == network.parameters)
        let x = Self.rows(values.uniform(3 * 50), observationSize: 50, heads: [2, 0, 1], of: 3)
        #expect(loaded.forward(x, batch: 3).logits == network.forward(x, batch: 3).logits)
        var broken = file
        broken.tensors["head.2.value.bias"] = nil
        expectNetworkError(["head.2.value.bias", "missing"]) { _ = try PolicyValueNetwork.load(broken, source: "f") }
    }

    @Test func headCountParsesRoundTripsAndIsCheckedInTheGrammar() throws {
        let parsed = try NetworkArchitecture(parsing: "conv:8x3/mlp:64/heads:10")
        #expect(parsed.heads == 10 && parsed.hiddenWidths == [64] && parsed.convolutions.count == 1)
        for text in ["mlp:64/heads:10", "linear/heads:3", "mlp:8,8/heads:2/tanh", "conv:4x3/heads:5"] {
            #expect(try NetworkArchitecture(parsing: text).description == text)
        }
        #expect(try NetworkArchitecture(parsing: "mlp:64").heads == 1)
        let cases: [(String, String)] = [
            ("mlp:64/heads:1", "needs K ≥ 2"),
            ("mlp:64/heads:x", "head count \"x\""),
            ("mlp:64/heads:", "head count \"\""),
            ("heads:3/mlp:64", "\"heads:3\" is out of place"),
        ]
        for (text, fragment) in cases {
            expectNetworkError(["architecture \"\(text)\"", fragment]) { _ = try NetworkArchitecture(parsing: text) }
        }
    }

    @Test func rowsWithoutAOneHotSelectorAreFoundBeforeTheForwardPass() throws {
        let network = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: "mlp:4/heads:3"), inputShape: [2], actionCount: 2, seed: 1)
        var rows: [Float] = [0.5, -1, 0, 1, 0, 0.2, 0.3, 1, 0, 0]
        #expect(network.invalidHeadSelector(rows) == nil)
        rows[7] = 0.5
        #expect(network.invalidHeadSelector(rows)?.hasPrefix("row 1 must end in a one-hot head selector of 3") == true)
        rows[7] = 1
        rows[8] = 1
        #expect(network.invalidHeadSelector(rows)?.hasPrefix("row 1") == true)
        rows[3] = 0
        #expect(network.invalidHeadSelector(rows)?.hasPrefix("row 0") == true)
        var random = [Float](repeating: 0.7, count: 4 * network.inputSize)
        network.selectHeadsRoundRobin(&random)
        #expect(network.invalidHeadSelector(random) == nil)
        #expect(Array(random[(3 * 5 + 2)..<(4 * 5)]) == [1, 0, 0])
        #expect(Array(random[0..<2]) == [0.7, 0.7])
        let single = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: "mlp:4"), inputShape: [2], actionCount: 2, seed: 1)
        #expect(single.invalidHeadSelector([3, 4]) == nil)
    }
}
