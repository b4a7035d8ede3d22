import DistillWire
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// A child role process of the launcher: its arguments, its log file, the endpoints it announced.
public final class ManagedProcess: @unchecked Sendable {
    /// The role's name, also its log file's name.
    public let name: String
    private(set) var arguments: [String]
    /// Where its stderr goes.
    public let logFile: URL
    private let binary: URL
    private var process: Process
    private let lock = NSLock()
    private var announced: [String: String] = [:]
    private var partial = Data()
    private(set) var restarts = 0
    private var restartTimes: [Double] = []

    /// Describes a process; `start()` runs it.
    public init(name: String, binary: URL, arguments: [String], logDirectory: URL) {
        self.name = name
        self.binary = binary
        self.arguments = arguments
        self.logFile = logDirectory.appendingPathComponent("\(name).log")
        self.process = Process()
    }

    /// Starts (or restarts) the process; its stderr goes to its log file, appended.
    public func start() throws {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment[StopSignal.parentVariable] = String(getpid())
        if let line = try? JSONEncoder().encode(CommandLine.arguments) {
            environment[BuildInfo.launcherVariable] = String(decoding: line, as: UTF8.self)
        }
        process.environment = environment
        if !FileManager.default.fileExists(atPath: logFile.path) {
            _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        }
        guard let log = FileHandle(forWritingAtPath: logFile.path) else {
            throw RuntimeError("cannot write the log file \(logFile.path)", code: .fileAccess)
        }
        log.seekToEndOfFile()
        let out = Pipe()
        process.standardOutput = out
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        out.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
                return
            }
            self?.consume(data)
        }
        lock.withLock {
            announced = [:]
            partial = Data()
        }
        do {
            try process.run()
        } catch {
            throw RuntimeError(
                "cannot start the \(name) process (\(binary.path)): \(error.localizedDescription)", code: .childProcess)
        }
        self.process = process
    }

    private func consume(_ data: Data) {
        lock.withLock {
            partial.append(data)
            while let newline = partial.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: partial[partial.startIndex..<newline], as: UTF8.self)
                partial = Data(partial[(newline + 1)...])
                let parts = line.split(separator: " ")
                if parts.count == 3 && parts[0] == "endpoint" { announced[String(parts[1])] = String(parts[2]) }
            }
        }
    }

    /// Waits until the process announces `endpoint NAME ...`; fails if it exits first or times out.
    /// Gives up early once `stop` is requested.
    public func waitForEndpoint(_ endpoint: String, timeoutSeconds: Double, stop: StopToken? = nil) throws -> String {
        let deadline = monotonicSeconds() + timeoutSeconds
        while monotonicSeconds() < deadline {
            if let value = lock.withLock({ announced[endpoint] }) { return value }
            if !process.isRunning {
                throw RuntimeError(
                    "the \(name) process exited (status \(process.terminationStatus)) before it was ready:\n"
                        + tail(of: logFile), code: .childProcess)
            }
            if stop?.isRequested == true { throw RuntimeError("stopped while waiting for the \(name) process") }
            usleep(10_000)
        }
        throw RuntimeError(
            "the \(name) process was not ready after \(Int(timeoutSeconds)) s:\n" + tail(of: logFile),
            code: .childProcess)
    }

    /// Replaces the value of each flag in `values` (e.g. a `tcp://127.0.0.1:*` bind by the port
    /// it got), so a restart binds the same endpoints its peers are connected to.
    func pin(_ values: [String: String]) {
        for (flag, value) in values {
            if let index = arguments.firstIndex(of: flag), index + 1 < arguments.count { arguments[index + 1] = value }
        }
    }

    var isRunning: Bool { process.isRunning }
    var pid: Int32 { process.processIdentifier }
    var terminationStatus: Int32 { process.terminationStatus }

    /// Records a restart; false when the process restarted too often (5 times in a minute).
    func mayRestart() -> Bool {
        let now = monotonicSeconds()
        restartTimes = restartTimes.filter { now - $0 < 60 } + [now]
        restarts += 1
        return restartTimes.count <= 5
    }

    /// Sends `signal` if running.
    public func signal(_ number: Int32) {
        if process.isRunning { kill(process.processIdentifier, number) }
    }

    /// Waits up to `seconds` for the exit; kills it (SIGKILL) after that. Returns its status.
    @discardableResult
    public func waitForExit(seconds: Double) -> Int32 {
        let deadline = monotonicSeconds() + seconds
        while process.isRunning && monotonicSeconds() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        return process.terminationStatus
    }
}

/// The last lines of a log file, for error messages.
func tail(of file: URL, lines: Int = 15) -> String {
    guard let text = try? String(contentsOf: file, encoding: .utf8) else { return "(no log at \(file.path))" }
    return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).map { "  | \($0)" }
        .joined(separator: "\n")
}

/// What `distill cluster` starts.
public struct LauncherConfiguration: Sendable {
    /// The `distill` binary the roles run (normally this process's own).
    public var binary: URL
    /// Flags every role gets (environment, teacher and method flags).
    public var problemArguments: [String]
    /// Extra flags for the learner (steps, publication, checkpoints...).
    public var learnerArguments: [String]
    /// Extra flags for each actor.
    public var actorArguments: [String]
    /// Number of actor processes.
    public var actors: Int
    /// Seed of actor k is `actorSeed + k`.
    public var actorSeed: UInt64
    /// Output directory: metrics.csv, summary.json, checkpoints/, logs/, learning_curves.png.
    public var outputDirectory: URL
    /// Seconds between progress lines.
    public var progressIntervalSeconds = LauncherConfiguration.defaultProgressIntervalSeconds
    /// The default of `progressIntervalSeconds` (`distill cluster --progress-interval`).
    public static let defaultProgressIntervalSeconds = 1.0
    /// Seconds a role may take to start (the teacher may train first).
    public var startTimeoutSeconds: Double = 600
    /// Tasks of a multi-task run (0: one environment): one teacher server per task (`--task k`),
    /// actor k plays task `k mod tasks` with that task's teacher.
    public var tasks = 0

    /// Creates a configuration.
    public init(
        binary: URL, problemArguments: [String], learnerArguments: [String], actorArguments: [String], actors: Int,
        actorSeed: UInt64, outputDirectory: URL
    ) {
        self.binary = binary
        self.problemArguments = problemArguments
        self.learnerArguments = learnerArguments
        self.actorArguments = actorArguments
        self.actors = actors
        self.actorSeed = actorSeed
        self.outputDirectory = outputDirectory
    }
}

/// Starts a teacher server, a learner and N actors as child processes on loopback, supervises
/// them (restarting a crashed one, the learner from its checkpoint), prints progress, and stops
/// them all cleanly at the end, on Ctrl-C or on SIGTERM.
public struct Launcher: RoleLoop {
    private let configuration: LauncherConfiguration
    private let logger: Logger
    /// Set when the cluster should stop (for the `distill` command's token, by a signal).
    private let stop: StopToken
    private let progress: (String) -> Void
    /// The endpoints the roles bound (filled as they start).
    public private(set) var endpoints: [String: String] = [:]

    /// Creates a launcher; `progress` receives one line per progress report.
    public init(
        configuration: LauncherConfiguration, logger: Logger, stop: StopToken, progress: @escaping (String) -> Void
    ) {
        self.stop = stop
        self.configuration = configuration
        self.logger = logger
        self.progress = progress
    }

    /// Runs the cluster to its end; returns normally after a clean stop.
    public mutating func run() throws {
        let out = configuration.outputDirectory
        let logs = out.appendingPathComponent("logs")
        do {
            try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        } catch {
            throw RuntimeError("cannot create \(logs.path): \(error.localizedDescription)", code: .fileAccess)
        }
        let binary = configuration.binary
        let local = "tcp://127.0.0.1:*"
        // One teacher server, or one per task (started together: each may train its teacher first).
        let teachers = (configuration.tasks > 0 ? (0..<configuration.tasks).map { Optional($0) } : [nil]).map {
            (task: Int?) in
            ManagedProcess(
                name: task.map { "teacher-\($0)" } ?? "teacher", binary: binary,
                arguments: ["teacher"] + configuration.problemArguments + ["--bind", local]
                    + (task.map { ["--task", String($0)] } ?? []),
                logDirectory: logs)
        }
        var children: [ManagedProcess] = teachers
        defer { Self.stopAll(children) }

        for teacher in teachers {
            progress("starting the teacher server \(teacher.name) (log: \(teacher.logFile.path))")
            try teacher.start()
        }
        var teacherEndpoints: [String] = []
        for teacher in teachers {
            let endpoint = try teacher.waitForEndpoint(
                "teacher", timeoutSeconds: configuration.startTimeoutSeconds, stop: stop)
            endpoints[teacher.name] = endpoint
            teacher.pin(["--bind": endpoint])
            teacherEndpoints.append(endpoint)
        }
        let teacherEndpoint = teacherEndpoints.joined(separator: ", ")

        let learner = ManagedProcess(
            name: "learner", binary: binary,
            arguments: ["learner"] + configuration.problemArguments + configuration.learnerArguments + [
                "--bind-unrolls", local, "--bind-params", local, "--bind-control", local,
                "--checkpoint-dir", out.appendingPathComponent("checkpoints").path, "--out", out.path,
            ], logDirectory: logs)
        children.append(learner)
        progress("starting the learner (log: \(learner.logFile.path))")
        try learner.start()
        let control = try learner.waitForEndpoint(
            "control", timeoutSeconds: configuration.startTimeoutSeconds, stop: stop)
        endpoints["control"] = control
        learner.pin([
            "--bind-control": control,
            "--bind-unrolls": try learner.waitForEndpoint("unrolls", timeoutSeconds: 10, stop: stop),
            "--bind-params": try learner.waitForEndpoint("parameters", timeoutSeconds: 10, stop: stop),
        ])

        var actors: [ManagedProcess] = []
        for k in 0..<configuration.actors {
            let task = configuration.tasks > 0 ? k % configuration.tasks : nil
            let actor = ManagedProcess(
                name: "actor-\(k)", binary: binary,
                arguments: ["actor"] + configuration.problemArguments + configuration.actorArguments + [
                    "--learner", control, "--teacher-server", teacherEndpoints[task ?? 0], "--id", "actor-\(k)",
                    "--actor-seed", String(configuration.actorSeed &+ UInt64(k)),
                ] + (task.map { ["--task", String($0)] } ?? []), logDirectory: logs)
            try actor.start()
            actors.append(actor)
            children.append(actor)
        }
        progress("started \(configuration.actors) actors; teacher \(teacherEndpoint), learner \(control)")

        // The learner wrote its run token into OUT at start: the launcher holds it like any
        // operator (it asks only for status today; a command would need it).
        let tokenFile = out.appendingPathComponent(RunToken.fileName)
        let client = try ControlClient(
            learner: control, sender: .starting(role: .launcher, id: "launcher"),
            token: (try? RunToken.read(tokenFile)) ?? "")
        progress(
            "control it with: distill control status|stop|swap-teacher|set-lambda --learner \(control) "
                + "--run-dir \(out.path)")
        var nextProgress = monotonicSeconds() + configuration.progressIntervalSeconds
        let started = monotonicSeconds()
        var startReturn: Double?
        while !stop.isRequested {
            usleep(50_000)
            if !learner.isRunning {
                if learner.terminationStatus == 0 {
                    break  // the learner reached its step limit and wrote everything
                }
                guard learner.mayRestart() else {
                    throw RuntimeError(
                        "the learner keeps failing (status \(learner.terminationStatus)); stopping:\n"
                            + tail(of: learner.logFile), code: .childProcess)
                }
                logger.warning(
                    "the learner exited with status \(learner.terminationStatus); restarting it from its checkpoint")
                try learner.start()
                _ = try learner.waitForEndpoint(
                    "control", timeoutSeconds: configuration.startTimeoutSeconds, stop: stop)
                client.token = (try? RunToken.read(tokenFile)) ?? ""  // a restarted learner draws a new one
            }
            // A child that exits 0 was asked to stop (the learner ends its actors at the step
            // limit); only a crash is restarted.
            for child in teachers + actors where !child.isRunning && child.terminationStatus != 0 {
                guard child.mayRestart() else {
                    throw RuntimeError(
                        "the \(child.name) process keeps failing; stopping:\n" + tail(of: child.logFile),
                        code: .childProcess)
                }
                logger.warning("\(child.name) exited with status \(child.terminationStatus); restarting it")
                try child.start()
            }
            if monotonicSeconds() >= nextProgress {
                nextProgress += configuration.progressIntervalSeconds
                if let status = try? client.status(timeoutMilliseconds: 500) {
                    startReturn = startReturn ?? status.studentReturn
                    progress(
                        Self.progressLine(
                            status, elapsed: monotonicSeconds() - started, actors: configuration.actors,
                            startReturn: startReturn))
                }
            }
        }
        if stop.isRequested {
            progress("stopping (\(stop.reason)): the learner writes its final checkpoint and metrics")
        }
        // The learner first, so it writes its final checkpoint while actors may still push.
        learner.signal(SIGTERM)
        let learnerStatus = learner.waitForExit(seconds: 60)
        Self.stopAll(children)
        if learnerStatus != 0 {
            throw RuntimeError(
                "the learner ended with status \(learnerStatus):\n" + tail(of: learner.logFile), code: .childProcess)
        }
    }

    private static func stopAll(_ children: [ManagedProcess]) {
        for child in children { child.signal(SIGTERM) }
        for child in children { child.waitForExit(seconds: 10) }
    }

    /// One progress line from the learner's status. The student's progress is the share of the
    /// way from `startReturn` (the first return seen) to the teacher's return, which stays
    /// meaningful when returns are negative; the policy lag is in updates (parameter versions),
    /// and in env steps at this run's env steps per update.
    public static func progressLine(
        _ status: LearnerStatus, elapsed: Double, actors: Int, startReturn: Double? = nil
    ) -> String {
        var parts = [String(format: "[%7.1fs]", elapsed)]
        parts.append("steps \(status.envSteps) (" + String(format: "%.0f/s)", status.stepsPerSecond))
        parts.append("version \(status.version)")
        if let student = status.studentReturn {
            if let teacher = status.teacherReturn {
                var text = String(format: "return %.3f / teacher %.3f", student, teacher)
                if let start = startReturn, abs(teacher - start) > 1e-9 {
                    text += String(
                        format: " (%.0f%% of the way from %.3f)", 100 * (student - start) / (teacher - start), start)
                }
                parts.append(text)
            } else {
                parts.append(String(format: "return %.3f", student))
            }
        }
        if let tasks = status.tasks, !tasks.isEmpty {
            // Each task's share of its teacher's return over chance: 100 % is the teacher.
            let shares = tasks.map { $0.teacherShare.map { String(format: "%.0f%%", 100 * $0) } ?? "n/a" }
            parts.append("teacher share per task " + shares.joined(separator: " "))
        }
        if let kl = status.klPerEpisode { parts.append(String(format: "KL %.3f", kl)) }
        var lag = String(format: "lag %.1f updates (max %.0f)", status.meanLag, status.maxLag)
        if status.updates > 0 {
            lag += String(
                format: " ≈ %.0f env steps", status.meanLag * Double(status.envSteps) / Double(status.updates))
        }
        parts.append(lag)
        parts.append(String(format: "actors %d/%d", status.actorsAlive, actors))
        return parts.joined(separator: " | ")
    }
}
