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

/// Distributed distillation of networks with real processes on 127.0.0.1 (issue 12): a CartPole
/// teacher network (trained here by `distill train`, as the README makes one) served by
/// `distill teacher --teacher-file`, two `distill actor --env cartpole --student mlp:64,64`, and a
/// `distill learner` training the student through the one learning step. The student must reach
/// 95 % of the teacher's mean return, as `distill eval` measures both. Then the failures of the
/// runtime on the network path: the learner killed with SIGKILL and resumed from its checkpoint
/// (versions continue), an actor killed (learning goes on), a swap between two network teachers,
/// and a swap to a teacher of another environment refused.
@Suite("network cluster processes", .serialized)
struct NetworkClusterTests {
    /// The run's flags (the README's CartPole distillation).
    static let method = [
        "--method", "on-policy-distill", "--optimiser", "adam", "--learning-rate", "0.001",
        "--episodes-per-iteration", "8",
    ]

    /// A CartPole teacher made as the README makes one (actor-critic, seed 2: mean return 500).
    static func trainTeacher(in directory: URL) throws -> URL {
        let out = directory.appendingPathComponent("teacher-run")
        let train = try ChildProcess([
            "train", "--env", "cartpole", "--student", "mlp:64,64", "--method", "actor-critic", "--optimiser", "adam",
            "--learning-rate", "0.001", "--critic-learning-rate", "1", "--episodes-per-iteration", "8",
            "--iterations", "2000", "--evaluate-every", "1000", "--seed", "2", "--out", out.path, "--quiet",
        ])
        let status = train.waitForExit(timeout: .seconds(600))
        guard status == 0 else {
            throw ChildProcessError(
                "distill train of the teacher failed (\(String(describing: status))):\n\(train.standardError.suffix(2000))"
            )
        }
        return out.appendingPathComponent("student.safetensors")
    }

    /// `distill eval`'s mean return of a network file on CartPole.
    static func meanReturn(_ file: URL) throws -> Double {
        let eval = try ChildProcess([
            "eval", "--student", file.path, "--env", "cartpole", "--episodes", "100", "--json",
        ])
        guard eval.waitForExit(timeout: .seconds(120)) == 0 else {
            throw ChildProcessError("distill eval failed:\n\(eval.standardError.suffix(2000))")
        }
        let object =
            try JSONSerialization.jsonObject(with: Data(eval.output.joined(separator: "\n").utf8)) as? [String: Any]
        guard let mean = object?["sampled_return"] as? Double else {
            throw ChildProcessError("distill eval printed no sampled_return: \(eval.output)")
        }
        return mean
    }

    static func learner(
        teacher: URL, out: URL, extra: [String], control: String = "tcp://127.0.0.1:*"
    ) throws -> (process: ChildProcess, control: String) {
        let process = try ChildProcess(
            [
                "learner", "--env", "cartpole", "--teacher-file", teacher.path, "--student", "mlp:64,64",
                "--bind-control", control, "--bind-unrolls", "tcp://127.0.0.1:*", "--bind-params",
                "tcp://127.0.0.1:*", "--out", out.path, "--metrics-interval", "0.2", "--evaluation-episodes", "100",
            ] + method + extra)
        return (process, try process.endpoint("control"))
    }

    static func actor(learner: String, teacher: String, id: String, seed: Int) throws -> ChildProcess {
        try ChildProcess([
            "actor", "--env", "cartpole", "--student", "mlp:64,64", "--environments", "16", "--learner", learner,
            "--teacher-server", teacher, "--id", id, "--actor-seed", "\(seed)", "--give-up-after", "60",
        ])
    }

    @Test func aCartPoleTeacherIsDistilledIntoANetworkStudentByTwoActorsAndALearner() async throws {
        try await onOwnThread {
            let directory = Roles.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let teacherFile = try Self.trainTeacher(in: directory)
            let server = try ChildProcess([
                "teacher", "--teacher-file", teacherFile.path, "--bind", "tcp://127.0.0.1:*",
            ])
            defer { server.stop() }
            let teacher = try server.endpoint("teacher")
            let out = directory.appendingPathComponent("run")
            let learner = try Self.learner(
                teacher: teacherFile, out: out,
                extra: ["--steps", "5000000", "--checkpoint-dir", out.appendingPathComponent("checkpoints").path])
            defer { learner.process.stop() }
            let actors = try (0..<2).map {
                try Self.actor(learner: learner.control, teacher: teacher, id: "actor-\($0)", seed: 10 + $0)
            }
            defer { for actor in actors { actor.stop() } }
            let status = learner.process.waitForExit(timeout: .seconds(600))
            #expect(status == 0, "\(learner.process.standardError.suffix(3000))")
            let summary = try #require(
                Roles.summary(in: out), "no summary:\n\(learner.process.standardError.suffix(3000))")
            // The learner's own evaluation (100 episodes of its student and of the teacher file).
            let ratio = try #require(summary.studentToTeacherReturn)
            print(
                "network cluster: student \(summary.studentReturn ?? .nan), teacher \(summary.teacherReturn ?? .nan), "
                    + "ratio \(ratio), \(summary.envSteps) env steps at \(Int(summary.envStepsPerSecondLearning)) steps/s, "
                    + "lag \(summary.meanPolicyLag) updates")
            #expect(summary.envSteps >= 5_000_000 && summary.actorsSeen == 2)
            // Where the time went (distill bench cluster --env cartpole): the actors' heartbeats and
            // the learner's timers reach the summary.
            #expect((summary.actorObservationSeconds ?? 0) > 0 && (summary.actorInferenceSeconds ?? 0) > 0)
            #expect((summary.learnerUnrollSeconds ?? 0) > 0 && (summary.learnerPublishSeconds ?? 0) > 0)
            #expect(ratio >= 0.95, "the student reached \(ratio) of the teacher's return")
            // And as a user checks it: the exported student against the teacher, by distill eval.
            let exported = directory.appendingPathComponent("student.safetensors")
            let export = try ChildProcess(["export", out.path, "--out", exported.path])
            #expect(export.waitForExit() == 0, "\(export.standardError)")
            let student = try Self.meanReturn(exported)
            let teacherReturn = try Self.meanReturn(teacherFile)
            #expect(student >= 0.95 * teacherReturn, "distill eval: student \(student), teacher \(teacherReturn)")
        }
    }

    /// A policy teacher file of a random `mlp:16` network of `description` (for the failure tests,
    /// where what matters is which teacher answers, not how well).
    static func randomTeacher(_ description: EnvironmentDescription, name: String, in directory: URL) throws -> URL {
        let network = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: "mlp:16"), inputShape: description.observation.shape,
            actionCount: description.actionCount, seed: 4)
        let file = directory.appendingPathComponent(name)
        try NetworkTeacher.save(
            network: network, kind: .policy, temperature: 1, observation: description.name,
            environment: .init(description), to: file, metadata: [:])
        return file
    }

    @Test func theNetworkPathSurvivesAnActorsDeathTeacherSwapsAndTheLearnersKill9() async throws {
        try await onOwnThread {
            let directory = Roles.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let fileA = try NetworkTeacherServerTests.teacherFile(in: directory)
            let fileB = directory.appendingPathComponent("second-teacher.safetensors")
            try FileManager.default.copyItem(at: fileA, to: fileB)
            let acrobotFile = try Self.randomTeacher(
                Acrobot().description, name: "acrobot-teacher.safetensors", in: directory)
            var servers: [ChildProcess] = []
            defer { for server in servers { server.stop() } }
            func serve(_ file: URL) throws -> String {
                let server = try ChildProcess(["teacher", "--teacher-file", file.path, "--bind", "tcp://127.0.0.1:*"])
                servers.append(server)
                return try server.endpoint("teacher")
            }
            let teacherA = try serve(fileA)
            let teacherB = try serve(fileB)
            let teacherAcrobot = try serve(acrobotFile)

            let out = directory.appendingPathComponent("run")
            let flags = [
                "--checkpoint-dir", out.appendingPathComponent("checkpoints").path, "--checkpoint-interval", "0.3",
            ]
            var learner = try Self.learner(teacher: fileA, out: out, extra: flags)
            defer { learner.process.stop() }
            let actors = try (0..<2).map {
                try Self.actor(learner: learner.control, teacher: teacherA, id: "actor-\($0)", seed: 20 + $0)
            }
            defer { for actor in actors { actor.stop() } }
            func version(_ control: String) -> Double { Roles.number(Roles.status(control), \.version) }
            #expect(Roles.waitUntil(timeout: 60) { version(learner.control) >= 20 } != nil, "no learning")

            // An actor dies: the other one keeps the student learning.
            kill(actors[0].pid, SIGKILL)
            #expect(
                Roles.waitUntil(timeout: 30) { Roles.number(Roles.status(learner.control), \.actorsAlive) == 1 } != nil)
            let afterDeath = version(learner.control)
            #expect(Roles.waitUntil(timeout: 30) { version(learner.control) >= afterDeath + 10 } != nil)

            // A swap to a teacher of another environment is refused with the reason...
            let refused = try ChildProcess([
                "control", "swap-teacher", "--learner", learner.control, "--run-dir", out.path, "--to", teacherAcrobot,
            ])
            #expect(refused.waitForExit() != 0)
            #expect(refused.standardError.contains("Acrobot"), "\(refused.standardError)")
            // ...and one to the second CartPole teacher moves the actor to it.
            let swap = try ChildProcess([
                "control", "swap-teacher", "--learner", learner.control, "--run-dir", out.path, "--to", teacherB,
            ])
            #expect(swap.waitForExit() == 0, "\(swap.standardError)")
            #expect(
                Roles.waitUntil(timeout: 30) {
                    (Roles.status(learner.control)?.teacherID ?? "").contains("second-teacher")
                } != nil, "\(Roles.status(learner.control)?.teacherID ?? "no status")")

            // The learner is killed; a new one resumes its newest checkpoint and versions continue.
            kill(learner.process.pid, SIGKILL)
            _ = learner.process.waitForExit()
            let store = try CheckpointStore(directory: out.appendingPathComponent("checkpoints"))
            let durable = try #require(try store.latest()).checkpoint.version
            #expect(durable >= 20)
            // On the same control port: the surviving actor's Hellos find it there.
            learner = try Self.learner(
                teacher: fileA, out: out, extra: flags + ["--resume"], control: learner.control)
            #expect(
                Roles.waitUntil(timeout: 60) { version(learner.control) >= Double(durable) + 10 } != nil,
                "the resumed learner did not go on from version \(durable):\n\(learner.process.standardError.suffix(3000))"
            )
            #expect(learner.process.standardError.contains("resumed from checkpoint"))
            #expect(Roles.number(Roles.status(learner.control), \.resumedFromVersion) == Double(durable))
            #expect(actors[1].isRunning, "the surviving actor came back to the new learner")
        }
    }
}
