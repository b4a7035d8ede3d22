import DistillNN
import Foundation

/// A tabular student written as a network file (`distill export`): the `linear` network on
/// one-hot states, whose logits at state s are the table's row, z(s, ·) = W e_s + b = W[·, s]
/// with b = 0. Its policy at every state's one-hot observation is the table's softmax, up to the
/// float32 rounding of the logits (safetensors are F32). The value head holds V_π of that policy
/// by exact policy evaluation (0 where the system is singular, e.g. γ = 1 with a looping policy).
public enum TabularStudentNetwork {
    /// The network computing `parameters`' logits (a tied student's shared rows are repeated per state).
    public static func network(_ parameters: StudentParameters, values: [Double]? = nil) throws -> PolicyValueNetwork {
        let states = parameters.stateCount
        let na = parameters.actionCount
        precondition(values == nil || values!.count == states, "one value per state")
        let network = try PolicyValueNetwork(
            architecture: NetworkArchitecture(), inputShape: [states], actionCount: na, seed: 0)
        var flat = [Float](repeating: 0, count: network.parameterCount)
        for tensor in network.parameterTensors {
            switch tensor.name {
            case "logits.weight":  // [A, states]
                for s in 0..<states {
                    let row = Int(parameters.rowOfState[s]) * na
                    for a in 0..<na { flat[tensor.offset + a * states + s] = Float(parameters.logits[row + a]) }
                }
            case "value.weight":  // [1, states]
                for s in 0..<states { flat[tensor.offset + s] = Float(values?[s] ?? 0) }
            default: break  // the biases stay 0
            }
        }
        network.parameters = flat
        return network
    }

    /// Writes `parameters`, the student of a run on `environment`, as a teacher file (kind
    /// `policy`, τ 1, observation `one-hot`) that `distill eval` and `--teacher-file` read.
    public static func save(
        _ parameters: StudentParameters, environment: Environment, to url: URL, metadata: [String: String] = [:]
    ) throws {
        guard parameters.stateCount == environment.mdp.stateCount,
            parameters.actionCount == environment.mdp.actionCount
        else {
            throw DistillError(
                .invalidConfiguration,
                "the student table has \(parameters.stateCount) states and \(parameters.actionCount) actions; "
                    + "\(environment.name) has \(environment.mdp.stateCount) and \(environment.mdp.actionCount)")
        }
        let values = try? PolicyEvaluation.values(environment.mdp, policy: parameters.policyTable())
        try NetworkTeacher.save(
            network: network(parameters, values: values), kind: .policy,
            temperature: NetworkTeacher.Kind.policy.defaultTemperature, observation: ObservationKind.oneHot.description,
            environment: NetworkTeacher.TrainingEnvironment(environment, observation: .oneHot), to: url,
            metadata: metadata.merging(["run.student": "tabular"]) { own, _ in own })
    }
}

/// What `distill eval` measures of a policy table `π` (`[states × actions]`) on a tabular MDP.
public enum TabularPolicyReport {
    /// The mean discounted return Σ_t γ^t r_t of `episodes` sampled episodes (each cut after
    /// `maxSteps`), with its 95 % interval; seeded.
    public static func sampledReturn(
        _ mdp: TabularMDP, policy: [Double], episodes: Int, maxSteps: Int, seed: UInt64
    ) -> ReturnEstimate95 {
        precondition(episodes > 0 && maxSteps > 0, "at least one episode of at least one step")
        precondition(policy.count == mdp.stateCount * mdp.actionCount, "π is [states × actions]")
        var rng = Xoshiro256StarStar(seed: seed)
        let na = mdp.actionCount
        let returns = (0..<episodes).map { _ -> Double in
            var state = mdp.reset(&rng)
            var total = 0.0
            var discount = 1.0
            for _ in 0..<maxSteps where !mdp.isTerminal[Int(state)] {
                let action = sampleCategorical(policy, offset: Int(state) * na, count: na, rng.unitInterval())
                let step = mdp.step(state, action, &rng)
                total += discount * step.reward
                discount *= mdp.discount
                state = step.next
                if step.terminal { break }
            }
            return total
        }
        return ReturnEstimate95(returns: returns)
    }

    /// The greedy path from `start`: the most probable action of π (the first on ties) and its
    /// most probable outcome, until a terminal state, a state already on the path (a loop), or
    /// `maxSteps` steps. The states visited, `start` first.
    public static func greedyPath(_ mdp: TabularMDP, policy: [Double], from start: Int, maxSteps: Int) -> [Int] {
        let na = mdp.actionCount
        var path = [start]
        var seen: Set<Int> = [start]
        var state = start
        while path.count <= maxSteps && !mdp.isTerminal[state] {
            var action = 0
            for a in 1..<max(na, 1) where policy[state * na + a] > policy[state * na + action] { action = a }
            guard let next = mdp.outcomes(state: state, action: action).max(by: { $0.probability < $1.probability })
            else { break }
            state = next.next
            path.append(state)
            if !seen.insert(state).inserted { break }
        }
        return path
    }
}
