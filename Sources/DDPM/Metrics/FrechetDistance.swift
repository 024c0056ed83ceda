import DDPMCore

/// The Fréchet distance between two Gaussians (Dowson & Landau 1982; FID, Heusel et al. 2017):
///   d² = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁Σ₂)^½.
/// pytorch-fid takes scipy.linalg.sqrtm of the non-symmetric Σ₁Σ₂. Here the trace comes from symmetric
/// eigen-decompositions only (LAPACK dsyevd, double precision): with R = Σ₁^½,
/// (Σ₁Σ₂)^½ is similar to (R Σ₂ R)^½, so tr (Σ₁Σ₂)^½ = Σᵢ √λᵢ(R Σ₂ R). For full-rank covariances
/// (more images than features) this equals scipy's value (a fixture checks 1e-6 relative); for
/// rank-deficient ones, where sqrtm returns complex parts, eigenvalues below zero (rounding) count as 0.
public enum FrechetDistance {
    public static func between(_ a: GaussianStatistics, _ b: GaussianStatistics) throws -> Double {
        guard a.dimension == b.dimension else {
            throw UserError("cannot compare feature statistics of dimension \(a.dimension) and \(b.dimension): "
                + "both sets must come from the same feature network.")
        }
        let d = a.dimension
        var meanTerm = 0.0
        for j in 0..<d { meanTerm += (a.mean[j] - b.mean[j]) * (a.mean[j] - b.mean[j]) }
        var traces = 0.0
        for j in 0..<d { traces += a.covariance[j * d + j] + b.covariance[j * d + j] }
        let cross = try traceOfSquareRootProduct(a.covariance, b.covariance, n: d)
        return meanTerm + traces - 2 * cross
    }

    /// tr (S₁S₂)^½ for symmetric positive semi-definite S₁, S₂ (n×n, row-major).
    static func traceOfSquareRootProduct(_ s1: [Double], _ s2: [Double], n: Int) throws -> Double {
        let e1 = try SymmetricEigen(s1, n: n)
        // R = V diag(√λ) Vᵀ, negative rounding noise clamped to 0.
        let roots = e1.values.map { $0 > 0 ? $0.squareRoot() : 0 }
        var scaled = e1.vectors            // V diag(√λ)
        for i in 0..<n { for j in 0..<n { scaled[i * n + j] *= roots[j] } }
        var vt = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { vt[j * n + i] = e1.vectors[i * n + j] } }
        let r = multiplySquare(scaled, vt, n: n)
        var m = multiplySquare(multiplySquare(r, s2, n: n), r, n: n)
        // Symmetrise away rounding before the symmetric solver reads the upper triangle.
        for i in 0..<n { for j in (i + 1)..<max(i + 1, n) { let v = 0.5 * (m[i * n + j] + m[j * n + i]); m[i * n + j] = v; m[j * n + i] = v } }
        let e2 = try SymmetricEigen(m, n: n, vectors: false)
        return e2.values.reduce(0) { $0 + ($1 > 0 ? $1.squareRoot() : 0) }
    }
}
