import ArgumentParser
import DistillCore
import DistillNN
import Foundation

/// `distill nn`: network files (safetensors) for people and for the tests that compare with Python.
struct NNCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nn",
        abstract: "Inspect network files and write sample networks (safetensors).",
        discussion: """
            Network students and teachers are safetensors files: the tensors of a policy-value \
            network and its architecture in __metadata__ (docs/networks.md).

            Examples:
              distill nn inspect teacher.safetensors
              distill nn forward --teacher runs/teacher/student.safetensors --batch 4
              distill nn export-sample --architecture conv:8x3/mlp:32 --input-shape 6,6,3 --out /tmp/sample
            """,
        subcommands: [NNInspect.self, NNForward.self, NNExportSample.self]
    )
}

/// Runs `body`, turning a network error (bad file, bad architecture) into a usage error with its message.
func validatingNetwork<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as NetworkError {
        throw ValidationError(error.message)
    }
}

/// `distill nn inspect FILE`: a network file's architecture, shapes and metadata as JSON.
struct NNInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print a network file's architecture, input shape, actions, tensors and metadata as JSON.",
        discussion: """
            Validates the whole file first (header, offsets, shapes against the architecture); a \
            malformed file is an error naming the file and the field.

            Example:
              distill nn inspect runs/teacher.safetensors
            """)

    @Argument(help: "A safetensors network file.")
    var file: String

    func run() throws {
        let url = URL(fileURLWithPath: file)
        let loaded = try validatingNetwork { try PolicyValueNetwork.load(from: url) }
        let network = loaded.network
        var report: [String: Any] = [
            "architecture": network.architecture.description,
            "input_shape": network.inputShape,
            "action_count": network.actionCount,
            "parameter_count": network.parameterCount,
            "tensors": network.parameterTensors.map { ["name": $0.name, "shape": $0.shape] as [String: Any] },
            "metadata": loaded.metadata,
        ]
        if let state = loaded.optimizerState {
            report["optimizer"] = ["kind": state.kind, "step": state.step, "hyperparameters": state.hyperparameters]
        }
        let json = try JSONSerialization.data(
            withJSONObject: report, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        print(String(decoding: json, as: UTF8.self))
    }
}

/// `distill nn export-sample`: a seeded network file, observations and Swift's outputs on them.
struct NNExportSample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-sample",
        abstract: "Write a seeded network (network.safetensors) and its outputs on random observations (sample.json).",
        discussion: """
            For checking other implementations against this one (the lab test \
            60-safetensors-python.sh loads the file with Python's safetensors and compares a numpy \
            forward pass). sample.json holds the architecture, input shape, action count, the \
            observations ([batch][inputSize], row-major, NHWC for images), and Swift's logits and \
            values. Parameters are drawn uniformly in [-0.5, 0.5] (not the near-zero initial heads), so \
            every output depends on every layer.

            Examples:
              distill nn export-sample --out /tmp/sample
              distill nn export-sample --architecture conv:8x3,8x2s2/mlp:32/tanh --input-shape 7,7,3 --out /tmp/conv
            """)

    @Option(help: "Architecture (docs/networks.md), e.g. mlp:64,64 or conv:16x3,32x3/mlp:256.")
    var architecture = "mlp:32,32"

    @Option(help: "Shape of one observation: n, or height,width,channels for convolutions.")
    var inputShape = "10"

    @Option(help: "Number of actions (logits).")
    var actions = 4

    @Option(help: "Number of sample observations.")
    var batch = 5

    @Option(help: "Seed of the parameters and observations.")
    var seed: UInt64 = 0

    @Option(help: "Directory to write network.safetensors and sample.json into (created if missing).")
    var out: String

    func validate() throws {
        guard actions > 0, batch > 0 else { throw ValidationError("--actions and --batch must be positive") }
    }

    func run() throws {
        let shape = inputShape.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) ?? 0 }
        guard !shape.isEmpty, shape.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--input-shape \"\(inputShape)\" is not positive integers like 10 or 6,6,3")
        }
        let network = try validatingNetwork {
            try PolicyValueNetwork(
                architecture: NetworkArchitecture(parsing: architecture), inputShape: shape, actionCount: actions,
                seed: seed)
        }
        var generator = WeightGenerator(seed: seed &+ 1)
        network.parameters = (0..<network.parameterCount).map { _ in Float.random(in: -0.5...0.5, using: &generator) }
        var observations = (0..<(batch * network.inputSize)).map { _ in Float.random(in: -1...1, using: &generator) }
        network.selectHeadsRoundRobin(&observations)
        let (logits, values) = network.forward(observations, batch: batch)
        let directory = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try network.save(
            to: directory.appendingPathComponent("network.safetensors"),
            metadata: ["written_by": "distill nn export-sample", "seed": String(seed)])
        func rows(_ values: [Float], _ width: Int) -> [[Double]] {
            stride(from: 0, to: values.count, by: width).map { values[$0..<($0 + width)].map(Double.init) }
        }
        let sample: [String: Any] = [
            "architecture": network.architecture.description,
            "input_shape": shape,
            "action_count": actions,
            "observations": rows(observations, network.inputSize),
            "logits": rows(logits, actions),
            "values": values.map(Double.init),
        ]
        let json = try JSONSerialization.data(withJSONObject: sample, options: [.sortedKeys])
        try json.write(to: directory.appendingPathComponent("sample.json"))
        print("wrote \(directory.path)/network.safetensors (\(network.parameterCount) parameters) and sample.json")
    }
}

/// `distill nn forward FILE`: a network's (or a network teacher's) outputs on observations, as JSON.
struct NNForward: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract:
            "Print a network file's outputs on observations as JSON (with --teacher: the teacher's π, log π, V, Q).",
        discussion: """
            Observations come from --observations (a JSON list of rows, each one observation \
            flattened row-major) or are --batch rows drawn uniformly in [-1, 1] from --seed. Without \
            --teacher they are the network's input (NHWC for convolutions) and the output holds \
            "logits" and "values". With --teacher the file is read as a network teacher \
            (docs/networks.md): observations are in the environment's layout ([C, H, W] for images, \
            transposed for convolutions as students' are) and the output holds "probabilities", \
            "log_probabilities", "values" and, for kind q-values, "action_values", each row-major \
            per observation. The lab test 60-safetensors-python.sh compares them with numpy.

            Examples:
              distill nn forward runs/net.safetensors --batch 3
              distill nn forward --teacher runs/teacher/student.safetensors --observations obs.json
            """)

    @Argument(help: "A safetensors network file (a network teacher file with --teacher).")
    var file: String

    @Flag(help: "Read the file as a network teacher and print its policy, log-policy, values and Q-values.")
    var teacher = false

    @Option(help: ArgumentHelp("Observations as a JSON list of rows (replaces --batch and --seed).", valueName: "file"))
    var observations: String?

    @Option(help: "Number of random observations.")
    var batch = 4

    @Option(help: "Seed of the random observations.")
    var seed: UInt64 = 0

    func validate() throws {
        guard batch > 0 else { throw ValidationError("--batch must be positive") }
    }

    /// The observation rows: from --observations, or random; each row must hold `width` numbers.
    private func rows(width: Int) throws -> [[Float]] {
        guard let observations else {
            var generator = WeightGenerator(seed: seed)
            return (0..<batch).map { _ in (0..<width).map { _ in Float.random(in: -1...1, using: &generator) } }
        }
        let data = try readInputFile(observations, flag: "--observations")
        guard let list = try? JSONDecoder().decode([[Float]].self, from: data), !list.isEmpty else {
            throw ValidationError("--observations: '\(observations)' is not a non-empty JSON list of lists of numbers")
        }
        if let bad = list.firstIndex(where: { $0.count != width }) {
            throw ValidationError(
                "--observations: row \(bad) has \(list[bad].count) numbers; one observation of this file has \(width)")
        }
        return list
    }

    func run() throws {
        let url = URL(fileURLWithPath: file)
        var report: [String: Any] = [:]
        func doubles(_ values: [Float]) -> [Double] { values.map(Double.init) }
        func table(_ values: [Double], _ width: Int) -> [[Double]] {
            stride(from: 0, to: values.count, by: width).map { Array(values[$0..<($0 + width)]) }
        }
        if teacher {
            let loaded = try validating { try NetworkTeacher.load(from: url) }
            let inputs = try rows(width: loaded.environment.observationShape.reduce(1, *))
            let out = loaded.outputs(observations: inputs.flatMap { $0 }, batch: inputs.count)
            let na = loaded.network.actionCount
            report = [
                "kind": loaded.kind.rawValue, "temperature": loaded.temperature, "observation": loaded.observation,
                "observation_shape": loaded.environment.observationShape, "observations": inputs.map(doubles),
                "probabilities": table(out.probabilities, na), "log_probabilities": table(out.logProbabilities, na),
                "values": out.values,
            ]
            if let q = out.actionValues { report["action_values"] = table(q, na) }
        } else {
            let network = try validatingNetwork { try PolicyValueNetwork.load(from: url) }.network
            var flat = try rows(width: network.inputSize).flatMap { $0 }
            // Random rows (no --observations) take heads in turn; given rows must choose theirs.
            if observations == nil { network.selectHeadsRoundRobin(&flat) }
            if let problem = network.invalidHeadSelector(flat) {
                throw ValidationError("--observations: \(problem) (the network has \(network.heads) heads)")
            }
            let inputs = stride(from: 0, to: flat.count, by: network.inputSize).map {
                Array(flat[$0..<($0 + network.inputSize)])
            }
            let (logits, values) = network.forward(flat, batch: inputs.count)
            report = [
                "observations": inputs.map(doubles), "logits": table(doubles(logits), network.actionCount),
                "values": doubles(values),
            ]
        }
        let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
        print(String(decoding: json, as: UTF8.self))
    }
}
