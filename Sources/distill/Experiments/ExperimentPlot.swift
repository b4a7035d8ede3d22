import Foundation

/// Draws an experiment's figure (OUT/figure.png) from OUT/aggregate.csv and OUT/plot.json with matplotlib.
enum ExperimentPlot {
    /// The plotting program (Python 3 + matplotlib), given the experiment directory as its argument.
    static let script = #"""
        import csv, json, math, os, sys
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        out = sys.argv[1]
        layout = json.load(open(os.path.join(out, "plot.json")))
        rows = list(csv.DictReader(open(os.path.join(out, "aggregate.csv"))))
        if not rows:
            sys.exit("aggregate.csv has no rows: no run has finished yet")
        data = {}
        curves = []
        for r in rows:
            key = (r["panel"], r["curve"], r["metric"])
            data.setdefault(key, []).append(r)
            if r["curve"] not in curves:
                curves.append(r["curve"])
        palette = plt.get_cmap("tab10").colors
        colour = {c: palette[i % len(palette)] for i, c in enumerate(curves)}
        grid = layout["rows"]
        nrows, ncols = len(grid), max(len(r) for r in grid)
        width = max(4.3 * ncols, 9.0)
        fig, axes = plt.subplots(nrows, ncols, figsize=(width, 3.3 * nrows + 1.2), squeeze=False)
        log_x = layout.get("logX", False)
        def f(v):
            try:
                return float(v)
            except ValueError:
                return float("nan")
        handles = {}
        for i, row in enumerate(grid):
            for j in range(ncols):
                ax = axes[i][j]
                if j >= len(row):
                    ax.axis("off")
                    continue
                cell = row[j]
                for curve in curves:
                    series = data.get((cell["panel"], curve, cell["metric"]))
                    if not series:
                        continue
                    pts = [(f(s["iteration"]), f(s["mean"]), f(s["ci_low"]), f(s["ci_high"]), int(s["n"])) for s in series]
                    if log_x:
                        pts = [p for p in pts if p[0] > 0]
                    pts = [p for p in pts if math.isfinite(p[1])]
                    pts = [(x, m, lo if math.isfinite(lo) else m, hi if math.isfinite(hi) else m, n) for x, m, lo, hi, n in pts]
                    if cell.get("logY"):
                        # A log axis shows positive values only: the interval is cut at 1% of the mean.
                        kept = [(x, m, max(lo, m / 100), min(hi, 1e8), n) for x, m, lo, hi, n in pts if 0 < m <= 1e8]
                        if len(kept) < len(pts):
                            ax.text(0.02, 0.02, "means > 1e8 (diverged runs) not drawn", transform=ax.transAxes,
                                    fontsize=7, color="gray")
                        pts = kept
                    if not pts:
                        continue
                    x = [p[0] for p in pts]
                    line, = ax.plot(x, [p[1] for p in pts], color=colour[curve], lw=1.6, label=curve)
                    if max(p[4] for p in pts) > 1:
                        ax.fill_between(x, [p[2] for p in pts], [p[3] for p in pts], color=colour[curve], alpha=0.2, lw=0)
                    handles[curve] = line
                ref = cell.get("reference")
                if ref:
                    for curve in curves:
                        series = data.get((cell["panel"], curve, ref))
                        if series:
                            level = f(series[-1]["mean"])
                            if math.isfinite(level):
                                handles["teacher"] = ax.axhline(level, color="black", ls="--", lw=1.1, label="teacher")
                            break
                ax.set_title(cell["title"], fontsize=10)
                if cell.get("logY"):
                    ax.set_yscale("log")
                if log_x:
                    ax.set_xscale("log")
                ax.set_xlabel(layout["xLabel"] + (" (log scale)" if log_x else ""), fontsize=8)
                ax.set_ylabel(METRIC_LABELS.get(cell["metric"], cell["metric"]), fontsize=8)
                ax.tick_params(labelsize=8)
                ax.grid(alpha=0.3)
        import textwrap
        title = "\n".join(textwrap.wrap(layout["title"], int(width * 11)))
        fig.suptitle(title + "\nmean over runs, shaded: 95% confidence interval (Student t)", fontsize=11)
        per_row = max(2, min(len(handles), int(width / 2.3)))
        fig.legend(list(handles.values()), list(handles.keys()), loc="lower center", ncol=per_row,
                   fontsize=9, frameon=False)
        legend_rows = math.ceil(len(handles) / per_row)
        fig.tight_layout(rect=(0, (0.045 * legend_rows + 0.01) * 4.5 / (3.3 * nrows + 1.2), 1, 1))
        path = os.path.join(out, "figure.png")
        fig.savefig(path, dpi=100)
        print(path)
        """#

    /// Axis labels of the metrics (the CSV names them by their raw values).
    static let labels = """
        METRIC_LABELS = {
            "return": "expected return",
            "teacher_return": "teacher's expected return",
            "kl_student": "E_student[Σ_t KL(π‖π_θ)]",
            "kl_teacher": "E_teacher[Σ_t KL(π‖π_θ)]",
            "kl_uniform": "E_uniform[Σ_t KL(π‖π_θ)]",
            "p_right_s0": "π_θ(R | s0)",
            "p_right_sl_sr": "π_θ(R | sL) = π_θ(R | sR)",
        }

        """

    /// Draws the figure; reports where it is, or why there is none (never fails the experiment).
    static func draw(directory: URL, report: (String) -> Void) {
        let program = script.replacingOccurrences(of: "handles = {}", with: labels + "handles = {}")
        switch LearningCurves.runPython(program, argument: directory.path) {
        case .drawn(let file): report("figure: \(file)")
        case .cannotRun(let why): report("no figure.png: \(why); the CSVs are written")
        case .missingMatplotlib:
            report(
                "no figure.png: matplotlib is missing. The CSVs and findings are written; for the figure run scripts/setup --plots, then: distill experiment NAME --aggregate-only --out \(directory.path)"
            )
        case .failed(let text): report("no figure.png: the plot failed (the CSVs and findings are written):\n\(text)")
        }
    }
}
