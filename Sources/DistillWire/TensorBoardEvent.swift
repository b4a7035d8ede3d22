internal import CDistillProto
import Foundation

/// One record of a TensorBoard event file: the `Event` message of proto/tensorboard.proto
/// (TensorFlow's field numbers), holding either the file's version or a row of scalars.
public struct TensorBoardEvent: Sendable, Equatable {
    /// A named number, one point of one TensorBoard chart.
    public struct Scalar: Sendable, Equatable {
        /// The chart's name.
        public var tag: String
        /// The value; event files hold float32.
        public var value: Float

        /// Creates a scalar.
        public init(tag: String, value: Float) {
            self.tag = tag
            self.value = value
        }
    }

    /// What an event holds.
    public enum Content: Sendable, Equatable {
        /// The first record of a file: `brain.Event:2`.
        case fileVersion(String)
        /// Scalars measured at `step`.
        case scalars([Scalar])
    }

    /// The version string TensorBoard expects in a file's first record.
    public static let currentFileVersion = "brain.Event:2"

    /// Seconds since the Unix epoch.
    public var wallTime: Double
    /// The x axis of the charts.
    public var step: Int64
    /// The version or the scalars.
    public var content: Content

    /// Creates an event.
    public init(wallTime: Double, step: Int64, content: Content) {
        self.wallTime = wallTime
        self.step = step
        self.content = content
    }

    /// The serialized `tensorboard.Event`.
    public func encoded() -> [UInt8] {
        var event = Tensorboard__Event()
        tensorboard__event__init(&event)
        event.wall_time = wallTime
        event.step = step
        // protobuf-c reads C strings and pointer arrays: own them here, free them after packing.
        var strings: [UnsafeMutablePointer<CChar>] = []
        defer { for string in strings { free(string) } }
        switch content {
        case .fileVersion(let version):
            let string = strdup(version)!
            strings.append(string)
            event.what_case = TENSORBOARD__EVENT__WHAT_FILE_VERSION
            event.file_version = string
            return Self.pack(&event)
        case .scalars(let scalars):
            let values = UnsafeMutablePointer<Tensorboard__Summary__Value>.allocate(capacity: max(scalars.count, 1))
            let pointers = UnsafeMutablePointer<UnsafeMutablePointer<Tensorboard__Summary__Value>?>.allocate(
                capacity: max(scalars.count, 1))
            defer {
                values.deallocate()
                pointers.deallocate()
            }
            for (index, scalar) in scalars.enumerated() {
                var value = Tensorboard__Summary__Value()
                tensorboard__summary__value__init(&value)
                let tag = strdup(scalar.tag)!
                strings.append(tag)
                value.tag = tag
                value.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_SIMPLE_VALUE
                value.simple_value = scalar.value
                (values + index).initialize(to: value)
                pointers[index] = values + index
            }
            var summary = Tensorboard__Summary()
            tensorboard__summary__init(&summary)
            summary.n_value = scalars.count
            summary.value = pointers
            return withUnsafeMutablePointer(to: &summary) { summaryPointer in
                event.what_case = TENSORBOARD__EVENT__WHAT_SUMMARY
                event.summary = summaryPointer
                return Self.pack(&event)
            }
        }
    }

    private static func pack(_ event: inout Tensorboard__Event) -> [UInt8] {
        let size = tensorboard__event__get_packed_size(&event)
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = tensorboard__event__pack(&event, buffer.baseAddress)
        }
    }

    /// Reads a serialized `tensorboard.Event` holding a file version or scalars.
    public init(decoding bytes: [UInt8]) throws(DecodingError) {
        let unpacked = bytes.withUnsafeBufferPointer { buffer in
            tensorboard__event__unpack(nil, buffer.count, buffer.baseAddress)
        }
        guard let event = unpacked else {
            throw DecodingError(.malformed, "\(bytes.count) bytes are not a TensorBoard Event (protobuf parse failed)")
        }
        defer { tensorboard__event__free_unpacked(event, nil) }
        wallTime = event.pointee.wall_time
        step = event.pointee.step
        switch event.pointee.what_case {
        case TENSORBOARD__EVENT__WHAT_FILE_VERSION:
            content = .fileVersion(String(cString: event.pointee.file_version))
        case TENSORBOARD__EVENT__WHAT_SUMMARY:
            let summary = event.pointee.summary.pointee
            var scalars: [Scalar] = []
            for index in 0..<summary.n_value {
                let value = summary.value[index]!.pointee
                guard value.value_case == TENSORBOARD__SUMMARY__VALUE__VALUE_SIMPLE_VALUE else {
                    throw DecodingError(
                        .invalidField, "summary value '\(String(cString: value.tag))' is not a simple_value scalar")
                }
                scalars.append(Scalar(tag: String(cString: value.tag), value: value.simple_value))
            }
            content = .scalars(scalars)
        default:
            throw DecodingError(.invalidField, "an Event with neither file_version nor summary")
        }
    }
}

/// TFRecord framing, the container of TensorBoard event files: each record is its length
/// (UInt64, little-endian), the masked CRC-32C of those 8 bytes, the data, and the masked
/// CRC-32C of the data (`Checksum.maskedCRC32C`; the CRC fields are UInt32, little-endian).
public enum TFRecord {
    /// One record around `data`.
    public static func frame(_ data: [UInt8]) -> [UInt8] {
        var record: [UInt8] = []
        record.reserveCapacity(data.count + 16)
        let length = littleEndianBytes(UInt64(data.count))
        record += length
        record += littleEndianBytes(Checksum.maskedCRC32C(length))
        record += data
        record += littleEndianBytes(Checksum.maskedCRC32C(data))
        return record
    }

    /// The data of every record in `bytes`, after checking both CRCs of each; an error names the
    /// record and its byte offset (a file cut while written ends in a partial record).
    public static func records(in bytes: [UInt8]) throws(DecodingError) -> [[UInt8]] {
        var records: [[UInt8]] = []
        var offset = 0
        while offset < bytes.count {
            let at = "record \(records.count) at byte \(offset)"
            guard bytes.count - offset >= 16 else {
                throw DecodingError(.malformed, "\(at): \(bytes.count - offset) bytes left, too few for a record")
            }
            let lengthBytes = bytes[offset..<offset + 8]
            guard readUInt32(bytes, offset + 8) == Checksum.maskedCRC32C(lengthBytes) else {
                throw DecodingError(
                    .malformed, "\(at): the length's CRC does not match (not an event file, or corrupt)")
            }
            let length = lengthBytes.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            guard length <= UInt64(bytes.count - offset - 16) else {
                throw DecodingError(
                    .malformed, "\(at): length \(length) runs past the end of the file (cut while written?)")
            }
            let data = Array(bytes[offset + 12..<offset + 12 + Int(length)])
            guard readUInt32(bytes, offset + 12 + Int(length)) == Checksum.maskedCRC32C(data) else {
                throw DecodingError(.malformed, "\(at): the data's CRC does not match (corrupt)")
            }
            records.append(data)
            offset += 16 + Int(length)
        }
        return records
    }

    private static func littleEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        (0..<T.bitWidth / 8).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
    }

    private static func readUInt32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << ($1 * 8) }
    }
}
