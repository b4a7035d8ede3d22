/// A fully connected layer: y = W·x + b, with W stored `[outputs, inputs]` (PyTorch's layout).
public final class Linear: Layer {
    public let inputShape: [Int]
    public let outputShape: [Int]
    public let parameterShapes: [ParameterShape]
    /// The standard deviation of the initial weights is `initialScale / √inputs` (biases start at 0):
    /// √2 is He initialisation for a ReLU that follows, 1 for tanh, 0.01 for a near-uniform policy head.
    public let initialScale: Double
    private let inputs: Int
    private let outputs: Int

    /// A layer from `inputs` to `outputs` features.
    public init(inputs: Int, outputs: Int, initialScale: Double = 2.0.squareRoot()) {
        precondition(inputs > 0 && outputs > 0, "Linear: sizes must be positive (\(inputs) → \(outputs))")
        self.inputs = inputs
        self.outputs = outputs
        self.initialScale = initialScale
        inputShape = [inputs]
        outputShape = [outputs]
        parameterShapes = [
            ParameterShape(name: "weight", shape: [outputs, inputs]), ParameterShape(name: "bias", shape: [outputs]),
        ]
    }

    public func initialize(_ parameters: UnsafeMutableBufferPointer<Float>, using generator: inout WeightGenerator) {
        let deviation = initialScale / Double(inputs).squareRoot()
        for i in 0..<(inputs * outputs) { parameters[i] = Float(generator.nextNormal() * deviation) }
        for i in (inputs * outputs)..<(inputs * outputs + outputs) { parameters[i] = 0 }
    }

    public func forward(
        _ input: UnsafePointer<Float>, batch: Int, parameters: UnsafePointer<Float>,
        output: UnsafeMutablePointer<Float>
    ) {
        let bias = parameters + inputs * outputs
        for row in 0..<batch { (output + row * outputs).update(from: bias, count: outputs) }
        if batch == 1 {
            sgemv(rows: outputs, columns: inputs, a: parameters, lda: inputs, x: input, beta: 1, y: output)
            return
        }
        sgemm(
            transposeB: true, m: batch, n: outputs, k: inputs, a: input, lda: inputs, b: parameters, ldb: inputs,
            beta: 1, c: output, ldc: outputs)
    }

    public func backward(
        input: UnsafePointer<Float>, output: UnsafePointer<Float>, outputGradient: UnsafePointer<Float>,
        batch: Int, parameters: UnsafePointer<Float>, parameterGradients: UnsafeMutablePointer<Float>,
        inputGradient: UnsafeMutablePointer<Float>?
    ) {
        // ∂L/∂W += (∂L/∂Y)ᵀ·X, ∂L/∂b += Σ_rows ∂L/∂Y, ∂L/∂X = ∂L/∂Y·W.
        sgemm(
            transposeA: true, m: outputs, n: inputs, k: batch, a: outputGradient, lda: outputs, b: input,
            ldb: inputs, beta: 1, c: parameterGradients, ldc: inputs)
        addRowSums(outputGradient, rows: batch, columns: outputs, into: parameterGradients + inputs * outputs)
        if let inputGradient {
            sgemm(
                m: batch, n: inputs, k: outputs, a: outputGradient, lda: outputs, b: parameters, ldb: inputs,
                beta: 0, c: inputGradient, ldc: inputs)
        }
    }
}

/// sums[j] += Σ_r matrix[r, j] over a row-major rows×columns matrix (the bias gradient).
@inline(__always)
func addRowSums(_ matrix: UnsafePointer<Float>, rows: Int, columns: Int, into sums: UnsafeMutablePointer<Float>) {
    for r in 0..<rows {
        let row = matrix + r * columns
        for j in 0..<columns { sums[j] += row[j] }
    }
}
