import DistillCore
import DistillExperiments
import Foundation
import Testing

@Suite struct ShardTests {
    @Test func shardsAreDisjointAndTogetherComplete() throws {
        for name in ExperimentName.allCases {
            let experiment = try Experiment.make(.preset(name, quick: true))
            let ids = experiment.runs.map(\.id)
            #expect(Set(ids).count == ids.count, "run ids of \(name) are unique")
            for m in [1, 2, 3, 7] {
                let shares = (0..<m).map { Set(experiment.runs(shard: $0, of: m).map(\.id)) }
                #expect(shares.map(\.count).reduce(0, +) == ids.count, "\(name) in \(m) shards: complete")
                #expect(shares.reduce(Set<String>()) { $0.union($1) } == Set(ids), "\(name) in \(m) shards")
                #expect(shares.map(\.count).max()! - shares.map(\.count).min()! <= 1, "balanced")
            }
        }
    }
}

@Suite struct ResumeTests {
    @Test func aRerunSkipsFinishedRunsAndRedoesOnlyMissingOnes() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("experiment-resume-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let parameters = ExperimentParameters(name: .fig6, mdps: 2, iterations: 20, quick: true)
        try ExperimentDirectory.prepare(parameters, directory: directory)
        let experiment = try Experiment.make(parameters)
        let runner = ExperimentRunner(experiment: experiment, directory: directory, workers: 2)
        try runner.run(experiment.runs) { _ in }
        let files = experiment.runs.map { ExperimentRunner.runFile(directory, id: $0.id) }
        // Everything but the wall-clock column is deterministic (seeded).
        func contents() throws -> [RunTable] {
            try files.map {
                var t = try RunTable(csv: String(decoding: try Data(contentsOf: $0), as: UTF8.self), source: $0.path)
                t.wallSeconds = t.wallSeconds.map { _ in 0 }
                return t
            }
        }
        let before = try contents()
        let untouched = try Data(contentsOf: files[0])
        // A killed experiment leaves at most a temporary file; finished files are complete.
        try FileManager.default.removeItem(at: files[3])
        try Data("partial".utf8).write(to: directory.appendingPathComponent("runs/.half-written.tmp"))
        let log = ProgressLog()
        try runner.run(experiment.runs) { log.append($0) }
        let last = try #require(log.entries.last)
        #expect(last.skipped == experiment.runs.count - 1)
        #expect(last.done == 1)
        #expect(try contents() == before, "the redone run is identical (seeded)")
        #expect(try Data(contentsOf: files[0]) == untouched, "finished runs are not rewritten")
        let results = try ExperimentResults.load(experiment, directory: directory)
        #expect(results.count == experiment.runs.count)
        // The same directory refuses another scale.
        var other = parameters
        other.iterations = 30
        #expect(throws: DistillError.self) { try ExperimentDirectory.prepare(other, directory: directory) }
    }
}

/// Progress reports collected from the worker threads.
final class ProgressLog: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [ExperimentProgress] = []
    func append(_ p: ExperimentProgress) {
        lock.lock()
        items.append(p)
        lock.unlock()
    }
    var entries: [ExperimentProgress] {
        lock.lock()
        defer { lock.unlock() }
        return items
    }
}

@Suite struct TDStudentTests {
    /// Fig. 5's TD(1) student replaces the Monte-Carlo return only where the score term carries the
    /// environment reward; one-step rules and rules without `r` keep their own return.
    @Test func returnEstimateOverrideTouchesOnlyMonteCarloRulesWithReward() {
        var spec = MethodSpec()
        spec.returnEstimate = .bootstrapStudentValue
        func estimate(_ m: Method) -> ReturnEstimate {
            spec.method = m
            return spec.rule(at: 0, teacherKind: .qLearning).returnEstimate
        }
        #expect(estimate(.vGated) == .bootstrapStudentValue)
        #expect(estimate(.onPolicyDistillR) == .bootstrapStudentValue)
        #expect(estimate(.teacherVReward) == .bootstrapStudentValue)
        #expect(estimate(.tdTeacherV) == .bootstrapTeacherValue)
        #expect(estimate(.tdZeroV) == .bootstrapZero)
        #expect(estimate(.nDistill) == .monteCarlo)
        #expect(estimate(.onPolicyDistill) == .monteCarlo)
    }
}
