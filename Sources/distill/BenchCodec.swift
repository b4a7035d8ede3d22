import ArgumentParser
import DistillWire
import Foundation

/// `distill bench codec`: how long the wire codec takes for the messages that dominate traffic.
struct BenchCodec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codec",
        abstract: "Time encoding and decoding of a 40 KB Parameters message and a 100-step Unroll.",
        discussion: """
            Each figure is the median of --repeats timed batches. Decoding includes every check \
            the receivers make (finite floats, shapes, probability rows, the parameter checksum); \
            the checksum alone is timed too, and a plain copy of the same bytes is the baseline.

            Examples:
              distill bench codec
              distill bench codec --parameters 100000 --unroll-steps 1000
            """
    )

    @Option(
        help:
            "Floats in the Parameters message (10,000 floats = 40 KB: a 20x20 gridworld's 401 states x 4 actions is 1,604)."
    )
    var parameters = 10_000

    @Option(help: "Steps in the Unroll (one episode, 4 actions, teacher probabilities, values and Q-values).")
    var unrollSteps = 100

    @Option(help: "Timed batches per figure; the median is printed.")
    var repeats = 15

    func validate() throws {
        guard parameters >= 1, unrollSteps >= 1, repeats >= 1 else {
            throw ValidationError("--parameters, --unroll-steps and --repeats must be at least 1")
        }
    }

    func run() throws {
        let codec = WireCodec()
        let sender = Sender.starting(role: .tool, id: "bench")
        let values = (0..<parameters).map { Float(sin(Double($0))) }
        let parameterMessage = Envelope(
            sender: sender,
            message: .parameters(
                Parameters(version: 7, values: Tensor(shape: [parameters], values: values), envSteps: 1)))
        let unrollMessage = Envelope(sender: sender, message: .unroll(Self.unroll(steps: unrollSteps)))

        print("distill bench codec: median of \(repeats) batches, release build expected (swift build -c release)")
        for (name, envelope) in [
            ("Parameters \(parameters) floats", parameterMessage), ("Unroll \(unrollSteps) steps", unrollMessage),
        ] {
            let bytes = codec.encode(envelope)
            precondition((try? codec.decode(bytes)) == envelope, "codec round trip failed")
            let encode = Self.time(repeats: repeats) { _ = codec.encode(envelope) }
            let decode = Self.time(repeats: repeats) { _ = try? codec.decode(bytes) }
            // Baseline: copying the same bytes once (what any transport must do at least).
            var sink = [UInt8](repeating: 0, count: bytes.count)
            let copy = Self.time(repeats: repeats) {
                sink.withUnsafeMutableBytes { target in bytes.withUnsafeBytes { target.copyMemory(from: $0) } }
            }
            precondition(sink == bytes)
            print(
                String(
                    format: "%@ (%d bytes): encode %.2f us, decode %.2f us (%.0f MB/s), plain copy %.2f us",
                    name, bytes.count, encode * 1e6, decode * 1e6, Double(bytes.count) / decode / 1e6, copy * 1e6))
        }
        let checksum = Self.time(repeats: repeats) { _ = Checksum.fnv1a64(values) }
        print(String(format: "checksum (FNV-1a 64) of %d floats: %.2f us", parameters, checksum * 1e6))
    }

    /// One episode of `steps` steps on 4 actions with every optional field filled.
    static func unroll(steps: Int) -> Unroll {
        let states = steps + 1
        let row: [Float] = [0.7, 0.1, 0.1, 0.1]
        return Unroll(
            sequence: 1, parameterVersion: 3, teacherID: "q-learning(T=0.01,seed=1)", teacherVersion: 1,
            actionCount: 4, episodeLengths: [UInt32(steps)], episodeTerminated: [true],
            observations: (0..<states).map { Int32($0 % 401) }, actions: (0..<steps).map { Int32($0 % 4) },
            rewards: (0..<steps).map { $0 % 10 == 0 ? -1 : 0 },
            behaviourProbabilities: Array(repeating: 0.25, count: steps),
            teacherProbabilities: Tensor(shape: [states, 4], values: Array((0..<states).map { _ in row }.joined())),
            teacherValues: (0..<states).map { Float($0) / 10 },
            teacherQValues: Tensor(shape: [states, 4], values: (0..<(states * 4)).map { Float($0 % 7) }))
    }

    /// Seconds per call: the median over `repeats` batches, each long enough (≥ 20 ms) to time.
    static func time(repeats: Int, _ body: () -> Void) -> Double {
        let clock = ContinuousClock()
        var batch = 1
        while true {
            let elapsed = clock.measure { for _ in 0..<batch { body() } }
            if elapsed >= .milliseconds(20) { break }
            batch *= 2
        }
        var samples: [Double] = []
        for _ in 0..<repeats {
            let elapsed = clock.measure { for _ in 0..<batch { body() } }
            samples.append(Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds))
        }
        return samples.sorted()[samples.count / 2] / Double(batch)
    }
}
