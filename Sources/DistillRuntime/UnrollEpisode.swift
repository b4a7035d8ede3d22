import DistillCore
import DistillWire
import Foundation

/// One episode of a received `Unroll`, read in place by the update rules.
///
/// It holds raw buffer pointers into the unroll's arrays, so the hot loops of the update rules
/// pay no reference counting per access; it is only valid inside `UnrollEpisode.withEpisodes`.
/// Slot `t` (0...T) is the episode's t-th state: its teacher outputs sit at row `stateBase + t`
/// of the unroll's state arrays, its step at `stepBase + t` of the step arrays.
public struct UnrollEpisode: EpisodeView {
    @usableFromInline let observations: UnsafeBufferPointer<Int32>
    @usableFromInline let actions: UnsafeBufferPointer<Int32>
    @usableFromInline let rewards: UnsafeBufferPointer<Float>
    @usableFromInline let behaviour: UnsafeBufferPointer<Float>
    @usableFromInline let teacherProbabilities: UnsafeBufferPointer<Float>
    @usableFromInline let teacherValues: UnsafeBufferPointer<Float>
    @usableFromInline let teacherQ: UnsafeBufferPointer<Float>
    @usableFromInline let actionCount: Int
    @usableFromInline let stepBase: Int
    @usableFromInline let stateBase: Int
    /// Number of steps.
    public let length: Int
    /// Whether the episode terminated (false: cut at the length cap).
    public let terminated: Bool

    /// Calls `body` with the episodes of `unroll`, in order.
    public static func withEpisodes<R>(of unroll: Unroll, _ body: ([UnrollEpisode]) throws -> R) rethrows -> R {
        try unroll.observations.withUnsafeBufferPointer { observations in
            try unroll.actions.withUnsafeBufferPointer { actions in
                try unroll.rewards.withUnsafeBufferPointer { rewards in
                    try unroll.behaviourProbabilities.withUnsafeBufferPointer { behaviour in
                        try unroll.teacherProbabilities.values.withUnsafeBufferPointer { probabilities in
                            try unroll.teacherValues.withUnsafeBufferPointer { values in
                                try unroll.teacherQValues.values.withUnsafeBufferPointer { q in
                                    var episodes: [UnrollEpisode] = []
                                    episodes.reserveCapacity(unroll.episodeLengths.count)
                                    var step = 0
                                    var state = 0
                                    for (index, length) in unroll.episodeLengths.enumerated() {
                                        episodes.append(
                                            UnrollEpisode(
                                                observations: observations, actions: actions, rewards: rewards,
                                                behaviour: behaviour, teacherProbabilities: probabilities,
                                                teacherValues: values, teacherQ: q, actionCount: unroll.actionCount,
                                                stepBase: step, stateBase: state, length: Int(length),
                                                terminated: unroll.episodeTerminated[index]))
                                        step += Int(length)
                                        state += Int(length) + 1
                                    }
                                    return try body(episodes)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    @inlinable public func state(_ t: Int) -> Int { Int(observations[stateBase + t]) }
    @inlinable public func action(_ t: Int) -> Int { Int(actions[stepBase + t]) }
    @inlinable public func reward(_ t: Int) -> Double { Double(rewards[stepBase + t]) }
    @inlinable public func behaviourProbability(_ t: Int) -> Double { Double(behaviour[stepBase + t]) }
    @inlinable public func teacherProbability(_ slot: Int, _ action: Int) -> Double {
        Double(teacherProbabilities[(stateBase + slot) * actionCount + action])
    }
    @inlinable public func teacherLogProbability(_ slot: Int, _ action: Int) -> Double {
        Foundation.log(max(teacherProbability(slot, action), teacherLogProbabilityFloor))
    }
    @inlinable public func teacherValue(_ slot: Int) -> Double { Double(teacherValues[stateBase + slot]) }
    @inlinable public func teacherActionValue(_ slot: Int, _ action: Int) -> Double {
        Double(teacherQ[(stateBase + slot) * actionCount + action])
    }

    /// The states s_0...s_T.
    public var states: [Int32] { Array(observations[stateBase...(stateBase + length)]) }
    /// The rewards r_0...r_{T-1}.
    public var rewardList: [Double] { rewards[stepBase..<(stepBase + length)].map(Double.init) }
}

extension PlausibleOutputs {
    /// Why the rewards or teacher outputs of `unroll` cannot come from this environment, or nil.
    public func implausibility(of unroll: Unroll) -> String? {
        implausibility(
            rewards: unroll.rewards, values: unroll.teacherValues, actionValues: unroll.teacherQValues.values)
    }
}

extension Checkpoint {
    /// A checkpoint holding a learner state's snapshot at parameter version `version`.
    public init(
        _ snapshot: LearnerSnapshot, version: UInt64, configurationJSON: String, createdUnixMilliseconds: UInt64
    ) {
        self.init(
            version: version, shape: snapshot.shape, parameters: snapshot.parameters,
            optimiserState: snapshot.optimiserState, optimiserSteps: snapshot.optimiserSteps, critic: snapshot.critic,
            envSteps: snapshot.environmentSteps, updates: snapshot.updates, rngState: snapshot.rngState,
            configurationJSON: configurationJSON, createdUnixMilliseconds: createdUnixMilliseconds)
    }
}

extension LearnerSnapshot {
    /// The learner state a checkpoint holds.
    public init(_ checkpoint: Checkpoint) {
        self.init(
            shape: checkpoint.shape, parameters: checkpoint.parameters, optimiserState: checkpoint.optimiserState,
            optimiserSteps: checkpoint.optimiserSteps, critic: checkpoint.critic, environmentSteps: checkpoint.envSteps,
            updates: checkpoint.updates, rngState: checkpoint.rngState)
    }
}
