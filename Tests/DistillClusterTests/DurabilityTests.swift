import DistillRuntime
import DistillTestSupport
import DistillWire
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Finding 10 of issue 10: nothing that fails is reported as success, a full disk still takes a
/// checkpoint, and writes killed mid-way leave nothing behind for good.
@Suite("Checkpoint durability")
struct DurabilityTests {
    let sender = Sender.starting(role: .learner, id: "learner")

    static func checkpoint(version: UInt64, parameters: Int = 4) -> Checkpoint {
        Checkpoint(
            version: version, shape: [parameters / 2, 2],
            parameters: (0..<parameters).map { Double($0) * 0.001 + Double(version) },
            optimiserState: [1, 2], optimiserSteps: version, critic: [0.5, 0.25], envSteps: version * 100,
            updates: version, rngState: [1, 2, 3, 4], configurationJSON: #"{"env":"chain"}"#,
            createdUnixMilliseconds: 1)
    }

    @Test func temporaryFilesOfKilledWritesAreRemovedAndLiveWritersAreLeftAlone() throws {
        let directory = Roles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try CheckpointStore(directory: directory)
        try store.write(Self.checkpoint(version: 1), sender: sender)
        // pid 999999999 is above Linux's pid_max: a process that cannot be running.
        let stale = [".tmp-999999999-17", ".tmp-\(getpid())-3"]
        let live = ".tmp-1-5"  // pid 1 always runs
        for name in stale + [live] {
            try Data("half a checkpoint".utf8).write(to: directory.appendingPathComponent(name))
        }
        let removed = try store.removeStaleTemporaryFiles()
        #expect(Set(removed) == Set(stale))
        let left = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(left == [live, CheckpointStore.fileName(version: 1)].sorted())
    }

    /// A real full disk: a tmpfs exactly `keep` checkpoint files large (needs root; this
    /// machine's tests run as root). Before the fix the write after `keep` failed for good.
    @Test(.enabled(if: TinyDisk.available)) func diskHoldingExactlyKeepCheckpointsStillWritesTheNext() throws {
        let pages = try TinyDisk.pagesPerCheckpoint(Self.checkpoint(version: 1, parameters: 1200), sender: sender)
        let keep = 3
        let disk = try TinyDisk(bytes: keep * pages * 4096)
        defer { disk.unmount() }
        let store = try CheckpointStore(directory: disk.directory, keep: keep)
        for version: UInt64 in 1...3 {
            try store.write(Self.checkpoint(version: version, parameters: 1200), sender: sender)
        }
        // The disk is full now (no room for another file): the 4th write must make room first.
        #expect(disk.freeBytes() < pages * 4096, "the disk still has \(disk.freeBytes()) bytes free")
        try store.write(Self.checkpoint(version: 4, parameters: 1200), sender: sender)
        try store.write(Self.checkpoint(version: 5, parameters: 1200), sender: sender)
        #expect(
            try store.checkpointFiles().map(\.lastPathComponent)
                == [3, 4, 5].map { CheckpointStore.fileName(version: $0) })
        #expect(try store.latest()?.checkpoint == Self.checkpoint(version: 5, parameters: 1200))
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: disk.directory.path).allSatisfy {
                !$0.hasPrefix(".tmp")
            })
    }

    /// With `keep == 1` the only checkpoint is never deleted to make room: the write fails
    /// (with its code) and the old checkpoint is still there.
    @Test(.enabled(if: TinyDisk.available)) func theOnlyCheckpointIsNeverSacrificedToMakeRoom() throws {
        let pages = try TinyDisk.pagesPerCheckpoint(Self.checkpoint(version: 1, parameters: 1200), sender: sender)
        let disk = try TinyDisk(bytes: pages * 4096)
        defer { disk.unmount() }
        let store = try CheckpointStore(directory: disk.directory, keep: 1)
        try store.write(Self.checkpoint(version: 1, parameters: 1200), sender: sender)
        let error = try #require(throws: RuntimeError.self) {
            try store.write(Self.checkpoint(version: 2, parameters: 1200), sender: sender)
        }
        #expect(error.code == .checkpointWriteFailed)
        #expect(error.description.contains("Free space"))
        #expect(try store.latest()?.checkpoint.version == 1)
    }

    /// SIGTERM with the checkpoint directory gone (replaced by a plain file, which stops root
    /// as well as anyone: chmod does not): the final checkpoint fails, the learner exits
    /// non-zero and summary.json says so. Before: exit 0 and nothing in the summary.
    @Test func failedFinalCheckpointIsANonZeroExitAndIsInTheSummary() async throws {
        let seen = try await onOwnThread { () -> (status: Int32?, summary: String, stderr: String, staleLeft: Bool) in
            let root = Roles.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: root) }
            let checkpoints = root.appendingPathComponent("ckpt")
            let out = root.appendingPathComponent("out")
            try FileManager.default.createDirectory(at: checkpoints, withIntermediateDirectories: true)
            let stale = checkpoints.appendingPathComponent(".tmp-999999999-1")
            try Data("torn".utf8).write(to: stale)
            let learner = try Roles.learner(extra: ["--checkpoint-dir", checkpoints.path, "--out", out.path])
            defer { learner.process.stop() }
            let staleLeft = FileManager.default.fileExists(atPath: stale.path)
            try FileManager.default.removeItem(at: checkpoints)
            try Data("not a directory".utf8).write(to: checkpoints)
            learner.process.send(signal: SIGTERM)
            let status = learner.process.waitForExit()
            let summary = (try? String(contentsOf: out.appendingPathComponent("summary.json"), encoding: .utf8)) ?? ""
            return (status, summary, learner.process.standardError, staleLeft)
        }
        #expect(!seen.staleLeft, "a .tmp- file of a dead writer is removed at start")
        #expect(seen.status != nil && seen.status != 0, "exit status \(String(describing: seen.status))")
        #expect(seen.summary.contains(#""final_checkpoint" : "failed: "#), "\(seen.summary)")
        #expect(seen.stderr.contains("the final checkpoint failed"), "\(seen.stderr.suffix(1500))")
    }
}

/// A tmpfs of a given size mounted on a fresh directory: a real disk that fills up.
struct TinyDisk {
    let directory: URL

    /// Whether this process may mount one (root with CAP_SYS_ADMIN).
    static let available: Bool = {
        guard getuid() == 0, let disk = try? TinyDisk(bytes: 8192) else { return false }
        disk.unmount()
        return true
    }()

    /// Pages (4 KiB) one checkpoint file occupies.
    static func pagesPerCheckpoint(_ checkpoint: Checkpoint, sender: Sender) throws -> Int {
        let bytes = WireCodec().encode(Envelope(sender: sender, message: .checkpoint(checkpoint)))
        return (bytes.count + 4095) / 4096
    }

    init(bytes: Int) throws {
        directory = Roles.temporaryDirectory()
        guard Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(bytes)", "tmpfs", directory.path]) else {
            try? FileManager.default.removeItem(at: directory)
            throw ChildProcessError("cannot mount a tmpfs on \(directory.path)")
        }
    }

    /// Bytes still free on the disk.
    func freeBytes() -> Int {
        var stats = statvfs()
        guard statvfs(directory.path, &stats) == 0 else { return -1 }
        return Int(stats.f_bavail) * Int(stats.f_bsize)
    }

    func unmount() {
        _ = Self.run("/bin/umount", [directory.path])
        try? FileManager.default.removeItem(at: directory)
    }

    private static func run(_ tool: String, _ arguments: [String]) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }
}
