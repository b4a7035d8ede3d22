import DistillCore
import DistillRuntime
import DistillWire
import Foundation
import FuzzSupport

/// The input is the only checkpoint file of a directory; `CheckpointStore.latest()` reads it as a
/// learner does at start, and a checkpoint it returns is restored into a learner state of the
/// fuzzing gridworld (`LearnerState.restore(from:)`, as `Learner` resumes; the configuration
/// check before it is skipped, since an attacker who can write the file can write that too).
/// The checkpoint's `version` picks the method, its `updates` the optimiser. Properties: reading
/// and restoring never crash; a store with an unreadable file throws rather than returning
/// nothing; a restore that succeeds leaves finite parameters.
enum CheckpointTarget {
    static let name = "fuzz-checkpoint"

    /// A scratch directory of this process, removed at exit: in memory (/dev/shm) where there is
    /// one, since every input is written, listed and read back.
    static let directory: URL = {
        let memory = URL(fileURLWithPath: "/dev/shm")
        let base =
            FileManager.default.isWritableFile(atPath: memory.path) ? memory : FileManager.default.temporaryDirectory
        let url = base.appendingPathComponent("distill-fuzz-checkpoint-\(ProcessInfo.processInfo.processIdentifier)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: CheckpointTarget.directory) }
        return url
    }()

    static func test(_ bytes: [UInt8]) -> CInt {
        let file = directory.appendingPathComponent(CheckpointStore.fileName(version: 1))
        do {
            try Data(bytes).write(to: file)
        } catch {
            FuzzDriver.violated(name, "cannot write the input to \(file.path): \(error)")
        }
        let found: (checkpoint: Checkpoint, file: URL, skipped: [String])?
        do {
            found = try CheckpointStore(directory: directory).latest()
        } catch {
            return 0
        }
        guard let checkpoint = found?.checkpoint else {
            FuzzDriver.violated(name, "a directory with one checkpoint file gave neither a checkpoint nor an error")
        }
        let problem = FuzzProblem.shared
        guard var state = try? problem.learnerState(problem.method(checkpoint.version, checkpoint.updates)) else {
            return 0
        }
        do {
            try state.restore(from: LearnerSnapshot(checkpoint))
        } catch {
            return 0
        }
        if let i = state.student.parameters.logits.firstIndex(where: { !$0.isFinite }) {
            FuzzDriver.violated(
                name, "a restored checkpoint has parameter \(i) = \(state.student.parameters.logits[i])")
        }
        return 0
    }

    /// Checkpoints of learner states of several methods after a few updates (Adam moments, a
    /// critic, the generator), as the learner writes them.
    static func seeds() throws -> [Seed] {
        let codec = WireCodec()
        let learner = Sender(role: .learner, id: "learner", runNonce: 3)
        let problem = FuzzProblem.shared
        var seeds: [Seed] = []
        for (version, updates) in [(0, 0), (1, 1), (5, 2), (12, 3)] as [(UInt64, UInt64)] {
            let method = problem.method(version, updates)
            var state = try problem.learnerState(method)
            let unroll = try problem.unroll(episodes: 2, sequence: version, parameterVersion: updates, seed: version)
            UnrollEpisode.withEpisodes(of: unroll) { episodes in
                for episode in episodes { state.accumulate(episode) }
            }
            state.applyUpdate()
            let checkpoint = Checkpoint(
                state.snapshot, version: version, configurationJSON: #"{"method":"\#(method.method.rawValue)"}"#,
                createdUnixMilliseconds: 1_700_000_000_000)
            seeds.append(
                Seed(
                    "\(method.method.rawValue)-\(method.optimiser.rawValue)",
                    codec.encode(Envelope(sender: learner, message: .checkpoint(checkpoint)))))
        }
        return seeds
    }
}
