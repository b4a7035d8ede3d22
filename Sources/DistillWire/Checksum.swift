/// The parameter checksum of the wire protocol (`Parameters.checksum`).
public enum Checksum {
    /// FNV-1a 64 over the little-endian IEEE-754 bytes of `values`
    /// (offset basis 0xcbf29ce484222325, prime 0x100000001b3), as proto/distill.proto defines it.
    public static func fnv1a64(_ values: [Float]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for value in values {
            var bits = value.bitPattern.littleEndian
            for _ in 0..<4 {
                hash = (hash ^ UInt64(bits & 0xff)) &* 0x0000_0100_0000_01b3
                bits >>= 8
            }
        }
        return hash
    }

    /// FNV-1a 64 over raw bytes (same constants), e.g. to fingerprint a configuration.
    public static func fnv1a64<Bytes: Sequence>(bytes: Bytes) -> UInt64 where Bytes.Element == UInt8 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return hash
    }
}

extension Checksum {
    /// CRC-32C (Castagnoli; reflected polynomial 0x82F63B78, initial value and final XOR
    /// 0xFFFFFFFF), the checksum of TFRecord framing. CRC32C("123456789") = 0xE3069283.
    public static func crc32c<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc = crc32cTable[Int((crc ^ UInt32(byte)) & 0xff)] ^ (crc >> 8)
        }
        return crc ^ 0xFFFF_FFFF
    }

    /// The CRC-32C as TFRecord stores it: rotated right by 15 bits plus 0xA282EAD8, so that a CRC
    /// of bytes that themselves hold CRCs is not degenerate.
    public static func maskedCRC32C<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        let crc = crc32c(bytes)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    /// crc32cTable[b]: the CRC register after shifting the byte b through it (reflected).
    private static let crc32cTable: [UInt32] = (0..<256).map { byte in
        var crc = UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }
}
