import Foundation

/// How an episode's record ends.
public enum EpisodeEnd: String, Sendable, Hashable, Codable {
    /// `s_T` is terminal: the episode is over.
    case terminated
    /// The episode was cut by a length cap; `s_T` is an ordinary state.
    case truncated
}

/// A trajectory as the learner receives it (from an actor, with outputs of a teacher server):
/// per step `t = 0..<T` the observation `s_t`, action `a_t`, reward `r_t`, behaviour probability
/// `μ(a_t|s_t)`, and the teacher's `π(·|s_t)`, `V_π(s_t)`, optional `Q(s_t,·)`; the final
/// observation `s_T` with its teacher outputs; and whether the episode terminated at `s_T`.
public struct Trajectory: Sendable, Hashable, Codable, EpisodeView {
    /// `|A|`.
    public var actionCount: Int
    /// `s_0 … s_T` (T+1 entries).
    public var observations: [Int32]
    /// `a_0 … a_{T−1}`.
    public var actions: [Int32]
    /// `r_0 … r_{T−1}`.
    public var rewards: [Double]
    /// `μ(a_t|s_t)` for `t < T`.
    public var behaviourProbabilities: [Double]
    /// `π(a|s_t)` for `t = 0…T`, row-major `[(T+1) × |A|]`.
    public var teacherProbabilities: [Double]
    /// `V_π(s_t)` for `t = 0…T`.
    public var teacherValues: [Double]
    /// `Q(s_t, a)` row-major `[(T+1) × |A|]`, when the teacher has Q-values.
    public var teacherActionValues: [Double]?
    /// Terminated or truncated at `s_T`.
    public var end: EpisodeEnd

    /// Creates a trajectory; sizes are checked loudly.
    public init(
        actionCount: Int, observations: [Int32], actions: [Int32], rewards: [Double], behaviourProbabilities: [Double],
        teacherProbabilities: [Double], teacherValues: [Double], teacherActionValues: [Double]? = nil, end: EpisodeEnd
    ) {
        let t = actions.count
        precondition(observations.count == t + 1, "need T+1 observations, got \(observations.count) for T = \(t)")
        precondition(
            rewards.count == t && behaviourProbabilities.count == t, "need T rewards and behaviour probabilities")
        precondition(teacherProbabilities.count == (t + 1) * actionCount, "need (T+1)·|A| teacher probabilities")
        precondition(teacherValues.count == t + 1, "need T+1 teacher values")
        precondition(
            teacherActionValues == nil || teacherActionValues!.count == (t + 1) * actionCount,
            "need (T+1)·|A| teacher Q-values")
        self.actionCount = actionCount
        self.observations = observations
        self.actions = actions
        self.rewards = rewards
        self.behaviourProbabilities = behaviourProbabilities
        self.teacherProbabilities = teacherProbabilities
        self.teacherValues = teacherValues
        self.teacherActionValues = teacherActionValues
        self.end = end
    }

    /// `T`.
    @inlinable public var length: Int { actions.count }
    /// Whether `s_T` is terminal.
    @inlinable public var terminated: Bool { end == .terminated }
    /// `s_t`.
    @inlinable public func state(_ t: Int) -> Int { Int(observations[t]) }
    /// `a_t`.
    @inlinable public func action(_ t: Int) -> Int { Int(actions[t]) }
    /// `r_t`.
    @inlinable public func reward(_ t: Int) -> Double { rewards[t] }
    /// `μ(a_t|s_t)`.
    @inlinable public func behaviourProbability(_ t: Int) -> Double { behaviourProbabilities[t] }
    /// `π(a|s_t)`.
    @inlinable public func teacherProbability(_ slot: Int, _ action: Int) -> Double {
        teacherProbabilities[slot * actionCount + action]
    }
    /// `log max(π(a|s_t), floor)`.
    @inlinable public func teacherLogProbability(_ slot: Int, _ action: Int) -> Double {
        Foundation.log(max(teacherProbabilities[slot * actionCount + action], teacherLogProbabilityFloor))
    }
    /// `V_π(s_t)`.
    @inlinable public func teacherValue(_ slot: Int) -> Double { teacherValues[slot] }
    /// `Q(s_t, a)`.
    @inlinable public func teacherActionValue(_ slot: Int, _ action: Int) -> Double {
        guard let q = teacherActionValues else {
            preconditionFailure("this loss needs teacher Q-values, the trajectory has none")
        }
        return q[slot * actionCount + action]
    }

    /// Builds a trajectory from an episode record by looking the teacher's outputs up (what a
    /// teacher server would send back).
    public init(_ episode: EpisodeBuffer, teacher: Teacher) {
        let na = teacher.actionCount
        var p: [Double] = []
        var q: [Double]? = teacher.actionValues == nil ? nil : []
        let states = episode.states
        for s in states {
            let r = Int(s) * na
            p += teacher.probabilities[r..<(r + na)]
            if let tq = teacher.actionValues { q! += tq[r..<(r + na)] }
        }
        self.init(
            actionCount: na, observations: states, actions: episode.actions, rewards: episode.rewards,
            behaviourProbabilities: episode.behaviour, teacherProbabilities: p,
            teacherValues: states.map { teacher.values[Int($0)] }, teacherActionValues: q,
            end: episode.terminated ? .terminated : .truncated)
    }
}

/// `accumulateSampledUpdate` for a network trajectory (non-generic entry point for the runtime).
public func accumulateSampledUpdate(
    trajectory: Trajectory, policy: StudentPolicy, rule: UpdateRule, context: UpdateContext,
    into acc: inout UpdateAccumulator
) {
    precondition(
        trajectory.actionCount == policy.actionCount,
        "trajectory has \(trajectory.actionCount) actions, student \(policy.actionCount)")
    precondition(
        !rule.loss.needsActionValues || trajectory.teacherActionValues != nil, "this loss needs teacher Q-values")
    accumulateSampledUpdate(trajectory, policy: policy, rule: rule, context: context, into: &acc)
}

/// A reusable record of one episode: flat storage whose capacity is kept between episodes, so
/// that recording a step never allocates once the buffer has grown to the longest episode.
public struct EpisodeBuffer: Sendable {
    @usableFromInline var stateStorage: [Int32] = [0]
    @usableFromInline var actionStorage: [Int32] = []
    @usableFromInline var rewardStorage: [Double] = []
    @usableFromInline var behaviourStorage: [Double] = []
    /// Number of steps `T`.
    public internal(set) var length = 0
    /// Whether `s_T` is terminal.
    public internal(set) var terminated = false

    /// An empty buffer.
    public init() {}

    /// `s_0 … s_T` (a copy).
    public var states: [Int32] { Array(stateStorage[0...length]) }
    /// `a_0 … a_{T−1}` (a copy).
    public var actions: [Int32] { Array(actionStorage[0..<length]) }
    /// `r_0 … r_{T−1}` (a copy).
    public var rewards: [Double] { Array(rewardStorage[0..<length]) }
    /// `μ(a_t|s_t)` for `t < T` (a copy).
    public var behaviour: [Double] { Array(behaviourStorage[0..<length]) }
    /// `s_t`.
    @inlinable public func state(_ t: Int) -> Int32 { stateStorage[t] }
    /// `a_t`.
    @inlinable public func action(_ t: Int) -> Int32 { actionStorage[t] }
    /// `r_t`.
    @inlinable public func reward(_ t: Int) -> Double { rewardStorage[t] }
    /// `μ(a_t|s_t)`.
    @inlinable public func behaviourProbability(_ t: Int) -> Double { behaviourStorage[t] }

    /// Records an episode from arrays (`states` has one more entry than the others).
    public init(states: [Int32], actions: [Int32], rewards: [Double], behaviour: [Double], terminated: Bool) {
        precondition(
            states.count == actions.count + 1 && rewards.count == actions.count && behaviour.count == actions.count,
            "inconsistent episode sizes")
        stateStorage = states
        actionStorage = actions
        rewardStorage = rewards
        behaviourStorage = behaviour
        length = actions.count
        self.terminated = terminated
    }

    mutating func grow() {
        let capacity = max(64, 2 * actionStorage.count)
        stateStorage += [Int32](repeating: 0, count: capacity + 1 - stateStorage.count)
        actionStorage += [Int32](repeating: 0, count: capacity - actionStorage.count)
        rewardStorage += [Double](repeating: 0, count: capacity - rewardStorage.count)
        behaviourStorage += [Double](repeating: 0, count: capacity - behaviourStorage.count)
    }
}

/// An episode record whose teacher outputs are looked up from a tabular teacher by state id.
public struct TabularEpisode: EpisodeView {
    /// The record.
    public let buffer: EpisodeBuffer
    /// The teacher.
    public let teacher: Teacher

    /// Pairs a record with a teacher.
    public init(_ buffer: EpisodeBuffer, teacher: Teacher) {
        self.buffer = buffer
        self.teacher = teacher
    }

    /// `T`.
    @inlinable public var length: Int { buffer.length }
    /// Whether `s_T` is terminal.
    @inlinable public var terminated: Bool { buffer.terminated }
    /// `s_t`.
    @inlinable public func state(_ t: Int) -> Int { Int(buffer.state(t)) }
    /// `a_t`.
    @inlinable public func action(_ t: Int) -> Int { Int(buffer.action(t)) }
    /// `r_t`.
    @inlinable public func reward(_ t: Int) -> Double { buffer.reward(t) }
    /// `μ(a_t|s_t)`.
    @inlinable public func behaviourProbability(_ t: Int) -> Double { buffer.behaviourProbability(t) }
    /// `π(a|s_t)`.
    @inlinable public func teacherProbability(_ slot: Int, _ action: Int) -> Double {
        teacher.probabilities[Int(buffer.state(slot)) * teacher.actionCount + action]
    }
    /// `log max(π(a|s_t), floor)`.
    @inlinable public func teacherLogProbability(_ slot: Int, _ action: Int) -> Double {
        teacher.logProbabilities[Int(buffer.state(slot)) * teacher.actionCount + action]
    }
    /// `V_π(s_t)`.
    @inlinable public func teacherValue(_ slot: Int) -> Double { teacher.values[Int(buffer.state(slot))] }
    /// `Q(s_t, a)`.
    @inlinable public func teacherActionValue(_ slot: Int, _ action: Int) -> Double {
        teacher.actionValues![Int(buffer.state(slot)) * teacher.actionCount + action]
    }
}

/// The same view over raw storage (no reference counting in the hot loop); only valid inside
/// the `withUnsafeBufferPointer` scope that made it.
@usableFromInline
struct UnsafeTabularEpisode: EpisodeView {
    let states: UnsafePointer<Int32>
    let actions: UnsafePointer<Int32>
    let rewards: UnsafePointer<Double>
    let behaviour: UnsafePointer<Double>
    let probabilities: UnsafePointer<Double>
    let logProbabilities: UnsafePointer<Double>
    let values: UnsafePointer<Double>
    let actionValues: UnsafePointer<Double>?
    let actionCount: Int
    @usableFromInline let length: Int
    @usableFromInline let terminated: Bool

    @usableFromInline func state(_ t: Int) -> Int { Int(states[t]) }
    @usableFromInline func action(_ t: Int) -> Int { Int(actions[t]) }
    @usableFromInline func reward(_ t: Int) -> Double { rewards[t] }
    @usableFromInline func behaviourProbability(_ t: Int) -> Double { behaviour[t] }
    @usableFromInline func teacherProbability(_ slot: Int, _ action: Int) -> Double {
        probabilities[Int(states[slot]) * actionCount + action]
    }
    @usableFromInline func teacherLogProbability(_ slot: Int, _ action: Int) -> Double {
        logProbabilities[Int(states[slot]) * actionCount + action]
    }
    @usableFromInline func teacherValue(_ slot: Int) -> Double { values[Int(states[slot])] }
    @usableFromInline func teacherActionValue(_ slot: Int, _ action: Int) -> Double {
        actionValues![Int(states[slot]) * actionCount + action]
    }
}

/// Runs one episode of `control` (student probabilities from the cached `policy`) and records it,
/// with `μ(a_t|s_t)` the control policy's probability of each action taken; cut after `maxSteps`.
public func collectEpisode(
    _ mdp: TabularMDP, policy: StudentPolicy, teacher: Teacher, control: ControlPolicy, maxSteps: Int,
    rng: inout Xoshiro256StarStar, into buffer: inout EpisodeBuffer
) {
    precondition(maxSteps > 0, "maxSteps must be positive")
    precondition(
        policy.rowOfState.count == mdp.stateCount && teacher.stateCount == mdp.stateCount,
        "student/teacher do not match the MDP")
    let na = mdp.actionCount
    let uniform = 1 / Double(na)
    var s = mdp.reset(&rng)
    var t = 0
    var terminated = false
    buffer.stateStorage[0] = s
    policy.probabilities.withUnsafeBufferPointer { probs in
        policy.cumulative.withUnsafeBufferPointer { cum in
            policy.rowOfState.withUnsafeBufferPointer { rows in
                teacher.probabilities.withUnsafeBufferPointer { tp in
                    mdp.outcomeOffsets.withUnsafeBufferPointer { offsets in
                        mdp.outcomeCumulative.withUnsafeBufferPointer { ocum in
                            mdp.outcomeNext.withUnsafeBufferPointer { onext in
                                mdp.outcomeReward.withUnsafeBufferPointer { oreward in
                                    mdp.isTerminal.withUnsafeBufferPointer { terminal in
                                        while t < maxSteps && !terminated {
                                            if t == buffer.actionStorage.count { buffer.grow() }
                                            let capacity = buffer.actionStorage.count
                                            buffer.stateStorage.withUnsafeMutableBufferPointer { states in
                                                buffer.actionStorage.withUnsafeMutableBufferPointer { actions in
                                                    buffer.rewardStorage.withUnsafeMutableBufferPointer { rewards in
                                                        buffer.behaviourStorage.withUnsafeMutableBufferPointer {
                                                            behaviour in
                                                            while t < min(maxSteps, capacity) {
                                                                let row = Int(rows[Int(s)]) * na
                                                                let u = rng.unitInterval()
                                                                var a = 0
                                                                let mu: Double
                                                                switch control {
                                                                case .student:
                                                                    if na <= 16 {
                                                                        while a < na - 1 && cum[row + a] <= u { a += 1 }
                                                                    } else {
                                                                        // Many actions (Fig. 4): first a with cum > u.
                                                                        var lo = 0
                                                                        var hi = na - 1
                                                                        while lo < hi {
                                                                            let mid = (lo + hi) / 2
                                                                            if cum[row + mid] <= u {
                                                                                lo = mid + 1
                                                                            } else {
                                                                                hi = mid
                                                                            }
                                                                        }
                                                                        a = lo
                                                                    }
                                                                    // Rounding can leave u above the last partial sum
                                                                    // when trailing actions have underflowed to 0.
                                                                    while probs[row + a] == 0 && a > 0 { a -= 1 }
                                                                    mu = probs[row + a]
                                                                default:
                                                                    let trow = Int(s) * na
                                                                    var acc = 0.0
                                                                    a = na - 1
                                                                    for b in 0..<na {
                                                                        acc += control.probability(
                                                                            student: probs[row + b],
                                                                            teacher: tp[trow + b], uniform: uniform)
                                                                        if u < acc {
                                                                            a = b
                                                                            break
                                                                        }
                                                                    }
                                                                    mu = control.probability(
                                                                        student: probs[row + a], teacher: tp[trow + a],
                                                                        uniform: uniform)
                                                                }
                                                                let i = Int(s) * na + a
                                                                let v = rng.unitInterval()
                                                                var k = Int(offsets[i])
                                                                let last = Int(offsets[i + 1]) - 1
                                                                while k < last && ocum[k] <= v { k += 1 }
                                                                let next = onext[k]
                                                                actions[t] = Int32(a)
                                                                rewards[t] = oreward[k]
                                                                behaviour[t] = mu
                                                                t += 1
                                                                states[t] = next
                                                                s = next
                                                                if terminal[Int(next)] {
                                                                    terminated = true
                                                                    return
                                                                }
                                                            }
                                                        }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    buffer.length = t
    buffer.terminated = terminated
}
