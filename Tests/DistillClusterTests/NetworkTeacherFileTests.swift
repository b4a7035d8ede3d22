import DistillCore
import Foundation
import Testing

/// `--teacher-file` with a network teacher, end to end through the binary: `distill train --student`
/// leaves a teacher file, which `distill train`, `distill teacher` and `distill analyze` read back.
@Suite("network teacher files on the command line")
struct NetworkTeacherFileTests {
    static let problem = ["--env", "gridworld", "--grid-size", "5", "--seed", "3"]

    @Test func aTrainedStudentTeachesThroughTeacherFile() throws {
        let directory = Roles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let teacherRun = directory.appendingPathComponent("teacher").path
        let trained = try Ran(
            ["train"] + Self.problem + [
                "--teacher", "uniform", "--method", "actor-critic", "--student", "mlp:8", "--optimiser", "adam",
                "--learning-rate", "0.01", "--iterations", "20", "--out", teacherRun, "--quiet",
            ])
        #expect(trained.status == 0, "\(trained.err)")
        // Renamed without the extension: the format, not the name, makes it a network teacher.
        let file = directory.appendingPathComponent("teacher.bin").path
        try FileManager.default.copyItem(atPath: teacherRun + "/student.safetensors", toPath: file)

        let studentRun = directory.appendingPathComponent("student").path
        let distilled = try Ran(
            ["train"] + Self.problem + [
                "--teacher-file", file, "--method", "n-distill+R", "--iterations", "3", "--out", studentRun, "--quiet",
            ])
        #expect(distilled.status == 0, "\(distilled.err)")
        // The run's configuration embeds the table read from the network, so it reruns without the file.
        let config = try JSONDecoder().decode(
            TrainingConfiguration.self, from: Data(contentsOf: URL(fileURLWithPath: studentRun + "/config.json")))
        #expect(config.teacher.kind == .file)
        #expect(config.teacher.table?.identity == "network(policy,T=1.0,teacher.bin)")
        #expect(config.teacher.table?.stateCount == 26)

        let table = directory.appendingPathComponent("table.json").path
        let exported = try Ran(["teacher"] + Self.problem + ["--teacher-file", file, "--export-table", table])
        #expect(exported.status == 0, "\(exported.err)")
        let description = try JSONDecoder().decode(
            TeacherDescription.self, from: Data(contentsOf: URL(fileURLWithPath: table)))
        // The same policy (the server's table is renormalised per row: equal to rounding).
        let served = description.policy.flatMap { $0 }
        let embedded = config.teacher.table?.policy.flatMap { $0 } ?? []
        #expect(served.count == embedded.count)
        #expect(zip(served, embedded).allSatisfy { abs($0 - $1) <= 1e-12 })

        let analyzed = try Ran(
            ["analyze", "expected-update"] + Self.problem + ["--teacher-file", file, "--method", "n-distill"])
        #expect(analyzed.status == 0, "\(analyzed.err)")
    }

    @Test func aTeacherFileForAnotherEnvironmentIsRefusedNamingTheFileAndField() throws {
        let directory = Roles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let teacherRun = directory.appendingPathComponent("teacher").path
        let trained = try Ran(
            ["train"] + Self.problem + [
                "--teacher", "uniform", "--method", "actor-critic", "--student", "linear", "--iterations", "1",
                "--out", teacherRun, "--quiet",
            ])
        #expect(trained.status == 0, "\(trained.err)")
        let file = teacherRun + "/student.safetensors"
        let otherSeed = try Ran(
            ["train", "--env", "gridworld", "--grid-size", "5", "--seed", "4", "--teacher-file", file, "--quiet"])
        #expect(otherSeed.status == 64)
        #expect(
            otherSeed.err.contains(file) && otherSeed.err.contains("teacher.environment.identity"), "\(otherSeed.err)")
        #expect(!otherSeed.err.contains("Fatal error"), "\(otherSeed.err)")

        let cut = directory.appendingPathComponent("cut.safetensors")
        try Data(try Data(contentsOf: URL(fileURLWithPath: file)).prefix(200)).write(to: cut)
        let truncated = try Ran(["train"] + Self.problem + ["--teacher-file", cut.path, "--quiet"])
        #expect(truncated.status == 64)
        #expect(truncated.err.contains(cut.path) && truncated.err.contains("header length"), "\(truncated.err)")
    }
}
