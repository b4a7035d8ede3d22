import DistillCore
import Foundation

/// The files of an experiment's output directory:
///
///     OUT/experiment.json   the parameters (an OUT holds one experiment at one scale)
///     OUT/runs/<id>.csv     one table per run (iteration, env_steps, wall_seconds, metrics)
///     OUT/aggregate.csv     mean, sd and 95 % interval per panel, curve, metric, iteration
///     OUT/findings.md|json  the findings with numbers and verdicts
///     OUT/plot.json         the figure layout for the plotting program
public enum ExperimentDirectory {
    /// Records `parameters` in `directory/experiment.json`, or checks that the directory already
    /// holds the same experiment (so runs of another scale are never mixed in).
    public static func prepare(_ parameters: ExperimentParameters, directory: URL) throws {
        try FileManager.default.createDirectory(
            at: directory.appendingPathComponent("runs"), withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("experiment.json")
        if let existing = try recorded(in: directory) {
            guard existing == parameters else {
                throw DistillError(
                    .invalidConfiguration,
                    "\(directory.path) holds \(describe(existing)), not \(describe(parameters)): give another --out, or the same settings to resume"
                )
            }
            return
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(parameters).write(to: file, options: .atomic)
    }

    /// The parameters recorded in `directory` (nil if none).
    public static func recorded(in directory: URL) throws -> ExperimentParameters? {
        let file = directory.appendingPathComponent("experiment.json")
        guard let data = FileManager.default.contents(atPath: file.path) else { return nil }
        do {
            return try JSONDecoder().decode(ExperimentParameters.self, from: data)
        } catch {
            throw DistillError(.invalidDescription, "\(file.path) is not an experiment record: \(error)")
        }
    }

    /// `fig5 (1000 MDPs, 30000 iterations, seed 0)`.
    public static func describe(_ p: ExperimentParameters) -> String {
        "\(p.name.rawValue) (\(p.mdps) \(p.name == .fig2 || p.name == .fig6 ? "seeds" : "MDPs"), \(p.iterations) iterations, seed \(p.seed)\(p.quick ? ", quick" : ""))"
    }

    /// Writes aggregate.csv, findings.md, findings.json and plot.json from the runs present, and
    /// returns the findings.
    @discardableResult
    public static func summarise(_ results: ExperimentResults, directory: URL) throws -> [Finding] {
        let findings = results.experiment.findings(results)
        try Data(results.aggregateCSV.utf8).write(
            to: directory.appendingPathComponent("aggregate.csv"), options: .atomic)
        try Data(findingsMarkdown(findings, results: results).utf8).write(
            to: directory.appendingPathComponent("findings.md"), options: .atomic)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        try encoder.encode(findings).write(to: directory.appendingPathComponent("findings.json"), options: .atomic)
        try encoder.encode(results.experiment.layout).write(
            to: directory.appendingPathComponent("plot.json"), options: .atomic)
        return findings
    }
}
