/// SplitMix64 (Steele, Lea & Flood 2014): a 64-bit generator used to expand one seed into a
/// well-mixed state for ``Xoshiro256StarStar``.
public struct SplitMix64: RandomNumberGenerator, Sendable, Hashable, Codable {
    /// The full generator state.
    public var state: UInt64

    /// Creates a generator whose state is `seed`.
    public init(seed: UInt64) { state = seed }

    /// Returns the next 64 random bits.
    @inlinable
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// xoshiro256** (Blackman & Vigna 2018): the project's seeded generator.
///
/// Every random draw in DistillCore goes through an explicit generator of this type; its whole
/// state is the four words ``words``, which a checkpoint can store and restore.
public struct Xoshiro256StarStar: RandomNumberGenerator, Sendable, Hashable, Codable {
    /// State word 0.
    public var s0: UInt64
    /// State word 1.
    public var s1: UInt64
    /// State word 2.
    public var s2: UInt64
    /// State word 3.
    public var s3: UInt64

    /// Seeds the generator by expanding `seed` with ``SplitMix64`` (the authors' recommendation).
    public init(seed: UInt64) {
        var mixer = SplitMix64(seed: seed)
        s0 = mixer.next()
        s1 = mixer.next()
        s2 = mixer.next()
        s3 = mixer.next()
    }

    /// Restores a generator from a state previously read from ``words``.
    ///
    /// - Precondition: `words` has four entries, not all zero.
    public init(words: [UInt64]) {
        precondition(words.count == 4, "xoshiro256** state has 4 words, got \(words.count)")
        precondition(words.contains { $0 != 0 }, "xoshiro256** state must not be all zero")
        s0 = words[0]
        s1 = words[1]
        s2 = words[2]
        s3 = words[3]
    }

    /// The full state, for checkpoints.
    public var words: [UInt64] { [s0, s1, s2, s3] }

    /// Returns the next 64 random bits.
    @inlinable
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = s3 << 45 | s3 >> 19
        return result
    }

    /// Returns a uniform double in [0, 1) with 53 random bits.
    @inlinable
    public mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// Returns a child generator for an independent stream (seeded from this one's output).
    public mutating func split() -> Xoshiro256StarStar {
        Xoshiro256StarStar(seed: next())
    }
}

extension RandomNumberGenerator {
    /// Returns a uniform double in [0, 1).
    @inlinable
    public mutating func unitInterval() -> Double {
        Double(next() >> 11) * 0x1p-53
    }
}
