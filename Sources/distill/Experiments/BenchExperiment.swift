import ArgumentParser
import DistillCore
import DistillExperiments
import Foundation

/// `distill bench experiment`: the time of a full-scale fig5 on this machine, from a measured slice.
struct BenchExperiment: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract:
            "Project the time of a full-scale fig5 (1,000 MDPs × 42 curves × 30,000 iterations) from a measured slice.",
        discussion: """
            Method: takes --runs runs spread evenly over the full-scale fig5 run list (every \
            (total/k)-th run, so different MDPs, noise levels, students and methods) and runs each \
            exactly as the experiment does: its problem built (gridworld, Q-learning teacher, noise, \
            100-rollout V_π), then --iterations iterations with the experiment's evaluation points, \
            timing the build and the run. The slice runs on --workers threads; the parallel \
            speed-up is the slice's summed time over its wall time. Full scale = distinct teachers × \
            mean build time + runs × mean run time, divided by the speed-up. With --iterations below \
            30,000 the run time is scaled linearly, an over-estimate: episodes shorten as students \
            learn. Projection on M machines: each runs --shard I/M (⌈runs/M⌉ runs) with the same \
            workers, plus the merge (--aggregate-only) measured on the slice's files and scaled \
            linearly to every run's rows.

            Examples:
              distill bench experiment
              distill bench experiment --runs 48 --machines 1,4,16,64
            """)

    @Option(help: "Runs in the slice.")
    var runs = 24

    @Option(help: "Iterations per run of the slice (the full experiment's).")
    var iterations = 30_000

    @Option(name: .customLong("workers"), help: "Worker threads (default: all cores).")
    var workerCount: Int?

    /// --workers, or every core (not a printed default: help must not depend on the machine).
    var workers: Int { workerCount ?? ProcessInfo.processInfo.activeProcessorCount }

    @Option(help: "Machine counts to project on, comma-separated.")
    var machines = "1,2,4,8,16,32"

    func validate() throws {
        guard runs >= 1, iterations >= 1, workers >= 1 else {
            throw ValidationError("--runs, --iterations and --workers must be at least 1")
        }
        guard machineCounts != nil else {
            throw ValidationError("--machines must be positive integers separated by commas, e.g. 1,2,4,8")
        }
    }

    var machineCounts: [Int]? {
        let parts = machines.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ ($0 ?? 0) >= 1 }) else { return nil }
        return parts.map { $0! }
    }

    /// What one slice run measured.
    struct Measurement: Sendable {
        var build = 0.0
        var run = 0.0
        var environmentSteps = 0
        var total: Double { build + run }
    }

    func run() throws {
        let full = try validating { try Experiment.make(.preset(.fig5, quick: false)) }
        let total = full.runs.count
        let stride = max(1, total / runs)
        let slice = (0..<min(runs, total)).map { full.runs[$0 * stride] }
        let problems = Set(full.runs.map { "\($0.replicate)|\($0.configuration.teacher.noiseFraction)" }).count
        let gridPoints = full.evaluationIterations.count
        emit(
            "bench experiment: full-scale fig5 = \(total) runs (\(full.parameters.mdps) MDPs × 3 noise levels × 2 students × 7 methods) × \(full.parameters.iterations) iterations, \(problems) distinct teachers, \(gridPoints) evaluation points per run"
        )
        emit("slice: \(slice.count) runs (every \(stride)th) × \(iterations) iterations on \(workers) workers ...")
        let results = Slots(count: slice.count)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "distill-bench-experiment-\(ProcessInfo.processInfo.processIdentifier)")
        try FileManager.default.createDirectory(
            at: directory.appendingPathComponent("runs"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let started = Date()
        let group = DispatchGroup()
        let iterations = self.iterations
        for _ in 0..<min(workers, slice.count) {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                while let i = results.take() {
                    results.store(
                        i, Result { try Self.measure(slice[i], iterations: iterations, directory: directory) })
                }
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        group.wait()
        let wall = Date().timeIntervalSince(started)
        let measured = try results.values.map { try $0!.get() }
        let busy = measured.map(\.total).reduce(0, +)
        let speedUp = max(1, busy / wall)
        let build = measured.map(\.build).reduce(0, +) / Double(measured.count)
        let scale = Double(full.parameters.iterations) / Double(iterations)
        let perRun = measured.map(\.run).reduce(0, +) / Double(measured.count) * scale
        let steps = Double(measured.map(\.environmentSteps).reduce(0, +)) / Double(measured.count)
        let cpu = Double(problems) * build + Double(total) * perRun

        // The merge: load + aggregate + findings of the slice's files, scaled to every run's rows.
        let mergeExperiment = try validating {
            try Experiment.make(ExperimentParameters(name: .fig5, mdps: full.parameters.mdps, iterations: iterations))
        }
        let mergeStarted = Date()
        var tables: [String: RunTable] = [:]
        for run in slice {
            let file = ExperimentRunner.runFile(directory, id: run.id)
            if let data = FileManager.default.contents(atPath: file.path) {
                tables[run.id] = try validating {
                    try RunTable(csv: String(decoding: data, as: UTF8.self), source: file.path)
                }
            }
        }
        let merged = ExperimentResults(experiment: mergeExperiment, tables: tables)
        _ = merged.aggregateCSV
        _ = mergeExperiment.findings(merged)
        let mergeSlice = Date().timeIntervalSince(mergeStarted)
        let rowScale = Double(total * gridPoints) / Double(slice.count * mergeExperiment.evaluationIterations.count)
        let merge = mergeSlice * rowScale

        emit(
            String(
                format: "slice wall %.1f s, summed time %.1f s: parallel speed-up %.2f on %d workers", wall, busy,
                speedUp, workers))
        emit(
            String(
                format:
                    "per run: %.3f s for %d iterations (%.0f env steps, evaluations included)%@; teacher build %.3f s × %d",
                perRun / scale, iterations, steps,
                scale == 1 ? "" : String(format: ", scaled ×%.1f to 30,000 iterations", scale), build, problems))
        emit(
            String(
                format:
                    "one full-scale run ≈ %.2f s; all runs ≈ %.2f CPU-hours; merge ≈ %.0f s (slice merge %.3f s, scaled ×%.0f)",
                perRun, cpu / 3600, merge, mergeSlice, rowScale))
        emit("machines   runs each   wall time (compute + merge)")
        for m in machineCounts! {
            let each = (total + m - 1) / m
            let compute = cpu * Double(each) / Double(total) / speedUp
            emit(
                "\(pad(String(m), 8))   \(pad(String(each), 9))   \(duration(compute + merge)) (\(duration(compute)) + \(duration(merge)))"
            )
        }
    }

    /// Builds the run's problem and runs it as the experiment does (`iterations` iterations, the
    /// experiment's evaluation points for that length), timing both; writes the table for the merge.
    static func measure(_ run: RunSpec, iterations: Int, directory: URL) throws -> Measurement {
        var m = Measurement()
        let clock = ContinuousClock()
        let begin = clock.now
        let problem = try Problem(run)
        m.build = seconds(clock.now - begin)
        var shortened = run
        shortened.configuration.iterations = iterations
        let grid = try Experiment.make(ExperimentParameters(name: .fig5, mdps: 1, iterations: iterations))
            .evaluationIterations
        let start = clock.now
        let table = try execute(
            shortened, problem: problem, evaluation: grid, metrics: [.studentReturn, .teacherReturn])
        m.run = seconds(clock.now - start)
        m.environmentSteps = table.environmentSteps.last ?? 0
        try Data(table.csv.utf8).write(to: ExperimentRunner.runFile(directory, id: run.id))
        return m
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
    }

    /// The slice's work queue and the workers' measurements.
    final class Slots: @unchecked Sendable {
        let lock = NSLock()
        var values: [Result<Measurement, any Error>?]
        var next = 0

        init(count: Int) { values = Array(repeating: nil, count: count) }

        func take() -> Int? {
            lock.lock()
            defer { lock.unlock() }
            guard next < values.count else { return nil }
            next += 1
            return next - 1
        }

        func store(_ i: Int, _ r: Result<Measurement, any Error>) {
            lock.lock()
            values[i] = r
            lock.unlock()
        }
    }
}
