import DistillCore
import DistillNN
import DistillRuntime
import DistillTestSupport
import DistillWire
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Network students on gridworlds with real processes on 127.0.0.1 (issue 12, item 7): one learner,
/// two 10×10 gridworlds, each with its own Q-learning teacher server, and actors assigned to tasks.
/// Both student designs — the task as input, one head per task — reach 90 % of each teacher's
/// return over chance, as tasks.csv and summary.json report per task; those figures are recomputed
/// here from the final checkpoint and the teachers built afresh. An actor given another task's
/// teacher server has every unroll refused, and a swap is refused. And a convolutional student on one
/// gridworld's image, with a tabular run's actors and teacher server.
@Suite("multi-task cluster processes", .serialized)
struct MultitaskClusterTests {
    /// The problem: two small gridworlds with a terminal reward to find in most of them.
    static let problem = [
        "--env", "gridworld", "--grid-size", "10", "--terminal-probability", "0.03", "--tasks", "1,2",
    ]
    /// Rusu's setting: the teacher plays, the student descends KL(teacher ‖ student).
    static let method = [
        "--method", "teacher-distill-kl", "--control", "teacher", "--optimiser", "adam", "--learning-rate", "0.01",
    ]

    @Test(arguments: ["mlp:64", "mlp:64/heads:2"])
    func bothStudentDesignsReachNinetyPercentOfEachTeacher(student: String) async throws {
        let out = Roles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: out) }
        let (status, errors) = try await onOwnThread { () -> (Int32?, String) in
            let cluster = try ChildProcess(
                ["cluster"] + Self.problem + Self.method + [
                    "--student", student, "--actors", "2", "--steps", "300000", "--out", out.path, "--no-plot",
                ])
            let status = cluster.waitForExit(timeout: .seconds(300))
            return (status, cluster.standardError + cluster.output.joined(separator: "\n"))
        }
        #expect(status == 0, "distill cluster exited with \(String(describing: status)): \(errors.suffix(2000))")
        let summary = try #require(Roles.summary(in: out), "\(errors.suffix(2000))")
        let tasks = try #require(summary.tasks, "summary.json of a multi-task run lists its tasks")
        #expect(tasks.map(\.task) == [0, 1])
        #expect(summary.messagesRejected == 0, "every unroll lay in its teacher's task")

        // The teachers built afresh: each task's gridworld and Q-learning teacher, evaluated exactly.
        let configuration = try RunConfiguration.read(from: out.appendingPathComponent("config.json").path)
        let architecture = try NetworkArchitecture(parsing: student)
        let store = try CheckpointStore(directory: out.appendingPathComponent("checkpoints"))
        let checkpoint = try #require(try store.latest()).checkpoint
        #expect(checkpoint.version == summary.version, "the final checkpoint is the summary's version")
        let union = try MultitaskGridworlds(
            [UInt64(1), 2].map { seed -> Environment in
                var spec = EnvironmentSpec()
                (spec.gridworld.size, spec.gridworld.terminalProbability, spec.seed) = (10, 0.03, seed)
                return try spec.build()
            })
        let label: MultitaskGridworlds.TaskLabel = architecture.heads == 2 ? .headSelector : .input
        let (rows, shape) = try union.observationTable(ObservationKind.image, label: label, architecture: architecture)
        let network = try PolicyValueNetwork(architecture: architecture, inputShape: shape, actionCount: 4, seed: 0)
        network.parameters = checkpoint.parameters.map(Float.init)
        let policy = networkPolicyTable(network, rows: rows)
        for (k, task) in tasks.enumerated() {
            let environment = union.tasks[k]
            var teacherSpec = configuration.teacher
            teacherSpec.seed = UInt64(k + 1)
            let teacher = try teacherSpec.build(for: environment)
            #expect(task.teacher == "task \(k): \(teacher.identity)")
            let teacherReturn = try PolicyEvaluation.expectedReturn(environment.mdp, policy: teacher.probabilities)
            let studentReturn = try PolicyEvaluation.expectedReturn(
                environment.mdp, policy: union.rows(policy, task: k, width: 4))
            #expect(abs(task.teacherReturn - teacherReturn) < 1e-9, "task \(k)'s teacher return")
            #expect(
                abs((task.studentReturn ?? .nan) - studentReturn) < 1e-5,
                "task \(k): reported \(String(describing: task.studentReturn)), recomputed \(studentReturn)")
            let share = try #require(task.teacherShare, "task \(k)'s teacher is better than chance")
            #expect(
                share >= 0.9,
                "\(student), task \(k): \(share) of the teacher's return over chance; logs:\n\(Self.logTails(out))")
        }

        // tasks.csv: one row per task for every metrics row.
        let metrics = try MetricsRow.rows(
            csv: String(contentsOf: out.appendingPathComponent("metrics.csv"), encoding: .utf8))
        let lines = try String(contentsOf: out.appendingPathComponent("tasks.csv"), encoding: .utf8)
            .split(separator: "\n")
        #expect(lines.first?.hasPrefix("seconds,env_steps,version,task,student_return") == true)
        #expect(lines.count - 1 == 2 * metrics.count, "\(lines.count - 1) task rows for \(metrics.count) metrics rows")
        let last = lines.suffix(2).map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        #expect(last.map { $0[3] } == ["0", "1"])
        for (k, cells) in last.enumerated() {
            #expect(Double(cells[4]).map { abs($0 - (tasks[k].studentReturn ?? .nan)) < 1e-9 } == true)
        }
    }

    /// A convolutional student on one gridworld's image (the docs' image recipe) with the tabular
    /// run's teacher server and actors: it keeps 95 % of the teacher's return over chance, and the
    /// learner's exact return is the final checkpoint's network evaluated here.
    @Test func aConvolutionalStudentOnOneGridworldLearnsOnTheCluster() async throws {
        let out = Roles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: out) }
        let (status, errors) = try await onOwnThread { () -> (Int32?, String) in
            let cluster = try ChildProcess(
                [
                    "cluster", "--env", "gridworld", "--seed", "1", "--grid-size", "10", "--terminal-probability",
                    "0.03", "--student", "conv:8x3/mlp:64", "--observation", "image", "--method", "teacher-distill-kl",
                    "--control", "teacher", "--optimiser", "adam", "--learning-rate", "0.003", "--actors", "2",
                    "--steps", "300000", "--out", out.path, "--no-plot",
                ])
            let status = cluster.waitForExit(timeout: .seconds(300))
            return (status, cluster.standardError + cluster.output.joined(separator: "\n"))
        }
        #expect(status == 0, "distill cluster exited with \(String(describing: status)): \(errors.suffix(2000))")
        let summary = try #require(Roles.summary(in: out), "\(errors.suffix(2000))")
        let configuration = try RunConfiguration.read(from: out.appendingPathComponent("config.json").path)
        #expect(configuration.student.architecture == "conv:8x3/mlp:64" && configuration.student.observation == "image")
        let environment = try configuration.environment.build()
        let student = try configuration.student.buildNetwork(for: environment, method: configuration.method)
        let store = try CheckpointStore(directory: out.appendingPathComponent("checkpoints"))
        let checkpoint = try #require(try store.latest()).checkpoint
        #expect(checkpoint.version == summary.version)
        student.network.parameters = checkpoint.parameters.map(Float.init)
        let recomputed = try PolicyEvaluation.expectedReturn(environment.mdp, policy: student.stateTable())
        let reported = try #require(summary.studentReturn)
        #expect(abs(reported - recomputed) < 1e-5, "reported \(reported), recomputed \(recomputed)")
        let teacher = try PolicyEvaluation.expectedReturn(
            environment.mdp, policy: try configuration.teacher.build(for: environment).probabilities)
        #expect(abs((summary.teacherReturn ?? .nan) - teacher) < 1e-9)
        let uniform = try PolicyEvaluation.expectedReturn(
            environment.mdp, policy: [Double](repeating: 0.25, count: environment.mdp.stateCount * 4))
        #expect(teacher - uniform > 1, "a teacher clearly better than chance")
        #expect(
            (recomputed - uniform) / (teacher - uniform) >= 0.95,
            "student \(recomputed), teacher \(teacher), uniform \(uniform)")
        // distill export writes the network as a teacher file of the gridworld's image, and distill eval
        // of that file gives the same exact return.
        let file = out.appendingPathComponent("student.safetensors")
        let evaluated = try await onOwnThread { () -> Double? in
            let export = try ChildProcess(["export", out.path, "--out", file.path])
            guard export.waitForExit(timeout: .seconds(60)) == 0 else { return nil }
            let eval = try ChildProcess(
                [
                    "eval", "--student", file.path, "--env", "gridworld", "--seed", "1", "--grid-size", "10",
                    "--terminal-probability", "0.03", "--episodes", "10", "--json",
                ])
            guard eval.waitForExit(timeout: .seconds(60)) == 0 else { return nil }
            let object = try JSONSerialization.jsonObject(with: Data(eval.output.joined(separator: "\n").utf8))
            return (object as? [String: Any])?["exact_return"] as? Double
        }
        let exported = try #require(evaluated, "distill export and distill eval of the run's student")
        #expect(abs(exported - recomputed) < 1e-5, "distill eval of the exported student: \(exported)")
    }

    /// The last lines of each role's log in a cluster run's directory (for a failure's message).
    static func logTails(_ out: URL) -> String {
        let logs = out.appendingPathComponent("logs")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: logs.path).sorted()) ?? []
        return names.map { name in
            let text = (try? String(contentsOf: logs.appendingPathComponent(name), encoding: .utf8)) ?? ""
            return "== \(name)\n" + text.split(separator: "\n").suffix(6).joined(separator: "\n")
        }.joined(separator: "\n")
    }

    /// An actor of task 0 sent to task 1's teacher server: each of its unrolls names task 1's
    /// teacher with task 0's states, and is refused with the reason, while an actor of task 1 with
    /// its own teacher is learned from; a swap is refused.
    @Test func anActorWithAnotherTasksTeacherIsRefused() async throws {
        let out = Roles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: out) }
        let outcome = try await onOwnThread {
            () -> (learned: Double, rejected: Double, log: String, swap: (Int32?, String)) in
            let teachers = try (0..<2).map { k in
                let process = try ChildProcess(
                    ["teacher"] + Self.problem + ["--task", "\(k)", "--bind", "tcp://127.0.0.1:*"])
                return (process, try process.endpoint("teacher"))
            }
            let learner = try ChildProcess(
                ["learner"] + Self.problem + Self.method + [
                    "--student", "mlp:64", "--bind-control", "tcp://127.0.0.1:*", "--bind-unrolls",
                    "tcp://127.0.0.1:*", "--bind-params", "tcp://127.0.0.1:*", "--metrics-interval", "0.2", "--out",
                    out.path,
                ])
            let control = try learner.endpoint("control")
            func actor(task: Int, teacher: Int, id: String) throws -> ChildProcess {
                try ChildProcess(
                    ["actor"] + Self.problem + [
                        "--task", "\(task)", "--learner", control, "--teacher-server", teachers[teacher].1, "--id", id,
                        "--give-up-after", "30",
                    ])
            }
            let wrong = try actor(task: 0, teacher: 1, id: "wrong")
            let right = try actor(task: 1, teacher: 1, id: "right")
            Roles.waitUntil(timeout: 60) {
                let status = Roles.status(control)
                return Roles.number(status, \.rejected) >= 3 && Roles.number(status, \.version) >= 10
            }
            let status = Roles.status(control)
            let swap = try ChildProcess([
                "control", "swap-teacher", "--learner", control, "--run-dir", out.path, "--to", teachers[0].1,
            ])
            let swapStatus = swap.waitForExit(timeout: .seconds(30))
            for process in [wrong, right, learner] + teachers.map(\.0) {
                process.send(signal: SIGTERM)
                _ = process.waitForExit(timeout: .seconds(30))
            }
            return (
                Roles.number(status, \.version), Roles.number(status, \.rejected), learner.standardError,
                (swapStatus, swap.standardError)
            )
        }
        #expect(outcome.learned >= 10, "the actor of task 1 with its own teacher is learned from")
        #expect(outcome.rejected >= 3, "the misassigned actor's unrolls are refused")
        #expect(
            outcome.log.contains("names task 1's teacher but visits state"),
            "the reason is logged: \(outcome.log.suffix(1500))"
        )
        #expect(outcome.swap.0 != 0, "a swap is refused")
        #expect(outcome.swap.1.contains("one teacher per task"), "\(outcome.swap.1)")
    }
}
