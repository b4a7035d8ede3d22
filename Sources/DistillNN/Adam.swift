import Foundation

/// Adam (Kingma & Ba 2015, Algorithm 1) with bias correction.
///
///     m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,  θ ← θ − α·m̂/(√v̂ + ε),  m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ)
///
/// so the first step is exactly θ − α·g/(|g| + ε). Defaults: α = 1e-3, β₁ = 0.9, β₂ = 0.999, ε = 1e-8.
public struct Adam: Optimizer, Sendable {
    /// α.
    public var learningRate: Float
    /// β₁, the decay of the first moment.
    public var beta1: Float
    /// β₂, the decay of the second moment.
    public var beta2: Float
    /// ε, added to √v̂.
    public var epsilon: Float
    private var steps = 0
    private var m: [Float]
    private var v: [Float]

    /// Adam over `parameterCount` parameters, moments at 0.
    public init(
        parameterCount: Int, learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
        epsilon: Float = 1e-8
    ) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        m = [Float](repeating: 0, count: parameterCount)
        v = [Float](repeating: 0, count: parameterCount)
    }

    public mutating func step(parameters: inout [Float], gradients: [Float]) {
        precondition(
            parameters.count == m.count && gradients.count == m.count,
            "Adam: \(parameters.count) parameters and \(gradients.count) gradients for an optimiser of \(m.count)")
        steps += 1
        // α·m̂/(√v̂ + ε) = α_t·m/(√v + ε̂) with α_t = α·√(1−β₂ᵗ)/(1−β₁ᵗ) and ε̂ = ε·√(1−β₂ᵗ).
        let correction2 = (1 - pow(Double(beta2), Double(steps))).squareRoot()
        let alphaT = Float(Double(learningRate) * correction2 / (1 - pow(Double(beta1), Double(steps))))
        let epsilonT = Float(Double(epsilon) * correction2)
        let (b1, b2) = (beta1, beta2)
        let (c1, c2) = (1 - beta1, 1 - beta2)
        parameters.withUnsafeMutableBufferPointer { theta in
            gradients.withUnsafeBufferPointer { g in
                m.withUnsafeMutableBufferPointer { m in
                    v.withUnsafeMutableBufferPointer { v in
                        for i in 0..<theta.count {
                            let gi = g[i]
                            let mi = b1 * m[i] + c1 * gi
                            let vi = b2 * v[i] + c2 * gi * gi
                            m[i] = mi
                            v[i] = vi
                            theta[i] -= alphaT * mi / (vi.squareRoot() + epsilonT)
                        }
                    }
                }
            }
        }
    }

    public func exportState() -> OptimizerState {
        OptimizerState(
            kind: "adam", step: steps,
            hyperparameters: [
                "learning_rate": Double(learningRate), "beta1": Double(beta1), "beta2": Double(beta2),
                "epsilon": Double(epsilon),
            ],
            buffers: ["m": m, "v": v])
    }

    public mutating func importState(_ state: OptimizerState) throws {
        let values = try state.validated(
            kind: "adam", parameterCount: m.count, buffers: ["m", "v"],
            hyperparameters: ["learning_rate", "beta1", "beta2", "epsilon"])
        (learningRate, beta1, beta2, epsilon) = (Float(values[0]), Float(values[1]), Float(values[2]), Float(values[3]))
        steps = state.step
        m = state.buffers["m"]!
        v = state.buffers["v"]!
    }
}
