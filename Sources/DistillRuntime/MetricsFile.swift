import Foundation

/// metrics.csv in an output directory, flushed row by row so nothing is lost on a crash, and the
/// same rows' numbers as TensorBoard scalars (step: env steps) in an event file beside it.
struct MetricsFile {
    private let handle: FileHandle
    private let events: EventFileWriter
    /// Added to each row's `seconds`: the last `seconds` of the rows a resumed learner appends to.
    let secondsOffset: Double

    /// Opens OUT/metrics.csv; a resumed learner appends to the rows of its previous life.
    init(directory: URL, appending: Bool) throws {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw RuntimeError(
                "cannot create the output directory \(directory.path): \(error.localizedDescription)", code: .fileAccess
            )
        }
        let file = directory.appendingPathComponent("metrics.csv")
        let exists = FileManager.default.fileExists(atPath: file.path)
        secondsOffset = appending && exists ? Self.lastSeconds(file) : 0
        if !(appending && exists) {
            guard FileManager.default.createFile(atPath: file.path, contents: Data((MetricsRow.header + "\n").utf8))
            else {
                throw RuntimeError("cannot create \(file.path): is the directory writable?", code: .fileAccess)
            }
        }
        guard let handle = FileHandle(forWritingAtPath: file.path) else {
            throw RuntimeError("cannot open \(file.path) for writing", code: .fileAccess)
        }
        handle.seekToEndOfFile()
        self.handle = handle
        events = try EventFileWriter(directory: directory)
    }

    func append(_ row: MetricsRow) {
        var row = row
        row.seconds += secondsOffset
        handle.write(Data((row.csvLine + "\n").utf8))
        events.append(step: Int64(clamping: row.envSteps), scalars: row.scalars)
    }

    /// The `seconds` cell of the last row of a metrics.csv (0 without rows).
    static func lastSeconds(_ file: URL) -> Double {
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return 0 }
        let rows = text.split(separator: "\n").dropFirst()
        return rows.last.flatMap { Double($0.prefix { $0 != "," }) } ?? 0
    }
}
