/// Reshapes each sample to one dimension (row-major, so NHWC images flatten in (h, w, c) order).
public final class Flatten: Layer {
    public let inputShape: [Int]
    public let outputShape: [Int]
    public var parameterShapes: [ParameterShape] { [] }

    /// A flattening of samples of `shape`.
    public init(shape: [Int]) {
        inputShape = shape
        outputShape = [Tensor.elementCount(shape)]
    }

    public func initialize(_ parameters: UnsafeMutableBufferPointer<Float>, using generator: inout WeightGenerator) {}

    public func forward(
        _ input: UnsafePointer<Float>, batch: Int, parameters: UnsafePointer<Float>,
        output: UnsafeMutablePointer<Float>
    ) {
        output.update(from: input, count: batch * inputSize)
    }

    public func backward(
        input: UnsafePointer<Float>, output: UnsafePointer<Float>, outputGradient: UnsafePointer<Float>,
        batch: Int, parameters: UnsafePointer<Float>, parameterGradients: UnsafeMutablePointer<Float>,
        inputGradient: UnsafeMutablePointer<Float>?
    ) {
        inputGradient?.update(from: outputGradient, count: batch * inputSize)
    }
}
