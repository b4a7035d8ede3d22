/// RMSProp (Tieleman & Hinton 2012), with ε inside the square root as in DQN (Mnih et al. 2015),
/// whose teachers Rusu et al. (2016) distil with it.
///
///     s ← ρs + (1−ρ)g²,  θ ← θ − α·g/√(s + ε)                    (centered: false)
///     s ← ρs + (1−ρ)g²,  ḡ ← ρḡ + (1−ρ)g,  θ ← θ − α·g/√(s − ḡ² + ε)   (centered: true, Graves 2013)
///
/// The first step from s = ḡ = 0 is θ − α·g/√((1−ρ)g² + ε) (centered: θ − α·g/√(ρ(1−ρ)g² + ε)).
/// Defaults are DQN's: α = 2.5e-4, ρ = 0.95, ε = 0.01 (its "minimum squared gradient"), not centered.
public struct RMSProp: Optimizer, Sendable {
    /// α.
    public var learningRate: Float
    /// ρ, the decay of the moving averages.
    public var decay: Float
    /// ε, added to the mean square under the root.
    public var epsilon: Float
    /// Whether to subtract the squared mean gradient (an estimate of the variance instead of the second moment).
    public let centered: Bool
    private var steps = 0
    private var meanSquare: [Float]
    private var meanGradient: [Float]

    /// RMSProp over `parameterCount` parameters, averages at 0.
    public init(
        parameterCount: Int, learningRate: Float = 2.5e-4, decay: Float = 0.95, epsilon: Float = 0.01,
        centered: Bool = false
    ) {
        self.learningRate = learningRate
        self.decay = decay
        self.epsilon = epsilon
        self.centered = centered
        meanSquare = [Float](repeating: 0, count: parameterCount)
        meanGradient = centered ? [Float](repeating: 0, count: parameterCount) : []
    }

    public mutating func step(parameters: inout [Float], gradients: [Float]) {
        precondition(
            parameters.count == meanSquare.count && gradients.count == meanSquare.count,
            "RMSProp: \(parameters.count) parameters and \(gradients.count) gradients for an optimiser of "
                + "\(meanSquare.count)")
        steps += 1
        let (alpha, rho, c, eps) = (learningRate, decay, 1 - decay, epsilon)
        let centered = self.centered
        parameters.withUnsafeMutableBufferPointer { theta in
            gradients.withUnsafeBufferPointer { g in
                meanSquare.withUnsafeMutableBufferPointer { s in
                    meanGradient.withUnsafeMutableBufferPointer { mean in
                        if centered {
                            for i in 0..<theta.count {
                                let gi = g[i]
                                let si = rho * s[i] + c * gi * gi
                                let mi = rho * mean[i] + c * gi
                                s[i] = si
                                mean[i] = mi
                                theta[i] -= alpha * gi / (si - mi * mi + eps).squareRoot()
                            }
                        } else {
                            for i in 0..<theta.count {
                                let gi = g[i]
                                let si = rho * s[i] + c * gi * gi
                                s[i] = si
                                theta[i] -= alpha * gi / (si + eps).squareRoot()
                            }
                        }
                    }
                }
            }
        }
    }

    public func exportState() -> OptimizerState {
        var buffers = ["mean_square": meanSquare]
        if centered { buffers["mean_gradient"] = meanGradient }
        return OptimizerState(
            kind: centered ? "rmsprop-centered" : "rmsprop", step: steps,
            hyperparameters: [
                "learning_rate": Double(learningRate), "decay": Double(decay), "epsilon": Double(epsilon),
            ],
            buffers: buffers)
    }

    public mutating func importState(_ state: OptimizerState) throws {
        let values = try state.validated(
            kind: centered ? "rmsprop-centered" : "rmsprop", parameterCount: meanSquare.count,
            buffers: centered ? ["mean_square", "mean_gradient"] : ["mean_square"],
            hyperparameters: ["learning_rate", "decay", "epsilon"])
        (learningRate, decay, epsilon) = (Float(values[0]), Float(values[1]), Float(values[2]))
        steps = state.step
        meanSquare = state.buffers["mean_square"]!
        if centered { meanGradient = state.buffers["mean_gradient"]! }
    }
}
