/// A 2-D convolution over NHWC images, "valid" padding, by im2col and one GEMM.
///
/// Layout: a sample is `[height, width, channels]` (NHWC, channels fastest); the weight is
/// `[outChannels, kernel, kernel, inChannels]` and the bias `[outChannels]`. Output pixel (i, j),
/// channel o: y = b[o] + Σ_{p,q,c} W[o,p,q,c]·x[i·s+p, j·s+q, c], for i < (H−k)/s + 1, same for j.
/// In im2col form every output pixel is a row of k·k·C input values (k runs of k·C contiguous
/// floats in NHWC), so Y[pixels, out] = columns[pixels, k·k·C]·Wᵀ.
public final class Conv2d: Layer {
    public let inputShape: [Int]
    public let outputShape: [Int]
    public let parameterShapes: [ParameterShape]
    /// Initial weight deviation `initialScale / √(k·k·C)` (He for √2); biases start at 0.
    public let initialScale: Double
    /// The kernel side k.
    public let kernel: Int
    /// The step s between neighbouring output pixels, in input pixels.
    public let stride: Int
    private let height: Int
    private let width: Int
    private let inChannels: Int
    private let outChannels: Int
    private let outHeight: Int
    private let outWidth: Int
    private let patch: Int
    // The im2col matrix of the last forward pass (kept for backward) and its gradient.
    private var columns: [Float] = []
    private var columnGradient: [Float] = []

    /// A convolution of `inputShape = [height, width, channels]` images to `outChannels` channels.
    /// Precondition: the kernel fits the image (callers check user input first; see `NetworkArchitecture`).
    public init(
        inputShape: [Int], outChannels: Int, kernel: Int, stride: Int = 1, initialScale: Double = 2.0.squareRoot()
    ) {
        precondition(inputShape.count == 3, "Conv2d: input shape \(inputShape) is not [height, width, channels]")
        precondition(outChannels > 0 && kernel > 0 && stride > 0, "Conv2d: sizes must be positive")
        precondition(
            kernel <= inputShape[0] && kernel <= inputShape[1],
            "Conv2d: kernel \(kernel) larger than the image \(inputShape)")
        self.inputShape = inputShape
        (height, width, inChannels) = (inputShape[0], inputShape[1], inputShape[2])
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.initialScale = initialScale
        outHeight = (height - kernel) / stride + 1
        outWidth = (width - kernel) / stride + 1
        patch = kernel * kernel * inChannels
        outputShape = [outHeight, outWidth, outChannels]
        parameterShapes = [
            ParameterShape(name: "weight", shape: [outChannels, kernel, kernel, inChannels]),
            ParameterShape(name: "bias", shape: [outChannels]),
        ]
    }

    public func initialize(_ parameters: UnsafeMutableBufferPointer<Float>, using generator: inout WeightGenerator) {
        let deviation = initialScale / Double(patch).squareRoot()
        for i in 0..<(outChannels * patch) { parameters[i] = Float(generator.nextNormal() * deviation) }
        for i in (outChannels * patch)..<(outChannels * patch + outChannels) { parameters[i] = 0 }
    }

    public func forward(
        _ input: UnsafePointer<Float>, batch: Int, parameters: UnsafePointer<Float>,
        output: UnsafeMutablePointer<Float>
    ) {
        let pixels = batch * outHeight * outWidth
        if columns.count < pixels * patch { columns = [Float](repeating: 0, count: pixels * patch) }
        let run = kernel * inChannels
        columns.withUnsafeMutableBufferPointer { buffer in
            let cols = buffer.baseAddress!
            var row = cols
            for b in 0..<batch {
                for i in 0..<outHeight {
                    for j in 0..<outWidth {
                        for p in 0..<kernel {
                            let source = input + ((b * height + i * stride + p) * width + j * stride) * inChannels
                            (row + p * run).update(from: source, count: run)
                        }
                        row += patch
                    }
                }
            }
            let bias = parameters + outChannels * patch
            for r in 0..<pixels { (output + r * outChannels).update(from: bias, count: outChannels) }
            sgemm(
                transposeB: true, m: pixels, n: outChannels, k: patch, a: cols, lda: patch, b: parameters,
                ldb: patch, beta: 1, c: output, ldc: outChannels)
        }
    }

    /// Back-propagation; it reads the im2col matrix of the latest `forward`, which must have had this `input`.
    public func backward(
        input: UnsafePointer<Float>, output: UnsafePointer<Float>, outputGradient: UnsafePointer<Float>,
        batch: Int, parameters: UnsafePointer<Float>, parameterGradients: UnsafeMutablePointer<Float>,
        inputGradient: UnsafeMutablePointer<Float>?
    ) {
        let pixels = batch * outHeight * outWidth
        precondition(columns.count >= pixels * patch, "Conv2d.backward without a forward pass of this batch")
        columns.withUnsafeBufferPointer { buffer in
            sgemm(
                transposeA: true, m: outChannels, n: patch, k: pixels, a: outputGradient, lda: outChannels,
                b: buffer.baseAddress!, ldb: patch, beta: 1, c: parameterGradients, ldc: patch)
        }
        addRowSums(outputGradient, rows: pixels, columns: outChannels, into: parameterGradients + outChannels * patch)
        guard let inputGradient else { return }
        if columnGradient.count < pixels * patch { columnGradient = [Float](repeating: 0, count: pixels * patch) }
        let run = kernel * inChannels
        columnGradient.withUnsafeMutableBufferPointer { buffer in
            let dcols = buffer.baseAddress!
            sgemm(
                m: pixels, n: patch, k: outChannels, a: outputGradient, lda: outChannels, b: parameters, ldb: patch,
                beta: 0, c: dcols, ldc: patch)
            // col2im: each column entry adds back into the input pixel it was copied from.
            inputGradient.update(repeating: 0, count: batch * height * width * inChannels)
            var row = UnsafePointer(dcols)
            for b in 0..<batch {
                for i in 0..<outHeight {
                    for j in 0..<outWidth {
                        for p in 0..<kernel {
                            let target =
                                inputGradient + ((b * height + i * stride + p) * width + j * stride) * inChannels
                            let source = row + p * run
                            for e in 0..<run { target[e] += source[e] }
                        }
                        row += patch
                    }
                }
            }
        }
    }
}
