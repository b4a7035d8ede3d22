import DistillWire
import Testing

@Suite("Codec under random and corrupted input")
struct CodecFuzzTests {
    /// One corruption of `bytes`: flipped bits, a cut, an insertion, a swapped run, or noise.
    private static func corrupt(_ bytes: [UInt8], _ rng: inout SplitMix) -> [UInt8] {
        var out = bytes
        switch Int.random(in: 0..<5, using: &rng) {
        case 0:
            for _ in 0..<Int.random(in: 1...8, using: &rng) where !out.isEmpty {
                out[Int.random(in: 0..<out.count, using: &rng)] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &rng)
            }
        case 1:
            out = Array(out.prefix(Int.random(in: 0...out.count, using: &rng)))
        case 2:
            let at = Int.random(in: 0...out.count, using: &rng)
            out.insert(
                contentsOf: (0..<Int.random(in: 1...16, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng)
                }, at: at)
        case 3 where out.count > 4:
            let at = Int.random(in: 0..<(out.count - 4), using: &rng)
            out[at..<(at + 4)] = [0xff, 0xff, 0xff, 0x0f]  // a huge length or varint
        default:
            out = (0..<Int.random(in: 0...512, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        }
        return out
    }

    @Test func tenThousandCorruptedBuffersPerDecoderNeverCrashOrLeak() {
        let codec = WireCodec(maxMessageBytes: 1 << 20)
        var rng = SplitMix(seed: 2026)
        let seeds = Fixtures.envelopes.map { codec.encode($0) }
        var outcomes: [String: Int] = [:]
        // Warm up lazily allocated runtime state before measuring.
        for bytes in seeds { _ = try? codec.decode(Self.corrupt(bytes, &rng)) }
        let auditedBefore = WireCodec.auditedAllocations
        for expected in MessageKind.allCases {
            for round in 0..<10_000 {
                let bytes = Self.corrupt(seeds[round % seeds.count], &rng)
                do {
                    let envelope = try codec.decode(bytes, expecting: [expected])
                    #expect(envelope.message.kind == expected)
                    outcomes["accepted", default: 0] += 1
                } catch {
                    #expect(!error.message.isEmpty)
                    outcomes[error.code.description, default: 0] += 1
                }
            }
        }
        #expect(outcomes.values.reduce(0, +) == 10_000 * MessageKind.allCases.count)
        #expect(outcomes["malformed", default: 0] > 10_000, "most corruptions must fail protobuf parsing: \(outcomes)")
        #expect(outcomes["invalidField", default: 0] > 100, "validation must catch corrupted fields: \(outcomes)")
        // Every C allocation protobuf-c made for these 100,000 decodes was freed.
        #expect(WireCodec.auditedAllocations - auditedBefore > 100_000)
        #expect(WireCodec.leakedAllocations == 0)
    }
}
