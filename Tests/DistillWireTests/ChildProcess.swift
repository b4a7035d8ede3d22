import Foundation
import Testing

/// A `distill` child process started by a test, with its stdout collected line by line.
/// Tests kill only the processes they started, and always do (on deinit).
final class ChildProcess: @unchecked Sendable {
    private let process = Process()
    private let lock = NSLock()
    private var lines: [String] = []
    private var partial = Data()
    private var errorText = Data()

    /// The built `distill` binary: beside the test bundle in .build/<configuration>/.
    static var distillBinary: URL {
        if let override = ProcessInfo.processInfo.environment["DISTILL_BINARY"] {
            return URL(fileURLWithPath: override)
        }
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return exe.deletingLastPathComponent().appendingPathComponent("distill")
    }

    init(_ arguments: [String]) throws {
        let binary = Self.distillBinary
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw ChildProcessError(
                "no distill binary at \(binary.path): build it first (swift build) or set DISTILL_BINARY")
        }
        process.executableURL = binary
        process.arguments = arguments
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
        if process.isRunning {
            process.terminate()
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
    var output: [String] { lock.withLock { lines } }
    /// Everything printed on stderr so far.
    var standardError: String { lock.withLock { String(decoding: errorText, as: UTF8.self) } }

    /// Waits for a line starting with `prefix`; returns it, or nil after `timeout`.
    func waitForLine(startingWith prefix: String, timeout: Duration = .seconds(20)) -> String? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let line = output.first(where: { $0.hasPrefix(prefix) }) { return line }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return nil
    }

    /// Waits for the process to exit; returns its status, or nil (after killing it) on timeout.
    func waitForExit(timeout: Duration = .seconds(30)) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.01) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            return nil
        }
        Thread.sleep(forTimeInterval: 0.05)  // let the pipe handlers drain the last lines
        return process.terminationStatus
    }

    var isRunning: Bool { process.isRunning }
}

struct ChildProcessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
