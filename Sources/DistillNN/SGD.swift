/// Plain stochastic gradient descent: θ ← θ − α·g.
public struct SGD: Optimizer, Sendable {
    /// α.
    public var learningRate: Float
    private var steps = 0

    /// SGD with step size `learningRate`.
    public init(learningRate: Float) {
        self.learningRate = learningRate
    }

    public mutating func step(parameters: inout [Float], gradients: [Float]) {
        precondition(parameters.count == gradients.count, "SGD: \(gradients.count) gradients for \(parameters.count)")
        let alpha = learningRate
        parameters.withUnsafeMutableBufferPointer { theta in
            gradients.withUnsafeBufferPointer { g in
                for i in 0..<theta.count { theta[i] -= alpha * g[i] }
            }
        }
        steps += 1
    }

    public func exportState() -> OptimizerState {
        OptimizerState(kind: "sgd", step: steps, hyperparameters: ["learning_rate": Double(learningRate)], buffers: [:])
    }

    public mutating func importState(_ state: OptimizerState) throws {
        let values = try state.validated(
            kind: "sgd", parameterCount: 0, buffers: [], hyperparameters: ["learning_rate"])
        learningRate = Float(values[0])
        steps = state.step
    }
}
