import DDPMCore

/// The kernel distance of Bińkowski et al. 2018 (KID) as torch-fidelity and clean-fid compute it: the
/// unbiased estimate of MMD² with the cubic polynomial kernel k(x, y) = (x·y / d + 1)³, averaged over
/// `subsets` random subsets of m = min(subsetSize, n₁, n₂) rows of each set (drawn without replacement;
/// SplitMix64 from `seed`, so the subsets differ from numpy's but the estimator is the same).
///   MMD²ᵤ = Σ_{i≠j} k(xᵢ,xⱼ) / (m(m−1)) + Σ_{i≠j} k(yᵢ,yⱼ) / (m(m−1)) − 2 Σ_{i,j} k(xᵢ,yⱼ) / m²
public enum KernelInceptionDistance {
    public struct Result: Equatable {
        public var mean: Double
        /// Standard deviation over the subsets (numpy's np.std, ddof 0, as torch-fidelity reports it).
        public var standardDeviation: Double
        public var subsets: Int
        public var subsetSize: Int
    }

    public static func compute(_ a: FeatureMatrix, _ b: FeatureMatrix, subsets: Int = 100, subsetSize: Int = 1000,
                               seed: UInt64 = 0) throws -> Result {
        guard a.dimension == b.dimension else {
            throw UserError("cannot compare features of dimension \(a.dimension) and \(b.dimension): "
                + "both sets must come from the same feature network.")
        }
        let m = min(subsetSize, a.rows, b.rows)
        guard m >= 2, subsets >= 1 else {
            throw UserError("KID needs at least 2 images in each set and one subset (got \(a.rows) and \(b.rows) images, "
                + "\(subsets) subsets).")
        }
        var random = SplitMix64(seed: seed)
        var values: [Double] = []
        for _ in 0..<subsets {
            let x = a.selecting(Array(random.permutation(a.rows).prefix(m)))
            let y = b.selecting(Array(random.permutation(b.rows).prefix(m)))
            values.append(unbiasedMMDSquared(x, y))
        }
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
        return Result(mean: mean, standardDeviation: variance.squareRoot(), subsets: subsets, subsetSize: m)
    }

    /// MMD²ᵤ of two sets of equal size m ≥ 2 (the formula above).
    public static func unbiasedMMDSquared(_ x: FeatureMatrix, _ y: FeatureMatrix) -> Double {
        precondition(x.rows == y.rows && x.rows >= 2 && x.dimension == y.dimension)
        let m = Double(x.rows)
        let xx = kernelSum(x, x, skipDiagonal: true)
        let yy = kernelSum(y, y, skipDiagonal: true)
        let xy = kernelSum(x, y, skipDiagonal: false)
        return xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2 * xy / (m * m)
    }

    /// Σ_{i,j} (pᵢ·qⱼ / d + 1)³, without the i = j terms when asked.
    static func kernelSum(_ p: FeatureMatrix, _ q: FeatureMatrix, skipDiagonal: Bool) -> Double {
        let d = p.dimension
        var rowSums = [Double](repeating: 0, count: p.rows)
        p.values.withUnsafeBufferPointer { pv in
            q.values.withUnsafeBufferPointer { qv in
                rowSums.withUnsafeMutableBufferPointer { sums in
                    let (pp, qp, sp) = (pv.baseAddress!, qv.baseAddress!, sums.baseAddress!)
                    parallelRows(p.rows) { i in
                        let pi = pp + i * d
                        var total = 0.0
                        for j in 0..<q.rows where !(skipDiagonal && i == j) {
                            let qj = qp + j * d
                            var dot = 0.0
                            for k in 0..<d { dot += pi[k] * qj[k] }
                            let base = dot / Double(d) + 1
                            total += base * base * base
                        }
                        sp[i] = total
                    }
                }
            }
        }
        return rowSums.reduce(0, +)
    }
}
