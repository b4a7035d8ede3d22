import DistillCore
import Foundation

/// The runs of an experiment found on disk (all, or the part done so far), with the statistics the
/// findings and the aggregate CSV need. Runs of different curves with the same replicate index
/// share the MDP and seeds, so differences between curves are paired.
public struct ExperimentResults: Sendable {
    /// The experiment.
    public let experiment: Experiment
    /// Tables by run id.
    public let tables: [String: RunTable]

    /// Present runs by curve, in experiment order (one pass over the run list, so that the
    /// statistics of a 42,000-run experiment do not rescan it per curve).
    private let byCurve: [String: [(run: RunSpec, table: RunTable)]]
    /// Panels and their curves in experiment order.
    private let order: [(panel: String, curves: [String])]

    /// Wraps tables (tests, or runs held in memory).
    public init(experiment: Experiment, tables: [String: RunTable]) {
        self.experiment = experiment
        self.tables = tables
        var byCurve: [String: [(run: RunSpec, table: RunTable)]] = [:]
        var order: [(panel: String, curves: [String])] = []
        var seenPanels: [String: Int] = [:]
        var seenCurves = Set<String>()
        for run in experiment.runs {
            let key = Self.key(run.panel, run.curve)
            if seenPanels[run.panel] == nil {
                seenPanels[run.panel] = order.count
                order.append((run.panel, []))
            }
            if seenCurves.insert(key).inserted { order[seenPanels[run.panel]!].curves.append(run.curve) }
            if let table = tables[run.id] { byCurve[key, default: []].append((run, table)) }
        }
        self.byCurve = byCurve
        self.order = order
    }

    private static func key(_ panel: String, _ curve: String) -> String { panel + "\u{1F}" + curve }

    /// Reads every complete run file of the experiment under `directory/runs`.
    public static func load(_ experiment: Experiment, directory: URL) throws -> ExperimentResults {
        var tables: [String: RunTable] = [:]
        for run in experiment.runs {
            let file = ExperimentRunner.runFile(directory, id: run.id)
            guard let data = FileManager.default.contents(atPath: file.path) else { continue }
            let table = try RunTable(csv: String(decoding: data, as: UTF8.self), source: file.path)
            guard table.iterations == experiment.evaluationIterations else {
                throw DistillError(
                    .invalidConfiguration,
                    "\(file.path) was evaluated at other iterations than this experiment: it belongs to another --iterations; use another --out"
                )
            }
            tables[run.id] = table
        }
        return ExperimentResults(experiment: experiment, tables: tables)
    }

    /// Number of runs present.
    public var count: Int { tables.count }

    /// The run panels in experiment order.
    public var panels: [String] { order.map(\.panel) }

    /// The curves of `panel` in experiment order.
    public func curves(in panel: String) -> [String] {
        order.first { $0.panel == panel }?.curves ?? []
    }

    /// Present runs of a curve with their tables.
    public func runs(panel: String, curve: String) -> [(run: RunSpec, table: RunTable)] {
        byCurve[Self.key(panel, curve)] ?? []
    }

    /// Replicate → the metric at the evaluation row nearest below `iteration` (default: the last).
    public func values(_ metric: Metric, panel: String, curve: String, at iteration: Int? = nil) -> [Int: Double] {
        let row = rowIndex(iteration)
        var out: [Int: Double] = [:]
        for (run, table) in runs(panel: panel, curve: curve) {
            if let column = table.column(metric) { out[run.replicate] = column[row] }
        }
        return out
    }

    /// Replicate → a per-run summary of the metric's whole curve.
    public func perRun(
        _ metric: Metric, panel: String, curve: String, _ summary: (_ iterations: [Int], _ values: [Double]) -> Double
    ) -> [Int: Double] {
        var out: [Int: Double] = [:]
        for (run, table) in runs(panel: panel, curve: curve) {
            if let column = table.column(metric) { out[run.replicate] = summary(table.iterations, column) }
        }
        return out
    }

    /// Mean and 95 % interval of a curve's metric at `iteration` (default: the last row).
    public func interval(_ metric: Metric, panel: String, curve: String, at iteration: Int? = nil) -> MeanInterval {
        MeanInterval(Array(values(metric, panel: panel, curve: curve, at: iteration).values))
    }

    /// Mean and 95 % interval of the paired difference `a − b` over the replicates both have.
    public static func pairedDifference(_ a: [Int: Double], _ b: [Int: Double]) -> MeanInterval {
        MeanInterval(a.keys.sorted().compactMap { k in b[k].map { a[k]! - $0 } })
    }

    /// The mean curve with its interval at every evaluation point.
    public func meanCurve(_ metric: Metric, panel: String, curve: String) -> [(iteration: Int, interval: MeanInterval)]
    {
        let present = runs(panel: panel, curve: curve).compactMap { $0.table.column(metric) }
        return experiment.evaluationIterations.enumerated().map { row, iteration in
            (iteration, MeanInterval(present.map { $0[row] }))
        }
    }

    /// The first evaluated iteration at which the mean curve reaches `threshold` and stays at or
    /// above it at every later evaluation point (nil if it never does).
    public func firstSustainedCrossing(_ metric: Metric, panel: String, curve: String, threshold: Double) -> Int? {
        firstSustainedCrossing(
            meanCurve(metric, panel: panel, curve: curve).map { ($0.iteration, $0.interval.mean) }, threshold)
    }

    func firstSustainedCrossing(_ points: [(Int, Double)], _ threshold: Double) -> Int? {
        var answer: Int?
        for (i, v) in points.reversed() {
            if v >= threshold { answer = i } else { break }
        }
        return answer
    }

    /// The aggregate CSV: per panel, curve, metric and evaluation point the mean environment steps,
    /// n, mean, standard deviation and the 95 % interval (Student t).
    public var aggregateCSV: String {
        var lines = ["panel,curve,metric,iteration,env_steps,n,mean,sd,ci_low,ci_high"]
        for panel in panels {
            for curve in curves(in: panel) {
                let present = runs(panel: panel, curve: curve)
                guard !present.isEmpty else { continue }
                for metric in experiment.metrics {
                    let columns = present.compactMap { $0.table.column(metric) }
                    for (row, iteration) in experiment.evaluationIterations.enumerated() {
                        let m = MeanInterval(columns.map { $0[row] })
                        let steps =
                            present.map { Double($0.table.environmentSteps[row]) }.reduce(0, +)
                            / Double(present.count)
                        let ci = m.halfWidth.isFinite ? m.halfWidth : 0
                        lines.append(
                            [
                                csvField(panel), csvField(curve), metric.rawValue, "\(iteration)",
                                String(format: "%.1f", steps), "\(m.count)", "\(m.mean)", "\(m.standardDeviation)",
                                "\(m.mean - ci)", "\(m.mean + ci)",
                            ].joined(separator: ","))
                    }
                }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func rowIndex(_ iteration: Int?) -> Int {
        let grid = experiment.evaluationIterations
        guard let iteration else { return grid.count - 1 }
        return grid.lastIndex { $0 <= iteration } ?? 0
    }

}

/// A CSV field, quoted when it holds a comma or a quote.
func csvField(_ s: String) -> String {
    s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
}

/// The normalised area under a curve: the trapezoid integral over the evaluated iterations divided
/// by their span (the mean level of the curve; Fig. 3 right compares such areas).
public func normalisedArea(_ iterations: [Int], _ values: [Double]) -> Double {
    guard iterations.count > 1, let first = iterations.first, let last = iterations.last, last > first else {
        return values.first ?? .nan
    }
    var area = 0.0
    for k in 1..<iterations.count {
        area += Double(iterations[k] - iterations[k - 1]) * (values[k] + values[k - 1]) / 2
    }
    return area / Double(last - first)
}

/// One finding: what the paper says, what was measured (with numbers) and whether it matches.
public struct Finding: Sendable, Hashable, Codable {
    /// The experiment.
    public var experiment: ExperimentName
    /// A short name, e.g. `speed-up of student-driven control`.
    public var name: String
    /// What the paper found.
    public var paper: String
    /// What this run measured, with numbers.
    public var measured: String
    /// Whether the measurement reproduces the paper's finding (nil: not enough runs to say).
    public var reproduces: Bool?
    /// The key numbers by name.
    public var values: [String: Double]

    /// Creates a finding.
    public init(
        _ experiment: ExperimentName, _ name: String, paper: String, measured: String, reproduces: Bool?,
        values: [String: Double] = [:]
    ) {
        self.experiment = experiment
        self.name = name
        self.paper = paper
        self.measured = measured
        self.reproduces = reproduces
        self.values = values
    }

    /// `reproduced`, `NOT reproduced` or `undetermined`.
    public var verdict: String {
        switch reproduces {
        case true?: "reproduced"
        case false?: "NOT reproduced"
        case nil: "undetermined"
        }
    }
}

/// findings.md: one section per finding.
public func findingsMarkdown(_ findings: [Finding], results: ExperimentResults) -> String {
    let p = results.experiment.parameters
    var text = "# \(p.name.rawValue): \(results.experiment.title)\n\n"
    text += "Scale: \(results.count) of \(results.experiment.runs.count) runs present, \(p.mdps) "
    text += p.name == .fig2 || p.name == .fig6 ? "seeds" : "MDPs"
    text += " per curve, \(p.iterations) iterations, seed \(p.seed)\(p.quick ? ", quick preset" : "").\n\n"
    text += "Paper: \(results.experiment.paperFinding)\n\n"
    for f in findings {
        text += "## \(f.name): \(f.verdict)\n\n- paper: \(f.paper)\n- measured: \(f.measured)\n\n"
    }
    return text
}
