import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A `distill` child process started by a test, with its stdout collected line by line.
/// Tests kill only the processes they started, and always do (on deinit).
public final class ChildProcess: @unchecked Sendable {
    private let process = Process()
    private let lock = NSLock()
    private var lines: [String] = []
    private var partial = Data()
    private var errorText = Data()

    /// The built `distill` binary: beside the test bundle in .build/<configuration>/.
    public static var distillBinary: URL {
        if let override = ProcessInfo.processInfo.environment["DISTILL_BINARY"] {
            return URL(fileURLWithPath: override)
        }
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return exe.deletingLastPathComponent().appendingPathComponent("distill")
    }

    /// Starts `distill` with `arguments` (and `environment` added to this process's).
    public init(_ arguments: [String], environment: [String: String] = [:]) throws {
        let binary = Self.distillBinary
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw ChildProcessError(
                "no distill binary at \(binary.path): build it first (swift build) or set DISTILL_BINARY")
        }
        process.executableURL = binary
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        out.fileHandleForReading.readabilityHandler = { [weak self] handle in self?.append(handle.availableData) }
        err.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self else { return }
            self.lock.withLock { self.errorText.append(data) }
        }
        try process.run()
    }

    deinit {
        stop()
    }

    /// Stops the process if it still runs: SIGTERM, then SIGKILL after `grace`.
    public func stop(grace: Duration = .seconds(5)) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while process.isRunning && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.01) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    private func append(_ data: Data) {
        lock.withLock {
            partial.append(data)
            while let newline = partial.firstIndex(of: UInt8(ascii: "\n")) {
                lines.append(String(decoding: partial[partial.startIndex..<newline], as: UTF8.self))
                partial = Data(partial[(newline + 1)...])
            }
        }
    }

    /// Lines printed so far.
    public var output: [String] { lock.withLock { lines } }
    /// Everything printed on stderr so far.
    public var standardError: String { lock.withLock { String(decoding: errorText, as: UTF8.self) } }

    /// Waits for a line starting with `prefix`; returns it, or nil after `timeout`.
    public func waitForLine(startingWith prefix: String, timeout: Duration = .seconds(20)) -> String? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let line = output.first(where: { $0.hasPrefix(prefix) }) { return line }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return nil
    }

    /// Waits for the process to exit; returns its status, or nil (after killing it) on timeout.
    public func waitForExit(timeout: Duration = .seconds(30)) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.01) }
        if process.isRunning {
            stop()
            return nil
        }
        Thread.sleep(forTimeInterval: 0.05)  // let the pipe handlers drain the last lines
        return process.terminationStatus
    }

    public var isRunning: Bool { process.isRunning }

    /// The process id.
    public var pid: Int32 { process.processIdentifier }

    /// Sends a signal (SIGKILL for a crash, SIGTERM for a clean stop).
    public func send(signal: Int32) {
        if process.isRunning { kill(process.processIdentifier, signal) }
    }

    /// The endpoint the process announced with `endpoint NAME ENDPOINT` (roles) or
    /// `bound ENDPOINT` (probe, name "bound").
    public func endpoint(_ name: String, timeout: Duration = .seconds(60)) throws -> String {
        let prefix = name == "bound" ? "bound " : "endpoint \(name) "
        guard let line = waitForLine(startingWith: prefix, timeout: timeout) else {
            throw ChildProcessError(
                "no '\(prefix)' line from distill \(process.arguments?.first ?? ""): \(standardError.suffix(2000))")
        }
        return String(line.dropFirst(prefix.count))
    }
}

/// Runs blocking work on a thread of its own: never on Swift's cooperative pool, which has one
/// thread per core here and deadlocks when they all wait on ZeroMQ or on child processes.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.start()
    }
}

/// A child process did not do what the test expected.
public struct ChildProcessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
