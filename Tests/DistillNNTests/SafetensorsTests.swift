import DistillNN
import Foundation
import Testing

/// safetensors files: round trips, the byte layout, and a clear error (never a crash) for every
/// malformed header or data section.
@Suite struct SafetensorsTests {
    /// A file from a literal JSON header and `dataBytes` bytes of data.
    static func file(header: String, dataBytes: Int, declaredLength: UInt64? = nil) -> [UInt8] {
        let json = Array(header.utf8)
        var bytes: [UInt8] = []
        withUnsafeBytes(of: (declaredLength ?? UInt64(json.count)).littleEndian) { bytes.append(contentsOf: $0) }
        return bytes + json + [UInt8](repeating: 0, count: dataBytes)
    }

    static func expectMalformed(
        _ bytes: [UInt8], _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation
    ) {
        expectNetworkError(["bad.safetensors"] + fragments, sourceLocation: sourceLocation) {
            _ = try SafetensorsFile.decode(bytes, source: "bad.safetensors")
        }
    }

    @Test func roundTripKeepsTensorsAndMetadata() throws {
        let original = SafetensorsFile(
            tensors: [
                "a": Tensor(shape: [2, 3], scalars: [1, -2, 3.5, .pi, -0, 1e-30]),
                "b/c": Tensor(shape: [], scalars: [7]),
                "empty": Tensor(shape: [0, 4], scalars: []),
                "z": Tensor(shape: [5], scalars: [.infinity, -.infinity, 0, 1, 2]),
            ],
            metadata: ["architecture": "mlp:64,64", "quote\"key": "line\nbreak ünïcode"])
        let bytes = original.encoded()
        let decoded = try SafetensorsFile.decode(bytes)
        #expect(decoded == original)
        // The header length is little-endian and the header is padded so the data starts 8-aligned.
        let length = bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        #expect((8 + Int(length)) % 8 == 0)
        #expect(bytes.count == 8 + Int(length) + 4 * (6 + 1 + 0 + 5))
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("distill-nn-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try original.write(to: url)
        #expect(try SafetensorsFile.read(from: url) == original)
    }

    @Test func dataIsLittleEndianFloat32AtTheDeclaredOffsets() throws {
        let header = #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        var bytes = Self.file(header: header, dataBytes: 0)
        bytes += [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0]  // 1.0, -2.0
        #expect(try SafetensorsFile.decode(bytes).tensors["x"]!.scalars == [1, -2])
    }

    @Test func malformedFilesGiveErrorsNamingTheFileAndField() {
        let good = #"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#
        Self.expectMalformed([1, 2, 3], ["too short"])
        Self.expectMalformed(Self.file(header: good, dataBytes: 16, declaredLength: 10_000), ["header length 10000"])
        Self.expectMalformed(Self.file(header: "{not json", dataBytes: 0), ["not valid JSON"])
        Self.expectMalformed(Self.file(header: "[1,2]", dataBytes: 0), ["not a JSON object"])
        Self.expectMalformed(
            Self.file(header: #"{"w":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}"#, dataBytes: 4),
            ["\"w\"", "unknown dtype \"F33\""])
        Self.expectMalformed(
            Self.file(header: #"{"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#, dataBytes: 4),
            ["\"w\"", "F16 is not supported"])
        Self.expectMalformed(
            Self.file(header: #"{"w":{"shape":[1],"data_offsets":[0,4]}}"#, dataBytes: 4),
            ["\"w\"", "dtype is missing"])
        Self.expectMalformed(
            Self.file(header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, dataBytes: 8),
            ["\"w\"", "needs 12 bytes", "hold 8"])
        Self.expectMalformed(
            Self.file(header: #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, dataBytes: 4),
            ["\"w\"", "shape"])
        Self.expectMalformed(
            Self.file(header: #"{"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,4]}}"#, dataBytes: 4),
            ["\"w\"", "shape"])
        Self.expectMalformed(
            Self.file(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, dataBytes: 4),
            ["\"w\"", "data_offsets"])
        Self.expectMalformed(
            Self.file(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#, dataBytes: 8),
            ["\"w\"", "[8, 4]"])
        Self.expectMalformed(
            Self.file(header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[4,20]}}"#, dataBytes: 16),
            ["\"w\"", "run past the end", "16-byte"])
        Self.expectMalformed(
            Self.file(
                header:
                    #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                dataBytes: 12), ["\"b\"", "overlap", "\"a\""])
        Self.expectMalformed(
            Self.file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, dataBytes: 8),
            ["bytes 0..<4", "hole"])
        Self.expectMalformed(Self.file(header: good, dataBytes: 20), ["trailing"])
        Self.expectMalformed(
            Self.file(header: #"{"__metadata__":{"k":3}}"#, dataBytes: 0), ["__metadata__.k", "not a string"])
        Self.expectMalformed(Self.file(header: #"{"__metadata__":[]}"#, dataBytes: 0), ["__metadata__"])
        Self.expectMalformed(Self.file(header: #"{"w":5}"#, dataBytes: 0), ["\"w\"", "not a JSON object"])
    }

    /// Every prefix of a valid file is rejected with an error (a truncated download or copy).
    @Test func everyTruncationOfAFileIsAnError() {
        let bytes = SafetensorsFile(
            tensors: ["a": Tensor(shape: [3], scalars: [1, 2, 3]), "b": Tensor(shape: [1, 2], scalars: [4, 5])],
            metadata: ["k": "v"]
        ).encoded()
        for length in 0..<bytes.count {
            #expect(throws: NetworkError.self, "prefix of \(length) bytes") {
                _ = try SafetensorsFile.decode(Array(bytes[0..<length]), source: "cut.safetensors")
            }
        }
    }

    @Test func unreadableFileIsAnErrorNamingIt() {
        expectNetworkError(["/nonexistent/net.safetensors", "cannot read"]) {
            _ = try SafetensorsFile.read(from: URL(fileURLWithPath: "/nonexistent/net.safetensors"))
        }
    }

    @Test func networkRoundTripsWithMetadataAndOptimiserState() throws {
        let network = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: "conv:4x3/mlp:16/tanh"), inputShape: [6, 6, 2],
            actionCount: 5, seed: 11)
        var values = TestValues(seed: 12)
        var adam = Adam(parameterCount: network.parameterCount)
        network.zeroGradients()
        _ = network.forward(values.uniform(3 * 72), batch: 3)
        network.backward(logitGradient: values.uniform(15), valueGradient: values.uniform(3))
        network.step(&adam)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("distill-nn-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try network.save(to: url, metadata: ["env": "gridworld:seed=3"], optimizerState: adam.exportState())
        let loaded = try PolicyValueNetwork.load(from: url)
        #expect(loaded.network.architecture == network.architecture)
        #expect(loaded.network.inputShape == [6, 6, 2])
        #expect(loaded.network.actionCount == 5)
        #expect(loaded.network.parameters == network.parameters)
        #expect(loaded.metadata == ["env": "gridworld:seed=3"])
        #expect(loaded.optimizerState == adam.exportState())
        let x = values.uniform(2 * 72)
        #expect(loaded.network.forward(x, batch: 2).logits == network.forward(x, batch: 2).logits)
        var restored = Adam(parameterCount: network.parameterCount)
        try restored.importState(loaded.optimizerState!)
    }

    @Test func fileOfAnotherNetworkIsAnErrorNamingTheTensor() throws {
        let network = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: "mlp:8"), inputShape: [4], actionCount: 3, seed: 1)
        var file = network.safetensorsFile()
        file.tensors["torso.0.weight"] = Tensor(shape: [8, 5], repeating: 0)
        expectNetworkError(["teacher.safetensors", "torso.0.weight", "[8, 5]", "[8, 4]"]) {
            _ = try PolicyValueNetwork.load(file, source: "teacher.safetensors")
        }
        file = network.safetensorsFile()
        file.tensors["logits.bias"] = nil
        expectNetworkError(["logits.bias", "missing"]) { _ = try PolicyValueNetwork.load(file, source: "f") }
        file = network.safetensorsFile()
        file.tensors["extra"] = Tensor(shape: [1], repeating: 0)
        expectNetworkError(["extra"]) { _ = try PolicyValueNetwork.load(file, source: "f") }
        file = network.safetensorsFile()
        file.metadata["distill.architecture"] = "mlp:8,q"
        expectNetworkError(["f:", "distill.architecture", "\"q\""]) {
            _ = try PolicyValueNetwork.load(file, source: "f")
        }
        file = network.safetensorsFile()
        file.metadata["distill.input_shape"] = "4,x"
        expectNetworkError(["distill.input_shape"]) { _ = try PolicyValueNetwork.load(file, source: "f") }
        expectNetworkError(["distill.format", "not a distill network"]) {
            _ = try PolicyValueNetwork.load(SafetensorsFile(), source: "f")
        }
    }
}
