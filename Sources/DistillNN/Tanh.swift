import Foundation

/// The hyperbolic tangent, elementwise.
public final class Tanh: Layer {
    public let inputShape: [Int]
    public var outputShape: [Int] { inputShape }
    public var parameterShapes: [ParameterShape] { [] }

    /// A tanh over samples of `shape`.
    public init(shape: [Int]) {
        inputShape = shape
    }

    public func initialize(_ parameters: UnsafeMutableBufferPointer<Float>, using generator: inout WeightGenerator) {}

    public func forward(
        _ input: UnsafePointer<Float>, batch: Int, parameters: UnsafePointer<Float>,
        output: UnsafeMutablePointer<Float>
    ) {
        for i in 0..<(batch * inputSize) { output[i] = tanhf(input[i]) }
    }

    public func backward(
        input: UnsafePointer<Float>, output: UnsafePointer<Float>, outputGradient: UnsafePointer<Float>,
        batch: Int, parameters: UnsafePointer<Float>, parameterGradients: UnsafeMutablePointer<Float>,
        inputGradient: UnsafeMutablePointer<Float>?
    ) {
        guard let inputGradient else { return }
        // tanh′(x) = 1 − tanh²(x), read from the kept output.
        for i in 0..<(batch * inputSize) { inputGradient[i] = outputGradient[i] * (1 - output[i] * output[i]) }
    }
}
