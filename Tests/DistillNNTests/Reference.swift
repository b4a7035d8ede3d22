import DistillNN
import Foundation
import Testing

/// Independent double-precision forward passes of the layers, written as direct loops from the
/// definitions (no im2col, no BLAS), and central differences over them.
enum Reference {
    /// The layer's output for `batch` inputs (row-major) in double precision.
    static func forward(_ layer: any Layer, _ x: [Double], batch: Int, _ theta: [Double]) -> [Double] {
        switch layer {
        case let linear as Linear:
            let (n, m) = (linear.inputSize, linear.outputSize)
            var y = [Double](repeating: 0, count: batch * m)
            for b in 0..<batch {
                for o in 0..<m {
                    var s = theta[n * m + o]
                    for i in 0..<n { s += theta[o * n + i] * x[b * n + i] }
                    y[b * m + o] = s
                }
            }
            return y
        case is ReLU: return x.map { max($0, 0) }
        case is Tanh: return x.map { Foundation.tanh($0) }
        case is Flatten: return x
        case let conv as Conv2d: return convolve(conv, x, batch: batch, theta)
        default: fatalError("no reference for \(type(of: layer))")
        }
    }

    /// y[b,i,j,o] = bias[o] + Σ_{p,q,c} W[o,p,q,c]·x[b, i·s+p, j·s+q, c], NHWC, valid padding.
    static func convolve(_ conv: Conv2d, _ x: [Double], batch: Int, _ theta: [Double]) -> [Double] {
        let (h, w, c) = (conv.inputShape[0], conv.inputShape[1], conv.inputShape[2])
        let (oh, ow, oc) = (conv.outputShape[0], conv.outputShape[1], conv.outputShape[2])
        let (k, s) = (conv.kernel, conv.stride)
        var y = [Double](repeating: 0, count: batch * oh * ow * oc)
        for b in 0..<batch {
            for i in 0..<oh {
                for j in 0..<ow {
                    for o in 0..<oc {
                        var sum = theta[oc * k * k * c + o]
                        for p in 0..<k {
                            for q in 0..<k {
                                for ch in 0..<c {
                                    sum +=
                                        theta[((o * k + p) * k + q) * c + ch]
                                        * x[((b * h + i * s + p) * w + j * s + q) * c + ch]
                                }
                            }
                        }
                        y[((b * oh + i) * ow + j) * oc + o] = sum
                    }
                }
            }
        }
        return y
    }

    /// ∂f/∂v_i by central differences, f evaluated in double precision.
    static func gradient(of f: ([Double]) -> Double, at v: [Double], step: Double = 1e-5) -> [Double] {
        var v = v
        var g = [Double](repeating: 0, count: v.count)
        for i in 0..<v.count {
            let saved = v[i]
            v[i] = saved + step
            let up = f(v)
            v[i] = saved - step
            let down = f(v)
            v[i] = saved
            g[i] = (up - down) / (2 * step)
        }
        return g
    }

    static func dot(_ a: [Double], _ b: [Double]) -> Double {
        zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
    }
}

/// Float values drawn from a seeded generator (so that the Float and Double computations see identical inputs).
struct TestValues {
    var generator: WeightGenerator

    init(seed: UInt64) {
        generator = WeightGenerator(seed: seed)
    }

    /// Uniform in [−scale, scale], at least `margin` away from 0 (ReLU's kink).
    mutating func uniform(_ count: Int, scale: Float = 1, margin: Float = 0) -> [Float] {
        (0..<count).map { _ in
            let u = Float.random(in: margin...scale, using: &generator)
            return Bool.random(using: &generator) ? u : -u
        }
    }
}

/// Expects `actual` ≈ `expected` elementwise: |a − e| ≤ tolerance · max(1, max|e|).
func expectClose(
    _ actual: [Double], _ expected: [Double], tolerance: Double, _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(actual.count == expected.count, "\(what): \(actual.count) values, expected \(expected.count)")
    let scale = max(1, expected.map(abs).max() ?? 0)
    var worst = 0.0
    var worstIndex = 0
    for (i, (a, e)) in zip(actual, expected).enumerated() where abs(a - e) > worst {
        worst = abs(a - e)
        worstIndex = i
    }
    #expect(
        worst <= tolerance * scale,
        "\(what): worst error \(worst) at \(worstIndex) > \(tolerance) × \(scale)", sourceLocation: sourceLocation)
}

/// Expects `body` to throw a `NetworkError` whose message contains each of `fragments`.
func expectNetworkError(
    _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
    do {
        try body()
        Issue.record("expected an error containing \(fragments)", sourceLocation: sourceLocation)
    } catch let error as NetworkError {
        for fragment in fragments {
            #expect(
                error.message.contains(fragment), "message \"\(error.message)\" lacks \"\(fragment)\"",
                sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("expected a NetworkError, got \(error)", sourceLocation: sourceLocation)
    }
}
