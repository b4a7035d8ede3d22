import Foundation

/// A fresh, empty directory under the system's temporary directory (tests run in parallel:
/// each gets its own).
public func temporaryDirectory() -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("distill-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
