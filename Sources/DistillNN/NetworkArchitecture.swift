/// The shape of a policy–value network's torso, named by a short string on the command line.
///
/// Grammar (whitespace is not allowed; `tabular` students are not networks and are handled by the caller):
///
///     architecture := ( "linear" | mlp | conv ) [ "/heads:" count ] [ "/" activation ]
///     mlp          := "mlp:" widths
///     conv         := "conv:" filters [ "/mlp:" widths ]
///     widths       := width { "," width }               a hidden layer of `width` units each
///     filters      := filter { "," filter }
///     filter       := channels "x" kernel [ "s" stride ]  valid padding, stride 1 by default
///     activation   := "relu" | "tanh"                     relu by default, after every hidden layer
///
/// All numbers are positive decimal integers. Examples: `linear` (the heads read the input
/// directly: on one-hot states this is the tabular student), `mlp:64,64`, `mlp:64,64/tanh`,
/// `conv:16x3,32x3/mlp:256`, `conv:16x3s2,32x3/tanh`. Convolutions need `[height, width, channels]`
/// (NHWC) inputs; an MLP flattens any input. Both heads (|A| logits, 1 value) read the last hidden layer.
///
/// `heads:K` (K ≥ 2) gives the network K output heads (each |A| logits and 1 value) on the one
/// torso: Rusu et al.'s (2016, §4.3) multi-task "multi-controller", switched by the task label. Such
/// a network reads, after each observation, a one-hot head selector of K scalars (see
/// ``PolicyValueNetwork``). Examples: `conv:8x3/mlp:64/heads:10`, `linear/heads:3`.
public struct NetworkArchitecture: Hashable, Sendable, Codable, CustomStringConvertible {
    /// One convolution of the torso.
    public struct Convolution: Hashable, Sendable {
        /// Output channels.
        public var channels: Int
        /// Kernel side.
        public var kernel: Int
        /// Step between output pixels.
        public var stride: Int

        /// A `kernel`×`kernel` convolution to `channels` channels with `stride`.
        public init(channels: Int, kernel: Int, stride: Int = 1) {
            self.channels = channels
            self.kernel = kernel
            self.stride = stride
        }
    }

    /// The nonlinearity after every hidden layer.
    public enum Activation: String, Hashable, Sendable, CaseIterable {
        case relu, tanh
    }

    /// The convolutions, first to last (empty for an MLP).
    public private(set) var convolutions: [Convolution]
    /// The widths of the fully connected hidden layers, first to last.
    public private(set) var hiddenWidths: [Int]
    /// The nonlinearity after every hidden layer (`.relu` when there is none).
    public private(set) var activation: Activation
    /// The number of output heads (1, or K ≥ 2 for a multi-controller switched by a task label).
    public private(set) var heads: Int

    /// The grammar, as printed in error messages.
    public static let grammar = """
        architecture := ("linear" | "mlp:" widths | "conv:" filters ["/mlp:" widths]) ["/heads:" K] ["/" activation]
        widths := width {"," width}; filters := filter {"," filter}; filter := channels "x" kernel ["s" stride]
        activation := "relu" (default) | "tanh"; numbers are positive integers; heads K ≥ 2 (one head per task)
        examples: linear, mlp:64,64, mlp:64,64/tanh, conv:16x3,32x3/mlp:256, conv:16x3s2,32x3/tanh, mlp:64/heads:10
        """

    /// An architecture from its parts; every size must be positive.
    public init(
        convolutions: [Convolution] = [], hiddenWidths: [Int] = [], activation: Activation = .relu, heads: Int = 1
    ) {
        precondition(hiddenWidths.allSatisfy { $0 > 0 }, "NetworkArchitecture: widths must be positive")
        precondition(heads >= 1, "NetworkArchitecture: heads must be positive")
        precondition(
            convolutions.allSatisfy { $0.channels > 0 && $0.kernel > 0 && $0.stride > 0 },
            "NetworkArchitecture: convolution sizes must be positive")
        self.convolutions = convolutions
        self.hiddenWidths = hiddenWidths
        self.activation = convolutions.isEmpty && hiddenWidths.isEmpty ? .relu : activation
        self.heads = heads
    }

    /// Parses the grammar above; a malformed string throws an error that names the bad part.
    public init(parsing text: String) throws {
        func fail(_ problem: String) -> NetworkError {
            NetworkError(
                .architecture,
                "architecture \"\(text)\": \(problem)\nthe grammar:\n\(NetworkArchitecture.grammar)")
        }
        func number(_ part: Substring, _ what: String) throws -> Int {
            guard !part.isEmpty, part.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(part), value > 0
            else { throw fail("\(what) \"\(part)\" is not a positive integer") }
            return value
        }
        if text == "linear" {
            self.init()
            return
        }
        var sections = text.split(separator: "/", omittingEmptySubsequences: false)
        var heads = 1
        var activation = Activation.relu
        if sections.count > 1, let last = sections.last, !last.contains(":") {
            guard let parsed = Activation(rawValue: String(last)) else {
                throw fail("unknown activation \"\(last)\" (relu or tanh)")
            }
            activation = parsed
            sections.removeLast()
        }
        if sections.count > 1, let last = sections.last, last.hasPrefix("heads:") {
            heads = try number(last.dropFirst("heads:".count), "head count")
            guard heads >= 2 else {
                throw fail("heads:\(heads): a multi-head network needs K ≥ 2 (leave it out for one)")
            }
            sections.removeLast()
        }
        if sections.count == 1 && sections[0] == "linear" && (heads > 1) {
            self.init(heads: heads)
            return
        }
        var convolutions: [Convolution] = []
        var widths: [Int] = []
        for (index, section) in sections.enumerated() {
            guard let colon = section.firstIndex(of: ":") else {
                if Activation(rawValue: String(section)) != nil {
                    throw fail("activation \"\(section)\" is out of place (at most one, last)")
                }
                throw fail("\"\(section)\" has no kind (expected linear, mlp:… or conv:…)")
            }
            let kind = section[..<colon]
            let body = section[section.index(after: colon)...]
            guard !body.isEmpty else { throw fail("\"\(section)\" lists no layers") }
            switch kind {
            case "conv" where index == 0:
                for filter in body.split(separator: ",", omittingEmptySubsequences: false) {
                    let parts = filter.split(separator: "x", omittingEmptySubsequences: false)
                    guard parts.count == 2 else {
                        throw fail("filter \"\(filter)\" is not channels x kernel (e.g. 16x3 or 16x3s2)")
                    }
                    let strideParts = parts[1].split(separator: "s", omittingEmptySubsequences: false)
                    guard strideParts.count <= 2 else { throw fail("filter \"\(filter)\" has more than one stride") }
                    convolutions.append(
                        Convolution(
                            channels: try number(parts[0], "channel count"),
                            kernel: try number(strideParts[0], "kernel size"),
                            stride: strideParts.count == 2 ? try number(strideParts[1], "stride") : 1))
                }
            case "mlp" where widths.isEmpty:
                widths = try body.split(separator: ",", omittingEmptySubsequences: false).map {
                    try number($0, "width")
                }
            case "conv", "mlp", "heads":
                throw fail(
                    "\"\(section)\" is out of place (conv first, then at most one mlp, then heads, then the activation)"
                )
            default:
                throw fail("unknown layer kind \"\(kind)\" (expected linear, mlp or conv)")
            }
        }
        self.init(convolutions: convolutions, hiddenWidths: widths, activation: activation, heads: heads)
    }

    /// The canonical string: `NetworkArchitecture(parsing: a.description) == a`.
    public var description: String {
        var sections: [String] = []
        if !convolutions.isEmpty {
            sections.append(
                "conv:"
                    + convolutions.map { "\($0.channels)x\($0.kernel)" + ($0.stride == 1 ? "" : "s\($0.stride)") }
                    .joined(separator: ","))
        }
        if !hiddenWidths.isEmpty { sections.append("mlp:" + hiddenWidths.map(String.init).joined(separator: ",")) }
        if sections.isEmpty { sections.append("linear") }
        if heads > 1 { sections.append("heads:\(heads)") }
        if activation != .relu { sections.append(activation.rawValue) }
        return sections.joined(separator: "/")
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(parsing: text) } catch let error as NetworkError {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    /// The torso's layers for inputs of `inputShape`, or an error saying why they do not fit.
    ///
    /// Convolutions (each followed by the activation) and a `Flatten`, or a `Flatten` for an MLP on
    /// a multi-dimensional input, then each hidden `Linear` followed by the activation.
    public func torsoLayers(inputShape: [Int]) throws -> [any Layer] {
        guard !inputShape.isEmpty, inputShape.allSatisfy({ $0 > 0 }) else {
            throw NetworkError(.shape, "input shape \(inputShape) must have at least one dimension, all positive")
        }
        let gain = activation == .relu ? 2.0.squareRoot() : 1.0
        var layers: [any Layer] = []
        var shape = inputShape
        func appendActivation() {
            layers.append(activation == .relu ? ReLU(shape: shape) : Tanh(shape: shape))
        }
        if !convolutions.isEmpty {
            guard shape.count == 3 else {
                throw NetworkError(
                    .architecture,
                    "architecture \"\(self)\": convolutions need [height, width, channels] (NHWC) inputs, not \(shape)")
            }
            for (index, c) in convolutions.enumerated() {
                guard c.kernel <= shape[0], c.kernel <= shape[1] else {
                    throw NetworkError(
                        .architecture,
                        "architecture \"\(self)\": convolution \(index + 1) (\(c.channels)x\(c.kernel)) has a kernel "
                            + "larger than its \(shape[0])×\(shape[1]) input: use smaller kernels or strides")
                }
                let conv = Conv2d(
                    inputShape: shape, outChannels: c.channels, kernel: c.kernel, stride: c.stride, initialScale: gain)
                layers.append(conv)
                shape = conv.outputShape
                appendActivation()
            }
        }
        if shape.count > 1 {
            layers.append(Flatten(shape: shape))
            shape = [Tensor.elementCount(shape)]
        }
        for width in hiddenWidths {
            layers.append(Linear(inputs: shape[0], outputs: width, initialScale: gain))
            shape = [width]
            appendActivation()
        }
        return layers
    }
}
