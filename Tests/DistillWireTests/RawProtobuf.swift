import DistillWire

/// A minimal protobuf writer, independent of protobuf-c, for crafting messages our own encoder
/// refuses to make (wrong shapes, unknown versions, NaN where the type would allow it).
struct RawProtobuf {
    private(set) var bytes: [UInt8] = []

    private mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7f) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    private mutating func key(_ field: Int, _ wireType: UInt64) { varint(UInt64(field) << 3 | wireType) }

    mutating func uint(_ field: Int, _ value: UInt64) -> RawProtobuf {
        key(field, 0)
        varint(value)
        return self
    }

    mutating func fixed64(_ field: Int, _ value: UInt64) -> RawProtobuf {
        key(field, 1)
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
        return self
    }

    mutating func message(_ field: Int, _ body: RawProtobuf) -> RawProtobuf {
        key(field, 2)
        varint(UInt64(body.bytes.count))
        bytes += body.bytes
        return self
    }

    mutating func string(_ field: Int, _ text: String) -> RawProtobuf {
        var body = RawProtobuf()
        body.bytes = Array(text.utf8)
        return message(field, body)
    }

    mutating func packedUInts(_ field: Int, _ values: [UInt64]) -> RawProtobuf {
        var body = RawProtobuf()
        for value in values { body.varint(value) }
        return message(field, body)
    }

    mutating func packedFloats(_ field: Int, _ values: [Float]) -> RawProtobuf {
        var body = RawProtobuf()
        for value in values {
            let bits = value.bitPattern
            for shift in stride(from: 0, to: 32, by: 8) {
                body.bytes.append(UInt8(truncatingIfNeeded: bits >> UInt32(shift)))
            }
        }
        return message(field, body)
    }

    /// An Envelope with a valid sender around `body` at oneof field `bodyField`.
    static func envelope(version: UInt64 = UInt64(currentProtocolVersion), bodyField: Int, body: RawProtobuf) -> [UInt8]
    {
        var sender = RawProtobuf()
        _ = sender.uint(1, 1)
        _ = sender.string(2, "raw")
        _ = sender.fixed64(3, 42)
        var envelope = RawProtobuf()
        _ = envelope.uint(1, version)
        _ = envelope.message(2, sender)
        _ = envelope.message(bodyField, body)
        return envelope.bytes
    }

    /// A Parameters body (oneof field 13) whose tensor has the given shape and values.
    static func parameters(shape: [UInt64], values: [Float]) -> RawProtobuf {
        var tensor = RawProtobuf()
        _ = tensor.packedUInts(1, shape)
        _ = tensor.packedFloats(2, values)
        var parameters = RawProtobuf()
        _ = parameters.uint(1, 3)
        _ = parameters.message(2, tensor)
        return parameters
    }
}
