import DistillWire
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Learner checkpoints on disk: one `Envelope` holding a `Checkpoint` per file, named by version.
///
/// Writes are atomic (temporary file, fsync, rename, fsync of the directory): a crash at any
/// moment leaves either the previous checkpoint or the new one, never a torn file. Reading picks
/// the newest file that decodes and validates, and reports the ones it had to skip.
public struct CheckpointStore: Sendable {
    /// The directory holding the checkpoints.
    public let directory: URL
    /// How many checkpoints to keep; older ones are deleted after each write (or before it, when
    /// the disk is full).
    public let keep: Int

    private static let prefix = "checkpoint-"
    private static let suffix = ".pb"
    private static let temporaryPrefix = ".tmp-"

    /// Opens (creating if needed) a checkpoint directory.
    public init(directory: URL, keep: Int = 3) throws {
        precondition(keep >= 1, "keep at least one checkpoint")
        self.directory = directory
        self.keep = keep
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw RuntimeError(
                "cannot create the checkpoint directory \(directory.path): \(error.localizedDescription)",
                code: .checkpointWriteFailed)
        }
    }

    /// The file name of a version's checkpoint (zero-padded so names sort by version).
    public static func fileName(version: UInt64) -> String {
        let digits = String(version)
        return prefix + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + suffix
    }

    /// Writes a checkpoint atomically and prunes old ones; returns the file written.
    ///
    /// When the disk is full, it makes room first by deleting the checkpoints that pruning would
    /// delete after this write anyway (the oldest beyond `keep - 1`), and tries once more; it
    /// never deletes the newest checkpoint, so a crash at any moment leaves at least one valid
    /// checkpoint behind (with `keep == 1` on a full disk the write fails instead).
    @discardableResult
    public func write(_ checkpoint: Checkpoint, sender: Sender) throws -> URL {
        let bytes = WireCodec().encode(Envelope(sender: sender, message: .checkpoint(checkpoint)))
        let target = directory.appendingPathComponent(Self.fileName(version: checkpoint.version))
        let temporary = directory.appendingPathComponent(
            "\(Self.temporaryPrefix)\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        do {
            try Self.writeDurably(bytes, to: temporary)
        } catch let error as DiskFull {
            guard try makeRoom(for: target) > 0 else {
                throw RuntimeError(
                    "cannot write \(target.lastPathComponent) in \(directory.path): \(error.reason), and no older "
                        + "checkpoint may be deleted to make room (the newest stays, so that a crash leaves one). "
                        + "Free space on that disk or give another --checkpoint-dir.", code: .checkpointWriteFailed)
            }
            do {
                try Self.writeDurably(bytes, to: temporary)
            } catch let again as DiskFull {
                throw RuntimeError(
                    "cannot write \(target.lastPathComponent) in \(directory.path): \(again.reason), even after "
                        + "deleting older checkpoints. Free space on that disk or give another --checkpoint-dir.",
                    code: .checkpointWriteFailed)
            }
        }
        guard rename(temporary.path, target.path) == 0 else {
            let message = String(cString: strerror(errno))
            unlink(temporary.path)
            throw RuntimeError(
                "cannot move the checkpoint into place at \(target.path): \(message)", code: .checkpointWriteFailed)
        }
        Self.syncDirectory(directory)
        try prune()
        return target
    }

    /// Deletes the temporary files of writes that were killed mid-way (`.tmp-PID-…` of a process
    /// that no longer runs); returns their names. Call it once at start.
    @discardableResult
    public func removeStaleTemporaryFiles() throws -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw RuntimeError(
                "cannot list \(directory.path): \(error.localizedDescription)", code: .checkpointWriteFailed)
        }
        var removed: [String] = []
        for name in names where name.hasPrefix(Self.temporaryPrefix) {
            let pidText = name.dropFirst(Self.temporaryPrefix.count).prefix { $0 != "-" }
            // A write still running in another live process (a second learner on this directory
            // is a mistake, but its file is not ours to delete).
            if let pid = Int32(pidText), pid != getpid(), kill(pid, 0) == 0 || errno == EPERM { continue }
            if unlink(directory.appendingPathComponent(name).path) == 0 { removed.append(name) }
        }
        return removed
    }

    /// The newest valid checkpoint, or nil when there is none; `skipped` lists unreadable files.
    public func latest() throws -> (checkpoint: Checkpoint, file: URL, skipped: [String])? {
        var skipped: [String] = []
        for file in try checkpointFiles().reversed() {
            do {
                let bytes = try [UInt8](Data(contentsOf: file))
                let envelope = try WireCodec().decode(bytes, expecting: [.checkpoint])
                guard case .checkpoint(let checkpoint) = envelope.message else { continue }
                return (checkpoint, file, skipped)
            } catch {
                skipped.append("\(file.lastPathComponent): \(error)")
            }
        }
        if !skipped.isEmpty {
            throw RuntimeError(
                "no readable checkpoint in \(directory.path); every file failed: "
                    + skipped.joined(separator: "; ") + ". Move them away to start afresh.", code: .checkpointUnreadable
            )
        }
        return nil
    }

    /// Checkpoint files sorted by version, oldest first.
    public func checkpointFiles() throws -> [URL] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw RuntimeError(
                "cannot list \(directory.path): \(error.localizedDescription)", code: .checkpointUnreadable)
        }
        return names.filter { $0.hasPrefix(Self.prefix) && $0.hasSuffix(Self.suffix) }.sorted()
            .map { directory.appendingPathComponent($0) }
    }

    private func prune() throws {
        let files = try checkpointFiles()
        for file in files.dropLast(keep) { unlink(file.path) }
    }

    /// Deletes the checkpoints that will not survive the write of `target` (the oldest beyond
    /// `keep - 1`, never the newest); returns how many it deleted.
    private func makeRoom(for target: URL) throws -> Int {
        let others = try checkpointFiles().filter { $0.lastPathComponent != target.lastPathComponent }
        var deleted = 0
        for file in others.dropLast(max(keep - 1, 1)) where unlink(file.path) == 0 { deleted += 1 }
        if deleted > 0 { Self.syncDirectory(directory) }
        return deleted
    }

    /// A write that failed because the disk (or the quota) is full: worth making room and retrying.
    private struct DiskFull: Error {
        let reason: String
    }

    private static func writeDurably(_ bytes: [UInt8], to file: URL) throws {
        let descriptor = open(file.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            let code = errno
            if code == ENOSPC || code == EDQUOT { throw DiskFull(reason: String(cString: strerror(code))) }
            throw RuntimeError(
                "cannot create \(file.path): \(String(cString: strerror(code))). Is the checkpoint directory still "
                    + "a writable directory? Fix it or give another --checkpoint-dir.", code: .checkpointWriteFailed)
        }
        var closed = false
        defer { if !closed { close(descriptor) } }
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes {
                Glibc.write(descriptor, $0.baseAddress! + written, $0.count - written)
            }
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else {
                let code = result < 0 ? errno : ENOSPC
                unlink(file.path)
                if code == ENOSPC || code == EDQUOT { throw DiskFull(reason: String(cString: strerror(code))) }
                throw RuntimeError(
                    "cannot write \(file.path): \(String(cString: strerror(code)))", code: .checkpointWriteFailed)
            }
            written += result
        }
        // tmpfs and NFS may report a full disk only at fsync or close.
        let synced = fsync(descriptor) == 0 ? 0 : errno
        closed = true
        let closeFailed = close(descriptor) != 0 ? errno : 0
        let failure = synced != 0 ? synced : closeFailed
        if failure != 0 {
            unlink(file.path)
            if failure == ENOSPC || failure == EDQUOT { throw DiskFull(reason: String(cString: strerror(failure))) }
            throw RuntimeError(
                "cannot fsync \(file.path): \(String(cString: strerror(failure)))", code: .checkpointWriteFailed)
        }
    }

    private static func syncDirectory(_ directory: URL) {
        let descriptor = open(directory.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }
}
