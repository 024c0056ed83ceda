import CLAPACK
import DDPMCore

/// The eigen-decomposition of a real symmetric matrix by LAPACK's divide-and-conquer solver
/// (dsyevd, double precision). `vectors` holds the eigenvectors as columns, row-major n×n:
/// vectors[i·n + j] is component i of eigenvector j; eigenvalues ascend.
public struct SymmetricEigen {
    public let values: [Double]
    public let vectors: [Double]

    /// `matrix` is n×n and symmetric (only its upper triangle is read).
    public init(_ matrix: [Double], n: Int, vectors wantVectors: Bool = true) throws {
        precondition(matrix.count == n * n, "SymmetricEigen: \(matrix.count) values for \(n)×\(n)")
        var a = matrix
        var w = [Double](repeating: 0, count: n)
        // Row-major in, row-major out: for a symmetric matrix the layouts hold the same numbers.
        let info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, wantVectors ? Int8(UInt8(ascii: "V")) : Int8(UInt8(ascii: "N")),
                                  Int8(UInt8(ascii: "U")), Int32(n), &a, Int32(n), &w)
        guard info == 0 else {
            throw UserError("LAPACK's symmetric eigensolver (dsyevd) failed on a \(n)×\(n) matrix (info \(info)): "
                + (info < 0 ? "argument \(-info) was invalid." : "it did not converge; the features may hold NaN or Inf."))
        }
        values = w
        vectors = wantVectors ? a : []
    }
}

/// c = a·b for n×n row-major matrices in double precision, rows split across cores.
func multiplySquare(_ a: [Double], _ b: [Double], n: Int) -> [Double] {
    var c = [Double](repeating: 0, count: n * n)
    a.withUnsafeBufferPointer { a in
        b.withUnsafeBufferPointer { b in
            c.withUnsafeMutableBufferPointer { c in
                let (ap, bp, cp) = (a.baseAddress!, b.baseAddress!, c.baseAddress!)
                parallelRows(n) { i in
                    let row = cp + i * n
                    for k in 0..<n {
                        let aik = ap[i * n + k]
                        if aik == 0 { continue }
                        let bk = bp + k * n
                        for j in 0..<n { row[j] += aik * bk[j] }
                    }
                }
            }
        }
    }
    return c
}
