import Foundation

/// One row of a learner's metrics.csv.
public struct MetricsRow: Sendable {
    /// Seconds since the learner started; in metrics.csv, continued across resumes (a resumed
    /// learner's rows start where the previous life's last row ended).
    public var seconds = 0.0
    /// Environment steps learned from, in total (across restarts).
    public var envSteps: UInt64 = 0
    /// Updates applied in total.
    public var updates: UInt64 = 0
    /// Parameter version.
    public var version: UInt64 = 0
    /// Environment steps per second since the previous row.
    public var stepsPerSecond = 0.0
    /// Exact expected return of the current student (policy evaluation on the MDP).
    public var studentReturn = Double.nan
    /// Exact expected return of the reference teacher.
    public var teacherReturn = Double.nan
    /// Mean over episodes since the previous row of Σ_t KL(π(s_t) ‖ π_θ(s_t)).
    public var klPerEpisode = Double.nan
    /// Mean discounted return of the episodes since the previous row.
    public var episodeReturn = Double.nan
    /// Mean policy lag (learner version − behaviour version), weighted by steps.
    public var meanLag = 0.0
    /// Largest policy lag since the previous row.
    public var maxLag = 0.0
    /// Actors heard from recently.
    public var actorsAlive = 0
    /// The teacher that produced the latest targets.
    public var teacherID = ""
    /// Messages rejected so far.
    public var rejected: UInt64 = 0

    /// The CSV header, matching `csvLine`.
    public static let header =
        "seconds,env_steps,updates,version,steps_per_second,student_return,teacher_return,kl_per_episode,"
        + "episode_return,mean_lag,max_lag,actors_alive,teacher_id,rejected"

    /// The row as CSV (empty cells for unknown values).
    public var csvLine: String {
        func number(_ value: Double) -> String { value.isFinite ? String(format: "%.6g", value) : "" }
        let teacher =
            teacherID.contains(",") || teacherID.contains("\"")
            ? "\"" + teacherID.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : teacherID
        return [
            String(format: "%.3f", seconds), String(envSteps), String(updates), String(version),
            String(format: "%.1f", stepsPerSecond), number(studentReturn), number(teacherReturn), number(klPerEpisode),
            number(episodeReturn), String(format: "%.3f", meanLag), String(format: "%.0f", maxLag), String(actorsAlive),
            teacher, String(rejected),
        ].joined(separator: ",")
    }
}

/// metrics.csv in an output directory, flushed row by row so nothing is lost on a crash.
struct MetricsFile {
    private let handle: FileHandle
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
    }

    func append(_ row: MetricsRow) {
        var row = row
        row.seconds += secondsOffset
        handle.write(Data((row.csvLine + "\n").utf8))
    }

    /// The `seconds` cell of the last row of a metrics.csv (0 without rows).
    static func lastSeconds(_ file: URL) -> Double {
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return 0 }
        let rows = text.split(separator: "\n").dropFirst()
        return rows.last.flatMap { Double($0.prefix { $0 != "," }) } ?? 0
    }
}
