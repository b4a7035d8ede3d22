import Foundation

/// SplitMix64 (Steele, Lea & Flood 2014): the seeded generator of weight initialisation.
///
/// Small and self-contained so that DistillNN depends on nothing but BLAS; the same seed gives the
/// same network on every platform.
public struct WeightGenerator: RandomNumberGenerator, Sendable, Hashable {
    private var state: UInt64

    /// A generator whose whole sequence is fixed by `seed`.
    public init(seed: UInt64) {
        state = seed
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform double in (0, 1]: 53 random bits, never 0 (the Box–Muller logarithm needs that).
    mutating func nextOpenUnit() -> Double {
        (Double(next() >> 11) + 1) * 0x1p-53
    }

    /// A standard normal sample (Box–Muller; the second value of the pair is discarded for simplicity).
    public mutating func nextNormal() -> Double {
        let u1 = nextOpenUnit()
        let u2 = nextOpenUnit()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}
