import Foundation

/// What a run records about the program that made it (summary.json).
public enum BuildInfo {
    /// The release of this build, printed by `distill --version`.
    public static let version = "0.1.0"

    /// The git commit of the checkout this binary was built in, read at run time with
    /// `git describe --always --dirty --abbrev=40` in the nearest directory above the binary that
    /// has a `.git` (the binary lives in that checkout's `.build/`); "unknown" when the binary
    /// was copied elsewhere or git is missing. SwiftPM offers no build-time hook without a plugin,
    /// so the commit is not embedded.
    public static let commit: String = {
        var directory = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        while directory.path != "/" {
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent(".git").path) {
                return git(["-C", directory.path, "describe", "--always", "--dirty", "--abbrev=40"]) ?? "unknown"
            }
            directory.deleteLastPathComponent()
        }
        return "unknown"
    }()

    /// This process's command line, and the command that launched it (`distill cluster`'s, passed
    /// to its roles in `launcherVariable`), if any.
    public static var commandLine: [String] { CommandLine.arguments }

    /// The environment variable through which `distill cluster` tells its roles its command line.
    public static let launcherVariable = "DISTILL_LAUNCHER_COMMAND_LINE"

    /// The launcher's command line as a JSON array, from the environment.
    public static var launcherCommandLine: [String]? {
        guard let text = ProcessInfo.processInfo.environment[launcherVariable] else { return nil }
        return try? JSONDecoder().decode([String].self, from: Data(text.utf8))
    }

    private static func git(_ arguments: [String]) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git"] + arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }
}
