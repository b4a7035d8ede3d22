import Foundation

/// A network read from a safetensors file, with what was saved alongside it.
public struct LoadedNetwork {
    /// The network, its parameters as saved.
    public var network: PolicyValueNetwork
    /// The caller's metadata (the `distill.` keys of the file's own description removed).
    public var metadata: [String: String]
    /// The optimiser state, when one was saved.
    public var optimizerState: OptimizerState?
}

/// Checkpoints and teacher files: a `PolicyValueNetwork` as safetensors.
///
/// Tensors: every entry of `parameterTensors` by name ("torso.0.weight", "logits.bias", …; Linear
/// weights `[out, in]`, Conv2d weights `[out, k, k, in]` over NHWC), and with an optimiser state
/// "optimizer.BUFFER" tensors of `[parameterCount]` scalars in the flat parameter order. Metadata:
/// `distill.architecture` (the grammar's string), `distill.input_shape` ("10,10,4"),
/// `distill.action_count`, `distill.format` (`policy-value-network/1`), and for an optimiser
/// `distill.optimizer.kind`, `.step` and `.hyperparameters` (JSON); the caller's keys beside them.
extension PolicyValueNetwork {
    /// The metadata keys this module writes; callers' keys must not start with it.
    public static let reservedMetadataPrefix = "distill."
    private static let formatVersion = "policy-value-network/1"

    /// The network (and optionally an optimiser state) as a safetensors file with `metadata`.
    public func safetensorsFile(
        metadata: [String: String] = [:], optimizerState: OptimizerState? = nil
    )
        -> SafetensorsFile
    {
        precondition(
            !metadata.keys.contains { $0.hasPrefix(Self.reservedMetadataPrefix) },
            "metadata keys starting with \(Self.reservedMetadataPrefix) are reserved")
        var file = SafetensorsFile(metadata: metadata)
        for p in parameterTensors { file.tensors[p.name] = tensor(named: p.name) }
        file.metadata["distill.format"] = Self.formatVersion
        file.metadata["distill.architecture"] = architecture.description
        file.metadata["distill.input_shape"] = inputShape.map(String.init).joined(separator: ",")
        file.metadata["distill.action_count"] = String(actionCount)
        if let state = optimizerState {
            file.metadata["distill.optimizer.kind"] = state.kind
            file.metadata["distill.optimizer.step"] = String(state.step)
            let json = try! JSONEncoder().encode(state.hyperparameters)  // [String: Double] always encodes
            file.metadata["distill.optimizer.hyperparameters"] = String(decoding: json, as: UTF8.self)
            for (name, buffer) in state.buffers {
                file.tensors["optimizer.\(name)"] = Tensor(shape: [buffer.count], scalars: buffer)
            }
        }
        return file
    }

    /// Writes the network file (see the extension's description).
    public func save(to url: URL, metadata: [String: String] = [:], optimizerState: OptimizerState? = nil) throws {
        try safetensorsFile(metadata: metadata, optimizerState: optimizerState).write(to: url)
    }

    /// Reads a network file written by `save`; errors name the file and the field.
    public static func load(from url: URL) throws -> LoadedNetwork {
        try load(SafetensorsFile.read(from: url), source: url.path)
    }

    /// Builds the network a decoded safetensors file describes; `source` prefixes error messages.
    public static func load(_ file: SafetensorsFile, source: String) throws -> LoadedNetwork {
        func fail(_ problem: String) -> NetworkError {
            NetworkError(.networkFile, "\(source): \(problem)")
        }
        func field(_ key: String) throws -> String {
            guard let value = file.metadata[key] else {
                throw fail("__metadata__ has no \(key) (not a distill network file?)")
            }
            return value
        }
        guard try field("distill.format") == formatVersion else {
            throw fail(
                "__metadata__.distill.format is \"\(file.metadata["distill.format"]!)\", expected \(formatVersion)")
        }
        let architecture: NetworkArchitecture
        do { architecture = try NetworkArchitecture(parsing: try field("distill.architecture")) } catch let
            error as NetworkError
        {
            throw fail("__metadata__.distill.architecture: \(error.message)")
        }
        let shapeText = try field("distill.input_shape")
        let inputShape = shapeText.split(separator: ",", omittingEmptySubsequences: false).compactMap { Int($0) }
        guard !inputShape.isEmpty, inputShape.count == shapeText.split(separator: ",").count,
            inputShape.allSatisfy({ $0 > 0 })
        else { throw fail("__metadata__.distill.input_shape \"\(shapeText)\" is not positive integers like 10,10,4") }
        guard let actionCount = Int(try field("distill.action_count")), actionCount > 0 else {
            throw fail("__metadata__.distill.action_count is not a positive integer")
        }
        let network: PolicyValueNetwork
        do {
            network = try PolicyValueNetwork(
                architecture: architecture, inputShape: inputShape, actionCount: actionCount, seed: 0)
        } catch let error as NetworkError {
            throw fail(error.message)
        }
        var expected = Set(network.parameterTensors.map(\.name))
        for p in network.parameterTensors {
            guard let tensor = file.tensors[p.name] else {
                throw fail("tensor \(p.name) of \(architecture) is missing")
            }
            guard tensor.shape == p.shape else {
                throw fail("tensor \(p.name) has shape \(tensor.shape), \(architecture) needs \(p.shape)")
            }
            network.parameters.replaceSubrange(p.offset..<(p.offset + p.count), with: tensor.scalars)
        }
        var optimizerState: OptimizerState?
        if let kind = file.metadata["distill.optimizer.kind"] {
            guard let step = Int(try field("distill.optimizer.step")) else {
                throw fail("__metadata__.distill.optimizer.step is not an integer")
            }
            let hyperparameters: [String: Double]
            do {
                hyperparameters = try JSONDecoder().decode(
                    [String: Double].self, from: Data(try field("distill.optimizer.hyperparameters").utf8))
            } catch let error as NetworkError {
                throw error
            } catch {
                throw fail("__metadata__.distill.optimizer.hyperparameters is not a JSON object of numbers")
            }
            var buffers: [String: [Float]] = [:]
            for (name, tensor) in file.tensors where name.hasPrefix("optimizer.") {
                guard tensor.shape == [network.parameterCount] else {
                    throw fail("tensor \(name) has shape \(tensor.shape), expected [\(network.parameterCount)]")
                }
                buffers[String(name.dropFirst("optimizer.".count))] = tensor.scalars
                expected.insert(name)
            }
            optimizerState = OptimizerState(kind: kind, step: step, hyperparameters: hyperparameters, buffers: buffers)
        }
        if let extra = file.tensors.keys.sorted().first(where: { !expected.contains($0) }) {
            throw fail("tensor \(extra) is not part of \(architecture)")
        }
        let metadata = file.metadata.filter { !$0.key.hasPrefix(reservedMetadataPrefix) }
        return LoadedNetwork(network: network, metadata: metadata, optimizerState: optimizerState)
    }
}
