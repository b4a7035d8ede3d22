import Foundation

/// metrics.csv in an output directory, flushed row by row so nothing is lost on a crash, and the
/// same rows' numbers as TensorBoard scalars (step: env steps) in an event file beside it.
struct MetricsFile {
    private let handle: FileHandle
    private let events: EventFileWriter
    private let directory: URL
    /// OUT/tasks.csv of a multi-task run, opened at its first row.
    private var tasksHandle: FileHandle?
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
        self.directory = directory
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

    mutating func append(_ row: MetricsRow, tasks: [TaskReturn] = []) {
        var row = row
        row.seconds += secondsOffset
        handle.write(Data((row.csvLine + "\n").utf8))
        var scalars = row.scalars
        for task in tasks {
            scalars.append(("task_\(task.task)/student_return", task.studentReturn ?? .nan))
            scalars.append(("task_\(task.task)/teacher_return", task.teacherReturn))
            scalars.append(("task_\(task.task)/teacher_share", task.teacherShare ?? .nan))
        }
        events.append(step: Int64(clamping: row.envSteps), scalars: scalars)
        if !tasks.isEmpty { appendTasks(row, tasks) }
    }

    /// The header of tasks.csv: one row per task per metrics row of a multi-task run.
    static let tasksHeader =
        "seconds,env_steps,version,task,student_return,teacher_return,uniform_return,teacher_share,environment,teacher"

    /// Writes `tasks` for `row` to OUT/tasks.csv (created with its header on the first row, then
    /// kept open as metrics.csv is).
    private mutating func appendTasks(_ row: MetricsRow, _ tasks: [TaskReturn]) {
        if tasksHandle == nil {
            let file = directory.appendingPathComponent("tasks.csv")
            if !FileManager.default.fileExists(atPath: file.path) {
                _ = FileManager.default.createFile(atPath: file.path, contents: Data((Self.tasksHeader + "\n").utf8))
            }
            tasksHandle = FileHandle(forWritingAtPath: file.path)
            tasksHandle?.seekToEndOfFile()
        }
        guard let handle = tasksHandle else { return }
        func number(_ x: Double?) -> String { x.map { $0.isFinite ? "\($0)" : "" } ?? "" }
        func quoted(_ text: String) -> String { "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        var lines = ""
        for task in tasks {
            lines +=
                [
                    String(format: "%.3f", row.seconds), "\(row.envSteps)", "\(row.version)", "\(task.task)",
                    number(task.studentReturn), number(task.teacherReturn), number(task.uniformReturn),
                    number(task.teacherShare), quoted(task.environment), quoted(task.teacher),
                ].joined(separator: ",") + "\n"
        }
        handle.write(Data(lines.utf8))
    }

    /// The `seconds` cell of the last row of a metrics.csv (0 without rows).
    static func lastSeconds(_ file: URL) -> Double {
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return 0 }
        let rows = text.split(separator: "\n").dropFirst()
        return rows.last.flatMap { Double($0.prefix { $0 != "," }) } ?? 0
    }
}
