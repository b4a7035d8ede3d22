import DistillCore
import DistillWire
import Foundation

/// One episode of a received `Unroll`, read in place by the update rules (no copies).
///
/// Slot `t` (0...T) is the episode's t-th state; its teacher outputs sit at row
/// `stateBase + t` of the unroll's state arrays, its steps at `stepBase + t`.
public struct UnrollEpisode: EpisodeView {
    /// The unroll holding the episode.
    public let unroll: Unroll
    /// Index of the episode's first step in the step arrays.
    public let stepBase: Int
    /// Index of the episode's first state in the state arrays.
    public let stateBase: Int
    /// Number of steps.
    public let length: Int
    /// Whether the episode terminated (false: cut at the length cap).
    public let terminated: Bool

    /// The episodes of an unroll, in order.
    public static func episodes(of unroll: Unroll) -> [UnrollEpisode] {
        var episodes: [UnrollEpisode] = []
        episodes.reserveCapacity(unroll.episodeLengths.count)
        var step = 0
        var state = 0
        for (index, length) in unroll.episodeLengths.enumerated() {
            episodes.append(
                UnrollEpisode(
                    unroll: unroll, stepBase: step, stateBase: state, length: Int(length),
                    terminated: unroll.episodeTerminated[index]))
            step += Int(length)
            state += Int(length) + 1
        }
        return episodes
    }

    @inlinable public func state(_ t: Int) -> Int { Int(unroll.observations[stateBase + t]) }
    @inlinable public func action(_ t: Int) -> Int { Int(unroll.actions[stepBase + t]) }
    @inlinable public func reward(_ t: Int) -> Double { Double(unroll.rewards[stepBase + t]) }
    @inlinable public func behaviourProbability(_ t: Int) -> Double {
        Double(unroll.behaviourProbabilities[stepBase + t])
    }
    @inlinable public func teacherProbability(_ slot: Int, _ action: Int) -> Double {
        Double(unroll.teacherProbabilities.values[(stateBase + slot) * unroll.actionCount + action])
    }
    @inlinable public func teacherLogProbability(_ slot: Int, _ action: Int) -> Double {
        Foundation.log(max(teacherProbability(slot, action), teacherLogProbabilityFloor))
    }
    @inlinable public func teacherValue(_ slot: Int) -> Double { Double(unroll.teacherValues[stateBase + slot]) }
    @inlinable public func teacherActionValue(_ slot: Int, _ action: Int) -> Double {
        Double(unroll.teacherQValues.values[(stateBase + slot) * unroll.actionCount + action])
    }

    /// The states s_0...s_T.
    public var states: [Int32] { Array(unroll.observations[stateBase...(stateBase + length)]) }
    /// The rewards r_0...r_{T-1}.
    public var rewards: [Double] { unroll.rewards[stepBase..<(stepBase + length)].map(Double.init) }
}
