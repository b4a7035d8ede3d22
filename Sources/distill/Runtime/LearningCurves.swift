import ArgumentParser
import Foundation

/// Draws a run's learning_curves.png from its metrics.csv with matplotlib.
enum LearningCurves {
    /// The plotting program (Python 3 + matplotlib), given the run directory as its argument. It reads
    /// either metrics.csv the project writes: a cluster's or learner's (env_steps, student_return, …)
    /// or `distill train --out`'s (iteration, total_env_steps, exact_return, …). The x axes are linear
    /// and start at step 0, so the curves show where the run began.
    static let script = #"""
        import csv, json, math, os, sys
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        run = sys.argv[1]
        reader = csv.DictReader(open(os.path.join(run, "metrics.csv")))
        columns = reader.fieldnames or []
        rows = list(reader)
        if not rows:
            sys.exit("metrics.csv has no rows yet")
        def col(name):
            values = []
            for r in rows:
                try:
                    v = float(r.get(name) or "nan")
                except ValueError:
                    v = float("nan")
                values.append(v if math.isfinite(v) else float("nan"))
            return values
        def points(xs, ys):
            pairs = [(x, y) for x, y in zip(xs, ys) if y == y]
            return [p[0] for p in pairs], [p[1] for p in pairs]
        def positive(values):
            return any(v == v and v > 0 for v in values) and all(not (v == v) or v > 0 for v in values)
        title = os.path.basename(os.path.abspath(run))
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))

        if "student_return" in columns:
            # A cluster's or learner's metrics.csv: one row a metrics interval, from env step 0.
            steps = [s / 1e6 for s in col("env_steps")]
            xlabel = "environment steps (millions)"
            ax = axes[0]
            ax.plot(*points(steps, col("student_return")), label="student (exact)", color="tab:blue")
            teacher = col("teacher_return")
            if any(t == t for t in teacher):
                ax.plot(*points(steps, teacher), label="teacher (exact)", color="tab:red", linestyle="--")
            ax.set_xlabel(xlabel); ax.set_ylabel("expected return")
            ax.set_title("Return"); ax.legend(); ax.grid(alpha=0.3)
            ax = axes[1]
            kl = col("kl_per_episode")
            ax.plot(*points(steps, kl), color="tab:purple")
            ax.set_xlabel(xlabel); ax.set_ylabel("Σ_t KL(π ‖ π_θ) per episode")
            ax.set_title("Distance to the teacher (sampled)"); ax.grid(alpha=0.3)
            if positive(kl):
                ax.set_yscale("log")
            ax = axes[2]
            ax.plot(*points(steps, [v / 1e6 for v in col("steps_per_second")]), color="tab:green")
            ax.set_xlabel(xlabel); ax.set_ylabel("million env steps / s", color="tab:green")
            ax.set_title("Throughput and policy lag"); ax.grid(alpha=0.3)
            lag = ax.twinx()
            lag.plot(*points(steps, col("mean_lag")), color="tab:orange")
            lag.set_ylabel("mean policy lag (updates)", color="tab:orange")
            try:
                summary = json.load(open(os.path.join(run, "summary.json")))
                title = f"{summary.get('method')} on {summary.get('environment')}"
            except Exception:
                pass
        elif "exact_return" in columns:
            # distill train --out: one row an iteration (an update); exact metrics every --evaluate-every.
            total = col("total_env_steps")
            if any(t == t and t > 0 for t in total):
                scale, unit = (1e6, "millions") if max(t for t in total if t == t) >= 1e6 else (1e3, "thousands")
                xs = [0.0] + [t / scale for t in total]
                xlabel = f"environment steps ({unit})"
            else:
                xs = [0.0] + col("iteration")
                xlabel = "iterations (exact updates)"
            def series(name):
                # Row 0 is the start: the train CSV has none, so the sampled curves begin at the first row.
                return [float("nan")] + col(name)
            ax = axes[0]
            sampled = series("sampled_return")
            if any(v == v for v in sampled):
                ax.plot(*points(xs, sampled), label="sampled (episodes of the step)",
                        color="tab:blue", alpha=0.35, linewidth=0.8)
            ax.plot(*points(xs, series("exact_return")), label="student (exact)", color="tab:blue", marker=".")
            ax.set_xlabel(xlabel); ax.set_ylabel("expected return")
            ax.set_title("Return"); ax.legend(); ax.grid(alpha=0.3)
            ax = axes[1]
            drawn = []
            for name, label, colour in [("cross_entropy_student", "over the student's states", "tab:purple"),
                                        ("cross_entropy_teacher", "over the teacher's states", "tab:red"),
                                        ("cross_entropy_uniform", "over uniform states", "tab:gray")]:
                ys = series(name)
                if any(y == y for y in ys):
                    ax.plot(*points(xs, ys), label=label, color=colour, marker=".")
                    drawn += ys
            ax.set_xlabel(xlabel); ax.set_ylabel("trajectory cross-entropy (exact)")
            ax.set_title("Distance to the teacher"); ax.grid(alpha=0.3)
            if drawn:
                ax.legend()
            if positive(drawn):
                ax.set_yscale("log")
            ax = axes[2]
            norm = series("update_norm")
            ax.plot(*points(xs, norm), color="tab:green", linewidth=0.8)
            ax.set_xlabel(xlabel); ax.set_ylabel("‖update‖")
            ax.set_title("Update size"); ax.grid(alpha=0.3)
            if positive(norm):
                ax.set_yscale("log")
            try:
                config = json.load(open(os.path.join(run, "config.json")))
                environment = config["environment"]
                title = f"{config['method']['method']} on {environment['kind']}(seed={environment.get('seed')})"
            except Exception:
                pass
        else:
            sys.exit("metrics.csv has neither a cluster's columns (student_return) nor distill train's "
                     f"(exact_return); its columns: {', '.join(columns)}")
        for ax in axes:
            ax.set_xlim(left=0)
        fig.suptitle(title)
        fig.tight_layout()
        out = os.path.join(run, "learning_curves.png")
        fig.savefig(out, dpi=110)
        print(out)
        """#

    /// The Python to use: DISTILL_PYTHON, else the project's .venv, else python3.
    static func python() -> String {
        if let chosen = ProcessInfo.processInfo.environment["DISTILL_PYTHON"] { return chosen }
        if FileManager.default.isExecutableFile(atPath: ".venv/bin/python3") { return ".venv/bin/python3" }
        // The checkout this binary was built in (REPO/.build/…/distill): its .venv, from any directory.
        let binary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        if let build = binary.range(of: "/.build/") {
            let venv = String(binary[..<build.lowerBound]) + "/.venv/bin/python3"
            if FileManager.default.isExecutableFile(atPath: venv) { return venv }
        }
        return "/usr/bin/env"
    }

    /// What running a matplotlib program gave.
    enum PlotOutcome {
        /// It drew; its output (the file it wrote).
        case drawn(String)
        /// The interpreter could not be started.
        case cannotRun(String)
        /// The interpreter has no matplotlib.
        case missingMatplotlib
        /// The program failed; its output.
        case failed(String)
    }

    /// Runs `program` with `python3 -c`, one argument, in the project's `.venv` when there is one.
    static func runPython(_ program: String, argument: String) -> PlotOutcome {
        let process = Process()
        let interpreter = python()
        process.executableURL = URL(fileURLWithPath: interpreter)
        process.arguments = (interpreter == "/usr/bin/env" ? ["python3"] : []) + ["-c", program, argument]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        do {
            try process.run()
        } catch {
            return .cannotRun("cannot run \(interpreter) (\(error.localizedDescription))")
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if process.terminationStatus == 0 { return .drawn(text.trimmingCharacters(in: .whitespacesAndNewlines)) }
        return text.contains("No module named 'matplotlib'") ? .missingMatplotlib : .failed(text)
    }

    /// Draws the figure; reports where it is, or why there is none (never fails the run).
    static func draw(runDirectory: URL, report: (String) -> Void) {
        switch runPython(script, argument: runDirectory.path) {
        case .drawn(let file): report("learning curves: \(file)")
        case .cannotRun(let why): report("no learning_curves.png: \(why)")
        case .missingMatplotlib:
            report(
                "no learning_curves.png: matplotlib is missing (scripts/setup --plots installs it; then distill plot \(runDirectory.path))"
            )
        case .failed(let text): report("no learning_curves.png: the plot failed:\n\(text)")
        }
    }
}

/// `distill plot RUN`: draws learning_curves.png for a run directory.
struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot",
        abstract: "Draw RUN/learning_curves.png from RUN/metrics.csv (needs Python 3 with matplotlib).",
        discussion: """
            RUN is any output directory distill writes: of distill cluster, distill learner or \
            distill train (learning_curves.png), or of distill experiment (figure.png again). \
            Uses DISTILL_PYTHON, else .venv/bin/python3 (scripts/setup --plots makes it), else python3.

            Examples:
              distill plot runs/cluster-20261121-193000
              distill plot runs/train-demo
            """)

    @Argument(help: "An output directory: the --out of distill cluster, learner, train or experiment.")
    var directory: String

    func run() throws {
        let url = URL(fileURLWithPath: directory)
        func has(_ file: String) -> Bool {
            FileManager.default.fileExists(atPath: url.appendingPathComponent(file).path)
        }
        var failed = false
        let report: (String) -> Void = { line in
            emit(line)
            failed = line.hasPrefix("no ")
        }
        if has("metrics.csv") {
            LearningCurves.draw(runDirectory: url, report: report)
        } else if has("plot.json") && has("aggregate.csv") {
            ExperimentPlot.draw(directory: url, report: report)
        } else {
            throw ValidationError(
                "\(directory) has neither metrics.csv nor an experiment's aggregate.csv: give the --out "
                    + "directory of a cluster, learner, train or experiment run")
        }
        if failed { throw ExitCode(1) }
    }
}
