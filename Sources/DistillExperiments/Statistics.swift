import Foundation

/// Mean and 95 % confidence interval of a sample, with Student's t for small samples.
public struct MeanInterval: Sendable, Hashable, Codable {
    /// Sample size.
    public var count: Int
    /// Sample mean.
    public var mean: Double
    /// Sample standard deviation (n − 1 in the denominator; 0 for one value).
    public var standardDeviation: Double
    /// Half-width of the 95 % interval, `t_{0.975, n−1} · s / √n` (infinite for one value).
    public var halfWidth: Double

    /// Lower end of the interval.
    public var lower: Double { mean - halfWidth }
    /// Upper end of the interval.
    public var upper: Double { mean + halfWidth }

    /// The interval of `values`; non-finite values are left out (a diverged run is reported, not averaged).
    public init(_ values: [Double]) {
        let finite = values.filter { $0.isFinite }
        count = finite.count
        guard count > 0 else {
            mean = .nan
            standardDeviation = .nan
            halfWidth = .nan
            return
        }
        mean = finite.reduce(0, +) / Double(count)
        guard count > 1 else {
            standardDeviation = 0
            halfWidth = .infinity
            return
        }
        let m = mean
        let variance = finite.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(count - 1)
        standardDeviation = variance.squareRoot()
        halfWidth =
            StudentT.quantile(0.975, degreesOfFreedom: Double(count - 1)) * standardDeviation
            / Double(count).squareRoot()
    }

    /// Whether the whole interval lies above zero (the difference is significant and positive).
    public var excludesZeroAbove: Bool { count > 1 && lower > 0 }

    /// `mean ± halfWidth` with `digits` decimals, e.g. `4.21 ± 0.35`.
    public func formatted(_ digits: Int = 2) -> String {
        String(format: "%.\(digits)f ± %.\(digits)f", mean, halfWidth)
    }
}

/// Student's t distribution: the CDF through the regularised incomplete beta function and its
/// quantile by bisection (Numerical Recipes §6.4 continued fraction).
public enum StudentT {
    /// `P(T ≤ t)` for `ν` degrees of freedom.
    public static func cdf(_ t: Double, degreesOfFreedom nu: Double) -> Double {
        precondition(nu > 0, "degrees of freedom must be positive")
        let x = nu / (nu + t * t)
        let tail = 0.5 * regularisedIncompleteBeta(x, a: nu / 2, b: 0.5)
        return t >= 0 ? 1 - tail : tail
    }

    /// The `p` quantile (`0 < p < 1`) for `ν` degrees of freedom.
    public static func quantile(_ p: Double, degreesOfFreedom nu: Double) -> Double {
        precondition(p > 0 && p < 1, "p must be in (0, 1)")
        if p < 0.5 { return -quantile(1 - p, degreesOfFreedom: nu) }
        var lo = 0.0
        var hi = 1.0
        while cdf(hi, degreesOfFreedom: nu) < p { hi *= 2 }
        for _ in 0..<200 {
            let mid = (lo + hi) / 2
            if cdf(mid, degreesOfFreedom: nu) < p { lo = mid } else { hi = mid }
            if hi - lo < 1e-12 * max(1, hi) { break }
        }
        return (lo + hi) / 2
    }

    /// `I_x(a, b)`.
    static func regularisedIncompleteBeta(_ x: Double, a: Double, b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let logGammas: Double = lgamma(a + b) - lgamma(a) - lgamma(b)
        let logPowers: Double = a * Foundation.log(x) + b * Foundation.log(1 - x)
        let logFront = logGammas + logPowers
        if x < (a + 1) / (a + b + 2) {
            return exp(logFront) * continuedFraction(x, a: a, b: b) / a
        }
        return 1 - exp(logFront) * continuedFraction(1 - x, a: b, b: a) / b
    }

    private static func continuedFraction(_ x: Double, a: Double, b: Double) -> Double {
        let tiny = 1e-300
        var c = 1.0
        var d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var h = d
        for m in 1...300 {
            let m = Double(m)
            let m2 = 2 * m
            var aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2))
            d = 1 + aa * d
            if abs(d) < tiny { d = tiny }
            c = 1 + aa / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            h *= d * c
            aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))
            d = 1 + aa * d
            if abs(d) < tiny { d = tiny }
            c = 1 + aa / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-15 { break }
        }
        return h
    }
}
