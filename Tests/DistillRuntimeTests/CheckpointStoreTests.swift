import DistillRuntime
import DistillWire
import Foundation
import Testing

@Suite("Checkpoint store on a real directory")
struct CheckpointStoreTests {
    static func temporaryDirectory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("distill-test-\(UUID().uuidString)")
    }

    static func checkpoint(version: UInt64) -> Checkpoint {
        Checkpoint(
            version: version, shape: [2, 2], parameters: [0.1, -0.2, 0.3, Double(version)],
            optimiserState: [1, 2], optimiserSteps: version, critic: [0.5, 0.25], envSteps: version * 100,
            updates: version, rngState: [1, 2, 3, 4], configurationJSON: #"{"env":"chain"}"#,
            createdUnixMilliseconds: 1)
    }

    let sender = Sender.starting(role: .learner, id: "learner")

    @Test func newestCheckpointIsReadBackExactlyAndOldOnesArePruned() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try CheckpointStore(directory: directory, keep: 2)
        for version: UInt64 in [1, 5, 12] { try store.write(Self.checkpoint(version: version), sender: sender) }
        let latest = try #require(try store.latest())
        #expect(latest.checkpoint == Self.checkpoint(version: 12))
        #expect(
            try store.checkpointFiles().map(\.lastPathComponent) == [
                CheckpointStore.fileName(version: 5), CheckpointStore.fileName(version: 12),
            ])
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: directory.path).allSatisfy { !$0.hasPrefix(".tmp") })
    }

    @Test func emptyDirectoryHasNoCheckpoint() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(try CheckpointStore(directory: directory).latest() == nil)
    }

    @Test func tornNewestFileFallsBackToThePreviousCheckpoint() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try CheckpointStore(directory: directory)
        try store.write(Self.checkpoint(version: 3), sender: sender)
        let newest = try store.write(Self.checkpoint(version: 4), sender: sender)
        let bytes = try Data(contentsOf: newest)
        try bytes.prefix(bytes.count / 2).write(to: newest)  // as a crash mid-write would leave it
        let latest = try #require(try store.latest())
        #expect(latest.checkpoint.version == 3)
        #expect(latest.skipped.count == 1)
        #expect(latest.skipped[0].contains(CheckpointStore.fileName(version: 4)))
    }

    @Test func directoryOfOnlyGarbageIsAClearError() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try CheckpointStore(directory: directory)
        try Data("not a checkpoint".utf8).write(
            to: directory.appendingPathComponent(CheckpointStore.fileName(version: 9)))
        let error = try #require(throws: RuntimeError.self) { try store.latest() }
        #expect(error.description.contains("no readable checkpoint"))
        #expect(error.description.contains("Move them away"))
    }
}
