import CFuzzerDriver
import Foundation

/// The body of one fuzz target: libFuzzer calls it with each input it tries. It returns 0; a
/// violated property ends the process (``violated(_:_:)``), which libFuzzer records as a crash.
public typealias FuzzTest = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

/// The common `main` of the fuzz targets.
public enum FuzzDriver {
    /// Runs libFuzzer on `test` with the process's arguments, or, when the first argument is
    /// `--write-seeds DIR`, writes the target's generated seed inputs to `DIR` and exits.
    public static func main(target: String, seeds: () throws -> [Seed], test: FuzzTest) -> Never {
        let arguments = CommandLine.arguments
        if arguments.count == 3 && arguments[1] == "--write-seeds" {
            do {
                let written = try Seed.write(try seeds(), to: URL(fileURLWithPath: arguments[2]))
                print("\(target): wrote \(written) seed inputs to \(arguments[2])")
                exit(0)
            } catch {
                FileHandle.standardError.write(Data("\(target): cannot write seeds: \(error)\n".utf8))
                exit(1)
            }
        }
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, test))
    }

    /// Reports a violated property with the input's size and ends the process with a trap, so
    /// that libFuzzer saves the input as a crash reproducer.
    public static func violated(_ target: String, _ message: String) -> Never {
        FileHandle.standardError.write(Data("\n\(target): PROPERTY VIOLATED: \(message)\n".utf8))
        fatalError("\(target): property violated")
    }

    /// The input as a byte array.
    public static func bytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
        guard let data, size > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: size))
    }
}

/// A named seed input of a fuzz target's committed corpus.
public struct Seed: Sendable {
    /// The file name (stable, so that regenerating the seeds rewrites the same files).
    public var name: String
    /// The input.
    public var bytes: [UInt8]

    /// A seed called `name`.
    public init(_ name: String, _ bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }

    /// Writes `seeds` into `directory` (created if needed); returns how many.
    static func write(_ seeds: [Seed], to directory: URL) throws -> Int {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for seed in seeds {
            try Data(seed.bytes).write(to: directory.appendingPathComponent("seed-" + seed.name))
        }
        return seeds.count
    }
}

/// A seed generator's refusal to write a seed that would not do its job.
public struct FuzzSeedError: Error, CustomStringConvertible {
    /// What is wrong.
    public var description: String

    /// An error saying `description`.
    public init(_ description: String) { self.description = description }
}
