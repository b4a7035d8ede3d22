import Foundation

/// A safetensors file: named Float32 tensors and a string-to-string metadata map.
///
/// The format (https://github.com/huggingface/safetensors): an 8-byte little-endian u64 N, then N
/// bytes of UTF-8 JSON `{"NAME": {"dtype": "F32", "shape": [...], "data_offsets": [BEGIN, END]}, …,
/// "__metadata__": {"KEY": "VALUE", …}}` (space-padded), then the data section, raw little-endian,
/// with offsets relative to its start. Tensors must tile the data section exactly: no overlaps, no
/// holes. This module reads and writes F32 only; other dtypes are rejected by name.
public struct SafetensorsFile: Hashable, Sendable {
    /// The tensors by name.
    public var tensors: [String: Tensor]
    /// The `__metadata__` map.
    public var metadata: [String: String]

    /// A file of `tensors` and `metadata`.
    public init(tensors: [String: Tensor] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The largest JSON header accepted (the reference implementation's limit).
    public static let maximumHeaderLength = 100_000_000

    private static let knownDtypes: Set<String> = [
        "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64",
        "U64",
    ]

    // MARK: Writing

    /// The file's bytes: tensors in name order, the header padded with spaces to a multiple of 8.
    public func encoded() -> [UInt8] {
        let names = tensors.keys.sorted()
        var header: [String: Any] = [:]
        var offset = 0
        for name in names {
            let tensor = tensors[name]!
            let size = tensor.count * MemoryLayout<Float>.size
            header[name] =
                ["dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + size]] as [String: Any]
            offset += size
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        // JSONSerialization of string keys, strings and integers cannot fail.
        var json = try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys, .withoutEscapingSlashes])
        while (8 + json.count) % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: json)
        for name in names {
            for value in tensors[name]!.scalars {
                withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
            }
        }
        return bytes
    }

    /// Writes the file atomically (a temporary file, then a rename).
    public func write(to url: URL) throws {
        try Data(encoded()).write(to: url, options: .atomic)
    }

    // MARK: Reading

    /// Reads and validates a file; every error names the file and the field at fault.
    public static func read(from url: URL) throws -> SafetensorsFile {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw NetworkError(.safetensors, "\(url.path): cannot read the file: \(error.localizedDescription)")
        }
        return try decode([UInt8](data), source: url.path)
    }

    /// Whether `bytes` start as a safetensors file does: an 8-byte little-endian header length
    /// that fits in the rest, then `{`. A cheap sniff (a JSON document starts with `{` or
    /// whitespace at byte 0, which makes a header length far beyond any file); `decode` validates.
    public static func looksLikeSafetensors(_ bytes: some Collection<UInt8>) -> Bool {
        guard bytes.count >= 10 else { return false }
        var length: UInt64 = 0
        for (i, byte) in bytes.prefix(8).enumerated() { length |= UInt64(byte) << (8 * UInt64(i)) }
        return length >= 2 && length <= UInt64(bytes.count - 8) && bytes.dropFirst(8).first == UInt8(ascii: "{")
    }

    /// Decodes and validates a file's bytes; `source` (a path) prefixes every error message.
    public static func decode(_ bytes: [UInt8], source: String = "safetensors buffer") throws -> SafetensorsFile {
        func fail(_ problem: String) -> NetworkError {
            NetworkError(.safetensors, "\(source): \(problem)")
        }
        guard bytes.count >= 8 else {
            throw fail("\(bytes.count) bytes: too short for the 8-byte header length (not a safetensors file?)")
        }
        var length: UInt64 = 0
        for i in 0..<8 { length |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard length <= UInt64(bytes.count - 8) else {
            throw fail("header length \(length) is larger than the \(bytes.count - 8) bytes after it (truncated file?)")
        }
        guard length <= UInt64(maximumHeaderLength) else {
            throw fail("header length \(length) exceeds the limit of \(maximumHeaderLength) bytes")
        }
        let headerEnd = 8 + Int(length)
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(bytes[8..<headerEnd]), options: [])
        } catch {
            throw fail("the \(length)-byte header is not valid JSON")
        }
        guard let header = object as? [String: Any] else { throw fail("the header is not a JSON object") }
        let dataSize = bytes.count - headerEnd

        var metadata: [String: String] = [:]
        if let raw = header["__metadata__"] {
            guard let map = raw as? [String: Any] else { throw fail("__metadata__ is not a JSON object") }
            for (key, value) in map {
                guard let string = value as? String else {
                    throw fail("__metadata__.\(key) is not a string (safetensors metadata maps strings to strings)")
                }
                metadata[key] = string
            }
        }

        struct Entry {
            var name: String
            var shape: [Int]
            var begin: Int
            var end: Int
        }
        var entries: [Entry] = []
        for (name, raw) in header where name != "__metadata__" {
            guard let fields = raw as? [String: Any] else { throw fail("tensor \"\(name)\" is not a JSON object") }
            guard let dtype = fields["dtype"] as? String else { throw fail("tensor \"\(name)\": dtype is missing") }
            guard knownDtypes.contains(dtype) else { throw fail("tensor \"\(name)\": unknown dtype \"\(dtype)\"") }
            guard dtype == "F32" else {
                throw fail("tensor \"\(name)\": dtype \(dtype) is not supported (distill reads F32 only)")
            }
            guard let shape = integers(fields["shape"]), shape.allSatisfy({ $0 >= 0 }) else {
                throw fail("tensor \"\(name)\": shape is not a list of non-negative integers")
            }
            guard let offsets = integers(fields["data_offsets"]), offsets.count == 2 else {
                throw fail("tensor \"\(name)\": data_offsets is not a list of two integers")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end else {
                throw fail("tensor \"\(name)\": data_offsets [\(begin), \(end)] are not 0 ≤ begin ≤ end")
            }
            guard end <= dataSize else {
                throw fail(
                    "tensor \"\(name)\": data_offsets [\(begin), \(end)] run past the end of the \(dataSize)-byte "
                        + "data section (truncated data?)")
            }
            var elements = 1
            for extent in shape {
                let (product, overflow) = elements.multipliedReportingOverflow(by: extent)
                guard !overflow, product <= Int.max / 8 else {
                    throw fail("tensor \"\(name)\": shape \(shape) overflows")
                }
                elements = product
            }
            guard elements * 4 == end - begin else {
                throw fail(
                    "tensor \"\(name)\": shape \(shape) needs \(elements * 4) bytes of F32 but data_offsets "
                        + "[\(begin), \(end)] hold \(end - begin)")
            }
            entries.append(Entry(name: name, shape: shape, begin: begin, end: end))
        }
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var covered = 0
        for entry in entries {
            guard entry.begin >= covered || entry.begin == entry.end else {
                let other = entries.first { $0.end > entry.begin && $0.name != entry.name && $0.begin <= entry.begin }
                throw fail(
                    "tensor \"\(entry.name)\": data_offsets [\(entry.begin), \(entry.end)] overlap those of "
                        + "\"\(other?.name ?? "another tensor")\"")
            }
            guard entry.begin == covered || entry.begin == entry.end else {
                throw fail("bytes \(covered)..<\(entry.begin) of the data section belong to no tensor (a hole)")
            }
            covered = max(covered, entry.end)
        }
        guard covered == dataSize else {
            throw fail("the data section has \(dataSize) bytes but the tensors cover \(covered) (trailing bytes)")
        }

        var tensors: [String: Tensor] = [:]
        for entry in entries {
            let count = (entry.end - entry.begin) / 4
            var scalars = [Float](repeating: 0, count: count)
            let start = headerEnd + entry.begin
            for i in 0..<count {
                let p = start + 4 * i
                let bits =
                    UInt32(bytes[p]) | UInt32(bytes[p + 1]) << 8 | UInt32(bytes[p + 2]) << 16 | UInt32(bytes[p + 3])
                    << 24
                scalars[i] = Float(bitPattern: bits)
            }
            tensors[entry.name] = Tensor(shape: entry.shape, scalars: scalars)
        }
        return SafetensorsFile(tensors: tensors, metadata: metadata)
    }

    /// JSON integers (numbers without a fractional part), or nil.
    private static func integers(_ value: Any?) -> [Int]? {
        guard let list = value as? [Any] else { return nil }
        var result: [Int] = []
        for item in list {
            guard let number = item as? NSNumber, let integer = Int(exactly: number.doubleValue) else { return nil }
            result.append(integer)
        }
        return result
    }
}
