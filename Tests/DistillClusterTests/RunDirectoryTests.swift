import DistillCore
import DistillRuntime
import DistillTestSupport
import DistillWire
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Output directories: resuming is explicit, one run per directory, config.json reproduces a run.
@Suite("Runs and output directories", .serialized)
struct RunDirectoryTests {
    static let problem = ["--env", "gridworld", "--seed", "1", "--grid-size", "6", "--teacher", "optimal"]

    @Test func clusterRefusesAnExistingRunUnlessResumeAndADifferentConfigurationEvenThen() throws {
        let out = Roles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: out) }
        let configFile = out.appendingPathComponent("config.json")
        #expect(try Ran(["cluster"] + Self.problem + ["--write-config", configFile.path]).status == 0)
        let before = try String(contentsOf: configFile, encoding: .utf8)

        let again = try Ran(["cluster"] + Self.problem + ["--out", out.path])
        #expect(again.status == 1)
        let line = again.err.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!line.contains("\n"), "not one line: \(line)")
        #expect(line.contains("already holds a run") && line.contains("--resume"), "\(line)")

        var other = Self.problem
        other[3] = "2"
        let different = try Ran(["cluster"] + other + ["--out", out.path, "--resume"])
        #expect(different.status == 1)
        let message = different.err.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!message.contains("\n"), "not one line: \(message)")
        #expect(message.contains("environment.seed (1 → 2)"), "\(message)")
        #expect(message.contains("--config \(configFile.path) --resume"), "\(message)")
        #expect(!message.contains("--checkpoint-dir"), "suggests a flag cluster lacks: \(message)")
        #expect(message.count < 400, "\(message.count) characters")
        #expect(try String(contentsOf: configFile, encoding: .utf8) == before, "config.json was overwritten")
    }

    @Test func aSecondRunInTheSameDirectoryFailsAtOnceNamingTheHoldersPID() throws {
        let out = Roles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: out) }
        let lock = out.appendingPathComponent(".lock").path
        let fd = open(lock, O_RDWR | O_CREAT, 0o644)
        defer { close(fd) }
        #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
        _ = "424242\n".withCString { write(fd, $0, 7) }
        let started = Date()
        let ran = try Ran(["cluster"] + Self.problem + ["--out", out.path])
        #expect(ran.status == 1)
        #expect(ran.err.contains("in use by another run (PID 424242)"), "\(ran.err)")
        #expect(Date().timeIntervalSince(started) < 10)
        let train = try Ran(["train", "--env", "chain", "--teacher", "optimal", "--iterations", "1", "--out", out.path])
        #expect(train.err.contains("PID 424242"), "\(train.err)")
    }

    @Test func learnerRefusesACheckpointDirectoryWithARunUnlessResumeAndRecordsVersionCommitAndCommandLine() throws {
        let directory = Roles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let checkpoints = directory.appendingPathComponent("checkpoints").path
        let flags =
            Self.problem + [
                "--bind-control", "tcp://127.0.0.1:*", "--bind-unrolls", "tcp://127.0.0.1:*", "--bind-params",
                "tcp://127.0.0.1:*", "--checkpoint-dir", checkpoints, "--out", directory.path,
            ]
        let first = try ChildProcess(["learner"] + flags)
        _ = try first.endpoint("control")
        // A second learner on the same directory, while the first holds it.
        let second = try Ran(["learner"] + flags + ["--resume"])
        #expect(second.status == 1)
        #expect(second.err.contains("in use by another run (PID \(first.pid))"), "\(second.err)")
        first.send(signal: SIGTERM)
        #expect(first.waitForExit() == 0)

        let summary = try RunSummary.read(directory.appendingPathComponent("summary.json"))
        #expect(summary.distillVersion == BuildInfo.version)
        #expect(!summary.gitCommit.isEmpty)
        #expect(summary.commandLine.contains("--checkpoint-dir"))

        // A checkpoint whose configuration is in the old synthesised form still resumes.
        let store = try CheckpointStore(directory: URL(fileURLWithPath: checkpoints))
        var old = try #require(try store.latest()).checkpoint
        #expect(old.configurationJSON.contains(#""lambda":{"constant":1}"#), "\(old.configurationJSON)")
        old.configurationJSON = old.configurationJSON.replacingOccurrences(
            of: #""lambda":{"constant":1}"#, with: #""lambda":{"constant":{"_0":1}}"#)
        old.version += 1
        _ = try store.write(old, sender: .starting(role: .learner, id: "test"))
        let fromOld = try ChildProcess(["learner"] + flags + ["--resume"])
        _ = try fromOld.endpoint("control")
        fromOld.send(signal: SIGTERM)
        #expect(fromOld.waitForExit() == 0, "\(fromOld.standardError)")

        let refused = try Ran(["learner"] + flags)
        #expect(refused.status == 1)
        #expect(refused.err.contains("already holds a run") && refused.err.contains("--resume"), "\(refused.err)")
        var other = flags
        other[3] = "2"
        let different = try Ran(["learner"] + other + ["--resume"])
        #expect(different.status == 1)
        #expect(different.err.contains("environment.seed (1 → 2)"), "\(different.err)")

        let resumed = try ChildProcess(["learner"] + flags + ["--resume"])
        _ = try resumed.endpoint("control")
        resumed.send(signal: SIGTERM)
        #expect(resumed.waitForExit() == 0)
        #expect(resumed.standardError.contains("resuming the run in"), "\(resumed.standardError)")
        // metrics.csv's seconds continue across the resume.
        let rows = try MetricsRow.rows(
            csv: String(contentsOf: directory.appendingPathComponent("metrics.csv"), encoding: .utf8)
        ).map(\.seconds)
        #expect(rows.count >= 2)
        #expect(zip(rows, rows.dropFirst()).allSatisfy { $0 <= $1 }, "\(rows)")
    }

    @Test func trainsConfigReproducesItsRun() throws {
        let directory = Roles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let a = directory.appendingPathComponent("a").path
        let b = directory.appendingPathComponent("b").path
        #expect(
            try Ran([
                "train", "--env", "chain", "--teacher", "optimal", "--method", "on-policy-distill", "--control",
                "mixture", "--beta-end", "0.1",
                "--seed", "4", "--iterations", "20", "--quiet", "--out", a,
            ]).status == 0)
        let again = try Ran(["train", "--config", a + "/config.json", "--quiet", "--out", b])
        #expect(again.status == 0, "\(again.err)")
        func table(_ path: String) throws -> [String] {
            // Every column but the last (wall seconds).
            try String(contentsOfFile: path + "/metrics.csv", encoding: .utf8).split(separator: "\n").map {
                $0.split(separator: ",", omittingEmptySubsequences: false).dropLast().joined(separator: ",")
            }
        }
        #expect(try table(a) == table(b))
        let config = try String(contentsOfFile: a + "/config.json", encoding: .utf8)
        #expect(!config.contains("_0"), "encoding leftovers: \(config)")
        #expect(config.contains("\"linear\""))
    }

    @Test func clusterTakesConfig() throws {
        let directory = Roles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("run.json").path
        #expect(try Ran(["cluster"] + Self.problem + ["--write-config", file]).status == 0)
        let copy = directory.appendingPathComponent("copy.json").path
        let ran = try Ran(["cluster", "--config", file, "--write-config", copy])
        #expect(ran.status == 0, "\(ran.err)")
        #expect(try String(contentsOfFile: file, encoding: .utf8) == String(contentsOfFile: copy, encoding: .utf8))
        // Only what applies: a chain run with an optimal teacher carries no gridworld or Q-learning knobs.
        let chain = directory.appendingPathComponent("chain.json").path
        #expect(try Ran(["cluster", "--env", "chain", "--teacher", "optimal", "--write-config", chain]).status == 0)
        let text = try String(contentsOfFile: chain, encoding: .utf8)
        for absent in ["gridworld", "qLearning", "randomStates", "beta", "rusuTemperature"] {
            #expect(!text.contains(absent), "\(absent) in \(text)")
        }
        let read = try RunConfiguration.read(from: chain)
        #expect(read.environment.kind == .chain && read.teacher.kind == .optimal)
    }
}

/// Plain JSON for schedules, the old synthesised form still read; units in the progress line.
@Suite("Configuration JSON and progress")
struct ConfigurationFormTests {
    @Test func schedulesHaveAPlainJSONFormAndTheOldOneIsStillRead() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        func json(_ schedule: Schedule) throws -> String {
            String(decoding: try encoder.encode(schedule), as: UTF8.self)
        }
        #expect(try json(.constant(0.5)) == #"{"constant":0.5}"#)
        #expect(try json(.linear(start: 1, end: 0, steps: 1000)) == #"{"linear":{"from":1,"steps":1000,"to":0}}"#)
        for (text, expected) in [
            (#"{"constant":{"_0":0.5}}"#, Schedule.constant(0.5)), ("0.25", .constant(0.25)),
            (#"{"linear":{"start":1,"end":0,"steps":10}}"#, .linear(start: 1, end: 0, steps: 10)),
            (#"{"exponential":{"initial":1,"decay":0.9}}"#, .exponential(initial: 1, decay: 0.9)),
        ] {
            #expect(try JSONDecoder().decode(Schedule.self, from: Data(text.utf8)) == expected, "\(text)")
        }
        for schedule in [
            Schedule.constant(2), .linear(start: 1, end: 0.5, steps: 3), .exponential(initial: 1, decay: 0.5),
        ] {
            #expect(try JSONDecoder().decode(Schedule.self, from: encoder.encode(schedule)) == schedule)
        }
    }

    @Test func progressLineGivesTheLagsUnitAndNoNegativeShareOfTheTeacher() {
        var status = LearnerStatus()
        (status.envSteps, status.updates, status.version, status.stepsPerSecond) = (40_000, 1000, 1000, 5000)
        (status.studentReturn, status.teacherReturn) = (-0.5, 9.5)
        (status.meanLag, status.maxLag, status.actorsAlive) = (13.1, 41, 2)
        let line = Launcher.progressLine(status, elapsed: 3, actors: 2, startReturn: -1.5)
        #expect(line.contains("lag 13.1 updates (max 41) ≈ 524 env steps"), "\(line)")
        #expect(line.contains("return -0.500 / teacher 9.500 (9% of the way from -1.500)"), "\(line)")
        #expect(!line.contains("(-"), "\(line)")
    }
}
