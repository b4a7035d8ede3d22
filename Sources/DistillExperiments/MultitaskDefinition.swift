import DistillCore
import Foundation

// The multitask experiment (issue 13, item 3): one student distilled from K teachers of K
// gridworlds seen as images (Rusu et al. 2016, §4.3), in both of its designs — the task as an
// input, and one head per task switched by the task label — against students trained one per task
// and a multi-task actor-critic trained from scratch on the same interleaved tasks; then the
// return on held-out gridworlds played without a teacher. Replicate r is its own family of
// gridworlds (training seeds seed + 100r + 0 … K−1, held-out seeds seed + 100r + 50 …), with
// its own student seeds; the runs of a replicate are paired.

extension Experiment {
    /// The panel of the multi-task students and the scratch baseline.
    public static let multitaskPanel = "K tasks, one student"
    /// The panel of the students trained one per task.
    public static let perTaskPanel = "one student per task"
    /// The task-input design's curve.
    public static let taskInputCurve = "task input (KL)"
    /// The one-head-per-task design's curve.
    public static let taskHeadsCurve = "one head per task (KL)"
    /// The multi-task actor-critic from scratch.
    public static let multitaskScratchCurve = "actor-critic from scratch (task input)"

    /// The per-task student's curve of task `k`.
    static func perTaskCurve(_ k: Int) -> String { "task \(k) (KL)" }

    /// The gridworlds of replicate `r`: `tasks` training seeds and `heldOut` held-out ones.
    static func multitaskSeeds(
        _ p: ExperimentParameters, replicate r: Int, tasks: Int, heldOut: Int
    ) -> (
        [UInt64], [UInt64]
    ) {
        let base = p.seed &+ UInt64(100 * r)
        return ((0..<tasks).map { base &+ UInt64($0) }, (0..<heldOut).map { base &+ 50 &+ UInt64($0) })
    }

    static func multitask(_ p: ExperimentParameters) -> Experiment {
        let tasks = p.quick ? 3 : 10
        let heldOutCount = p.quick ? 3 : 10
        var gridworld = GridworldConfiguration()
        // The CI preset: 10×10 worlds (flattened images for an MLP), with 3 % of cells per terminal
        // reward so that most small worlds have a positive one to reach. The full run: the paper's
        // 20×20 worlds and a convolutional student.
        if p.quick {
            gridworld.size = 10
            gridworld.terminalProbability = 0.03
        }
        let torso = p.quick ? "mlp:64" : "conv:8x3/mlp:64"
        // Adam 0.003 for the convolutional student (docs/networks.md's image recipe), 0.01 for the
        // MLP on the small flattened images (its one-hot recipe).
        let learningRate = p.quick ? 0.01 : 0.003
        var runs: [RunSpec] = []
        for r in 0..<p.mdps {
            let (seeds, heldOut) = multitaskSeeds(p, replicate: r, tasks: tasks, heldOut: heldOutCount)
            func add(
                _ panel: String, _ curve: String, method: Method, student: String, seeds: [UInt64],
                label: MultitaskGridworlds.TaskLabel
            ) {
                var c = networkConfiguration(
                    p, replicate: r, method: method, learningRate: learningRate, cartpole: false, mdpSeed: seeds[0])
                // Rusu's setting: the teacher plays, the student descends KL(softmax(Q/τ) ‖ π_θ).
                if method == .teacherDistillKL { c.method.control = .teacher }
                var run = makeRun(panel, curve, r, c)
                run.network = NetworkRunSpec(
                    domain: .gridworld, teacher: .table, student: student, observation: "image",
                    tasks: MultitaskRunSpec(gridworld: gridworld, seeds: seeds, heldOut: heldOut, label: label))
                runs.append(run)
            }
            add(
                multitaskPanel, taskInputCurve, method: .teacherDistillKL, student: torso, seeds: seeds, label: .input)
            add(
                multitaskPanel, taskHeadsCurve, method: .teacherDistillKL, student: "\(torso)/heads:\(tasks)",
                seeds: seeds, label: .headSelector)
            add(
                multitaskPanel, multitaskScratchCurve, method: .actorCritic, student: torso, seeds: seeds, label: .input
            )
            for (k, seed) in seeds.enumerated() {
                add(
                    perTaskPanel, perTaskCurve(k), method: .teacherDistillKL, student: torso, seeds: [seed],
                    label: .none)
            }
        }
        return Experiment(
            parameters: p,
            title:
                "multi-task distillation (Rusu et al. 2016): one student from \(tasks) Q-learning teachers of \(tasks) gridworlds seen as images, task as an input or one head per task, against one student per task and a multi-task actor-critic from scratch; \(heldOutCount) held-out gridworlds",
            runs: runs,
            evaluationIterations: evaluationGrid(
                iterations: p.iterations, logPoints: p.quick ? 4 : 12, linearPoints: p.quick ? 4 : 16),
            metrics: [
                .studentReturn, .teacherReturn, .klPerState, .teacherShareMean, .teacherShareGeometricMean,
                .heldOutReturn,
            ],
            layout: PlotLayout(
                title: "Multi-task distillation: share of each teacher's return and held-out return",
                rows: [
                    [
                        PlotCell(
                            panel: multitaskPanel, metric: .teacherShareGeometricMean,
                            title: "\(tasks) tasks: geometric mean share of the teachers"),
                        PlotCell(
                            panel: multitaskPanel, metric: .heldOutReturn,
                            title: "\(heldOutCount) held-out gridworlds, no teacher"),
                    ],
                    [
                        PlotCell(
                            panel: perTaskPanel, metric: .teacherShareMean, title: "one student per task: share"),
                        PlotCell(panel: multitaskPanel, metric: .klPerState, title: "KL per state", logY: true),
                    ],
                ]),
            paperFinding:
                "Rusu et al.'s 10-game student keeps a geometric mean of 89 % of its DQN teachers' scores; on 3 games the distilled students reach 116.9 % (KL) of the teachers where a multi-task DQN trained on the games reaches 83.5 %.",
            judge: judgeMultitask)
    }

    static func judgeMultitask(_ results: ExperimentResults) -> [Finding] {
        let multi = multitaskPanel
        func final(_ metric: Metric, _ curve: String, panel: String = multitaskPanel) -> [Int: Double] {
            results.values(metric, panel: panel, curve: curve)
        }
        // One student per task, combined per replicate like a multi-task student's tasks.
        var perTaskShares: [Int: [Double]] = [:]
        var perTaskHeldOut: [Int: [Double]] = [:]
        for curve in results.curves(in: perTaskPanel) {
            for (r, v) in final(.teacherShareMean, curve, panel: perTaskPanel) {
                perTaskShares[r, default: []].append(v)
            }
            for (r, v) in final(.heldOutReturn, curve, panel: perTaskPanel) { perTaskHeldOut[r, default: []].append(v) }
        }
        let perTaskMean = perTaskShares.mapValues { $0.reduce(0, +) / Double($0.count) }
        let perTaskGeometric = perTaskShares.mapValues(geometricMeanShare)
        let perTaskHeldOutMean = perTaskHeldOut.mapValues { $0.reduce(0, +) / Double($0.count) }
        // The held-out gridworlds' uniform-random and optimal returns (the scale of the held-out return).
        var uniform: [Int: Double] = [:]
        var optimum: [Int: Double] = [:]
        for (run, _) in results.runs(panel: multi, curve: taskInputCurve) {
            guard let spec = run.network?.tasks, let family = try? spec.family(), !family.heldOut.isEmpty else {
                continue
            }
            var u: [Double] = []
            var o: [Double] = []
            for seed in family.heldOut {
                guard let environment = try? family.environment(seed: seed) else { continue }
                let na = environment.mdp.actionCount
                let random = [Double](repeating: 1 / Double(na), count: environment.mdp.stateCount * na)
                if let v = try? PolicyEvaluation.expectedReturn(environment.mdp, policy: random) { u.append(v) }
                if let best = try? Teachers.optimal(environment.mdp),
                    let v = try? PolicyEvaluation.expectedReturn(environment.mdp, policy: best.probabilities)
                {
                    o.append(v)
                }
            }
            uniform[run.replicate] = MeanInterval(u).mean
            optimum[run.replicate] = MeanInterval(o).mean
        }
        var values: [String: Double] = [:]
        var findings: [Finding] = []
        let present = results.runs(panel: multi, curve: taskInputCurve).count > 1
        var designs: [String] = []
        var scratchParts: [String] = []
        var perTaskParts: [String] = []
        var beatsScratch = true
        for curve in [taskInputCurve, taskHeadsCurve] {
            let mean = final(.teacherShareMean, curve)
            let geometric = final(.teacherShareGeometricMean, curve)
            let m = MeanInterval(Array(mean.values))
            let g = MeanInterval(Array(geometric.values))
            let key = slug(curve)
            values["share_mean_\(key)"] = m.mean
            values["share_geomean_\(key)"] = g.mean
            values["share_geomean_\(key)_low"] = g.lower
            designs.append("\(curve): mean \(percent(m)), geometric mean \(percent(g))")
            let scratch = ExperimentResults.pairedDifference(
                geometric, final(.teacherShareGeometricMean, multitaskScratchCurve))
            values["share_geomean_\(key)_minus_scratch_mean"] = scratch.mean
            values["share_geomean_\(key)_minus_scratch_low"] = scratch.lower
            if !(scratch.lower > 0) { beatsScratch = false }
            scratchParts.append("\(curve) − scratch \(points(scratch))")
            let single = ExperimentResults.pairedDifference(geometric, perTaskGeometric)
            values["share_geomean_\(key)_minus_per_task_mean"] = single.mean
            values["share_geomean_\(key)_minus_per_task_low"] = single.lower
            values["share_geomean_\(key)_minus_per_task_high"] = single.upper
            perTaskParts.append("\(curve) − one per task \(points(single))")
        }
        let scratchMean = MeanInterval(Array(final(.teacherShareMean, multitaskScratchCurve).values))
        let scratchGeometric = MeanInterval(Array(final(.teacherShareGeometricMean, multitaskScratchCurve).values))
        let singleMean = MeanInterval(Array(perTaskMean.values))
        let singleGeometric = MeanInterval(Array(perTaskGeometric.values))
        values["share_mean_scratch"] = scratchMean.mean
        values["share_geomean_scratch"] = scratchGeometric.mean
        values["share_mean_per_task"] = singleMean.mean
        values["share_geomean_per_task"] = singleGeometric.mean
        let teacher = results.interval(.teacherReturn, panel: multi, curve: taskInputCurve)
        values["teacher_return"] = teacher.mean
        let baselines =
            "\(multitaskScratchCurve): mean \(percent(scratchMean)), geometric mean \(percent(scratchGeometric)); one student per task: mean \(percent(singleMean)), geometric mean \(percent(singleGeometric)) (teachers' mean return \(teacher.formatted(2)))"
        let rusuBar = 0.89 - 0.1
        let geometricInput = values["share_geomean_\(slug(taskInputCurve))"] ?? .nan
        let geometricHeads = values["share_geomean_\(slug(taskHeadsCurve))"] ?? .nan
        findings.append(
            Finding(
                .multitask, "share of each teacher kept by one student",
                paper:
                    "Rusu's 10-game student keeps a geometric mean of 89 % of its teachers (the bar here: both designs' geometric mean share at least 79 %; a share here is (R − R_uniform) / (R_teacher − R_uniform), floored at 1 % in the geometric mean)",
                measured: designs.joined(separator: "; ") + "; " + baselines,
                reproduces: present ? geometricInput >= rusuBar && geometricHeads >= rusuBar : nil, values: values))
        findings.append(
            Finding(
                .multitask, "distilled students against multi-task RL from scratch",
                paper:
                    "on 3 games the distilled students reach 116.9 % (KL) of the teachers where multi-task DQN reaches 83.5 % (the bar here: the paired 95 % CI of each design's geometric mean share minus the scratch actor-critic's above 0, at equal updates)",
                measured: "paired differences of the geometric mean share: " + scratchParts.joined(separator: ", "),
                reproduces: present ? beatsScratch : nil, values: values))
        findings.append(
            Finding(
                .multitask, "one student for all tasks against one student per task",
                paper: "(no number in Rusu et al.: the question is what sharing the network costs or gains)",
                measured: "paired differences of the geometric mean share: " + perTaskParts.joined(separator: ", ")
                    + "; each per-task student takes as many updates as the multi-task student, on its task alone",
                reproduces: nil, values: values))
        var heldOutParts: [String] = []
        for curve in [taskInputCurve, taskHeadsCurve, multitaskScratchCurve] {
            let h = final(.heldOutReturn, curve)
            let key = slug(curve)
            values["held_out_\(key)"] = MeanInterval(Array(h.values)).mean
            let overRandom = ExperimentResults.pairedDifference(h, uniform)
            let overSingle = ExperimentResults.pairedDifference(h, perTaskHeldOutMean)
            values["held_out_\(key)_minus_uniform_mean"] = overRandom.mean
            values["held_out_\(key)_minus_uniform_low"] = overRandom.lower
            values["held_out_\(key)_minus_per_task_mean"] = overSingle.mean
            values["held_out_\(key)_minus_per_task_low"] = overSingle.lower
            heldOutParts.append(
                "\(curve) \(MeanInterval(Array(h.values)).formatted(2)) (− uniform \(overRandom.formatted(2)), − one-per-task students \(overSingle.formatted(2)))"
            )
        }
        values["held_out_uniform"] = MeanInterval(Array(uniform.values)).mean
        values["held_out_optimum"] = MeanInterval(Array(optimum.values)).mean
        values["held_out_per_task"] = MeanInterval(Array(perTaskHeldOutMean.values)).mean
        findings.append(
            Finding(
                .multitask, "return on held-out gridworlds, no teacher",
                paper:
                    "(no anchor) does a student of K gridworlds act better than chance on gridworlds it never saw? (held out, the task-input students read an all-zero task id and the multi-head student plays the mixture of its heads)",
                measured: heldOutParts.joined(separator: "; ")
                    + "; uniform random \(MeanInterval(Array(uniform.values)).formatted(2)), optimal \(MeanInterval(Array(optimum.values)).formatted(2)), the per-task students' mean \(MeanInterval(Array(perTaskHeldOutMean.values)).formatted(2))",
                reproduces: nil, values: values))
        return findings
    }

    /// `m` as a percentage with its 95 % interval.
    private static func percent(_ m: MeanInterval) -> String {
        String(format: "%.1f %% (95 %% CI %.1f to %.1f)", 100 * m.mean, 100 * m.lower, 100 * m.upper)
    }

    /// A difference of shares in percentage points with its 95 % interval.
    private static func points(_ m: MeanInterval) -> String {
        String(format: "%+.1f points (95 %% CI %+.1f to %+.1f)", 100 * m.mean, 100 * m.lower, 100 * m.upper)
    }
}
