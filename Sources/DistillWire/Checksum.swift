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
