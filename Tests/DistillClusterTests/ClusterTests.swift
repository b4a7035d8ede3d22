import DistillCore
import DistillRuntime
import DistillTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `distill cluster` end to end: clean stops, what it leaves behind, and that it learns what the
/// single-process trainer learns.
@Suite("distill cluster end to end", .serialized)
struct ClusterTests {
    /// Rows of a CSV file as dictionaries.
    static func csv(_ file: URL) throws -> [[String: String]] {
        let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n").map(String.init)
        guard let header = lines.first?.split(separator: ",", omittingEmptySubsequences: false).map(String.init) else {
            return []
        }
        return lines.dropFirst().map { line in
            Dictionary(
                uniqueKeysWithValues: zip(
                    header, line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)))
        }
    }

    @Test func sigtermStopsTheClusterCleanlyWithCheckpointAndMetricsAndExitZero() async throws {
        let out = Roles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: out) }
        let (status, progress) = try await onOwnThread {
            let cluster = try ChildProcess(
                ["cluster"] + Roles.problem + [
                    "--actors", "2", "--steps", "1000000000", "--out", out.path, "--no-plot",
                ])
            _ = cluster.waitForLine(startingWith: "[", timeout: .seconds(60))  // the first progress line
            cluster.send(signal: SIGTERM)
            return (cluster.waitForExit(timeout: .seconds(60)), cluster.output)
        }
        #expect(status == 0, "\(progress)")
        #expect(progress.contains { $0.contains("steps") && $0.contains("version") && $0.contains("lag") })
        let summary = try RunSummary.read(out.appendingPathComponent("summary.json"))
        #expect(summary.stoppedBecause == "SIGTERM")
        let rows = try MetricsRow.rows(
            csv: String(contentsOf: out.appendingPathComponent("metrics.csv"), encoding: .utf8))
        #expect(!rows.isEmpty)
        let store = try CheckpointStore(directory: out.appendingPathComponent("checkpoints"))
        let checkpoint = try #require(try store.latest()).checkpoint
        #expect(checkpoint.version > 0)
        #expect(checkpoint.version == rows.last?.version, "the final checkpoint is the final version")
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("config.json").path))
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("logs/learner.log").path))
    }

    /// n-distill+R through the cluster, on its defaults, closes ≥ 95 % of the gap between the
    /// untrained student's exact return and the teacher's, and exits 0. (Raw returns let a wrong
    /// sign, a near-uniform teacher or actors that never got new parameters pass: the untrained
    /// student is already at 85 % of this teacher after a few thousand steps.)
    @Test func clusterClosesNinetyFivePercentOfTheGapToTheTeacher() async throws {
        let out = Roles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: out) }
        let (status, errors) = try await onOwnThread { () -> (Int32?, String) in
            let cluster = try ChildProcess(
                ["cluster"] + Self.problem + ["--actors", "2", "--steps", "300000", "--out", out.path, "--no-plot"])
            let status = cluster.waitForExit(timeout: .seconds(120))
            return (status, cluster.standardError)
        }
        #expect(status == 0, "distill cluster exited with \(String(describing: status)): \(errors.suffix(1500))")
        let summary = try #require(Roles.summary(in: out), "\(errors)")
        let student = try #require(summary.studentReturn)
        let teacher = try #require(summary.teacherReturn)
        // The untrained student: uniform logits, its exact return computed here.
        var spec = EnvironmentSpec()
        spec.kind = .gridworld
        spec.seed = 1
        let mdp = try spec.build().mdp
        let uniform = [Double](repeating: 1 / Double(mdp.actionCount), count: mdp.stateCount * mdp.actionCount)
        let initial = try PolicyEvaluation.expectedReturn(mdp, policy: uniform)
        let threshold = initial + 0.95 * (teacher - initial)
        #expect(teacher - initial > 1, "a teacher clearly better than the untrained student")
        #expect(
            student >= threshold,
            "student \(student), untrained \(initial), teacher \(teacher): threshold \(threshold)")
    }

    static let problem = ["--env", "gridworld", "--seed", "1", "--teacher", "q-learning", "--method", "n-distill+R"]

    /// Run close to synchronously (one actor, one unroll in flight, one episode per unroll,
    /// parameters published after every update), the cluster's exact return at matched env
    /// steps lies within the spread of independent `distill train` runs of the same method.
    /// (With more actors and larger windows the policy lag slows early learning per env step:
    /// that is asynchrony, measured in the runtime issue's note, not a disagreement of rules.)
    @Test func nearSynchronousClusterFollowsTheTrainersLearningCurve() async throws {
        let out = Roles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: out) }
        let trainSeeds = 8
        let result = try await onOwnThread { () -> ([MetricsRow], [[[String: String]]], String) in
            let cluster = try ChildProcess(
                ["cluster"] + Self.problem + [
                    "--actors", "1", "--steps", "12000", "--out", out.path, "--no-plot",
                    "--learner-flags=--metrics-interval 0.02 --unroll-steps 1 --publish-every 1",
                    "--actor-flags=--max-in-flight 1",
                ])
            _ = cluster.waitForExit(timeout: .seconds(120))
            var trains: [[[String: String]]] = []
            for seed in 1...trainSeeds {
                let dir = out.appendingPathComponent("train-\(seed)")
                let train = try ChildProcess(
                    ["train"] + Self.problem + [
                        "--iterations", "300", "--evaluate-every", "5", "--run-seed", String(seed), "--quiet", "--out",
                        dir.path,
                    ])
                _ = train.waitForExit(timeout: .seconds(120))
                trains.append(try Self.csv(dir.appendingPathComponent("metrics.csv")))
            }
            let rows = try MetricsRow.rows(
                csv: String(contentsOf: out.appendingPathComponent("metrics.csv"), encoding: .utf8))
            return (rows, trains, cluster.standardError)
        }
        let (clusterRows, trainRuns, errors) = result
        let teacher = clusterRows.first.map(\.teacherReturn) ?? 0

        // The trainer's exact return as a function of env steps, per seed (linear interpolation).
        func curve(_ rows: [[String: String]]) -> [(Double, Double)] {
            rows.compactMap { row in
                guard let s = Double(row["total_env_steps"] ?? ""), let r = Double(row["exact_return"] ?? "") else {
                    return nil
                }
                return (s, r)
            }
        }
        func value(_ curve: [(Double, Double)], at step: Double) -> Double? {
            guard let upper = curve.firstIndex(where: { $0.0 >= step }) else { return nil }
            guard upper > 0 else { return curve[0].1 }
            let (s0, r0) = curve[upper - 1]
            let (s1, r1) = curve[upper]
            return r0 + (r1 - r0) * (step - s0) / max(s1 - s0, 1)
        }
        let trainCurves = trainRuns.map(curve)
        var compared = 0
        for row in clusterRows {
            let (step, r) = (Double(row.envSteps), row.studentReturn)
            guard step >= 1_000, r.isFinite else { continue }
            let values = trainCurves.compactMap { value($0, at: step) }
            guard values.count == trainSeeds else { continue }
            let mean = values.reduce(0, +) / Double(values.count)
            let sd = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1)).squareRoot()
            // One run lies within mean ± 4 sd of the runs' spread (a floor of 2 % of the
            // teacher's return where every run has converged and the spread vanishes).
            let band = 4 * sd + 0.02 * abs(teacher)
            #expect(abs(r - mean) <= band, "at \(step) steps: cluster \(r), train \(mean) ± \(band)")
            compared += 1
        }
        #expect(compared >= 3, "too few matched points: \(clusterRows.count) cluster rows; \(errors)")
    }
}
