import ArgumentParser
import DistillCore
import Foundation

/// `distill bench core`: single-process, single-core throughput of the science core.
struct BenchCore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "core",
        abstract: "Measure sampled-update throughput (env steps/s) and the time of one exact update on the gridworld.",
        discussion: """
            Runs on one core in this process: (1) the full sampled loop of `distill train` (refresh the \
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
    var gridSize = 20

    @Option(help: "Method of the sampled update.")
    var method: Method = .nDistillR

    @Option(help: "Episodes per update.")
    var episodesPerIteration = 8

    @Option(help: "SGD learning rate of the sampled loop (the student learns while measured).")
    var learningRate = 0.1

    @Option(help: "Number of exact updates to time.")
    var exactRepeats = 5

    func validate() throws {
        guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
        guard episodesPerIteration > 0, exactRepeats > 0 else { throw ValidationError("counts must be positive") }
    }

    func run() throws {
        var gridConfig = GridworldConfiguration()
        gridConfig.size = gridSize
        let env = try validating { try Environments.gridworld(gridConfig, seed: seed) }
        let mdp = env.mdp
        let teacher = try validating { try Teachers.qLearning(mdp, seed: seed) }
        let rule = method.rule
        if rule.loss.needsActionValues && teacher.actionValues == nil { throw ValidationError("method needs Q-values") }
        let context = UpdateContext(
            discount: mdp.discount, control: method.defaultControl,
            studentValues: rule.needsStudentValues ? [Double](repeating: 0, count: mdp.stateCount) : nil)
        print(
            "bench core: \(env.name) (\(mdp.stateCount) states, \(mdp.actionCount) actions), teacher \(teacher.identity), method \(method.rawValue), tabular student, 1 core"
        )

        // 1. Full sampled loop. Options are read once: property-wrapper access is not free.
        let episodesPerIteration = self.episodesPerIteration
        let learningRate = self.learningRate
        let seconds = self.seconds
        let control = method.defaultControl
        var params = StudentParameters(stateCount: mdp.stateCount, actionCount: mdp.actionCount)
        var policy = StudentPolicy(params)
        var rng = Xoshiro256StarStar(seed: seed)
        var buffer = EpisodeBuffer()
        var acc = UpdateAccumulator(rowCount: params.rowCount, actionCount: params.actionCount)
        var steps = 0
        var updates = 0
        var start = Date()
        while Date().timeIntervalSince(start) < seconds {
            steps += collectAndAccumulate(
                mdp, teacher: teacher, policy: policy, rule: rule, context: context, episodes: episodesPerIteration,
                maxSteps: 10_000,
                rng: &rng, buffer: &buffer, into: &acc)
            _ = acc.applyStochasticGradientStep(learningRate: learningRate, to: &params, policy: &policy)
            updates += 1
        }
        let loopTime = Date().timeIntervalSince(start)
        let loopRate = Double(steps) / loopTime
        print(
            String(
                format:
                    "sampled loop     %12.0f env steps/s  (%.1f ns/step; %d updates of %d episodes, %.1f steps/episode)",
                loopRate, 1e9 / loopRate, updates, episodesPerIteration,
                Double(steps) / Double(updates * episodesPerIteration)))

        // 2. Collection alone.
        steps = 0
        start = Date()
        while Date().timeIntervalSince(start) < seconds {
            for _ in 0..<64 {
                collectEpisode(
                    mdp, policy: policy, teacher: teacher, control: control, maxSteps: 10_000, rng: &rng, into: &buffer)
                steps += buffer.length
            }
        }
        let collectRate = Double(steps) / Date().timeIntervalSince(start)
        print(String(format: "collect only     %12.0f env steps/s  (%.1f ns/step)", collectRate, 1e9 / collectRate))

        // 3. Update pass alone, over 256 recorded episodes.
        var recorded: [EpisodeBuffer] = []
        for _ in 0..<256 {
            collectEpisode(
                mdp, policy: policy, teacher: teacher, control: control, maxSteps: 10_000, rng: &rng, into: &buffer)
            recorded.append(buffer)
        }
        steps = 0
        start = Date()
        var sink = 0.0
        while Date().timeIntervalSince(start) < seconds {
            for e in recorded {
                accumulateSampledUpdate(
                    episode: e, teacher: teacher, policy: policy, rule: rule, context: context, into: &acc)
                steps += e.length
            }
            sink += acc.finish(policy: policy)[0]
        }
        let updateRate = Double(steps) / Date().timeIntervalSince(start)
        print(String(format: "update pass only %12.0f env steps/s  (%.1f ns/step)", updateRate, 1e9 / updateRate))

        // 4. Exact expected update.
        var times: [Double] = []
        for _ in 0..<exactRepeats {
            let t0 = Date()
            let u = try validating {
                try ExactUpdate.expectedUpdate(
                    mdp, teacher: teacher, parameters: params, rule: rule,
                    context: UpdateContext(discount: mdp.discount, control: method.defaultControl))
            }
            sink += u[0]
            times.append(Date().timeIntervalSince(t0))
        }
        times.sort()
        print(
            String(
                format: "exact update     %12.1f ms median (min %.1f ms, %d runs)", times[times.count / 2] * 1e3,
                times[0] * 1e3, exactRepeats))
        let n = mdp.stateCount
        print(
            """
            bounds: the sampled loop costs 2 random draws and two short inverse-CDF scans per step (collect) plus O(1) \
            accumulation and an O(|A|) loss/pseudo-reward per step (update); per update it applies SGD to, and \
            refreshes the probability cache of, only the rows the episodes visited (per-episode costs weigh more \
            when the student learns short episodes). \
            The exact update is bounded by two dense LU solves of an \(n)×\(n) system (visits and pseudo-returns), \
            ≈ 2·n³/3 = \(String(format: "%.0f", 2 * pow(Double(n), 3) / 3 / 1e6)) M flops.
            """)
        if sink.isNaN { print("") }  // keeps the measured work observable
    }
}

/// `distill bench`: benchmarks (the runtime branch adds `codec`, `cluster`, ...).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks.",
        subcommands: [BenchCore.self])
}
