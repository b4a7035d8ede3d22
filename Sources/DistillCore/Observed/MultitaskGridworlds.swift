import DistillNN
import Foundation

/// K gridworlds as one tabular environment, for one student distilled from K teachers (Rusu et
/// al. 2016, §4.3: one network, ten games): the disjoint union of the K MDPs, task k's states at
/// `stateOffsets[k] ..< stateOffsets[k + 1]`, its start distribution `ρ0_k / K` there. So each
/// episode plays one task, drawn uniformly at random when the episode starts; the episodes of one
/// update spread over the tasks, each step's teacher row is its own task's teacher's (``teacher(_:)``),
/// and the union's expected return is the mean over tasks of each task's return.
///
/// How the student learns which task it is in (``TaskLabel``):
/// - `.input`: the observation extended with a one-hot task id. On an image `[C, H, W]` the id is
///   K more planes, `[C + K, H, W]`: plane `C + k` is all 1 in task k and all 0 otherwise (so a
///   convolution sees it at every pixel); on a vector observation `[n]` it is K more entries, `[n + K]`.
/// - `.headSelector`: the observation as the task's own gridworld renders it, in the layout the
///   network reads (``ObservationLayout``), followed by the one-hot selector of K scalars that a
///   multi-head network (`…/heads:K`) reads to choose the task's head.
/// - `.none`: the observation alone (a student of one task, or a held-out gridworld's).
public struct MultitaskGridworlds: Sendable {
    /// How the task reaches the student.
    public enum TaskLabel: String, Sendable, Hashable, Codable {
        /// No label: the gridworld's own observation.
        case none
        /// A one-hot task id appended to the observation (K planes of an image).
        case input
        /// A one-hot head selector after the observation, for a `heads:K` network.
        case headSelector = "head-selector"
    }

    /// The tasks, in order.
    public let tasks: [Environment]
    /// Task k's states in the union: `stateOffsets[k] ..< stateOffsets[k + 1]`.
    public let stateOffsets: [Int]
    /// The union.
    public let environment: Environment

    /// The union of `tasks`; throws unless they share the action count and discount.
    public init(_ tasks: [Environment]) throws {
        guard let first = tasks.first else {
            throw DistillError(.invalidConfiguration, "a multi-task environment needs at least one task")
        }
        for (k, task) in tasks.enumerated() {
            guard task.mdp.actionCount == first.mdp.actionCount, task.mdp.discount == first.mdp.discount else {
                throw DistillError(
                    .invalidConfiguration,
                    "task \(k) (\(task.name)) has \(task.mdp.actionCount) actions and γ = \(task.mdp.discount); task 0 has \(first.mdp.actionCount) and \(first.mdp.discount)"
                )
            }
        }
        var offsets = [0]
        for task in tasks { offsets.append(offsets.last! + task.mdp.stateCount) }
        let n = offsets.last!
        let k = Double(tasks.count)
        var start = [Double](repeating: 0, count: n)
        var terminal = [Bool](repeating: false, count: n)
        var taskOf = [Int](repeating: 0, count: n)
        for (t, task) in tasks.enumerated() {
            for s in 0..<task.mdp.stateCount {
                start[offsets[t] + s] = task.mdp.startDistribution[s] / k
                terminal[offsets[t] + s] = task.mdp.isTerminal[s]
                taskOf[offsets[t] + s] = t
            }
        }
        let mdp = TabularMDP(
            stateCount: n, actionCount: first.mdp.actionCount, discount: first.mdp.discount, startDistribution: start,
            isTerminal: terminal
        ) { s, a in
            let t = taskOf[s]
            return tasks[t].mdp.outcomes(state: s - offsets[t], action: a).map {
                Outcome(next: $0.next + offsets[t], probability: $0.probability, reward: $0.reward)
            }
        }
        self.tasks = tasks
        self.stateOffsets = offsets
        self.environment = Environment(name: "tasks(\(tasks.map(\.name).joined(separator: ", ")))", mdp: mdp)
    }

    /// The union with every episode starting in task `k` (ρ0 of task k at its states, 0 elsewhere):
    /// what an actor assigned to task k plays. States, actions, dynamics and rewards are the
    /// union's, so its state ids, parameters and unrolls are the union's too.
    public func environment(startingIn k: Int) -> Environment {
        precondition(tasks.indices.contains(k), "task \(k) of \(tasks.count)")
        let union = environment.mdp
        var start = [Double](repeating: 0, count: union.stateCount)
        let task = tasks[k].mdp
        for s in 0..<task.stateCount { start[stateOffsets[k] + s] = task.startDistribution[s] }
        let mdp = TabularMDP(
            stateCount: union.stateCount, actionCount: union.actionCount, discount: union.discount,
            startDistribution: start, isTerminal: union.isTerminal
        ) { s, a in union.outcomes(state: s, action: a) }
        return Environment(name: environment.name, mdp: mdp)
    }

    /// The task whose states hold union state `s`.
    public func task(ofState s: Int) -> Int {
        precondition(s >= 0 && s < environment.mdp.stateCount, "state \(s) of \(environment.mdp.stateCount)")
        var low = 0
        var high = tasks.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if stateOffsets[mid] <= s { low = mid } else { high = mid - 1 }
        }
        return low
    }

    /// The union's teacher: task k's teacher on task k's states (each must have the task's size).
    public func teacher(_ teachers: [Teacher]) -> Teacher {
        precondition(teachers.count == tasks.count, "one teacher per task: \(teachers.count) for \(tasks.count)")
        var probabilities: [Double] = []
        var values: [Double] = []
        var actionValues: [Double]? = []
        for (k, teacher) in teachers.enumerated() {
            precondition(
                teacher.stateCount == tasks[k].mdp.stateCount && teacher.actionCount == environment.mdp.actionCount,
                "teacher \(k) does not fit task \(k)")
            probabilities += teacher.probabilities
            values += teacher.values
            if let q = teacher.actionValues { actionValues? += q } else { actionValues = nil }
        }
        return Teacher(
            identity: "tasks(\(teachers.map(\.identity).joined(separator: ", ")))",
            stateCount: environment.mdp.stateCount,
            actionCount: environment.mdp.actionCount, probabilities: probabilities, values: values,
            actionValues: actionValues)
    }

    /// Task k's rows of a union table with `width` entries per state (a policy: `width` = |A|).
    public func rows<T>(_ table: [T], task k: Int, width: Int) -> [T] {
        Array(table[(stateOffsets[k] * width)..<(stateOffsets[k + 1] * width)])
    }

    /// The network input of every union state, row-major, and the network's input shape (without
    /// the head selector), for `architecture` reading `observation` with `label`.
    public func observationTable(
        _ observation: ObservationKind, label: TaskLabel, architecture: NetworkArchitecture
    ) throws -> (rows: [Float], inputShape: [Int]) {
        var rows: [Float] = []
        var shape: [Int] = []
        for (k, task) in tasks.enumerated() {
            let table = try Self.observationTable(
                task, observation, label: label, task: k, of: tasks.count, architecture: architecture)
            rows += table.rows
            shape = table.inputShape
        }
        return (rows, shape)
    }

    /// The network input of every state of one gridworld played as task `task` of `count` (`task`
    /// nil: the label is all zero, a gridworld with no task of its own), and the input shape.
    public static func observationTable(
        _ environment: Environment, _ observation: ObservationKind, label: TaskLabel, task: Int?, of count: Int,
        architecture: NetworkArchitecture
    ) throws -> (rows: [Float], inputShape: [Int]) {
        let observed = try TabularObservedEnvironment(environment, observation: observation)
        let table = observed.observationTable()
        let shape = observed.description.observation.shape
        let n = environment.mdp.stateCount
        let size = table.count / n
        switch label {
        case .none:
            return (
                ObservationLayout.networkInput(table, environmentShape: shape, architecture: architecture),
                ObservationLayout.networkShape(architecture, environmentShape: shape)
            )
        case .input:
            // [C, H, W] → [C + K, H, W] (K planes after the image's); [n] → [n + K].
            let plane = shape.count == 3 ? shape[1] * shape[2] : 1
            var extended: [Float] = []
            extended.reserveCapacity(n * (size + count * plane))
            for s in 0..<n {
                extended += table[(s * size)..<((s + 1) * size)]
                for j in 0..<count {
                    extended += repeatElement(j == task ? 1 : 0, count: plane)
                }
            }
            let shapeWithTask = shape.count == 3 ? [shape[0] + count, shape[1], shape[2]] : [size + count]
            return (
                ObservationLayout.networkInput(extended, environmentShape: shapeWithTask, architecture: architecture),
                ObservationLayout.networkShape(architecture, environmentShape: shapeWithTask)
            )
        case .headSelector:
            guard let task else {
                throw DistillError(
                    .invalidConfiguration,
                    "a multi-head student needs a task to choose its head; this gridworld has none")
            }
            let input = ObservationLayout.networkInput(table, environmentShape: shape, architecture: architecture)
            var rows: [Float] = []
            rows.reserveCapacity(n * (size + count))
            for s in 0..<n {
                rows += input[(s * size)..<((s + 1) * size)]
                for j in 0..<count { rows.append(j == task ? 1 : 0) }
            }
            return (rows, ObservationLayout.networkShape(architecture, environmentShape: shape))
        }
    }

    /// The exact expected return of task k under a union policy table (`[states × |A|]`).
    public func taskReturn(_ policy: [Double], task k: Int) throws -> Double {
        try PolicyEvaluation.expectedReturn(
            tasks[k].mdp, policy: rows(policy, task: k, width: environment.mdp.actionCount))
    }
}

/// A network's policy `softmax(logits)` at every row of `rows` (`[states × inputSize]`), as a
/// policy table `[states × |A|]` in double precision.
public func networkPolicyTable(_ network: PolicyValueNetwork, rows: [Float]) -> [Double] {
    let states = rows.count / network.inputSize
    let logits = network.forward(rows, batch: states).logits
    let na = network.actionCount
    var table = [Double](repeating: 0, count: logits.count)
    for s in 0..<states {
        var m = -Double.infinity
        for a in 0..<na { m = max(m, Double(logits[s * na + a])) }
        var z = 0.0
        for a in 0..<na {
            table[s * na + a] = Foundation.exp(Double(logits[s * na + a]) - m)
            z += table[s * na + a]
        }
        for a in 0..<na { table[s * na + a] /= z }
    }
    return table
}
