import DDPMCore

/// The mean and covariance of a set of feature vectors, as pytorch-fid's
/// `calculate_activation_statistics` forms them: μ = np.mean(f, axis=0), Σ = np.cov(f, rowvar=False)
/// (divided by n − 1), in double precision.
public struct GaussianStatistics: Codable, Equatable {
    public var count: Int
    public var dimension: Int
    public var mean: [Double]
    /// dimension × dimension, row-major.
    public var covariance: [Double]

    public init(count: Int, dimension: Int, mean: [Double], covariance: [Double]) {
        precondition(mean.count == dimension && covariance.count == dimension * dimension)
        self.count = count; self.dimension = dimension; self.mean = mean; self.covariance = covariance
    }

    public init(_ f: FeatureMatrix) throws {
        guard f.rows >= 2 else {
            throw UserError("cannot form feature statistics from \(f.rows) image(s): a covariance needs at least 2.")
        }
        let (n, d) = (f.rows, f.dimension)
        var mean = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { mean[j] += f.values[i * d + j] } }
        for j in 0..<d { mean[j] /= Double(n) }
        var centered = f.values
        for i in 0..<n { for j in 0..<d { centered[i * d + j] -= mean[j] } }
        var cov = [Double](repeating: 0, count: d * d)
        centered.withUnsafeBufferPointer { x in
            cov.withUnsafeMutableBufferPointer { c in
                let (xp, cp) = (x.baseAddress!, c.baseAddress!)
                parallelRows(d) { a in
                    for b in a..<d {
                        var s = 0.0
                        for i in 0..<n { s += xp[i * d + a] * xp[i * d + b] }
                        cp[a * d + b] = s / Double(n - 1)
                    }
                }
            }
        }
        for a in 0..<d { for b in 0..<a { cov[a * d + b] = cov[b * d + a] } }
        self.init(count: n, dimension: d, mean: mean, covariance: cov)
    }
}
