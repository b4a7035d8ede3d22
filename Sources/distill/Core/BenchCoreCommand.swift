import ArgumentParser
import DistillCore
import Foundation

/// `distill bench core`: single-process, single-core throughput of the science core.
struct BenchCore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "core",
        abstract: "Measure sampled-update throughput (env steps/s) and the time of one exact update on the gridworld.",
        discussion: """
            Runs on one core in this process, each measurement in --segments slices whose best and \
            median are reported: (1) the full sampled loop of `distill train` (refresh the \
            student's probability cache, collect episodes with the student, accumulate the method's \
            sampled update, apply SGD), (2) episode collection alone, (3) the update pass alone over \
            recorded episodes, (4) exact expected updates. Figures vary with the machine and its load.

            Examples:
              distill bench core
              distill bench core --seconds 5 --method on-policy-distill+R
            """)

    @Option(help: "Seconds per measurement.")
    var seconds = 2.0

    @Option(help: "Gridworld seed.")
    var seed: UInt64 = 0

    @Option(help: "Gridworld side length.")
    var gridSize = EnvironmentOptions.defaults.gridworld.size

    @Option(help: "Method of the sampled update.")
    var method: Method = MethodOptions.defaults.method

    @Option(help: "Episodes per update.")
    var episodesPerIteration = MethodOptions.defaults.episodesPerIteration

    @Option(help: "SGD learning rate of the sampled loop (the student learns while measured).")
    var learningRate = MethodOptions.defaults.learningRate

    @Option(help: "Number of exact updates to time.")
    var exactRepeats = 5

    func validate() throws {
        guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
        guard episodesPerIteration > 0, exactRepeats > 0 else { throw ValidationError("counts must be positive") }
    }

    @Option(help: "Segments per measurement; the best and the median segment are reported (machines are shared).")
    var segments = 5

    static func line(_ label: String, _ rates: [Double], _ extra: String = "") -> String {
        let best = rates.last!
        let median = rates[rates.count / 2]
        return label.padding(toLength: 17, withPad: " ", startingAt: 0)
            + String(format: "%12.0f env steps/s best (%.1f ns/step), median %.0f%@", best, 1e9 / best, median, extra)
    }

    func run() throws {
        var gridConfig = GridworldConfiguration()
        gridConfig.size = gridSize
        let env = try validating { try Environments.gridworld(gridConfig, seed: seed) }
        let mdp = env.mdp
        let teacher = try validating { try Teachers.qLearning(mdp, seed: seed) }
        let rule = method.rule
        if rule.loss.needsActionValues && teacher.actionValues == nil { throw ValidationError("method needs Q-values") }
        let control = method.defaultControl
        let context = UpdateContext(
            discount: mdp.discount, control: control,
            studentValues: rule.needsStudentValues ? [Double](repeating: 0, count: mdp.stateCount) : nil)
        print(
            "bench core: \(env.name) (\(mdp.stateCount) states, \(mdp.actionCount) actions), teacher \(teacher.identity), "
                + "method \(method.rawValue), tabular student, SGD \(learningRate), \(episodesPerIteration) episodes/update, 1 core"
        )
        // Options are read once: property-wrapper access is not free in a hot loop.
        let episodesPerIteration = self.episodesPerIteration
        let learningRate = self.learningRate

        // 1. The full sampled loop of `distill train`. Loops are written out (no closures): a closure
        // capturing the policy would copy it, with its reference counts, on every call.
        let segmentSeconds = seconds / Double(segments)
        var params = StudentParameters(stateCount: mdp.stateCount, actionCount: mdp.actionCount)
        var policy = StudentPolicy(params)
        var rng = Xoshiro256StarStar(seed: seed)
        var buffer = EpisodeBuffer()
        var acc = UpdateAccumulator(rowCount: params.rowCount, actionCount: params.actionCount)
        var episodes = 0
        var totalSteps = 0
        var loop: [Double] = []
        for _ in 0..<segments {
            var steps = 0
            let start = Date()
            var elapsed = 0.0
            while elapsed < segmentSeconds {
                for _ in 0..<16 {
                    steps += collectAndAccumulate(
                        mdp, teacher: teacher, policy: policy, rule: rule, context: context,
                        episodes: episodesPerIteration,
                        maxSteps: 10_000, rng: &rng, buffer: &buffer, into: &acc)
                    _ = acc.applyStochasticGradientStep(learningRate: learningRate, to: &params, policy: &policy)
                    episodes += episodesPerIteration
                }
                elapsed = Date().timeIntervalSince(start)
            }
            totalSteps += steps
            loop.append(Double(steps) / elapsed)
        }
        print(
            Self.line(
                "sampled loop", loop.sorted(),
                String(format: "; %.1f steps/episode", Double(totalSteps) / Double(episodes))))

        // 2. Collection alone (the learned student).
        var collect: [Double] = []
        for _ in 0..<segments {
            var steps = 0
            let start = Date()
            var elapsed = 0.0
            while elapsed < segmentSeconds {
                for _ in 0..<128 {
                    collectEpisode(
                        mdp, policy: policy, teacher: teacher, control: control, maxSteps: 10_000, rng: &rng,
                        into: &buffer)
                    steps += buffer.length
                }
                elapsed = Date().timeIntervalSince(start)
            }
            collect.append(Double(steps) / elapsed)
        }
        print(Self.line("collect only", collect.sorted()))

        // 3. The update pass alone, over recorded episodes.
        var recorded: [EpisodeBuffer] = []
        for _ in 0..<256 {
            collectEpisode(
                mdp, policy: policy, teacher: teacher, control: control, maxSteps: 10_000, rng: &rng, into: &buffer)
            recorded.append(buffer)
        }
        var update: [Double] = []
        for _ in 0..<segments {
            var steps = 0
            let start = Date()
            var elapsed = 0.0
            while elapsed < segmentSeconds {
                for e in recorded {
                    accumulateSampledUpdate(
                        episode: e, teacher: teacher, policy: policy, rule: rule, context: context, into: &acc)
                    steps += e.length
                }
                acc.clear()
                elapsed = Date().timeIntervalSince(start)
            }
            update.append(Double(steps) / elapsed)
        }
        print(Self.line("update pass only", update.sorted()))

        // 4. Exact expected update.
        var times: [Double] = []
        var sink = 0.0
        for _ in 0..<exactRepeats {
            let t0 = Date()
            let u = try validating {
                try ExactUpdate.expectedUpdate(
                    mdp, teacher: teacher, parameters: params, rule: rule,
                    context: UpdateContext(discount: mdp.discount, control: control))
            }
            sink += u[0]
            times.append(Date().timeIntervalSince(t0))
        }
        times.sort()
        print(
            String(
                format: "exact update     %12.1f ms median (best %.1f ms, %d runs)", times[times.count / 2] * 1e3,
                times[0] * 1e3,
                exactRepeats))
        let n = mdp.stateCount
        print(
            """
            bounds: a sampled step costs 2 random draws and two short inverse-CDF scans (collect), then O(1) \
            accumulation plus an O(|A|) loss and pseudo-reward (update); per update SGD touches, and the probability \
            cache refreshes, only the rows the episodes visited, so per-episode and per-update costs weigh more when \
            the student has learned short episodes. The exact update is bounded by two dense LU solves of a \
            \(n)×\(n) system (visits and pseudo-returns), ≈ 2·n³/3 = \(String(format: "%.0f", 2 * pow(Double(n), 3) / 3 / 1e6)) M flops.
            """)
        if sink.isNaN { print("") }  // keeps the measured work observable
    }
}
