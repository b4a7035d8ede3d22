import DistillCore
import Foundation

/// Memory a run needs, estimated before anything is allocated, against what the machine has:
/// `--grid-size 100000` (10¹⁰ states) is refused with a message instead of crashing on a
/// 160 GB allocation.
public enum MemoryBudget {
    /// Bytes per state–action pair a role holds at least: the MDP's outcomes while it is built
    /// and after (next state, probability, cumulative probability, reward), the student's logits
    /// and log-probabilities, the optimiser's two moments, the update accumulator, the teacher's
    /// probabilities and Q-values, and the float copy published to actors.
    public static let bytesPerStateAction: UInt64 = 384
    /// Bytes per state: values, critic, start distribution, tied rows, caches.
    public static let bytesPerState: UInt64 = 128

    /// The memory this process may use: physical memory, or the cgroup's limit when lower.
    public static func availableBytes() -> UInt64 {
        var limit = ProcessInfo.processInfo.physicalMemory
        if let text = try? String(contentsOfFile: "/sys/fs/cgroup/memory.max", encoding: .utf8),
            let cgroup = UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines))
        {
            limit = min(limit, cgroup)
        }
        return limit
    }

    /// The states and actions `spec` describes, without building it; nil when the numbers
    /// overflow (which is itself too large).
    public static func shape(of spec: EnvironmentSpec) -> (states: UInt64, actions: UInt64)? {
        switch spec.kind {
        case .gridworld, .manyActions:
            let side = UInt64(max(spec.gridworld.size, 0))
            let (cells, overflow) = side.multipliedReportingOverflow(by: side)
            if overflow { return nil }
            let actions = spec.kind == .manyActions ? UInt64(max(spec.manyActionsCount, 0)) : 4
            return (cells, actions)
        case .chain:
            let half = UInt64(max(spec.chainHalfLength, 0))
            let (doubled, overflow) = half.multipliedReportingOverflow(by: 2)
            return overflow ? nil : (doubled + 1, 2)
        case .random:
            return (UInt64(max(spec.randomStates, 0)) + 1, UInt64(max(spec.randomActions, 0)))
        case .fig2:
            return (4, 2)
        case .file:
            // Already read into memory: its size was paid for by the file itself.
            return (UInt64(spec.mdp?.stateCount ?? 0), UInt64(spec.mdp?.actionCount ?? 0))
        case .cartpole, .acrobot, .mountaincar, .remote:
            // No table: a few numbers of state.
            return (0, 0)
        }
    }

    /// The estimated bytes for a shape, or nil when it overflows 64 bits.
    public static func estimatedBytes(states: UInt64, actions: UInt64) -> UInt64? {
        let (pairs, o1) = states.multipliedReportingOverflow(by: actions)
        let (pairBytes, o2) = pairs.multipliedReportingOverflow(by: bytesPerStateAction)
        let (stateBytes, o3) = states.multipliedReportingOverflow(by: bytesPerState)
        let (total, o4) = pairBytes.addingReportingOverflow(stateBytes)
        return o1 || o2 || o3 || o4 ? nil : total
    }

    /// Throws, before anything is allocated, when `spec` would need more memory than
    /// `available` bytes; the message says what to change.
    public static func check(_ spec: EnvironmentSpec, available: UInt64 = availableBytes()) throws {
        let shape = shape(of: spec)
        let needed = shape.flatMap { estimatedBytes(states: $0.states, actions: $0.actions) }
        if let needed, needed <= available { return }
        let size: String
        switch spec.kind {
        case .gridworld, .manyActions: size = "--grid-size \(spec.gridworld.size)"
        case .chain: size = "--chain-length \(spec.chainHalfLength)"
        case .random: size = "--random-states \(spec.randomStates) --random-actions \(spec.randomActions)"
        default: size = "this environment"
        }
        let states = shape.map { "\($0.states) states × \($0.actions) actions" } ?? "more states than 64 bits count"
        var advice = "choose a smaller size"
        if spec.kind == .gridworld || spec.kind == .manyActions, let actions = shape?.actions, actions > 0 {
            // Largest side whose estimate fits: side² × (actions × perPair + perState) ≤ available.
            let perCell = Double(actions * bytesPerStateAction + bytesPerState)
            advice = "use --grid-size \(Int((Double(available) / perCell).squareRoot())) or less on this machine"
        }
        throw RuntimeError(
            "\(size) means \(states): about \(needed.map(formatBytes) ?? "more than 16 EB") of memory, "
                + "and this machine has \(formatBytes(available)). Nothing was allocated; \(advice).",
            code: .resourceLimit)
    }
}

/// "1.5 GB", "640 MB", "12 KB" (decimal units, as `free -h` and most people read them).
public func formatBytes(_ bytes: UInt64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB", "PB", "EB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1000 && unit < units.count - 1 {
        value /= 1000
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: value >= 100 ? "%.0f %@" : "%.1f %@", value, units[unit])
}

/// The bounds of what a learner holds on behalf of its peers, computed from its configuration.
///
/// Unrolls queue in three places a peer can fill: the kernel's receive buffer of each TCP
/// connection, libzmq's per-connection pipe (up to its high-water mark of whole messages), and
/// the one message libzmq is assembling per connection. Each is bounded per connection by the
/// largest *legitimate* unroll (the learner knows it: unroll steps, episode cap, actions), not
/// by the generic message limit; the number of connections is bounded by `maxUnrollConnections`
/// (the learner cuts connections beyond it). Their product is the global cap.
public struct UnrollBudget: Sendable, Equatable {
    /// The largest unroll message an honest actor of this run can send, in bytes.
    public var maxUnrollBytes: Int
    /// Whole messages libzmq queues per connection (the PULL socket's receive high-water mark).
    public var messagesPerConnection: Int
    /// Kernel receive buffer per connection.
    public var kernelBufferBytes: Int
    /// Unroll connections accepted at once; more are cut as they arrive.
    public var maxConnections: Int

    /// The budget of a run: steps per unroll message, episode length cap, actions, and the
    /// generic message limit (never exceeded).
    public init(
        unrollSteps: Int, maxEpisodeSteps: Int, actionCount: Int, observationSize: Int = 0, maxMessageBytes: Int,
        maxConnections: Int = 64
    ) {
        // An unroll holds whole episodes: it stops at the first episode that reaches
        // `unrollSteps`, so it has at most unrollSteps − 1 + maxEpisodeSteps steps, and every
        // episode may be one step long (T + E ≤ 2T states).
        let steps = max(unrollSteps, 1) - 1 + max(maxEpisodeSteps, 1)
        // Per step, packed protobuf at worst: observation (a state id's varint, or a float32 row
        // of `observationSize`), action (varints ≤ 5 bytes), reward, behaviour probability, V
        // (4 bytes each), episode length and flag (6), teacher probabilities and Q-values (4
        // bytes × actions each) — twice for the final states.
        let perStep = 2 * (5 + 4 * observationSize + 4 + 8 * max(actionCount, 1)) + 5 + 4 + 4 + 6
        let (body, overflow) = steps.multipliedReportingOverflow(by: perStep)
        let legitimate = overflow ? Int.max : body + 64 << 10  // + envelope, ids, headers
        maxUnrollBytes = min(maxMessageBytes, legitimate)
        messagesPerConnection = 2
        kernelBufferBytes = 128 << 10
        self.maxConnections = max(maxConnections, 1)
    }

    /// Bytes one connection can make the learner hold: its kernel buffer, its queued messages
    /// and the one being assembled.
    public var bytesPerConnection: Int {
        kernelBufferBytes + (messagesPerConnection + 1) * maxUnrollBytes
    }

    /// The global cap on bytes queued for the learner, whatever the number of peers.
    public var queuedBytesCap: Int { maxConnections * bytesPerConnection }
}
