import DistillRuntime
import DistillTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `--give-up-after`: a role whose peers are gone ends by itself with status 75, so a cluster
/// engine (Slurm's --kill-on-bad-exit) ends the job instead of letting it wait forever.
/// Real processes on 127.0.0.1; the lost peer is killed with SIGKILL.
@Suite("Giving up on lost peers", .serialized)
struct GiveUpTests {
    /// The status `--give-up-after` exits with (EX_TEMPFAIL).
    static let giveUpStatus: Int32 = 75

    struct Outcome: Sendable {
        var status: Int32?
        var seconds = -1.0
        var stderr = ""
        /// summary.json's `stopped_because` and `version`.
        var stoppedBecause = ""
        var summaryVersion = -1.0
        var checkpoints = 0
        var notes: [String: Double] = [:]
    }

    /// Waits for `process` to exit; returns its status and the seconds since `since`.
    static func exit(of process: ChildProcess, since: Date, timeout: Duration) -> (Int32?, Double) {
        let status = process.waitForExit(timeout: timeout)
        return (status, Date().timeIntervalSince(since))
    }

    @Test func actorWhoseLearnerIsGoneExitsWithStatus75AfterTheGiveUpTime() async throws {
        let outcome = try await onOwnThread {
            var outcome = Outcome()
            let (teacher, teacherEndpoint) = try Roles.teacher()
            let learner = try Roles.learner()
            let actor = try Roles.actor(
                learner: learner.control, teacher: teacherEndpoint, id: "abandoned", extra: ["--give-up-after", "2"])
            defer { for process in [actor, learner.process, teacher] { process.stop() } }
            Roles.waitUntil(timeout: 60) { Roles.number(Roles.status(learner.control), \.version) > 20 }
            // Longer than the give-up time while the learner lives: it does not give up early.
            usleep(2_500_000)
            outcome.notes["actor running while the learner lives"] = actor.isRunning ? 1 : 0
            learner.process.send(signal: SIGKILL)
            _ = learner.process.waitForExit()
            (outcome.status, outcome.seconds) = Self.exit(of: actor, since: Date(), timeout: .seconds(60))
            outcome.stderr = actor.standardError
            return outcome
        }
        print(
            "give-up: the actor exited with status \(outcome.status ?? -1) \(outcome.seconds) s after its learner died")
        #expect(outcome.notes["actor running while the learner lives"] == 1)
        #expect(outcome.status == Self.giveUpStatus, "\(outcome.stderr.suffix(1500))")
        // 2 s of silence (the last heartbeat answer may be up to 0.5 s old), then a clean stop.
        // The upper bound is generous (a loaded 2-core machine is slow to schedule); the measured
        // time is printed above. Giving up early (the lower bound) is the behaviour under test.
        #expect(outcome.seconds >= 1.4 && outcome.seconds <= 30, "exited \(outcome.seconds) s after the learner died")
        #expect(outcome.stderr.contains("no message from the learner"), "\(outcome.stderr.suffix(1500))")
    }

    @Test func learnerWithoutLiveActorsWritesItsSummaryAndCheckpointThenExitsWithStatus75() async throws {
        let outcome = try await onOwnThread {
            var outcome = Outcome()
            let directory = Roles.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let (teacher, teacherEndpoint) = try Roles.teacher()
            let learner = try Roles.learner(extra: [
                "--give-up-after", "2", "--actor-timeout-ms", "1000", "--out", directory.path, "--checkpoint-dir",
                directory.appendingPathComponent("checkpoints").path,
            ])
            let actor = try Roles.actor(learner: learner.control, teacher: teacherEndpoint, id: "lost")
            defer { for process in [actor, learner.process, teacher] { process.stop() } }
            Roles.waitUntil(timeout: 60) { Roles.number(Roles.status(learner.control), \.version) > 20 }
            usleep(2_500_000)
            outcome.notes["learner running while an actor lives"] = learner.process.isRunning ? 1 : 0
            outcome.notes["version before"] = Roles.number(Roles.status(learner.control), \.version)
            actor.send(signal: SIGKILL)
            _ = actor.waitForExit()
            (outcome.status, outcome.seconds) = Self.exit(of: learner.process, since: Date(), timeout: .seconds(60))
            outcome.stderr = learner.process.standardError
            let summary = Roles.summary(in: directory)
            outcome.stoppedBecause = summary?.stoppedBecause ?? "(no summary.json)"
            outcome.summaryVersion = summary.map { Double($0.version) } ?? -1
            outcome.checkpoints =
                (try? FileManager.default.contentsOfDirectory(
                    atPath: directory.appendingPathComponent("checkpoints").path))?.count ?? 0
            return outcome
        }
        print(
            "give-up: the learner exited with status \(outcome.status ?? -1) \(outcome.seconds) s after its actor died")
        #expect(outcome.notes["learner running while an actor lives"] == 1)
        #expect(outcome.status == Self.giveUpStatus, "\(outcome.stderr.suffix(1500))")
        // Alone from the last sweep (every 0.5 s) that still found it alive: its heartbeats (every
        // 0.5 s) keep it alive for 1 s; then 2 s alone.
        #expect(outcome.seconds >= 1.9 && outcome.seconds <= 30, "exited \(outcome.seconds) s after the actor died")
        #expect(outcome.stoppedBecause.hasPrefix("gave up: no actor has been alive"), "\(outcome.stoppedBecause)")
        #expect(
            outcome.summaryVersion >= outcome.notes["version before", default: 1], "the summary holds the final version"
        )
        #expect(outcome.checkpoints >= 1, "the final checkpoint is written before giving up")
    }

    @Test func teacherServesLiveActorsWithFullCachesAndGivesUpOnceNoneIsLeft() async throws {
        let outcome = try await onOwnThread {
            var outcome = Outcome()
            let (teacher, teacherEndpoint) = try Roles.teacher(extra: ["--give-up-after", "3"])
            let learner = try Roles.learner()
            let actor = try Roles.actor(learner: learner.control, teacher: teacherEndpoint, id: "cached")
            defer { for process in [actor, learner.process, teacher] { process.stop() } }
            Roles.waitUntil(timeout: 60) { Roles.number(Roles.status(learner.control), \.version) > 20 }
            // The 10x10 gridworld's states are all cached within a second; the actor's keep-alive
            // queries must hold the teacher up for longer than its give-up time.
            usleep(5_000_000)
            outcome.notes["teacher running while an actor lives"] = teacher.isRunning ? 1 : 0
            actor.send(signal: SIGKILL)
            _ = actor.waitForExit()
            (outcome.status, outcome.seconds) = Self.exit(of: teacher, since: Date(), timeout: .seconds(60))
            outcome.stderr = teacher.standardError
            return outcome
        }
        print(
            "give-up: the teacher exited with status \(outcome.status ?? -1) \(outcome.seconds) s after its actor died")
        #expect(outcome.notes["teacher running while an actor lives"] == 1, "\(outcome.stderr.suffix(1500))")
        #expect(outcome.status == Self.giveUpStatus, "\(outcome.stderr.suffix(1500))")
        // The last keep-alive is at most 2 s old when the actor dies.
        #expect(outcome.seconds >= 0.9 && outcome.seconds <= 30, "exited \(outcome.seconds) s after the actor died")
    }
}
