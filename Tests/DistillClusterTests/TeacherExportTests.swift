import DistillCore
import DistillRuntime
import DistillTestSupport
import Foundation
import Testing

@Suite("Exporting a teacher table")
struct TeacherExportTests {
    @Test func exportedTableReadsBackAsTheTeacherTheServerWouldServe() async throws {
        let directory = Roles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("optimal.json")
        let exit = try await onOwnThread { () -> Int32? in
            let process = try ChildProcess(["teacher"] + Roles.problem + ["--export-table", file.path])
            return process.waitForExit()
        }
        #expect(exit == 0)

        var spec = EnvironmentSpec()
        spec.seed = 1
        spec.gridworld.size = 10
        let environment = try spec.build()
        let expected = try Teachers.optimal(environment.mdp)
        let exported = try JSONInput.teacher(from: Data(contentsOf: file), for: environment.mdp)
        #expect(exported.identity == expected.identity)
        #expect(exported.probabilities == expected.probabilities)
        #expect(exported.values == expected.values)
        #expect(exported.actionValues == expected.actionValues)
    }

    @Test func exportToAMissingDirectorySaysWhatToDo() async throws {
        let (exit, message) = try await onOwnThread { () -> (Int32?, String) in
            let process = try ChildProcess(
                ["teacher"] + Roles.problem + ["--export-table", "/nonexistent-directory/optimal.json"])
            let exit = process.waitForExit()
            return (exit, process.standardError)
        }
        #expect(exit != 0)
        #expect(message.contains("--export-table: cannot write the teacher table to /nonexistent-directory/"))
    }
}
