import DistillCore
import DistillExperiments
import Foundation
import Testing

/// The `--quick` presets of the network-student experiments (issue 13), run in-process, each
/// finding asserted with a 95 % interval over seeds (runs of one replicate share the student's
/// initial weights and sampling seed; the teacher is one network trained by the experiment).
@Suite(.serialized) struct NetworkQuickPresetTests {
    func run(_ name: ExperimentName) throws -> [Finding] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("experiment-\(name)-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let parameters = ExperimentParameters.preset(name, quick: true)
        try ExperimentDirectory.prepare(parameters, directory: directory)
        let experiment = try Experiment.make(parameters)
        let started = Date()
        try ExperimentRunner(experiment: experiment, directory: directory, workers: 2).run(experiment.runs) { _ in }
        let results = try ExperimentResults.load(experiment, directory: directory)
        #expect(results.count == experiment.runs.count)
        // The teacher was trained once and cached in the run directory.
        let teachers =
            (try? FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("teachers").path))
            ?? []
        #expect(teachers.filter { $0.hasSuffix(".safetensors") }.count <= 1)
        let findings = try ExperimentDirectory.summarise(results, directory: directory)
        print(
            "\(name) quick: \(experiment.runs.count) runs in \(String(format: "%.1f", Date().timeIntervalSince(started))) s"
        )
        for f in findings { print("  [\(f.verdict)] \(f.name): \(f.measured)") }
        return findings
    }

    func finding(_ findings: [Finding], prefix: String) throws -> Finding {
        try #require(findings.first { $0.name.hasPrefix(prefix) }, "finding '\(prefix)…'")
    }

    @Test func kickstartingReachesTheScratchReturnSoonerAndEndsAbove() throws {
        let findings = try run(.kickstart)
        let f = try finding(findings, prefix: "steps to the scratch agent's final return")
        // log10(scratch steps / kickstarting steps) to each seed's scratch final return, paired:
        // its 95 % CI lies above 0 (kickstarting gets there sooner).
        #expect(f.values["log10_speedup_to_scratch_final_kickstarting_low"]! > 0)
        // (final kickstarting − final scratch) / |final scratch|, paired: its 95 % CI lies above 0.
        let g = try finding(findings, prefix: "final return")
        #expect(g.values["final_gain_kickstarting_low"]! > 0)
    }

    @Test func compressionQuarterStudentKeepsTheTeachersReturn() throws {
        let findings = try run(.compression)
        let prefix = "share of the teacher's return by size, gridworld one-hot (teacher mlp:64,64), "
        for setting in ["teacher-driven", "student-driven", "replay (Rusu's setting)"] {
            let f = try finding(findings, prefix: prefix + setting)
            // The ~1/4 student distilled with KL (τ = 0.01) keeps ≥ 90 % of the teacher's return: the
            // lower end of the 95 % CI over seeds of its share. In Rusu's setting too (measured:
            // 98.8 ± 1.8 %, against 99.9 ± 0.1 % on fresh teacher episodes).
            #expect(f.values["kept_1-4_kl_low"]! >= 0.9, "\(setting)")
        }
        // Replay takes one minibatch per iteration and one per 4 teacher steps stored; fresh
        // teacher-driven iterations take 8 whole episodes each: over the same 300 iterations the
        // replay panel plays 4 × 300 + 64 steps (plus the rest of the last episode), the fresh one
        // far more.
        let replay = try finding(findings, prefix: prefix + "replay")
        let fresh = try finding(findings, prefix: prefix + "teacher-driven")
        let replaySteps = replay.values["environment_steps_mean"]!
        #expect(replaySteps >= 4 * 300 + 63 && replaySteps < 2_000, "\(replaySteps)")
        #expect(fresh.values["environment_steps_mean"]! > 10 * replaySteps)
    }

    @Test func privilegedStudentsAgainstTheWindowCeiling() throws {
        let f = try finding(try run(.privileged), prefix: "final return against the window ceiling, window K=5")
        // A privileged teacher's policy passes through a 5×5 window: on-policy-distill's return,
        // paired with the teacher's on the same MDP, is within 0.5 of it (lower end of the 95 % CI
        // of student − teacher above −0.5; the teacher's return is ≈ 8).
        #expect(f.values["on-policy-distill_minus_teacher_low"]! > -0.5)
        // The exact window-aliased policy gradient cannot beat the full-observation optimum.
        #expect(f.values["ceiling_mean"]! <= f.values["optimum_mean"]! + 1e-9)
    }

    @Test func multitaskOneHeadPerTaskKeepsItsTeachersAndBeatsScratch() throws {
        let findings = try run(.multitask)
        let kept = try finding(findings, prefix: "share of each teacher kept by one student")
        let heads = "one-head-per-task-kl"
        // Measured on this preset: the multi-head student keeps a geometric mean of ≈ 95 % of its
        // 3 teachers (share over chance); the bar is Rusu's 89 % minus 10 points.
        #expect(kept.values["share_geomean_\(heads)"]! >= 0.79)
        let scratch = try finding(findings, prefix: "distilled students against multi-task RL from scratch")
        // Paired over the 4 families: its geometric mean share minus the multi-task actor-critic's
        // from scratch (same updates, same tasks), 95 % CI above 0.
        #expect(scratch.values["share_geomean_\(heads)_minus_scratch_low"]! > 0)
    }

    @Test func multitaskRefusesStudentsThatCannotBeToldTheirTask() throws {
        func message(_ label: MultitaskGridworlds.TaskLabel, _ student: String, seeds: [UInt64] = [0, 1, 2]) -> String {
            let spec = MultitaskRunSpec(gridworld: GridworldConfiguration(), seeds: seeds, heldOut: [50], label: label)
            do {
                try spec.validate(student: student)
            } catch let error as DistillError {
                return error.message
            } catch {
                return "\(error)"
            }
            return "accepted"
        }
        #expect(message(.headSelector, "mlp:64/heads:2").contains("needs heads:3"))
        #expect(message(.headSelector, "mlp:64").contains("needs heads:3"))
        #expect(message(.input, "mlp:64/heads:3").contains("has several heads"))
        #expect(message(.none, "mlp:64").contains("must be told its task"))
        #expect(message(.input, "mlp:64", seeds: [0, 1, 50]).contains("overlap"))
        #expect(message(.headSelector, "conv:8x3/mlp:64/heads:3") == "accepted")
        #expect(message(.none, "mlp:64", seeds: [4]) == "accepted")
        #expect(message(.input, "mlp:64/heads:1").contains("needs K ≥ 2"))
    }
}
