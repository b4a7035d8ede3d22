import DistillCore
import Foundation

// Experiments with network students (issue 13): kickstart, compression, privileged. Runs of the
// same replicate share the student's initial weights and sampling seed (paired); on CartPole and in
// kickstart/compression's gridworld the teacher is one network trained by the experiment (as Rusu's
// and Schmitt's were one teacher per game), so the replicates are student seeds.

extension Experiment {
    /// The gridworld of the network experiments: seed 3, the MDP of docs/networks.md's recipes.
    static let networkGridworldSeed: UInt64 = 3

    /// A network run's configuration: `method`, Adam at `learningRate`, 8 episodes per update.
    static func networkConfiguration(
        _ p: ExperimentParameters, replicate: Int, method: Method, learningRate: Double, cartpole: Bool,
        mdpSeed: UInt64? = nil
    ) -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.environment.kind = .gridworld
        c.environment.seed = mdpSeed ?? (p.seed &+ networkGridworldSeed)
        c.teacher.kind = .qLearning
        c.teacher.seed = c.environment.seed
        c.method.method = method
        c.method.optimiser = .adam
        c.method.learningRate = learningRate
        c.method.episodesPerIteration = 8
        // CartPole's critic is the network's value head (weight 1, docs/networks.md's recipe).
        if cartpole { c.method.criticLearningRate = 1 }
        c.iterations = p.iterations
        c.evaluateEvery = 0
        c.seed = p.seed &+ 1_000 &+ UInt64(replicate)
        return c
    }

    /// The first evaluated row at which `values` reaches `threshold`, and the environment steps there.
    static func stepsToReach(_ table: RunTable, _ values: [Double], _ threshold: Double) -> (steps: Int, reached: Bool)
    {
        for (row, v) in values.enumerated() where v >= threshold {
            return (table.environmentSteps[row], true)
        }
        return (table.environmentSteps.last ?? 0, false)
    }
}

// MARK: - Kickstarting

extension Experiment {
    /// The scratch curve (actor-critic, no teacher).
    public static let scratchCurve = "scratch (actor-critic)"
    /// Kickstart's rules and their curve names.
    static func kickstartMethods(quick: Bool) -> [(String, Method)] {
        let all: [(String, Method)] = [
            (scratchCurve, .actorCritic), ("kickstarting", .kickstarting), ("n-distill+R", .nDistillR),
            ("teacher-v-reward", .teacherVReward), ("on-policy-distill+R", .onPolicyDistillR),
        ]
        return quick ? Array(all.prefix(2)) : all
    }

    /// CartPole's teacher: docs/networks.md's actor-critic recipe (seed 2 reaches 500).
    static func cartPoleTeacher(_ p: ExperimentParameters, architecture: String = "mlp:64,64") -> TrainedTeacherRecipe {
        TrainedTeacherRecipe(
            architecture: architecture, iterations: p.quick ? 1_200 : 4_000, learningRate: 0.001, seed: 2,
            snapshots: p.quick ? 3 : 8)
    }

    static func kickstart(_ p: ExperimentParameters) -> Experiment {
        struct Setting {
            var panel: String
            var cartpole: Bool
            var teacher: TrainedTeacherRecipe
            var student: String
            var observation: String
            var learningRate: Double
        }
        let cartTeacher = cartPoleTeacher(p)
        let gridTeacher = TrainedTeacherRecipe(
            architecture: "conv:8x3/mlp:64", observation: "image", iterations: 3_000, learningRate: 0.003, seed: 0)
        var settings: [Setting] = []
        if p.quick {
            // CI's preset: CartPole's episodes grow to 500 steps as the students learn, too slow for CI.
            settings.append(
                Setting(
                    panel: "gridworld one-hot, same size (mlp:64)", cartpole: false,
                    teacher: TrainedTeacherRecipe(
                        architecture: "mlp:64", observation: "one-hot", iterations: 1_000, learningRate: 0.01, seed: 0,
                        snapshots: 2),
                    student: "mlp:64", observation: "one-hot", learningRate: 0.01))
        } else {
            settings += [
                Setting(
                    panel: "CartPole, same size (mlp:64,64)", cartpole: true, teacher: cartTeacher,
                    student: "mlp:64,64", observation: "", learningRate: 0.001),
                Setting(
                    panel: "CartPole, smaller (mlp:16,16)", cartpole: true, teacher: cartTeacher,
                    student: "mlp:16,16", observation: "", learningRate: 0.001),
                Setting(
                    panel: "gridworld images, same size (conv:8x3/mlp:64)", cartpole: false, teacher: gridTeacher,
                    student: "conv:8x3/mlp:64", observation: "image", learningRate: 0.003),
                Setting(
                    panel: "gridworld images, smaller (conv:4x3/mlp:16)", cartpole: false, teacher: gridTeacher,
                    student: "conv:4x3/mlp:16", observation: "image", learningRate: 0.003),
            ]
        }
        var runs: [RunSpec] = []
        for r in 0..<p.mdps {
            for s in settings {
                for (curve, method) in kickstartMethods(quick: p.quick) {
                    var c = networkConfiguration(
                        p, replicate: r, method: method, learningRate: s.learningRate, cartpole: s.cartpole)
                    if method == .kickstarting {
                        // λ: 1 → 0 linearly over the first half of the run, then pure RL.
                        c.method.lambda = .linear(start: 1, end: 0, steps: max(1, p.iterations / 2))
                    }
                    var run = makeRun(s.panel, curve, r, c)
                    run.network = NetworkRunSpec(
                        domain: s.cartpole ? .cartpole : .gridworld,
                        teacher: method == .actorCritic ? .none(reference: s.teacher) : .trained(s.teacher),
                        student: s.student, observation: s.observation, evaluationEpisodes: p.quick ? 20 : 50)
                    runs.append(run)
                }
            }
        }
        return Experiment(
            parameters: p,
            title:
                "kickstarting (Schmitt et al. 2018) vs from scratch and the paper's rules, network students and teachers",
            runs: runs,
            evaluationIterations: evaluationGrid(
                iterations: p.iterations, logPoints: p.quick ? 8 : 16, linearPoints: p.quick ? 12 : 30),
            metrics: [.studentReturn, .teacherReturn, .klPerState],
            layout: PlotLayout(
                title: "Kickstarting: return of the student (dashed: the teacher)",
                rows: settings.map {
                    [
                        PlotCell(panel: $0.panel, metric: .studentReturn, title: $0.panel, reference: .teacherReturn),
                        PlotCell(panel: $0.panel, metric: .klPerState, title: "KL per state", logY: true),
                    ]
                }),
            paperFinding:
                "kickstarted agents reach the from-scratch agent's performance in ≈10× fewer steps and end 42 % above it (DMLab, several teachers).",
            judge: judgeKickstart)
    }

    static func judgeKickstart(_ results: ExperimentResults) -> [Finding] {
        var findings: [Finding] = []
        for panel in results.panels {
            let curves = results.curves(in: panel)
            let teacher = results.interval(.teacherReturn, panel: panel, curve: scratchCurve).mean
            let threshold = 0.9 * teacher
            var steps: [String: [Int: Double]] = [:]
            var reached: [String: Int] = [:]
            var final: [String: [Int: Double]] = [:]
            var tables: [String: [Int: RunTable]] = [:]
            for curve in curves {
                for (run, table) in results.runs(panel: panel, curve: curve) {
                    guard let ret = table.column(.studentReturn) else { continue }
                    let (s, ok) = stepsToReach(table, ret, threshold)
                    steps[curve, default: [:]][run.replicate] = Double(max(1, s))
                    if ok { reached[curve, default: 0] += 1 }
                    final[curve, default: [:]][run.replicate] = ret.last ?? .nan
                    tables[curve, default: [:]][run.replicate] = table
                }
            }
            var values: [String: Double] = ["teacher_return": teacher, "threshold": threshold]
            var parts: [String] = []
            var speed: [String] = []
            var schmitt: [String] = []
            var ends: [String] = []
            let scratchSteps = steps[scratchCurve] ?? [:]
            let scratchFinal = final[scratchCurve] ?? [:]
            for curve in curves {
                let n = results.runs(panel: panel, curve: curve).count
                let s = MeanInterval(Array((steps[curve] ?? [:]).values))
                let f = MeanInterval(Array((final[curve] ?? [:]).values))
                values["final_\(slug(curve))"] = f.mean
                values["steps_\(slug(curve))"] = s.mean
                values["reached_\(slug(curve))"] = Double(reached[curve] ?? 0)
                parts.append(
                    "\(curve): \(reached[curve] ?? 0)/\(n) reach 90 % of the teacher (mean \(String(format: "%.3g", s.mean)) env steps), final \(f.formatted(2))"
                )
                guard curve != scratchCurve else { continue }
                var logRatio: [Int: Double] = [:]
                var toScratch: [Int: Double] = [:]
                var relative: [Int: Double] = [:]
                for (k, v) in steps[curve] ?? [:] {
                    if let b = scratchSteps[k] { logRatio[k] = Foundation.log10(b / v) }
                    if let b = scratchFinal[k], let a = final[curve]?[k], abs(b) > 1e-9 {
                        relative[k] = (a - b) / abs(b)
                    }
                    // Schmitt's measure: env steps to the scratch agent's final return (its own seed's).
                    if let level = scratchFinal[k], let st = tables[scratchCurve]?[k], let mt = tables[curve]?[k],
                        let sr = st.column(.studentReturn), let mr = mt.column(.studentReturn)
                    {
                        let a = Double(max(1, stepsToReach(st, sr, level).steps))
                        let b = Double(max(1, stepsToReach(mt, mr, level).steps))
                        toScratch[k] = Foundation.log10(a / b)
                    }
                }
                let lr = MeanInterval(Array(logRatio.values))
                let ts = MeanInterval(Array(toScratch.values))
                let rel = MeanInterval(Array(relative.values))
                values["log10_speedup_\(slug(curve))_mean"] = lr.mean
                values["log10_speedup_\(slug(curve))_low"] = lr.lower
                values["log10_speedup_to_scratch_final_\(slug(curve))_mean"] = ts.mean
                values["log10_speedup_to_scratch_final_\(slug(curve))_low"] = ts.lower
                values["final_gain_\(slug(curve))_mean"] = rel.mean
                values["final_gain_\(slug(curve))_low"] = rel.lower
                func ratio(_ m: MeanInterval) -> String {
                    String(
                        format: "%.2f× (log10 %.2f, 95%% CI %.2f to %.2f)", Foundation.pow(10, m.mean), m.mean, m.lower,
                        m.upper)
                }
                speed.append("\(curve) \(ratio(lr))")
                schmitt.append("\(curve) \(ratio(ts))")
                ends.append(
                    "\(curve) \(String(format: "%+.0f %% (95%% CI %+.0f to %+.0f)", 100 * rel.mean, 100 * rel.lower, 100 * rel.upper))"
                )
            }
            let present = results.runs(panel: panel, curve: "kickstarting").count > 1
            let kick = values["log10_speedup_to_scratch_final_kickstarting_low"] ?? -1
            findings.append(
                Finding(
                    .kickstart, "steps to the scratch agent's final return, \(panel)",
                    paper:
                        "kickstarting reaches the scratch agent's final performance in ≈10× fewer steps (the bar here: the paired 95 % CI of log10(scratch steps / method steps) above 0.5, i.e. ≥ 3.2×)",
                    measured: "paired speed-up to each seed's scratch final return: " + schmitt.joined(separator: ", "),
                    reproduces: present ? kick > 0.5 : nil, values: values))
            findings.append(
                Finding(
                    .kickstart, "steps to 90 % of the teacher, \(panel)",
                    paper: "(the issue's measure; Schmitt et al. give no number for it)",
                    measured: "teacher \(f2(teacher)), threshold \(f2(threshold)); " + parts.joined(separator: "; ")
                        + "; paired speed-up over scratch (scratch steps / method steps; a run that never reaches 90 % counts its last steps, so a scratch run that never reaches it makes the ratio a lower bound): "
                        + speed.joined(separator: ", "),
                    reproduces: nil, values: values))
            let gain = values["final_gain_kickstarting_low"]
            findings.append(
                Finding(
                    .kickstart, "final return, \(panel)",
                    paper: "kickstarting ends 42 % above the scratch agent",
                    measured: "paired relative final return over scratch: " + ends.joined(separator: ", "),
                    reproduces: present ? (gain ?? -1) > 0 : nil, values: values))
        }
        return findings
    }
}

// MARK: - Compression

extension Experiment {
    /// Compression's losses: curve suffix and method.
    public static let compressionLosses: [(String, Method)] = [
        ("KL", .teacherDistillKL), ("NLL", .teacherDistillNLL), ("MSE", .teacherDistillMSE), ("n-distill", .nDistill),
    ]

    /// How compression's students see data: the paper's two controls on fresh episodes, and Rusu's
    /// own setting (the teacher's gameplay through a replay memory, supervised losses only).
    enum CompressionSetting: CaseIterable {
        /// Fresh episodes of the teacher (control = teacher), each used once.
        case teacherDriven
        /// Fresh episodes of the student (the paper's on-policy path).
        case studentDriven
        /// Rusu et al. 2016: the teacher plays into a replay memory; uniform minibatches.
        case replay

        var name: String {
            switch self {
            case .teacherDriven: "teacher-driven"
            case .studentDriven: "student-driven"
            case .replay: "replay (Rusu's setting)"
            }
        }
    }

    static func compressionPanel(_ domain: String, _ setting: CompressionSetting) -> String {
        "\(domain), \(setting.name)"
    }

    /// Compression's replay memory: `capacity` rows, minibatches of 64, one update per 4 teacher
    /// steps (DQN's and Rusu's cadence); an iteration is one minibatch update, so every panel takes
    /// the same number of optimisation steps and the replay panel far fewer environment steps.
    static func compressionReplay(capacity: Int) -> ReplaySpec {
        ReplaySpec(capacity: capacity, batchSize: 64, updatesPerStep: 0.25)
    }

    static func compression(_ p: ExperimentParameters) throws -> Experiment {
        struct Setting {
            var domain: String
            var cartpole: Bool
            var teacher: TrainedTeacherRecipe
            var students: [(String, String)]  // (fraction label, architecture)
            var observation: String
            var learningRate: Double
            /// Rows of the replay panel's memory (an image row is 2,800 floats).
            var replayCapacity: Int = 20_000
        }
        var settings: [Setting] = []
        if p.quick {
            settings.append(
                Setting(
                    domain: "gridworld one-hot (teacher mlp:64,64)", cartpole: false,
                    teacher: TrainedTeacherRecipe(
                        architecture: "mlp:64,64", observation: "one-hot", iterations: 1_000, learningRate: 0.01,
                        seed: 0, readAs: .qValues, snapshots: 2),
                    students: [("1/4", "mlp:16,16")], observation: "one-hot", learningRate: 0.01))
        } else {
            settings.append(
                Setting(
                    domain: "CartPole (teacher mlp:256,256)", cartpole: true,
                    teacher: {
                        var t = cartPoleTeacher(p, architecture: "mlp:256,256")
                        t.readAs = .qValues
                        return t
                    }(),
                    students: [("1/4", "mlp:128,128"), ("1/16", "mlp:62,62"), ("1/64", "mlp:29,29")],
                    observation: "", learningRate: 0.001, replayCapacity: 100_000))
            settings.append(
                Setting(
                    domain: "gridworld one-hot (teacher mlp:256,256)", cartpole: false,
                    teacher: TrainedTeacherRecipe(
                        architecture: "mlp:256,256", observation: "one-hot", iterations: 3_000, learningRate: 0.003,
                        seed: 0, readAs: .qValues),
                    students: [("1/4", "mlp:88,88"), ("1/16", "mlp:25,25"), ("1/64", "mlp:6,6")],
                    observation: "one-hot", learningRate: 0.01))
            settings.append(
                Setting(
                    domain: "gridworld images (teacher conv:8x3/mlp:64)", cartpole: false,
                    teacher: TrainedTeacherRecipe(
                        architecture: "conv:8x3/mlp:64", observation: "image", iterations: 3_000, learningRate: 0.003,
                        seed: 0, readAs: .qValues),
                    students: [("1/4", "conv:8x3/mlp:16"), ("1/16", "conv:4x3/mlp:8"), ("1/64", "conv:2x3/mlp:4")],
                    observation: "image", learningRate: 0.003, replayCapacity: 10_000))
        }
        var runs: [RunSpec] = []
        var rows: [[PlotCell]] = []
        var ratios: [String: Double] = [:]
        for s in settings {
            let domain: NetworkRunSpec.Domain = s.cartpole ? .cartpole : .gridworld
            let teacherParameters = try parameterCount(
                s.teacher.architecture, domain: domain, observation: s.teacher.observation)
            for (fraction, architecture) in s.students {
                ratios["\(s.domain) \(fraction)"] =
                    Double(try parameterCount(architecture, domain: domain, observation: s.observation))
                    / Double(teacherParameters)
            }
            for setting in CompressionSetting.allCases {
                let panel = compressionPanel(s.domain, setting)
                rows.append([
                    PlotCell(panel: panel, metric: .studentReturn, title: panel, reference: .teacherReturn),
                    // The panel's name titles the row's first cell; a repeat would not fit.
                    PlotCell(panel: panel, metric: .klPerState, title: "KL per state", logY: true),
                ])
            }
        }
        for r in 0..<p.mdps {
            for s in settings {
                for setting in CompressionSetting.allCases {
                    for (fraction, architecture) in s.students {
                        for (loss, method) in compressionLosses {
                            var c = networkConfiguration(
                                p, replicate: r, method: method, learningRate: s.learningRate, cartpole: s.cartpole)
                            switch setting {
                            case .teacherDriven: c.method.control = .teacher
                            case .studentDriven: c.method.control = .student
                            case .replay:
                                // n-distill's score term needs the student's own episodes: no replay.
                                guard c.method.rule(at: 0, teacherKind: nil).isSupervised else { continue }
                                c.replay = compressionReplay(capacity: s.replayCapacity)
                            }
                            var run = makeRun(compressionPanel(s.domain, setting), "\(fraction) \(loss)", r, c)
                            run.network = NetworkRunSpec(
                                domain: s.cartpole ? .cartpole : .gridworld, teacher: .trained(s.teacher),
                                student: architecture, observation: s.observation, evaluationEpisodes: 50)
                            runs.append(run)
                        }
                    }
                }
            }
        }
        let ratioText = ratios.keys.sorted().map { "\($0): \(String(format: "%.1f %%", 100 * ratios[$0]!))" }
            .joined(separator: ", ")
        return Experiment(
            parameters: p,
            title:
                "policy compression (Rusu et al. 2016): smaller students, KL(τ = 0.01)/NLL/MSE on the teacher's logits read as Q, and n-distill; fresh teacher- or student-driven episodes, and Rusu's replay memory",
            runs: runs,
            evaluationIterations: evaluationGrid(
                iterations: p.iterations, logPoints: p.quick ? 8 : 16, linearPoints: p.quick ? 6 : 20),
            metrics: [.studentReturn, .teacherReturn, .klPerState],
            layout: PlotLayout(title: "Compression: students' return and KL per state by size and loss", rows: rows),
            paperFinding:
                "students with 25 / 7 / 4 % of the teacher's parameters keep 108 / 102 / 84 % of its score; KL (τ = 0.01) > NLL > MSE (Breakout 94.7 / 77.6 / 33.9 %). Parameter shares here: \(ratioText).",
            judge: judgeCompression)
    }

    static func judgeCompression(_ results: ExperimentResults) -> [Finding] {
        var findings: [Finding] = []
        let rusu: [String: Double] = ["1/4": 1.08, "1/16": 1.02, "1/64": 0.84]
        for panel in results.panels {
            let curves = results.curves(in: panel)
            guard let first = curves.first else { continue }
            let teacher = results.interval(.teacherReturn, panel: panel, curve: first).mean
            var values: [String: Double] = ["teacher_return": teacher]
            var parts: [String] = []
            var sizesMatch = true
            var orderMatch = true
            let fractions = curves.compactMap { $0.split(separator: " ").first.map(String.init) }.reduce(
                into: [String]()
            ) {
                if !$0.contains($1) { $0.append($1) }
            }
            for fraction in fractions {
                var kept: [String: [Int: Double]] = [:]
                for (loss, _) in compressionLosses where curves.contains("\(fraction) \(loss)") {
                    let curve = "\(fraction) \(loss)"
                    let ret = results.values(.studentReturn, panel: panel, curve: curve)
                    kept[loss] = ret.mapValues { $0 / teacher }
                    let k = MeanInterval(Array(kept[loss]!.values))
                    let kl = results.interval(.klPerState, panel: panel, curve: curve)
                    values["kept_\(slug(fraction))_\(slug(loss))_mean"] = k.mean
                    values["kept_\(slug(fraction))_\(slug(loss))_low"] = k.lower
                    values["kl_per_state_\(slug(fraction))_\(slug(loss))_mean"] = kl.mean
                    parts.append("\(curve): \(k.formatted(3)) of the teacher, KL per state \(kl.formatted(4))")
                }
                let klNll = ExperimentResults.pairedDifference(kept["KL"] ?? [:], kept["NLL"] ?? [:])
                let nllMse = ExperimentResults.pairedDifference(kept["NLL"] ?? [:], kept["MSE"] ?? [:])
                values["kl_minus_nll_\(slug(fraction))_mean"] = klNll.mean
                values["kl_minus_nll_\(slug(fraction))_low"] = klNll.lower
                values["nll_minus_mse_\(slug(fraction))_mean"] = nllMse.mean
                values["nll_minus_mse_\(slug(fraction))_low"] = nllMse.lower
                parts.append(
                    "\(fraction) paired share KL − NLL \(klNll.formatted(3)), NLL − MSE \(nllMse.formatted(3))")
                if !(klNll.lower > 0 && nllMse.lower > 0) { orderMatch = false }
                // Rusu's share minus 10 points is the bar.
                if let target = rusu[fraction], !((values["kept_\(slug(fraction))_kl_mean"] ?? 0) >= target - 0.1) {
                    sizesMatch = false
                }
            }
            let present = results.runs(panel: panel, curve: first).count > 1
            // The data each setting consumed: replay reuses the teacher's steps, fresh episodes do not.
            let steps = curves.flatMap { curve in
                results.runs(panel: panel, curve: curve).compactMap { $0.table.environmentSteps.last.map(Double.init) }
            }
            values["environment_steps_mean"] = MeanInterval(steps).mean
            findings.append(
                Finding(
                    .compression, "share of the teacher's return by size, \(panel)",
                    paper:
                        "25 / 7 / 4 % students keep 108 / 102 / 84 % (the bar here: the KL student keeps at least Rusu's share − 10 points: 98 / 92 / 74 %)",
                    measured: "teacher \(f2(teacher)); "
                        + String(format: "%.0f environment steps per run (mean); ", MeanInterval(steps).mean)
                        + parts.joined(separator: "; "),
                    reproduces: present ? sizesMatch : nil, values: values))
            findings.append(
                Finding(
                    .compression, "loss ordering, \(panel)",
                    paper: "KL (τ = 0.01) > NLL > MSE in the share of the teacher's score kept",
                    measured: fractions.map {
                        "\($0): KL − NLL \(f3(values["kl_minus_nll_\(slug($0))_mean"] ?? .nan)) (low \(f3(values["kl_minus_nll_\(slug($0))_low"] ?? .nan))), NLL − MSE \(f3(values["nll_minus_mse_\(slug($0))_mean"] ?? .nan)) (low \(f3(values["nll_minus_mse_\(slug($0))_low"] ?? .nan)))"
                    }.joined(separator: "; "),
                    reproduces: present ? orderMatch : nil, values: values))
        }
        return findings
    }
}

// MARK: - Privileged teacher

extension Experiment {
    /// The exact window-aliased tabular student's curve.
    public static let windowCeilingCurve = "tabular on the window (exact)"
    /// Privileged's network rules.
    static let privilegedMethods: [Method] = [.onPolicyDistill, .nDistillR, .teacherVReward, .kickstarting]

    static func privilegedPanel(_ k: Int) -> String { "window K=\(k)" }

    static func privileged(_ p: ExperimentParameters) -> Experiment {
        let windows = p.quick ? [5] : [3, 5, 7]
        var runs: [RunSpec] = []
        for r in 0..<p.mdps {
            let mdpSeed = p.seed &+ UInt64(r)
            for k in windows {
                let panel = privilegedPanel(k)
                for method in privilegedMethods {
                    var c = networkConfiguration(
                        p, replicate: r, method: method, learningRate: 0.01, cartpole: false, mdpSeed: mdpSeed)
                    if method == .kickstarting {
                        c.method.lambda = .linear(start: 1, end: 0, steps: max(1, p.iterations / 2))
                    }
                    var run = makeRun(panel, method.rawValue, r, c)
                    run.network = NetworkRunSpec(
                        domain: .gridworld, teacher: .table, student: p.quick ? "mlp:32" : "mlp:64",
                        observation: "window:\(k)")
                    runs.append(run)
                }
                // The ceiling: exact policy-gradient ascent on the return over policies that are a
                // function of the window (one row of logits per distinct window), Adam 0.05,
                // 5 expected updates per iteration (3 in the quick preset).
                var c = networkConfiguration(
                    p, replicate: r, method: .baseline, learningRate: 0.05, cartpole: false, mdpSeed: mdpSeed)
                c.method.optimiser = .adam
                var run = makeRun(panel, windowCeilingCurve, r, c)
                run.network = NetworkRunSpec(
                    domain: .gridworld, teacher: .table, student: NetworkRunSpec.tabularWindow,
                    observation: "window:\(k)", updatesPerIteration: p.quick ? 3 : 5)
                runs.append(run)
            }
        }
        return Experiment(
            parameters: p,
            title:
                "a privileged teacher (Q-learning on the state) and students that see a K×K window, against the best window-aliased tabular policy found exactly",
            runs: runs,
            evaluationIterations: evaluationGrid(
                iterations: p.iterations, logPoints: p.quick ? 8 : 16, linearPoints: p.quick ? 6 : 20),
            metrics: [.studentReturn, .teacherReturn, .klPerState],
            layout: PlotLayout(
                title: "Privileged teacher: students on a K×K window (dashed: the teacher)",
                rows: [
                    windows.map {
                        PlotCell(
                            panel: privilegedPanel($0), metric: .studentReturn, title: privilegedPanel($0),
                            reference: .teacherReturn)
                    }
                ]),
            paperFinding:
                "(no anchor: robotics users ask for it) which rules cope with a teacher that sees more than its student, and how close they come to the partial-observability ceiling.",
            judge: judgePrivileged)
    }

    static func judgePrivileged(_ results: ExperimentResults) -> [Finding] {
        var findings: [Finding] = []
        for panel in results.panels {
            let teacher = results.interval(.teacherReturn, panel: panel, curve: windowCeilingCurve).mean
            let ceiling = results.values(.studentReturn, panel: panel, curve: windowCeilingCurve)
            var values: [String: Double] = [
                "teacher_return": teacher, "ceiling_mean": MeanInterval(Array(ceiling.values)).mean,
            ]
            var parts = [
                "teacher \(f2(teacher)); \(windowCeilingCurve) \(MeanInterval(Array(ceiling.values)).formatted())"
            ]
            // The upper bound: the optimal return with the full state (a window policy cannot beat it).
            var optimum: [Int: Double] = [:]
            // How much the window aliases: distinct windows over states, per gridworld.
            var aliasing: [Double] = []
            for (run, _) in results.runs(panel: panel, curve: windowCeilingCurve) {
                if let environment = try? run.configuration.environment.build(),
                    let spec = run.network, let kind = try? ObservationKind(parsing: spec.observation),
                    let rows = try? aliasedRows(environment, observation: kind)
                {
                    aliasing.append(Double(rows.count) / Double(environment.mdp.stateCount))
                }
                if let environment = try? run.configuration.environment.build(),
                    let best = try? Teachers.optimal(environment.mdp),
                    let value = try? PolicyEvaluation.expectedReturn(environment.mdp, policy: best.probabilities)
                {
                    optimum[run.replicate] = value
                }
            }
            let teacherByRun = results.values(.teacherReturn, panel: panel, curve: windowCeilingCurve)
            values["optimum_mean"] = MeanInterval(Array(optimum.values)).mean
            values["distinct_windows_per_state"] = MeanInterval(aliasing).mean
            parts.append(
                String(format: "distinct windows per state %.3f (1 = no aliasing)", MeanInterval(aliasing).mean))
            parts.append("full-observation optimum \(MeanInterval(Array(optimum.values)).formatted())")
            for method in privilegedMethods {
                let m = results.values(.studentReturn, panel: panel, curve: method.rawValue)
                let t = ExperimentResults.pairedDifference(m, teacherByRun)
                values["\(method.rawValue)_minus_teacher_mean"] = t.mean
                values["\(method.rawValue)_minus_teacher_low"] = t.lower
                parts.append("\(method.rawValue) − teacher \(t.formatted())")
                let d = ExperimentResults.pairedDifference(m, ceiling)
                values["final_\(method.rawValue)"] = MeanInterval(Array(m.values)).mean
                values["\(method.rawValue)_minus_ceiling_mean"] = d.mean
                values["\(method.rawValue)_minus_ceiling_low"] = d.lower
                values["\(method.rawValue)_minus_ceiling_high"] = d.upper
                parts.append(
                    "\(method.rawValue) \(MeanInterval(Array(m.values)).formatted()) (− ceiling \(d.formatted()))")
            }
            findings.append(
                Finding(
                    .privileged, "final return against the window ceiling, \(panel)",
                    paper: "(no anchor) the network student cannot beat the best policy of its window",
                    measured: parts.joined(separator: "; "), reproduces: nil, values: values))
        }
        return findings
    }
}
