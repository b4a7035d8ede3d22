import DistillWire
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A TensorBoard event file in a run directory, `events.out.tfevents.<unix seconds>.<host>`:
/// TFRecords of `TensorBoardEvent`s, the file version first, then one event per row of scalars.
/// Each row is written and flushed at once, so a crashed run keeps everything before it; a resumed
/// run starts a new file beside the old one (TensorBoard reads every event file of a directory).
///
///     let events = try EventFileWriter(directory: out)
///     events.append(step: 1000, scalars: [("student_return", 4.2), ("kl_per_episode", .nan)])  // NaN: left out
public final class EventFileWriter {
    /// The file written.
    public let file: URL
    private let handle: FileHandle

    /// Creates the file in `directory` (created if needed) and writes the version record.
    public init(directory: URL, now: Date = Date()) throws {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw RuntimeError(
                "cannot create the output directory \(directory.path): \(error.localizedDescription)", code: .fileAccess
            )
        }
        let base = "events.out.tfevents.\(Int(now.timeIntervalSince1970)).\(Self.hostName())"
        // Two writers in one second (a quick resume) get distinct files.
        var name = base
        var suffix = 1
        while FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path) {
            name = "\(base).\(suffix)"
            suffix += 1
        }
        file = directory.appendingPathComponent(name)
        let version = TensorBoardEvent(
            wallTime: now.timeIntervalSince1970, step: 0, content: .fileVersion(TensorBoardEvent.currentFileVersion))
        guard FileManager.default.createFile(atPath: file.path, contents: Data(TFRecord.frame(version.encoded()))),
            let handle = FileHandle(forWritingAtPath: file.path)
        else {
            throw RuntimeError("cannot create \(file.path): is the directory writable?", code: .fileAccess)
        }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    deinit { try? handle.close() }

    /// Appends one event with the finite `scalars` at `step` (a value that is not finite is not
    /// measured yet: it is left out, as it is an empty cell in a CSV).
    public func append(step: Int64, scalars: [(tag: String, value: Double)], now: Date = Date()) {
        let measured = scalars.filter { $0.value.isFinite }.map {
            TensorBoardEvent.Scalar(tag: $0.tag, value: Float($0.value))
        }
        guard !measured.isEmpty else { return }
        let event = TensorBoardEvent(wallTime: now.timeIntervalSince1970, step: step, content: .scalars(measured))
        handle.write(Data(TFRecord.frame(event.encoded())))
    }

    /// The events of an event file, every record's CRCs checked; errors name the file.
    public static func events(in file: URL) throws -> [TensorBoardEvent] {
        let bytes: [UInt8]
        do {
            bytes = [UInt8](try Data(contentsOf: file))
        } catch {
            throw RuntimeError("cannot read \(file.path): \(error.localizedDescription)", code: .fileAccess)
        }
        do {
            return try TFRecord.records(in: bytes).map { try TensorBoardEvent(decoding: $0) }
        } catch {
            throw RuntimeError(
                "\(file.path) is not a readable TensorBoard event file: \(error)", code: .invalidRecord)
        }
    }

    /// The event files of a run directory, oldest first.
    public static func files(in directory: URL) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasPrefix("events.out.tfevents.") }.sorted().map {
            directory.appendingPathComponent($0)
        }
    }

    /// This machine's name, as in the file name (`gethostname`; `localhost` when it has none).
    private static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // A file name: nothing that would make it a path.
        let safe = name.map { $0 == "/" ? "_" : $0 }
        return safe.isEmpty ? "localhost" : String(safe)
    }
}
