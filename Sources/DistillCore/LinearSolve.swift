/// Solves the dense system `A x = b` by LU decomposition with partial pivoting.
///
/// `matrix` is row-major `n × n`; `rightHandSides` holds `k` right-hand sides, each of length `n`,
/// solved with one factorisation. Throws ``DistillError/Code/singularSystem`` when a pivot is
/// (numerically) zero, which for the systems of this project means some episode never ends.
public func solveLinearSystem(_ matrix: [Double], size n: Int, rightHandSides: [[Double]]) throws -> [[Double]] {
    precondition(matrix.count == n * n, "matrix has \(matrix.count) entries, expected \(n * n)")
    var a = matrix
    var perm = Array(0..<n)
    var scale = 0.0
    for v in a { scale = max(scale, abs(v)) }
    let tolerance = max(scale, 1) * 1e-13
    try a.withUnsafeMutableBufferPointer { m in
        for k in 0..<n {
            var pivot = k
            var best = abs(m[k * n + k])
            for i in (k + 1)..<max(k + 1, n) where abs(m[i * n + k]) > best {
                best = abs(m[i * n + k])
                pivot = i
            }
            if best <= tolerance {
                throw DistillError(
                    .singularSystem,
                    "linear system is singular at row \(k): some episode never ends under this policy (use a discount < 1 or a policy that terminates)"
                )
            }
            if pivot != k {
                for j in 0..<n { m.swapAt(k * n + j, pivot * n + j) }
                perm.swapAt(k, pivot)
            }
            let inv = 1 / m[k * n + k]
            for i in (k + 1)..<max(k + 1, n) {
                let f = m[i * n + k] * inv
                if f == 0 { continue }
                m[i * n + k] = f
                for j in (k + 1)..<n { m[i * n + j] -= f * m[k * n + j] }
            }
        }
    }
    return rightHandSides.map { b in
        precondition(b.count == n, "right-hand side has \(b.count) entries, expected \(n)")
        var x = perm.map { b[$0] }
        for i in 0..<n {
            var sum = x[i]
            for j in 0..<i { sum -= a[i * n + j] * x[j] }
            x[i] = sum
        }
        for i in stride(from: n - 1, through: 0, by: -1) {
            var sum = x[i]
            for j in (i + 1)..<n { sum -= a[i * n + j] * x[j] }
            x[i] = sum / a[i * n + i]
        }
        return x
    }
}
