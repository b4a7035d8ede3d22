import DistillWire
import Foundation
import Testing

/// Issue 12, item 10: TensorBoard event files written natively — CRC-32C, TFRecord framing and the
/// Event/Summary messages, checked against published check values and hand-encoded bytes.
@Suite("TensorBoard event files")
struct TensorBoardEventTests {
    @Test func crc32cMatchesPublishedCheckValues() {
        // The CRC catalogue's check value, and RFC 3720 (iSCSI) B.4's test vectors.
        #expect(Checksum.crc32c(Array("123456789".utf8)) == 0xE306_9283)
        #expect(Checksum.crc32c([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(Checksum.crc32c([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(Checksum.crc32c((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(Checksum.crc32c((0..<32).map { UInt8(31 - $0) }) == 0x113F_DB5C)
        #expect(Checksum.crc32c([UInt8]()) == 0)
    }

    @Test func maskedCRCIsRotatedRightBy15PlusTheConstant() {
        let crc: UInt32 = 0xE306_9283
        let rotated = (crc >> 15) | (crc << 17)
        #expect(Checksum.maskedCRC32C(Array("123456789".utf8)) == rotated &+ 0xA282_EAD8)
    }

    @Test func aRecordIsLengthCRCDataCRCLittleEndian() throws {
        let data: [UInt8] = [1, 2, 3]
        let record = TFRecord.frame(data)
        #expect(record.count == 8 + 4 + 3 + 4)
        #expect(Array(record[0..<8]) == [3, 0, 0, 0, 0, 0, 0, 0])
        let lengthCRC = Checksum.maskedCRC32C(record[0..<8])
        #expect(Array(record[8..<12]) == (0..<4).map { UInt8(truncatingIfNeeded: lengthCRC >> ($0 * 8)) })
        #expect(Array(record[12..<15]) == data)
        let dataCRC = Checksum.maskedCRC32C(data)
        #expect(Array(record[15..<19]) == (0..<4).map { UInt8(truncatingIfNeeded: dataCRC >> ($0 * 8)) })
        #expect(try TFRecord.records(in: record + TFRecord.frame([]) + TFRecord.frame(data)) == [data, [], data])
    }

    @Test func eventsHaveTensorFlowsFieldNumbers() {
        // Event{wall_time (1, fixed64) = 1.5, step (2, varint) = 3, file_version (3, bytes)}.
        let version = TensorBoardEvent(wallTime: 1.5, step: 3, content: .fileVersion("brain.Event:2"))
        let double = (0..<8).map { UInt8(truncatingIfNeeded: (1.5).bitPattern >> ($0 * 8)) }
        #expect(version.encoded() == [0x09] + double + [0x10, 3, 0x1A, 13] + Array("brain.Event:2".utf8))
        // summary (5) { value (1) { tag (1) = "kl", simple_value (2, fixed32) = 0 } }: a 0 is written.
        let scalar = TensorBoardEvent(wallTime: 0, step: 0, content: .scalars([.init(tag: "kl", value: 0)]))
        #expect(scalar.encoded() == [0x2A, 11, 0x0A, 9, 0x0A, 2] + Array("kl".utf8) + [0x15, 0, 0, 0, 0])
    }

    @Test func eventsRoundTrip() throws {
        let events = [
            TensorBoardEvent(wallTime: 1_765_000_000.25, step: 0, content: .fileVersion("brain.Event:2")),
            TensorBoardEvent(
                wallTime: 1_765_000_001, step: 1_234_567_890_123,
                content: .scalars([.init(tag: "student_return", value: 4.5973), .init(tag: "lag", value: -0.0)])),
            TensorBoardEvent(wallTime: 2, step: -1, content: .scalars([])),
        ]
        let file = events.flatMap { TFRecord.frame($0.encoded()) }
        #expect(try TFRecord.records(in: file).map { try TensorBoardEvent(decoding: $0) } == events)
    }

    @Test func aCorruptOrCutFileIsAnErrorNamingTheRecord() throws {
        let good = TFRecord.frame([9, 9]) + TFRecord.frame(Array("scalars".utf8))
        for index in good.indices {
            var bad = good
            bad[index] ^= 0x10
            #expect(throws: DecodingError.self) { try TFRecord.records(in: bad) }
        }
        for length in 1..<good.count where length != 18 {
            let error = #expect(throws: DecodingError.self) { try TFRecord.records(in: Array(good.prefix(length))) }
            #expect(
                error?.description.contains("record \(length < 18 ? 0 : 1) at byte \(length < 18 ? 0 : 18)") == true)
        }
        #expect(throws: DecodingError.self) { try TensorBoardEvent(decoding: [0xFF, 0xFF, 0xFF]) }
        // An Event with a step and neither a version nor a summary.
        #expect(throws: DecodingError.self) { try TensorBoardEvent(decoding: [0x10, 3]) }
    }
}
