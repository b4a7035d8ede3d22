import DistillRuntime
import Foundation

/// `distill bench cluster --env cartpole`: the distributed path with networks, each figure next
/// to a baseline from the same run (one `distill train` process; raw ZeroMQ).
extension BenchCluster {
    /// The problem every run of the network bench shares: a 2x64 MLP student distilled
    /// on-policy from a 2x64 MLP teacher (the issue's setting).
    static let networkProblem = [
        "--env", "cartpole", "--student", "mlp:64,64", "--method", "on-policy-distill", "--optimiser", "adam",
        "--learning-rate", "0.001", "--episodes-per-iteration", "8",
    ]

    /// 262144 float32: the 1 MiB parameter message of the issue.
    static let broadcastFloats = 262_144

    /// One cluster run's figures, read from its summary.json and its teacher's log.
    struct NetworkRow {
        var actors: Int
        var summary: RunSummary
        var teacher: [String: Double]

        var stepsPerUpdate: Double {
            summary.updates > 0 ? Double(summary.envStepsThisRun) / Double(summary.updates) : .nan
        }
        /// Busy shares of each role's wall-clock time over the learner's life (the actors' summed).
        var actorEnvironmentShare: Double? {
            summary.actorObservationSeconds.map { $0 / (Double(actors) * summary.wallSeconds) }
        }
        var actorInferenceShare: Double? {
            summary.actorInferenceSeconds.map { $0 / (Double(actors) * summary.wallSeconds) }
        }
        var learnerShare: Double? {
            guard let unroll = summary.learnerUnrollSeconds, let publish = summary.learnerPublishSeconds else {
                return nil
            }
            return (unroll + publish) / summary.wallSeconds
        }
    }

    func runNetworks(binary: URL, scratch: URL) throws {
        let steps = stepsPerRun
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        emit(
            "distill bench cluster: cartpole, teacher and student mlp:64,64, on-policy-distill, adam 0.001, "
                + "8 episodes/iteration, \(steps) steps per run, \(ProcessInfo.processInfo.activeProcessorCount) cores, "
                + "load average \(Self.loadAverage())")

        let teacher: String
        if let teacherFile {
            teacher = teacherFile
            emit("\n0. teacher: \(teacherFile) (--teacher-file)")
        } else {
            let made = scratch.appendingPathComponent("teacher")
            let arguments = [
                "train", "--env", "cartpole", "--student", "mlp:64,64", "--method", "actor-critic", "--optimiser",
                "adam", "--learning-rate", "0.001", "--critic-learning-rate", "1", "--episodes-per-iteration", "8",
                "--iterations", "2000", "--evaluate-every", "500", "--seed", "2", "--quiet", "--out", made.path,
            ]
            let started = RawTransport.clock()
            let status = try runChild(binary, arguments)
            teacher = made.appendingPathComponent("student.safetensors").path
            guard status == 0, FileManager.default.fileExists(atPath: teacher) else {
                throw RuntimeError(
                    "making the teacher failed (distill \(arguments.joined(separator: " ")) exited with \(status)); "
                        + "give one with --teacher-file", code: .childProcess)
            }
            emit(
                String(format: "\n0. teacher: made in %.0f s by distill ", RawTransport.clock() - started)
                    + arguments.joined(separator: " ") + " (pass --teacher-file to reuse one)")
        }

        let baseline = try oneProcess(binary: binary, teacher: teacher, steps: steps, scratch: scratch)

        emit("\n1. end to end (distill cluster) against one `distill train` process of the same network and method")
        emit(
            "actors   env steps/s   vs 1 process   updates/s   lag updates mean (max)   lag env steps   student/teacher"
        )
        var rows: [NetworkRow] = []
        for count in actorCounts {
            let out = scratch.appendingPathComponent("actors-\(count)")
            let status = try runChild(
                binary,
                ["cluster"] + Self.networkProblem + [
                    "--seed", String(seed), "--teacher-file", teacher, "--actors", String(count), "--steps",
                    String(steps), "--out", out.path, "--no-plot",
                ])
            guard status == 0, let summary = try? RunSummary.read(out.appendingPathComponent("summary.json")) else {
                emit("\(count): the cluster run failed (status \(status)); logs were in \(out.path)/logs")
                continue
            }
            let row = NetworkRow(
                actors: count, summary: summary,
                teacher: Self.lastTeacherStatus(out.appendingPathComponent("logs/teacher.log")))
            rows.append(row)
            emit(
                String(
                    format: "%6d %13.0f %13.1f%% %11.0f %17.2f (%4.0f) %15.0f", count,
                    summary.envStepsPerSecondLearning, 100 * summary.envStepsPerSecondLearning / baseline,
                    Double(summary.updates) / summary.learningSeconds, summary.meanPolicyLag, summary.maxPolicyLag,
                    summary.meanPolicyLag * row.stepsPerUpdate)
                    + Self.right(summary.studentToTeacherReturn.map { String(format: "%.3f", $0) } ?? "n/a", 18))
        }
        emit(
            "(rates over the learning span, from the first unroll on; lag in env steps = mean lag in updates x "
                + "env steps per update)")

        emit("\n2. where the time goes (share of each role's wall-clock time; actors summed over actors)")
        emit(
            "actors   actor env   actor inference+teacher wait   learner unroll (decode, update)   learner publish   teacher fill   teacher rows/batch   teacher latency"
        )
        func percent(_ value: Double?) -> String { value.map { String(format: "%.1f%%", 100 * $0) } ?? "not measured" }
        for row in rows {
            let wall = row.summary.wallSeconds
            let cells = [
                (String(row.actors), 6), (percent(row.actorEnvironmentShare), 12),
                (percent(row.actorInferenceShare), 31),
                (percent(row.summary.learnerUnrollSeconds.map { $0 / wall }), 34),
                (percent(row.summary.learnerPublishSeconds.map { $0 / wall }), 18),
                (row.teacher["batch_fill"].map { String(format: "%.3f", $0) } ?? "not measured", 15),
                (row.teacher["mean_batch_rows"].map { String(format: "%.1f", $0) } ?? "not measured", 21),
                (row.teacher["mean_latency_ms"].map { String(format: "%.2f ms", $0) } ?? "not measured", 18),
            ]
            emit(cells.map { Self.right($0.0, $0.1) }.joined())
        }
        emit("(actor encode and send, and the teacher's own compute time, are not measured separately)")
        emit("verdict: \(Self.verdict(rows))")

        emit(
            "\n3. parameter broadcast, 1 MiB (\(Self.broadcastFloats) float32: encode, PUB -> SUB over TCP loopback, "
                + "decode + checksum) against the same bytes raw")
        let broadcast = try RawTransport.broadcastLatency(
            floats: Self.broadcastFloats, messages: 120, codec: true, gap: 0.025)
        let raw = try RawTransport.broadcastLatency(
            floats: Self.broadcastFloats, messages: 120, codec: false, gap: 0.025)
        let megabytes = Double(Self.broadcastFloats * 4) / 1e6
        emit(
            String(
                format:
                    "distill Parameters: p50 %7.0f us (%6.0f MB/s), p99 %7.0f us; raw bytes: p50 %7.0f us (%6.0f MB/s), "
                    + "p99 %7.0f us; distill / raw = %.0f%% (aim >= 80%%)",
                broadcast.p50 * 1e6, megabytes / broadcast.p50, broadcast.p99 * 1e6, raw.p50 * 1e6, megabytes / raw.p50,
                raw.p99 * 1e6, 100 * raw.p50 / broadcast.p50))
        emit("load average at the end: \(Self.loadAverage())")
    }

    /// One `distill train` process on the same network and method, for about `steps` env steps:
    /// its env steps/s from the first metrics row on (without start-up, as the cluster's).
    func oneProcess(binary: URL, teacher: String, steps: UInt64, scratch: URL) throws -> Double {
        // A distilled CartPole student plays 500-step episodes after a few hundred short
        // iterations: 8 of them an iteration.
        try oneProcess(
            binary: binary, problem: Self.networkProblem + ["--teacher-file", teacher],
            iterations: steps / 4000 + 300, scratch: scratch)
    }

    /// One `distill train` process of `problem` for `iterations`: its env steps/s from the first
    /// metrics row on.
    func oneProcess(binary: URL, problem: [String], iterations: UInt64, scratch: URL) throws -> Double {
        let out = scratch.appendingPathComponent("train")
        let arguments =
            ["train"] + problem + [
                "--seed", String(seed), "--iterations", String(iterations), "--quiet", "--out", out.path,
            ]
        let status = try runChild(binary, arguments)
        let rows = (try? String(contentsOf: out.appendingPathComponent("metrics.csv"), encoding: .utf8))?
            .split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        guard status == 0, let rows, rows.count >= 3, let header = rows.first,
            let stepsColumn = header.firstIndex(of: "total_env_steps"),
            let secondsColumn = header.firstIndex(of: "wall_seconds"),
            let firstSteps = Double(rows[1][stepsColumn]), let firstSeconds = Double(rows[1][secondsColumn]),
            let lastSteps = rows.last.flatMap({ Double($0[stepsColumn]) }),
            let lastSeconds = rows.last.flatMap({ Double($0[secondsColumn]) }), lastSeconds > firstSeconds
        else {
            throw RuntimeError(
                "the one-process baseline failed (distill \(arguments.joined(separator: " ")) exited with \(status))",
                code: .childProcess)
        }
        let rate = (lastSteps - firstSteps) / (lastSeconds - firstSeconds)
        emit(
            String(
                format: "\nbaseline: one process, %.0f env steps in %.1f s: %.0f env steps/s", lastSteps, lastSeconds,
                rate)
                + " (distill \(arguments.joined(separator: " ")))")
        return rate
    }

    /// The gridworld bench with a network student (`--student`, on the 20×20 gridworld's image):
    /// distill cluster against one `distill train` process of the same network and method.
    static func gridworldNetworkProblem(student: String) -> [String] {
        [
            "--env", "gridworld", "--teacher", "q-learning", "--student", student, "--observation", "image", "--method",
            "on-policy-distill", "--optimiser", "adam", "--learning-rate", "0.003", "--episodes-per-iteration", "8",
        ]
    }

    func runGridworldNetworks(binary: URL, scratch: URL, student: String) throws {
        let steps = stepsPerRun
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let problem = Self.gridworldNetworkProblem(student: student)
        emit(
            "distill bench cluster: gridworld(seed=\(seed)) 20x20 as an image, q-learning teacher, student \(student), "
                + "on-policy-distill, adam 0.003, 8 episodes/iteration, \(steps) steps per run, "
                + "\(ProcessInfo.processInfo.activeProcessorCount) cores, load average \(Self.loadAverage())")
        emit(
            "(the wire carries state ids and the learner publishes the network's logits at every state: the actors "
                + "play that table and run no network; docs/networks.md)")
        // The gridworld's episodes are short (about 6 steps each on seed 1: it ends with probability
        // 0.1 a step, sooner at a terminal cell), 8 of them an iteration.
        let baseline = try oneProcess(
            binary: binary, problem: problem, iterations: steps / (8 * 6) + 50, scratch: scratch)

        emit("\n1. end to end (distill cluster) against one `distill train` process of the same network and method")
        emit(
            "actors   env steps/s   vs 1 process   updates/s   lag updates mean (max)   learner unroll   learner publish"
                + "   student/teacher")
        var rows: [NetworkRow] = []
        for count in actorCounts {
            let out = scratch.appendingPathComponent("actors-\(count)")
            let status = try runChild(
                binary,
                ["cluster"] + problem + [
                    "--seed", String(seed), "--actors", String(count), "--steps", String(steps), "--out", out.path,
                    "--no-plot",
                ])
            guard status == 0, let summary = try? RunSummary.read(out.appendingPathComponent("summary.json")) else {
                emit("\(count): the cluster run failed (status \(status)); logs were in \(out.path)/logs")
                continue
            }
            let row = NetworkRow(actors: count, summary: summary, teacher: [:])
            rows.append(row)
            let wall = summary.wallSeconds
            func percent(_ value: Double?) -> String {
                value.map { String(format: "%.1f%%", 100 * $0 / wall) } ?? "n/a"
            }
            emit(
                String(
                    format: "%6d %13.0f %13.1f%% %11.0f %17.2f (%4.0f)", count, summary.envStepsPerSecondLearning,
                    100 * summary.envStepsPerSecondLearning / baseline,
                    Double(summary.updates) / summary.learningSeconds, summary.meanPolicyLag, summary.maxPolicyLag)
                    + Self.right(percent(summary.learnerUnrollSeconds), 17)
                    + Self.right(percent(summary.learnerPublishSeconds), 18)
                    + Self.right(summary.studentToTeacherReturn.map { String(format: "%.3f", $0) } ?? "n/a", 18))
        }
        emit(
            "(rates over the learning span; learner unroll = decode + the network's update + its forward at every "
                + "state for each publication, publish = encode + send, as shares of the learner's wall clock; "
                + "student/teacher: exact returns)")
        emit("verdict: \(Self.verdict(rows))")
        emit("load average at the end: \(Self.loadAverage())")
    }

    /// The numbers of the last "teacher server status" line of a teacher's log (key=value pairs).
    static func lastTeacherStatus(_ log: URL) -> [String: Double] {
        guard let text = try? String(contentsOf: log, encoding: .utf8),
            let line = text.split(separator: "\n").last(where: { $0.contains("teacher server status") })
        else { return [:] }
        var values: [String: Double] = [:]
        for field in line.split(separator: " ") {
            let pair = field.split(separator: "=", maxSplits: 1)
            if pair.count == 2, let value = Double(pair[1]) { values[String(pair[0])] = value }
        }
        return values
    }

    /// Names the role that was busiest in the fastest run.
    static func verdict(_ rows: [NetworkRow]) -> String {
        guard let best = rows.max(by: { $0.summary.envStepsPerSecondLearning < $1.summary.envStepsPerSecondLearning })
        else { return "no cluster run finished" }
        let candidates: [(String, Double?)] = [
            ("the actors' environments", best.actorEnvironmentShare),
            ("the actors' student inference and teacher waits", best.actorInferenceShare),
            ("the learner (decode, update, publish)", best.learnerShare),
        ]
        guard
            let (name, share) = candidates.compactMap({ entry in entry.1.map { (entry.0, $0) } }).max(by: {
                $0.1 < $1.1
            })
        else { return "not measured (no heartbeat or learner timers in summary.json)" }
        let processes = best.actors + 2
        let cores = ProcessInfo.processInfo.activeProcessorCount
        return "with \(best.actors) actor(s) (the fastest run) the busiest role is \(name) "
            + String(format: "(%.0f%% of its wall clock)", 100 * share)
            + (processes > cores ? "; \(processes) processes share \(cores) cores, so the roles compete for CPU" : "")
    }

    static func right(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(1, width - text.count)) + text
    }

    static func loadAverage() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "unknown").split(separator: " ")
            .prefix(3).joined(separator: " ")
    }
}
