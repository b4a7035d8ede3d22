/// The name and shape of one parameter tensor of a layer ("weight", "bias").
public struct ParameterShape: Hashable, Sendable {
    /// The tensor's name within its layer.
    public var name: String
    /// Its shape (row-major).
    public var shape: [Int]
    /// The number of scalars.
    public var count: Int { Tensor.elementCount(shape) }

    /// A parameter tensor `name` of `shape`.
    public init(name: String, shape: [Int]) {
        self.name = name
        self.shape = shape
    }
}

/// One layer of a network: a function of a batch of inputs and of a flat slice of parameters.
///
/// A layer owns no parameters: the network keeps every parameter in one flat `[Float]` (so an
/// optimiser walks one array) and hands each layer its slice, laid out as `parameterShapes` in
/// order. Batches are row-major `[batch, inputShape...]`. The forward loop of a network:
///
///     for layer in layers { layer.forward(x, batch: b, parameters: p, output: y); x = y }
///
/// and the backward loop runs in reverse with the inputs and outputs the forward pass kept.
public protocol Layer: AnyObject {
    /// The shape of one input sample.
    var inputShape: [Int] { get }
    /// The shape of one output sample.
    var outputShape: [Int] { get }
    /// The parameter tensors, in the order of the flat slice.
    var parameterShapes: [ParameterShape] { get }

    /// Fills the parameters with their initial values.
    func initialize(_ parameters: UnsafeMutableBufferPointer<Float>, using generator: inout WeightGenerator)

    /// `output[batch × outputSize] = f(input[batch × inputSize]; parameters)`.
    func forward(
        _ input: UnsafePointer<Float>, batch: Int, parameters: UnsafePointer<Float>,
        output: UnsafeMutablePointer<Float>)

    /// Back-propagates `outputGradient` = ∂L/∂output through the forward pass that read `input` and
    /// wrote `output`: ADDS ∂L/∂parameters (summed over the batch) to `parameterGradients` and, when
    /// `inputGradient` is not nil, WRITES ∂L/∂input there.
    func backward(
        input: UnsafePointer<Float>, output: UnsafePointer<Float>, outputGradient: UnsafePointer<Float>,
        batch: Int, parameters: UnsafePointer<Float>, parameterGradients: UnsafeMutablePointer<Float>,
        inputGradient: UnsafeMutablePointer<Float>?)
}

extension Layer {
    /// The number of scalars of one input sample.
    public var inputSize: Int { Tensor.elementCount(inputShape) }
    /// The number of scalars of one output sample.
    public var outputSize: Int { Tensor.elementCount(outputShape) }
    /// The length of the layer's flat parameter slice.
    public var parameterCount: Int { parameterShapes.reduce(0) { $0 + $1.count } }
}
