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
    /// How many checkpoints to keep; older ones are deleted after each write.
    public let keep: Int

    private static let prefix = "checkpoint-"
    private static let suffix = ".pb"

    /// Opens (creating if needed) a checkpoint directory.
    public init(directory: URL, keep: Int = 3) throws {
        precondition(keep >= 1, "keep at least one checkpoint")
        self.directory = directory
        self.keep = keep
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw RuntimeError(
                "cannot create the checkpoint directory \(directory.path): \(error.localizedDescription)")
        }
    }

    /// The file name of a version's checkpoint (zero-padded so names sort by version).
    public static func fileName(version: UInt64) -> String {
        let digits = String(version)
        return prefix + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + suffix
    }

    /// Writes a checkpoint atomically and prunes old ones; returns the file written.
    @discardableResult
    public func write(_ checkpoint: Checkpoint, sender: Sender) throws -> URL {
        let bytes = WireCodec().encode(Envelope(sender: sender, message: .checkpoint(checkpoint)))
        let target = directory.appendingPathComponent(Self.fileName(version: checkpoint.version))
        let temporary = directory.appendingPathComponent(".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try Self.writeDurably(bytes, to: temporary)
        guard rename(temporary.path, target.path) == 0 else {
            let message = String(cString: strerror(errno))
            unlink(temporary.path)
            throw RuntimeError("cannot move the checkpoint into place at \(target.path): \(message)")
        }
        Self.syncDirectory(directory)
        try prune()
        return target
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
                    + skipped.joined(separator: "; ") + ". Move them away to start afresh.")
        }
        return nil
    }

    /// Checkpoint files sorted by version, oldest first.
    public func checkpointFiles() throws -> [URL] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw RuntimeError("cannot list \(directory.path): \(error.localizedDescription)")
        }
        return names.filter { $0.hasPrefix(Self.prefix) && $0.hasSuffix(Self.suffix) }.sorted()
            .map { directory.appendingPathComponent($0) }
    }

    private func prune() throws {
        let files = try checkpointFiles()
        for file in files.dropLast(keep) { unlink(file.path) }
    }

    private static func writeDurably(_ bytes: [UInt8], to file: URL) throws {
        let descriptor = open(file.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw RuntimeError("cannot create \(file.path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes {
                Glibc.write(descriptor, $0.baseAddress! + written, $0.count - written)
            }
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else {
                let message = String(cString: strerror(errno))
                unlink(file.path)
                throw RuntimeError("cannot write \(file.path): \(message) (is the disk full?)")
            }
            written += result
        }
        guard fsync(descriptor) == 0 else {
            throw RuntimeError("cannot fsync \(file.path): \(String(cString: strerror(errno)))")
        }
    }

    private static func syncDirectory(_ directory: URL) {
        let descriptor = open(directory.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }
}
