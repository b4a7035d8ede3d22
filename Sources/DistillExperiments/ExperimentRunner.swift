import DistillCore
import Foundation

/// Progress of an experiment, reported after every finished run.
public struct ExperimentProgress: Sendable {
    /// Runs of this invocation's share finished now.
    public var done: Int
    /// Runs of the share found complete on disk and skipped (resumed).
    public var skipped: Int
    /// Runs in the share.
    public var total: Int
    /// Seconds since this invocation started.
    public var elapsed: Double
    /// Estimated seconds left (nil before the first run ends).
    public var remaining: Double? {
        guard done > 0 else { return nil }
        return elapsed / Double(done) * Double(total - skipped - done)
    }
}

/// Runs an experiment's runs on `workers` threads and writes each run's table to
/// `directory/runs/<id>.csv` atomically (written to a temporary name, then renamed), so a file
/// that exists is complete: an interrupted experiment resumes where it stopped.
public final class ExperimentRunner: @unchecked Sendable {
    /// The experiment.
    public let experiment: Experiment
    /// The output directory.
    public let directory: URL
    /// Worker threads.
    public let workers: Int
    private let lock = NSLock()
    private var cache: [String: Problem] = [:]
    private var cacheOrder: [String] = []
    private var building: Set<String> = []
    private let built = NSCondition()
    private let teachers: TeacherCache

    /// Creates a runner; `workers` ≥ 1.
    public init(experiment: Experiment, directory: URL, workers: Int) {
        precondition(workers >= 1, "need at least one worker")
        self.experiment = experiment
        self.directory = directory
        self.workers = workers
        teachers = TeacherCache(directory: directory)
    }

    /// Where run `id`'s table lives.
    public static func runFile(_ directory: URL, id: String) -> URL {
        directory.appendingPathComponent("runs").appendingPathComponent(id + ".csv")
    }

    /// Runs `runs` (those not yet on disk); calls `progress` after each, from a worker thread.
    /// Throws the first failure after the other workers have stopped.
    public func run(_ runs: [RunSpec], progress: @escaping @Sendable (ExperimentProgress) -> Void) throws {
        let runsDirectory = directory.appendingPathComponent("runs")
        try FileManager.default.createDirectory(at: runsDirectory, withIntermediateDirectories: true)
        let pending = runs.filter {
            !FileManager.default.fileExists(atPath: Self.runFile(directory, id: $0.id).path)
        }
        let started = Date()
        let state = SharedState(total: runs.count, skipped: runs.count - pending.count)
        progress(ExperimentProgress(done: 0, skipped: state.skipped, total: runs.count, elapsed: 0))
        let threads = min(workers, max(1, pending.count))
        let group = DispatchGroup()
        for _ in 0..<threads {
            group.enter()
            let thread = Thread { [self] in
                defer { group.leave() }
                while let run = state.next(pending) {
                    do {
                        let table: RunTable
                        if let network = run.network {
                            table = try executeNetwork(
                                run, network, teachers: teachers, evaluation: experiment.evaluationIterations,
                                metrics: experiment.metrics)
                        } else {
                            table = try execute(
                                run, problem: try self.problem(for: run), evaluation: experiment.evaluationIterations,
                                metrics: experiment.metrics)
                        }
                        let file = Self.runFile(directory, id: run.id)
                        let temporary = file.deletingLastPathComponent().appendingPathComponent(
                            ".\(run.id).\(ProcessInfo.processInfo.processIdentifier).tmp")
                        try Data(table.csv.utf8).write(to: temporary)
                        _ = try? FileManager.default.removeItem(at: file)
                        try FileManager.default.moveItem(at: temporary, to: file)
                        let done = state.finish()
                        progress(
                            ExperimentProgress(
                                done: done, skipped: state.skipped, total: runs.count,
                                elapsed: Date().timeIntervalSince(started)))
                    } catch {
                        state.fail(error, run: run)
                    }
                }
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        group.wait()
        if let failure = state.failure { throw failure }
    }

    /// The run's problem, built once per (environment, teacher) and kept for the next runs
    /// (runs are MDP-major, so a small cache suffices); concurrent requests for one key wait.
    func problem(for run: RunSpec) throws -> Problem {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let key =
            String(decoding: try encoder.encode(run.configuration.environment), as: UTF8.self)
            + String(decoding: try encoder.encode(run.configuration.teacher), as: UTF8.self)
            + run.teacherRecipe.rawValue
        built.lock()
        while building.contains(key) { built.wait() }
        if let hit = cache[key] {
            built.unlock()
            return hit
        }
        building.insert(key)
        built.unlock()
        let result = Result { try Problem(run) }
        built.lock()
        building.remove(key)
        if case .success(let problem) = result {
            cache[key] = problem
            cacheOrder.append(key)
            if cacheOrder.count > 4 * workers { cache[cacheOrder.removeFirst()] = nil }
        }
        built.broadcast()
        built.unlock()
        return try result.get()
    }
}

/// The work queue shared by the worker threads.
private final class SharedState: @unchecked Sendable {
    let lock = NSLock()
    let total: Int
    let skipped: Int
    var index = 0
    var done = 0
    var failure: (any Error)?

    init(total: Int, skipped: Int) {
        self.total = total
        self.skipped = skipped
    }

    func next(_ pending: [RunSpec]) -> RunSpec? {
        lock.lock()
        defer { lock.unlock() }
        guard failure == nil, index < pending.count else { return nil }
        index += 1
        return pending[index - 1]
    }

    func finish() -> Int {
        lock.lock()
        defer { lock.unlock() }
        done += 1
        return done
    }

    func fail(_ error: any Error, run: RunSpec) {
        lock.lock()
        defer { lock.unlock() }
        if failure == nil {
            let message = (error as? DistillError)?.message ?? "\(error)"
            failure = DistillError(.invalidConfiguration, "run \(run.id) failed: \(message)")
        }
    }
}
