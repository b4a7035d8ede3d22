/// A policy–value network: a torso, a logits head (|A| outputs) and a value head (1 output).
///
/// All parameters live in one flat array, `parameters`, and their gradients in `gradients` (same
/// layout, described by `parameterTensors`), so an optimiser steps one array:
///
///     let (logits, values) = network.forward(observations, batch: b)  // keeps the activations
///     network.zeroGradients()
///     network.backward(logitGradient: dL_dz, valueGradient: dL_dv)   // ∂L/∂θ summed over the batch
///     network.step(&adam)                                             // θ ← θ − (a descent step)
///
/// **Sign convention: `backward` takes the gradient of a loss to MINIMISE (∂L/∂z, ∂L/∂V), and
/// every optimiser DESCENDS.** The project's update rules produce ascent directions g_t in logit
/// space (what to add to the logits, design §1): pass `−g_t` as the logit gradient. For a value
/// loss ½(V − target)², pass `V − target`. Gradients are summed over the batch, not averaged:
/// scale the inputs by 1/B for a mean.
///
/// Initialisation (seeded, deterministic): hidden layers He-normal (std √2/√fan_in) for ReLU,
/// LeCun-normal (1/√fan_in) for tanh; the logits head 0.01/√fan_in so the initial policy is near
/// uniform; the value head 0.1/√fan_in; all biases 0.
///
/// **Multiple heads** (`architecture.heads` = K ≥ 2, `…/heads:K`): Rusu et al.'s (2016, §4.3)
/// multi-task student, one torso and K output heads (|A| logits and a value each), the head chosen
/// per sample by its task label. Each input row is then the observation (`inputShape`) followed by
/// a one-hot head selector of K scalars, so `inputSize` = |observation| + K; the selector picks the
/// head and is not fed to the torso. The heads are stored as one Linear of K·|A| outputs and one of
/// K outputs, named per head (`head.k.logits.weight`, `head.k.logits.bias`, `head.k.value.weight`,
/// `head.k.value.bias`); every head computes in the forward pass, and only the selected one's
/// outputs are returned and receive gradients.
///
/// Not thread-safe: it keeps the last forward pass's activations. One network per thread.
public final class PolicyValueNetwork {
    /// The torso's architecture.
    public let architecture: NetworkArchitecture
    /// The shape of one observation (`[n]`, or `[height, width, channels]` for convolutions).
    public let inputShape: [Int]
    /// |A|, the number of logits.
    public let actionCount: Int
    /// The number of output heads (1, or K ≥ 2 switched by a one-hot selector after each observation).
    public var heads: Int { architecture.heads }
    /// The torso's layers, in order.
    public let torso: [any Layer]
    /// The layer from the torso's features to the logits (of every head: `heads`·|A| outputs).
    public let logitsHead: Linear
    /// The layer from the torso's features to the value (of every head: `heads` outputs).
    public let valueHead: Linear
    /// Every parameter, laid out as `parameterTensors`.
    public var parameters: [Float]
    /// ∂L/∂parameters accumulated by `backward` since `zeroGradients`.
    public var gradients: [Float]
    /// The named tensors of `parameters`: "torso.I.weight", "logits.bias", "value.weight", …
    public let parameterTensors: [NamedParameter]

    /// One named parameter tensor inside the flat array.
    public struct NamedParameter: Hashable, Sendable {
        /// "torso.I.NAME" (I the layer's index in `torso`), "logits.NAME" or "value.NAME"
        /// ("head.K.logits.NAME", "head.K.value.NAME" with several heads).
        public var name: String
        /// Its shape.
        public var shape: [Int]
        /// The index of its first scalar in `parameters`.
        public var offset: Int
        /// The number of scalars.
        public var count: Int { Tensor.elementCount(shape) }
    }

    private let layers: [any Layer]
    private let layerOffsets: [Int]
    private let widths: [Int]
    private var workspace: UnsafeMutableBufferPointer<Float>
    private var capacity = 0
    /// The head of each sample of the last forward pass (all 0 with one head).
    private var selectedHeads: [Int] = []
    /// The batch size of the last forward pass (0 before the first).
    public private(set) var batch = 0

    /// A freshly initialised network; throws when the architecture does not fit the input shape.
    public init(architecture: NetworkArchitecture, inputShape: [Int], actionCount: Int, seed: UInt64) throws {
        guard actionCount > 0 else {
            throw NetworkError(.shape, "a network needs at least one action, not \(actionCount)")
        }
        self.architecture = architecture
        self.inputShape = inputShape
        self.actionCount = actionCount
        torso = try architecture.torsoLayers(inputShape: inputShape)
        let features = torso.last?.outputSize ?? Tensor.elementCount(inputShape)
        let heads = architecture.heads
        logitsHead = Linear(inputs: features, outputs: heads * actionCount, initialScale: 0.01)
        valueHead = Linear(inputs: features, outputs: heads, initialScale: 0.1)
        layers = torso + [logitsHead, valueHead]
        var offsets: [Int] = []
        var named: [NamedParameter] = []
        var total = 0
        for (index, layer) in layers.enumerated() {
            offsets.append(total)
            let prefix = index < torso.count ? "torso.\(index)" : (index == torso.count ? "logits" : "value")
            if index >= torso.count && heads > 1 {
                // Head k's rows of the fused weight [heads·n, features] and its slice of the bias.
                let n = index == torso.count ? actionCount : 1
                for k in 0..<heads {
                    named.append(
                        NamedParameter(
                            name: "head.\(k).\(prefix).weight", shape: [n, features], offset: total + k * n * features))
                }
                for k in 0..<heads {
                    named.append(
                        NamedParameter(
                            name: "head.\(k).\(prefix).bias", shape: [n], offset: total + heads * n * features + k * n))
                }
                total += layer.parameterShapes.reduce(0) { $0 + $1.count }
                continue
            }
            for p in layer.parameterShapes {
                named.append(NamedParameter(name: "\(prefix).\(p.name)", shape: p.shape, offset: total))
                total += p.count
            }
        }
        layerOffsets = offsets + [total]
        parameterTensors = named
        widths = [Tensor.elementCount(inputShape)] + torso.map(\.outputSize)
        parameters = [Float](repeating: 0, count: total)
        gradients = [Float](repeating: 0, count: total)
        workspace = UnsafeMutableBufferPointer(start: nil, count: 0)
        var generator = WeightGenerator(seed: seed)
        parameters.withUnsafeMutableBufferPointer { all in
            for (index, layer) in layers.enumerated() {
                let slice = UnsafeMutableBufferPointer(rebasing: all[layerOffsets[index]..<layerOffsets[index + 1]])
                layer.initialize(slice, using: &generator)
            }
        }
    }

    deinit {
        workspace.deallocate()
    }

    /// The number of scalars of one input row: the observation, and the head selector with several heads.
    public var inputSize: Int { widths[0] + (heads > 1 ? heads : 0) }
    /// The number of parameters.
    public var parameterCount: Int { parameters.count }

    // Workspace layout for `capacity` samples: the activations a_0 (the observation) … a_L (the
    // torso's output), then logits, values, then (several heads only) every head's logits and values
    // and their gradients, then two ping-pong gradient buffers as wide as the widest a_i.
    private func activationOffset(_ i: Int) -> Int { capacity * widths[..<i].reduce(0, +) }
    private var logitsOffset: Int { activationOffset(widths.count) }
    private var valuesOffset: Int { logitsOffset + capacity * actionCount }
    private var headScratch: Int { heads > 1 ? heads * (actionCount + 1) : 0 }
    private var allLogitsOffset: Int { heads > 1 ? valuesOffset + capacity : logitsOffset }
    private var allValuesOffset: Int { heads > 1 ? allLogitsOffset + capacity * heads * actionCount : valuesOffset }
    private var allLogitGradientOffset: Int { allValuesOffset + capacity * heads }
    private var allValueGradientOffset: Int { allLogitGradientOffset + capacity * heads * actionCount }
    private var gradientOffsets: (Int, Int) {
        let start = valuesOffset + capacity + 2 * capacity * headScratch
        return (start, start + capacity * widths.max()!)
    }

    private func reserve(_ batch: Int) {
        guard batch > capacity else { return }
        workspace.deallocate()
        capacity = max(batch, 2 * capacity)
        let size = capacity * (widths.reduce(0, +) + actionCount + 1 + 2 * headScratch + 2 * widths.max()!)
        workspace = .allocate(capacity: size)
        workspace.initialize(repeating: 0)
    }

    /// Runs `batch` observations (row-major `[batch, inputSize]`) through the network, keeping the
    /// activations for `backward`; the logits (`[batch, actionCount]`) and values are then in
    /// `withOutputs`. The allocation-free form of `forward(_:batch:)`. With several heads each row
    /// ends in a one-hot head selector (exactly one 1, the rest 0).
    public func forward(observations: UnsafeBufferPointer<Float>, batch: Int) {
        precondition(batch > 0, "forward: batch must be positive")
        precondition(
            observations.count == batch * inputSize,
            "forward: \(observations.count) scalars for \(batch) observations of \(inputSize)")
        reserve(batch)
        self.batch = batch
        let base = workspace.baseAddress!
        let observationSize = widths[0]
        if heads == 1 {
            (base + activationOffset(0)).update(from: observations.baseAddress!, count: batch * observationSize)
        } else {
            selectedHeads.removeAll(keepingCapacity: true)
            for row in 0..<batch {
                let input = observations.baseAddress! + row * inputSize
                (base + activationOffset(0) + row * observationSize).update(from: input, count: observationSize)
                var head = -1
                for k in 0..<heads where input[observationSize + k] != 0 {
                    precondition(
                        head < 0 && input[observationSize + k] == 1,
                        "forward: row \(row)'s head selector is not one-hot over \(heads) heads")
                    head = k
                }
                precondition(head >= 0, "forward: row \(row)'s head selector is all zero (\(heads) heads)")
                selectedHeads.append(head)
            }
        }
        let features = base + activationOffset(torso.count)
        parameters.withUnsafeBufferPointer { p in
            let theta = p.baseAddress!
            for (i, layer) in torso.enumerated() {
                layer.forward(
                    base + activationOffset(i), batch: batch, parameters: theta + layerOffsets[i],
                    output: base + activationOffset(i + 1))
            }
            logitsHead.forward(
                features, batch: batch, parameters: theta + layerOffsets[torso.count], output: base + allLogitsOffset)
            valueHead.forward(
                features, batch: batch, parameters: theta + layerOffsets[torso.count + 1],
                output: base + allValuesOffset)
        }
        guard heads > 1 else { return }
        let na = actionCount
        for (row, head) in selectedHeads.enumerated() {
            (base + logitsOffset + row * na).update(
                from: base + allLogitsOffset + (row * heads + head) * na, count: na)
            base[valuesOffset + row] = base[allValuesOffset + row * heads + head]
        }
    }

    /// The first row of `observations` (`[batch, inputSize]`) whose head selector is not one-hot, and
    /// why; nil when every row is valid (always, with one head). `forward` requires valid rows.
    public func invalidHeadSelector(_ observations: [Float]) -> String? {
        guard heads > 1 else { return nil }
        let size = widths[0]
        for row in 0..<(observations.count / inputSize) {
            let selector = observations[(row * inputSize + size)..<((row + 1) * inputSize)]
            guard selector.allSatisfy({ $0 == 0 || $0 == 1 }), selector.filter({ $0 == 1 }).count == 1 else {
                return
                    "row \(row) must end in a one-hot head selector of \(heads) numbers (the task), not \(Array(selector))"
            }
        }
        return nil
    }

    /// One-hot head selectors written into `observations` (`[batch, inputSize]`): row r selects head r mod K.
    public func selectHeadsRoundRobin(_ observations: inout [Float]) {
        guard heads > 1 else { return }
        let size = widths[0]
        for row in 0..<(observations.count / inputSize) {
            for k in 0..<heads { observations[row * inputSize + size + k] = k == row % heads ? 1 : 0 }
        }
    }

    /// Calls `body` with the logits (`[batch, actionCount]`) and values (`[batch]`) of the last forward pass.
    public func withOutputs<R>(
        _ body: (_ logits: UnsafeBufferPointer<Float>, _ values: UnsafeBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        let base = UnsafePointer(workspace.baseAddress!)
        return try body(
            UnsafeBufferPointer(start: base + logitsOffset, count: batch * actionCount),
            UnsafeBufferPointer(start: base + valuesOffset, count: batch))
    }

    /// The logits (`[batch, actionCount]`, row-major) and values (`[batch]`) of `batch` observations
    /// (row-major `[batch, inputSize]`); keeps the activations for `backward`.
    public func forward(_ observations: [Float], batch: Int) -> (logits: [Float], values: [Float]) {
        observations.withUnsafeBufferPointer { forward(observations: $0, batch: batch) }
        return withOutputs { (Array($0), Array($1)) }
    }

    /// `forward` on a tensor of shape `[batch] + inputShape` or `[batch, inputSize]`; logits `[batch, actionCount]`.
    public func forward(_ observations: Tensor) -> (logits: Tensor, values: [Float]) {
        precondition(
            observations.shape.count >= 2 && observations.count == observations.shape[0] * inputSize,
            "forward: observations of shape \(observations.shape) are not [batch] + \(inputShape)")
        let batch = observations.shape[0]
        let (logits, values) = forward(observations.scalars, batch: batch)
        return (Tensor(shape: [batch, actionCount], scalars: logits), values)
    }

    /// Sets every gradient to 0.
    public func zeroGradients() {
        gradients.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
    }

    /// Back-propagates the last forward pass: ADDS ∂L/∂θ to `gradients`, given the loss gradients
    /// ∂L/∂logits (`[batch, actionCount]`) and ∂L/∂values (`[batch]`), summed over the batch.
    ///
    /// A DESCENT convention: for an update rule's ascent direction g_t (what to add to the logits)
    /// pass −g_t. Either gradient may be all zeros (a policy-only or value-only loss).
    public func backward(logitGradient: UnsafeBufferPointer<Float>, valueGradient: UnsafeBufferPointer<Float>) {
        precondition(batch > 0, "backward before forward")
        precondition(
            logitGradient.count == batch * actionCount && valueGradient.count == batch,
            "backward: gradients of \(logitGradient.count) and \(valueGradient.count) scalars for a batch of \(batch) "
                + "with \(actionCount) actions")
        let base = workspace.baseAddress!
        let (g0, g1) = gradientOffsets
        let batch = self.batch
        let torsoCount = torso.count
        var logitGradient = UnsafePointer(logitGradient.baseAddress!)
        var valueGradient = UnsafePointer(valueGradient.baseAddress!)
        if heads > 1 {
            // The unselected heads' outputs do not reach the loss: their gradients are 0.
            let na = actionCount
            let allLogits = base + allLogitGradientOffset
            let allValues = base + allValueGradientOffset
            allLogits.update(repeating: 0, count: batch * heads * na)
            allValues.update(repeating: 0, count: batch * heads)
            for (row, head) in selectedHeads.enumerated() {
                (allLogits + (row * heads + head) * na).update(from: logitGradient + row * na, count: na)
                allValues[row * heads + head] = valueGradient[row]
            }
            logitGradient = UnsafePointer(allLogits)
            valueGradient = UnsafePointer(allValues)
        }
        parameters.withUnsafeBufferPointer { p in
            gradients.withUnsafeMutableBufferPointer { g in
                let theta = p.baseAddress!
                let grad = g.baseAddress!
                let features = base + activationOffset(torsoCount)
                // ∂L/∂features = ∂L/∂z·W_logits + ∂L/∂V·W_value (none needed without a torso).
                let featureGradient = torsoCount > 0 ? base + g0 : nil
                let valuePart = torsoCount > 0 ? base + g1 : nil
                logitsHead.backward(
                    input: features, output: base + allLogitsOffset, outputGradient: logitGradient,
                    batch: batch, parameters: theta + layerOffsets[torsoCount],
                    parameterGradients: grad + layerOffsets[torsoCount], inputGradient: featureGradient)
                valueHead.backward(
                    input: features, output: base + allValuesOffset, outputGradient: valueGradient,
                    batch: batch, parameters: theta + layerOffsets[torsoCount + 1],
                    parameterGradients: grad + layerOffsets[torsoCount + 1], inputGradient: valuePart)
                guard let featureGradient, let valuePart else { return }
                for k in 0..<(batch * widths[torsoCount]) { featureGradient[k] += valuePart[k] }
                var upstream = featureGradient
                var spare = valuePart
                for i in stride(from: torsoCount - 1, through: 0, by: -1) {
                    let downstream = i > 0 ? spare : nil
                    torso[i].backward(
                        input: base + activationOffset(i), output: base + activationOffset(i + 1),
                        outputGradient: upstream, batch: batch, parameters: theta + layerOffsets[i],
                        parameterGradients: grad + layerOffsets[i], inputGradient: downstream)
                    if let downstream {
                        spare = upstream
                        upstream = downstream
                    }
                }
            }
        }
    }

    /// `backward` on arrays: `logitGradient` is `[batch, actionCount]`, `valueGradient` `[batch]`.
    public func backward(logitGradient: [Float], valueGradient: [Float]) {
        logitGradient.withUnsafeBufferPointer { l in
            valueGradient.withUnsafeBufferPointer { v in backward(logitGradient: l, valueGradient: v) }
        }
    }

    /// One optimiser step on `parameters` with `gradients` (a descent step).
    public func step(_ optimizer: inout some Optimizer) {
        optimizer.step(parameters: &parameters, gradients: gradients)
    }

    /// A copy of the named parameter tensor.
    public func tensor(named name: String) -> Tensor? {
        guard let p = parameterTensors.first(where: { $0.name == name }) else { return nil }
        return Tensor(shape: p.shape, scalars: Array(parameters[p.offset..<(p.offset + p.count)]))
    }
}
