import COpenBLAS

/// Makes OpenBLAS use one thread in this process.
///
/// Each role of a run is its own process with one core (design §2), and OpenBLAS's default of one
/// thread per core would make concurrent roles fight over the cores. Call it once at start-up.
public func setSingleThreaded() {
    openblas_set_num_threads(1)
}

/// Row-major single-precision GEMM, the one matrix product every layer uses.
///
/// Computes C = α·op(A)·op(B) + β·C where op(A) is m×k, op(B) is k×n and C is m×n, all row-major;
/// `lda`, `ldb`, `ldc` are the row strides of the matrices as stored (before the transpose).
@inlinable
public func sgemm(
    transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
    c: UnsafeMutablePointer<Float>, ldc: Int
) {
    precondition(m > 0 && n > 0 && k > 0, "sgemm: empty product \(m)×\(k)·\(k)×\(n)")
    precondition(m <= Int(Int32.max) && n <= Int(Int32.max) && k <= Int(Int32.max), "sgemm: size beyond 32-bit BLAS")
    cblas_sgemm(
        CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// The sum of squares of `count` floats, accumulated in double precision (global-norm clipping).
@inlinable
func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Double {
    guard count > 0 else { return 0 }
    return cblas_dsdot(Int32(count), x, 1, x, 1)
}

/// x ← α·x over `count` floats.
@inlinable
func scale(_ x: UnsafeMutablePointer<Float>, count: Int, by alpha: Float) {
    guard count > 0 else { return }
    cblas_sscal(Int32(count), alpha, x, 1)
}

/// Row-major single-precision matrix–vector product y = α·op(A)·x + β·y, A stored rows×columns.
///
/// For a batch of one: OpenBLAS's GEMM with one row is several times slower than its GEMV.
@inlinable
public func sgemv(
    transpose: Bool = false, rows: Int, columns: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
    x: UnsafePointer<Float>, beta: Float, y: UnsafeMutablePointer<Float>
) {
    precondition(rows > 0 && columns > 0, "sgemv: empty matrix \(rows)×\(columns)")
    precondition(rows <= Int(Int32.max) && columns <= Int(Int32.max), "sgemv: size beyond 32-bit BLAS")
    cblas_sgemv(
        CblasRowMajor, transpose ? CblasTrans : CblasNoTrans, Int32(rows), Int32(columns), alpha, a, Int32(lda), x, 1,
        beta, y, 1)
}
