import DDPMCore

/// `rows` feature vectors of `dimension` values each (row-major, double precision): what a feature
/// network (the domain classifier's penultimate layer, or Inception's pool3) makes of a set of images.
public struct FeatureMatrix: Equatable {
    public var rows: Int
    public var dimension: Int
    public var values: [Double]

    public init(rows: Int, dimension: Int, values: [Double]) {
        precondition(values.count == rows * dimension, "FeatureMatrix: \(values.count) values for \(rows)×\(dimension)")
        self.rows = rows
        self.dimension = dimension
        self.values = values
    }

    public init(rows: Int, dimension: Int, floats: [Float]) {
        self.init(rows: rows, dimension: dimension, values: floats.map(Double.init))
    }

    /// The rows at `indices`, in that order.
    public func selecting(_ indices: [Int]) -> FeatureMatrix {
        var out: [Double] = []
        out.reserveCapacity(indices.count * dimension)
        for i in indices { out += values[(i * dimension)..<((i + 1) * dimension)] }
        return FeatureMatrix(rows: indices.count, dimension: dimension, values: out)
    }
}
