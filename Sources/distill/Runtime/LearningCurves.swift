import ArgumentParser
import Foundation

/// Draws a run's learning_curves.png from its metrics.csv with matplotlib.
enum LearningCurves {
    /// The plotting program (Python 3 + matplotlib), given the run directory as its argument.
    static let script = #"""
        import csv, json, os, sys
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        run = sys.argv[1]
        rows = list(csv.DictReader(open(os.path.join(run, "metrics.csv"))))
        if not rows:
            sys.exit("metrics.csv has no rows yet")
        def col(name):
            return [float(r[name]) if r[name] not in ("", "nan") else float("nan") for r in rows]
        rows = [r for r in rows if float(r["env_steps"] or 0) > 0]
        if not rows:
            sys.exit("metrics.csv has no rows with environment steps yet")
        steps = [s / 1e6 for s in col("env_steps")]
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
        ax = axes[0]
        ax.plot(steps, col("student_return"), label="student (exact)", color="tab:blue")
        teacher = col("teacher_return")
        if any(t == t for t in teacher):
            ax.plot(steps, teacher, label="teacher (exact)", color="tab:red", linestyle="--")
        ax.set_xlabel("environment steps (millions, log scale)"); ax.set_ylabel("expected return")
        ax.set_title("Return"); ax.legend(); ax.grid(alpha=0.3); ax.set_xscale("log")
        ax = axes[1]
        ax.plot(steps, col("kl_per_episode"), color="tab:purple")
        ax.set_xlabel("environment steps (millions, log scale)"); ax.set_ylabel("Σ_t KL(π ‖ π_θ) per episode")
        ax.set_title("Distance to the teacher (sampled)"); ax.set_yscale("log"); ax.set_xscale("log")
        ax.grid(alpha=0.3)
        ax = axes[2]
        ax.plot(steps, [v / 1e6 for v in col("steps_per_second")], color="tab:green", label="env steps/s (M)")
        ax.set_xlabel("environment steps (millions)"); ax.set_ylabel("million env steps / s", color="tab:green")
        ax.set_title("Throughput and policy lag"); ax.grid(alpha=0.3)
        lag = ax.twinx()
        lag.plot(steps, col("mean_lag"), color="tab:orange", label="mean policy lag")
        lag.set_ylabel("mean policy lag (versions)", color="tab:orange")
        title = os.path.basename(os.path.abspath(run))
        try:
            summary = json.load(open(os.path.join(run, "summary.json")))
            title = f"{summary.get('method')} on {summary.get('environment')}"
        except Exception:
            pass
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
            Uses DISTILL_PYTHON, else .venv/bin/python3 (scripts/setup --plots makes it), else python3.

            Example:
              distill plot runs/cluster-20261121-193000
            """)

    @Argument(help: "A run directory (the --out of distill cluster or distill learner).")
    var directory: String

    func run() throws {
        guard
            FileManager.default.fileExists(
                atPath: URL(fileURLWithPath: directory).appendingPathComponent("metrics.csv").path)
        else {
            throw ValidationError(
                "\(directory) has no metrics.csv: give the --out directory of a cluster or learner run")
        }
        var failed = false
        LearningCurves.draw(runDirectory: URL(fileURLWithPath: directory)) { line in
            emit(line)
            failed = line.hasPrefix("no ")
        }
        if failed { throw ExitCode(1) }
    }
}
