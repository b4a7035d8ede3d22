import ArgumentParser
import DistillRuntime
import DistillWire
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A refusal to run, said in one line without the usage (the command line was fine).
struct RunRefusal: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// An output or checkpoint directory a run owns: one run at a time (a lock), and resuming only
/// when asked (`--resume`), with the same configuration.
enum RunDirectory {
    /// Open lock files, held until the process exits (the kernel releases a `flock` then).
    nonisolated(unsafe) private static var held: [Int32] = []

    /// Takes `DIR/.lock` (`flock`, exclusive) for the life of this process, recording our PID in
    /// it; fails at once, naming the holder's PID, when another process holds it.
    static func lock(_ directory: URL, command: String) throws {
        let path = directory.appendingPathComponent(".lock").path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw RunRefusal("\(command): cannot open \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            close(fd)
            throw RunRefusal(
                "\(command): \(directory.path) is in use by another run (PID \(holder.flatMap { $0.isEmpty ? nil : $0 } ?? "unknown")); "
                    + "stop it first or give another directory")
        }
        let pid = Data("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        held.append(fd)
    }

    /// The newest checkpoint in `directory`, if any (unreadable ones are skipped).
    static func latestCheckpoint(_ directory: URL) -> Checkpoint? {
        guard FileManager.default.fileExists(atPath: directory.path) else { return nil }
        return (try? CheckpointStore(directory: directory).latest())??.checkpoint
    }

    /// "version 512909, 30000000 env steps" of a checkpoint.
    static func describe(_ checkpoint: Checkpoint) -> String {
        "version \(checkpoint.version), \(checkpoint.envSteps) env steps"
    }

    /// The settings in which two configurations differ, as `path (was → now)`, first `limit`.
    static func differences(stored: String, current: String, limit: Int = 6) -> [String] {
        func flatten(_ value: Any, _ prefix: String, into result: inout [String: String]) {
            switch value {
            case let object as [String: Any]:
                for (key, child) in object { flatten(child, prefix.isEmpty ? key : prefix + "." + key, into: &result) }
            case let array as [Any] where !(array.first is NSNumber) || array.count <= 8:
                for (index, child) in array.enumerated() { flatten(child, "\(prefix)[\(index)]", into: &result) }
            case let array as [Any]:
                result[prefix] = "[\(array.count) numbers, hash \(String(describing: array).hashValue)]"
            case is NSNull: result[prefix] = "null"
            default: result[prefix] = "\(value)"
            }
        }
        func object(_ text: String) -> [String: String] {
            var result: [String: String] = [:]
            if let value = try? JSONSerialization.jsonObject(with: Data(text.utf8)) {
                flatten(value, "", into: &result)
            }
            return result
        }
        let (a, b) = (object(stored), object(current))
        let keys = Set(a.keys).union(b.keys).sorted().filter { a[$0] != b[$0] }
        var lines = keys.prefix(limit).map { "\($0) (\(a[$0] ?? "absent") → \(b[$0] ?? "absent"))" }
        if keys.count > limit { lines.append("and \(keys.count - limit) more") }
        return lines
    }

    /// The configuration as the canonical JSON a checkpoint records (for comparisons).
    static func canonical(_ configuration: RunConfiguration) -> String {
        (try? configuration.json()) ?? ""
    }

    /// `stored` and `current` in canonical form (an old-format file is read and re-encoded).
    static func sameConfiguration(stored: String, current: RunConfiguration) -> [String] {
        let storedCanonical =
            (try? JSONDecoder().decode(RunConfiguration.self, from: Data(stored.utf8))).map(canonical) ?? stored
        let now = canonical(current)
        return storedCanonical == now ? [] : differences(stored: storedCanonical, current: now)
    }
}
