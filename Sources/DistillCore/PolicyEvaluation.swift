/// Exact dynamic-programming quantities of a tabular MDP under a fixed policy (METHODS.md §4).
///
/// Policies are flat row-major tables `policy[s·|A| + a] = π(a|s)` over all states.
public enum PolicyEvaluation {
    /// The state-to-state matrix `P_π[s][s'] = Σ_a π(a|s) P(s'|s,a)` restricted to non-terminal
    /// states on both sides (terminal rows and columns are zero), row-major.
    public static func transitionMatrix(_ mdp: TabularMDP, policy: [Double]) -> [Double] {
        let n = mdp.stateCount
        let na = mdp.actionCount
        precondition(policy.count == n * na, "policy has \(policy.count) entries, expected \(n * na)")
        var p = [Double](repeating: 0, count: n * n)
        for s in 0..<n where !mdp.isTerminal[s] {
            for a in 0..<na {
                let w = policy[s * na + a]
                if w == 0 { continue }
                let i = s * na + a
                for k in Int(mdp.outcomeOffsets[i])..<Int(mdp.outcomeOffsets[i + 1]) {
                    let next = Int(mdp.outcomeNext[k])
                    if !mdp.isTerminal[next] { p[s * n + next] += w * mdp.outcomeProbability[k] }
                }
            }
        }
        return p
    }

    /// Solves `(I − γ P_π) V = c` for a per-state signal `c` (zero on terminal states); with
    /// `c = r_π` this is `V_π`, the expected discounted return from each state.
    public static func discountedSum(_ mdp: TabularMDP, policy: [Double], perStateSignal c: [Double]) throws -> [Double]
    {
        let n = mdp.stateCount
        let p = transitionMatrix(mdp, policy: policy)
        var m = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0..<n { m[i * n + j] = -mdp.discount * p[i * n + j] }
            m[i * n + i] += 1
        }
        var rhs = c
        for s in 0..<n where mdp.isTerminal[s] { rhs[s] = 0 }
        return try solveLinearSystem(m, size: n, rightHandSides: [rhs])[0]
    }

    /// `V_π(s) = E_π[Σ_t γ^t r_t | s_0 = s]` by solving the Bellman equation; zero on terminal states.
    public static func values(_ mdp: TabularMDP, policy: [Double]) throws -> [Double] {
        try discountedSum(mdp, policy: policy, perStateSignal: expectedRewards(mdp, policy: policy))
    }

    /// `V_π` by Gauss–Seidel sweeps over the sparse outcome lists, to `tolerance` in the sup norm:
    /// O(|S|·|A|·outcomes) per sweep instead of the dense solve's O(|S|³), for metrics taken often
    /// during training. Converges when every policy ends episodes (γ < 1 or proper policies);
    /// returns nil if it has not converged after `maxSweeps`. Starting from the values of a
    /// nearby policy (`initial`) takes far fewer sweeps than starting from zero.
    public static func iterativeValues(
        _ mdp: TabularMDP, policy: [Double], initial: [Double]? = nil, tolerance: Double = 1e-9,
        maxSweeps: Int = 100_000
    ) -> [Double]? {
        let n = mdp.stateCount
        let na = mdp.actionCount
        precondition(policy.count == n * na, "policy has \(policy.count) entries, expected \(n * na)")
        precondition(initial == nil || initial!.count == n, "initial values need \(n) entries")
        var v = initial ?? [Double](repeating: 0, count: n)
        for s in 0..<n where mdp.isTerminal[s] { v[s] = 0 }
        for _ in 0..<maxSweeps {
            var change = 0.0
            for s in 0..<n where !mdp.isTerminal[s] {
                var total = 0.0
                for a in 0..<na {
                    let w = policy[s * na + a]
                    if w == 0 { continue }
                    let i = s * na + a
                    var q = 0.0
                    for k in Int(mdp.outcomeOffsets[i])..<Int(mdp.outcomeOffsets[i + 1]) {
                        let next = Int(mdp.outcomeNext[k])
                        q += mdp.outcomeProbability[k] * (mdp.outcomeReward[k] + mdp.discount * v[next])
                    }
                    total += w * q
                }
                change = max(change, abs(total - v[s]))
                v[s] = total
            }
            if change <= tolerance { return v }
        }
        return nil
    }

    /// `r_π(s) = Σ_a π(a|s) r̄(s,a)`.
    public static func expectedRewards(_ mdp: TabularMDP, policy: [Double]) -> [Double] {
        let na = mdp.actionCount
        return (0..<mdp.stateCount).map { s in
            mdp.isTerminal[s]
                ? 0 : (0..<na).reduce(0) { $0 + policy[s * na + $1] * mdp.expectedReward(state: s, action: $1) }
        }
    }

    /// `Q_π(s,a) = r̄(s,a) + γ Σ_{s'} P(s'|s,a) V(s')` for given state values `V` (row-major).
    public static func actionValues(_ mdp: TabularMDP, stateValues v: [Double]) -> [Double] {
        let na = mdp.actionCount
        var q = [Double](repeating: 0, count: mdp.stateCount * na)
        for s in 0..<mdp.stateCount where !mdp.isTerminal[s] {
            for a in 0..<na {
                let i = s * na + a
                var total = 0.0
                for k in Int(mdp.outcomeOffsets[i])..<Int(mdp.outcomeOffsets[i + 1]) {
                    let next = Int(mdp.outcomeNext[k])
                    total +=
                        mdp.outcomeProbability[k]
                        * (mdp.outcomeReward[k] + (mdp.isTerminal[next] ? 0 : mdp.discount * v[next]))
                }
                q[i] = total
            }
        }
        return q
    }

    /// Expected (undiscounted) number of visits to each state, `d = ρ0ᵀ (I − P_π)⁻¹`, zero on
    /// terminal states (METHODS.md §4).
    public static func visits(_ mdp: TabularMDP, policy: [Double]) throws -> [Double] {
        let n = mdp.stateCount
        let p = transitionMatrix(mdp, policy: policy)
        var m = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0..<n { m[i * n + j] = -p[j * n + i] }
            m[i * n + i] += 1
        }
        var rhs = mdp.startDistribution
        for s in 0..<n where mdp.isTerminal[s] { rhs[s] = 0 }
        return try solveLinearSystem(m, size: n, rightHandSides: [rhs])[0]
    }

    /// Expected discounted return of `policy` from the start distribution, `Σ_s ρ0(s) V_π(s)`.
    public static func expectedReturn(_ mdp: TabularMDP, policy: [Double]) throws -> Double {
        let v = try values(mdp, policy: policy)
        return zip(mdp.startDistribution, v).reduce(0) { $0 + $1.0 * $1.1 }
    }

    /// Optimal action values `Q*` by value iteration, stopping when the sup-norm change is below
    /// `tolerance` (or after `maxSweeps`).
    public static func optimalActionValues(
        _ mdp: TabularMDP, tolerance: Double = 1e-12, maxSweeps: Int = 1_000_000
    )
        -> [Double]
    {
        var v = [Double](repeating: 0, count: mdp.stateCount)
        var q = [Double](repeating: 0, count: mdp.stateCount * mdp.actionCount)
        for _ in 0..<maxSweeps {
            q = actionValues(mdp, stateValues: v)
            var change = 0.0
            for s in 0..<mdp.stateCount where !mdp.isTerminal[s] {
                var best = -Double.infinity
                for a in 0..<mdp.actionCount { best = max(best, q[s * mdp.actionCount + a]) }
                change = max(change, abs(best - v[s]))
                v[s] = best
            }
            if change < tolerance { break }
        }
        return actionValues(mdp, stateValues: v)
    }

    /// Monte-Carlo estimate of `V_π(s)` for every non-terminal state: the mean discounted return
    /// of `rollouts` episodes started in `s` (the paper estimates `V_π` from 100 rollouts, Sec. 4).
    /// Episodes are cut after `maxSteps` steps.
    public static func monteCarloValues(
        _ mdp: TabularMDP, policy: [Double], rollouts: Int, maxSteps: Int = 100_000, rng: inout Xoshiro256StarStar
    ) -> [Double] {
        precondition(rollouts > 0, "need at least one rollout")
        let na = mdp.actionCount
        var values = [Double](repeating: 0, count: mdp.stateCount)
        for s0 in 0..<mdp.stateCount where !mdp.isTerminal[s0] {
            var total = 0.0
            for _ in 0..<rollouts {
                var s = Int32(s0)
                var discount = 1.0
                var ret = 0.0
                for _ in 0..<maxSteps {
                    let a = sampleCategorical(policy, offset: Int(s) * na, count: na, rng.unitInterval())
                    let step = mdp.step(s, a, &rng)
                    ret += discount * step.reward
                    discount *= mdp.discount
                    s = step.next
                    if step.terminal { break }
                }
                total += ret
            }
            values[s0] = total / Double(rollouts)
        }
        return values
    }
}

/// Inverse-CDF draw from `probabilities[offset ..< offset+count]` with a uniform `u` in [0, 1).
@inlinable
public func sampleCategorical(_ probabilities: [Double], offset: Int, count: Int, _ u: Double) -> Int {
    var acc = 0.0
    for a in 0..<(count - 1) {
        acc += probabilities[offset + a]
        if u < acc { return a }
    }
    return count - 1
}
