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
            (total/k)-th run, so different MDPs, noise levels, students and methods), and for each \
            measures (1) building its problem (gridworld, Q-learning teacher, noise, 100-rollout V_π), \
            (2) --iterations training iterations, (3) one exact evaluation of the metrics. The slice \
            runs on --workers threads; the parallel speed-up is the slice's summed per-run time over \
            its wall time. Full scale = problems × mean build time + runs × (30,000 × mean time per \
            iteration + evaluation points × mean evaluation time), divided by the speed-up. The time \
            per iteration is taken over the first --iterations iterations and assumed constant (the \
            first and last quarter of the slice are printed to show the drift). Projection on M \
            machines: each runs --shard I/M (⌈runs/M⌉ runs) with the same workers, plus the merge \
            (`--aggregate-only`), measured on the slice's files and scaled linearly to every run's rows.

            Examples:
              distill bench experiment
              distill bench experiment --runs 42 --iterations 1000 --machines 1,4,16,64
            """)

    @Option(help: "Runs in the slice.")
    var runs = 24

    @Option(help: "Iterations per run of the slice.")
    var iterations = 500

    @Option(help: "Worker threads (default: all cores).")
    var workers = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Machine counts to project on, comma-separated.")
    var machines = "1,2,4,8,16,32"

    func validate() throws {
        guard runs >= 1, iterations >= 4, workers >= 1 else {
            throw ValidationError("--runs and --workers must be at least 1 and --iterations at least 4")
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
        var iterationTimes: [Double] = []
        var evaluation = 0.0
        var total = 0.0
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
        let results = Results(count: slice.count)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "distill-bench-experiment-\(ProcessInfo.processInfo.processIdentifier)")
        try FileManager.default.createDirectory(
            at: directory.appendingPathComponent("runs"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let started = Date()
        let next = Results.Counter()
        let group = DispatchGroup()
        let iterations = self.iterations
        for _ in 0..<min(workers, slice.count) {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                while let i = next.take(below: slice.count) {
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
        let perIteration = measured.flatMap(\.iterationTimes).reduce(0, +) / Double(measured.count * iterations)
        let quarter = iterations / 4
        let firstQuarter =
            measured.map { $0.iterationTimes.prefix(quarter).reduce(0, +) }.reduce(0, +)
            / Double(measured.count * quarter)
        let lastQuarter =
            measured.map { $0.iterationTimes.suffix(quarter).reduce(0, +) }.reduce(0, +)
            / Double(measured.count * quarter)
        let evaluation = measured.map(\.evaluation).reduce(0, +) / Double(measured.count)
        let perRun = Double(full.parameters.iterations) * perIteration + Double(gridPoints) * evaluation
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
        let sliceRows = Double(slice.count * mergeExperiment.evaluationIterations.count)
        let merge = mergeSlice * Double(total * gridPoints) / sliceRows

        emit(
            String(
                format: "slice wall %.1f s, summed run time %.1f s: parallel speed-up %.2f on %d workers", wall, busy,
                speedUp, workers))
        emit(
            String(
                format:
                    "per iteration %.1f µs (first quarter %.1f, last quarter %.1f); evaluation %.2f ms × %d points; teacher build %.2f s × %d",
                perIteration * 1e6, firstQuarter * 1e6, lastQuarter * 1e6, evaluation * 1e3, gridPoints, build, problems
            ))
        emit(
            String(
                format:
                    "one full-scale run ≈ %.1f s; all runs ≈ %.0f CPU-hours; merge ≈ %.0f s (slice merge %.3f s, scaled ×%.0f)",
                perRun, cpu / 3600, merge, mergeSlice, Double(total * gridPoints) / sliceRows))
        emit("machines   runs each   wall time (compute + merge)")
        for m in machineCounts! {
            let share = Double((total + m - 1) / m) / Double(total)
            let compute = cpu * share / speedUp
            emit(
                "\(String(m).leftPad(8))   \(String((total + m - 1) / m).leftPad(9))   \(duration(compute + merge)) (\(duration(compute)) + \(duration(merge)))"
            )
        }
    }

    /// Builds the run's problem, trains `iterations` iterations timing each, times one evaluation,
    /// and writes the run's table (initial and final rows) for the merge measurement.
    static func measure(_ run: RunSpec, iterations: Int, directory: URL) throws -> Measurement {
        var m = Measurement()
        let clock = ContinuousClock()
        let begin = clock.now
        let problem = try Problem(run)
        m.build = seconds(clock.now - begin)
        var configuration = run.configuration
        configuration.iterations = iterations
        var trainer = try Trainer(configuration, environment: problem.environment, teacher: problem.teacher)
        let metrics: [Metric] = [.studentReturn, .teacherReturn]
        var table = RunTable(metrics: metrics)
        func record(_ elapsed: Double) {
            table.iterations.append(trainer.iteration)
            table.environmentSteps.append(trainer.totalEnvironmentSteps)
            table.wallSeconds.append(elapsed)
            let start = clock.now
            for (k, v) in problem.measure(metrics, parameters: trainer.parameters).enumerated() {
                table.values[k].append(v)
            }
            m.evaluation = seconds(clock.now - start)
        }
        let grid = evaluationGrid(iterations: iterations, logPoints: 30, linearPoints: 40)
        var next = 1
        record(0)
        for _ in 0..<iterations {
            let start = clock.now
            _ = try trainer.runIteration()
            m.iterationTimes.append(seconds(clock.now - start))
            while next < grid.count && grid[next] <= trainer.iteration {
                if grid[next] == trainer.iteration { record(seconds(clock.now - begin)) }
                next += 1
            }
        }
        m.total = seconds(clock.now - begin)
        try Data(table.csv.utf8).write(to: ExperimentRunner.runFile(directory, id: run.id))
        return m
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    /// Slots for the workers' measurements.
    final class Results: @unchecked Sendable {
        let lock = NSLock()
        var values: [Result<Measurement, any Error>?]

        init(count: Int) { values = Array(repeating: nil, count: count) }

        func store(_ i: Int, _ r: Result<Measurement, any Error>) {
            lock.lock()
            values[i] = r
            lock.unlock()
        }

        final class Counter: @unchecked Sendable {
            let lock = NSLock()
            var value = 0
            func take(below limit: Int) -> Int? {
                lock.lock()
                defer { lock.unlock() }
                guard value < limit else { return nil }
                value += 1
                return value - 1
            }
        }
    }
}

extension String {
    fileprivate func leftPad(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
