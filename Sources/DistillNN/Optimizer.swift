/// A first-order optimiser over one flat parameter array; every step DESCENDS (θ ← θ − step(g)).
///
/// The gradients are of a loss to minimise (see `PolicyValueNetwork`'s sign convention). An
/// optimiser's moments and step count are its `state`, exported to and restored from checkpoints.
public protocol Optimizer {
    /// One descent step: updates `parameters` from `gradients` (same count as at creation).
    mutating func step(parameters: inout [Float], gradients: [Float])
    /// The hyperparameters, step count and moment buffers, for a checkpoint.
    func exportState() -> OptimizerState
    /// Restores `exportState()`'s result; throws when it is another optimiser's or another size's.
    mutating func importState(_ state: OptimizerState) throws
}

/// An optimiser's checkpointable state.
public struct OptimizerState: Hashable, Sendable, Codable {
    /// "sgd", "adam", "rmsprop" or "rmsprop-centered".
    public var kind: String
    /// Steps taken so far.
    public var step: Int
    /// Learning rate, decays and epsilon by name ("learning_rate", "beta1", …).
    public var hyperparameters: [String: Double]
    /// Per-parameter buffers by name ("m", "v", "mean_square", "mean_gradient"), each as long as the parameters.
    public var buffers: [String: [Float]]

    /// A state of `kind` after `step` steps.
    public init(kind: String, step: Int, hyperparameters: [String: Double], buffers: [String: [Float]]) {
        self.kind = kind
        self.step = step
        self.hyperparameters = hyperparameters
        self.buffers = buffers
    }

    /// Checks that this state belongs to a `kind` optimiser over `parameterCount` parameters with
    /// `buffers`, and returns the hyperparameter `names` (each must be present).
    func validated(
        kind: String, parameterCount: Int, buffers names: [String], hyperparameters keys: [String]
    ) throws
        -> [Double]
    {
        guard self.kind == kind else {
            throw NetworkError(.optimizerState, "optimiser state is \"\(self.kind)\", not \"\(kind)\"")
        }
        guard step >= 0 else { throw NetworkError(.optimizerState, "optimiser state has step \(step) < 0") }
        guard Set(buffers.keys) == Set(names) else {
            throw NetworkError(
                .optimizerState,
                "\(kind) state has buffers \(buffers.keys.sorted()), expected \(names.sorted())")
        }
        for (name, buffer) in buffers where buffer.count != parameterCount {
            throw NetworkError(
                .optimizerState,
                "\(kind) state buffer \"\(name)\" has \(buffer.count) values for \(parameterCount) parameters")
        }
        return try keys.map { key in
            guard let value = hyperparameters[key], value.isFinite else {
                throw NetworkError(.optimizerState, "\(kind) state lacks a finite hyperparameter \"\(key)\"")
            }
            return value
        }
    }
}

/// Scales `gradients` so that their global L2 norm is at most `maxNorm`; returns the norm before.
///
/// g ← g · min(1, maxNorm / ‖g‖₂), ‖g‖₂ accumulated in double precision over all parameters
/// (Pascanu et al. 2013).
@discardableResult
public func clipGlobalNorm(_ gradients: inout [Float], maxNorm: Float) -> Float {
    precondition(maxNorm > 0, "clipGlobalNorm: maxNorm must be positive")
    return gradients.withUnsafeMutableBufferPointer { g in
        guard let base = g.baseAddress else { return 0 }
        let norm = sumOfSquares(base, count: g.count).squareRoot()
        if norm > Double(maxNorm) { scale(base, count: g.count, by: Float(Double(maxNorm) / norm)) }
        return Float(norm)
    }
}
