/// The rectifier max(0, x), elementwise.
public final class ReLU: Layer {
    public let inputShape: [Int]
    public var outputShape: [Int] { inputShape }
    public var parameterShapes: [ParameterShape] { [] }

    /// A rectifier over samples of `shape`.
    public init(shape: [Int]) {
        inputShape = shape
    }

    public func initialize(_ parameters: UnsafeMutableBufferPointer<Float>, using generator: inout WeightGenerator) {}

    public func forward(
        _ input: UnsafePointer<Float>, batch: Int, parameters: UnsafePointer<Float>,
        output: UnsafeMutablePointer<Float>
    ) {
        for i in 0..<(batch * inputSize) { output[i] = max(input[i], 0) }
    }

    public func backward(
        input: UnsafePointer<Float>, output: UnsafePointer<Float>, outputGradient: UnsafePointer<Float>,
        batch: Int, parameters: UnsafePointer<Float>, parameterGradients: UnsafeMutablePointer<Float>,
        inputGradient: UnsafeMutablePointer<Float>?
    ) {
        guard let inputGradient else { return }
        for i in 0..<(batch * inputSize) { inputGradient[i] = output[i] > 0 ? outputGradient[i] : 0 }
    }
}
