import DDPMCore
import Foundation

/// InceptionV3 pool3 features (2048-d) on a backend, in batches, as pytorch-fid computes them.
public final class InceptionFeatures: FeatureNetwork {
    public let weights: InceptionWeights
    public let batch: Int
    public let size: Int
    let backend: Backend
    let net: InceptionV3
    let executor: Executor
    let imagesBuffer: DeviceBuffer

    /// For images of `size`×`size` (resized to 299×299 inside the graph). Batch 8 keeps the
    /// activations of one batch (the stem's 64×147×147 maps) under ~100 MB.
    public init(backend: Backend, weights: InceptionWeights, size: Int, batch: Int = 8) throws {
        self.backend = backend; self.weights = weights; self.batch = batch; self.size = size
        net = InceptionV3(batch: batch, size: size)
        executor = try Executor(graph: net.graph, outputs: [net.features], backend: backend)
        imagesBuffer = try backend.makeBuffer(count: net.graph.shape(net.images).count)
        executor.bind(net.images, to: imagesBuffer)
        for (name, value) in net.graph.parameters {
            executor.bind(value, to: try backend.makeConstantBuffer(weights.values[name]!))
        }
    }

    public var featureDimension: Int { InceptionV3.featureDimension }
    public var classNames: [String] { [] }
    public var fingerprint: String { "\(weights.fingerprint)-\(size)" }
    public var summary: FeatureSummary { .inception(size: size) }

    /// Both sets at the larger of their native sizes (the smaller one padded centred with the
    /// background, as training pads Fashion-MNIST's 28×28 to 32×32), as RGB.
    public func inputFormat(_ a: ImageSource, _ b: ImageSource) throws -> (size: Int, channels: Int) { (size, 3) }

    /// The size both sets are read at for Inception: the larger of the two sources' native sizes.
    public static func commonSize(_ a: ImageSource, _ b: ImageSource) throws -> Int {
        max(try a.nativeSize(), try b.nativeSize())
    }

    /// Every image of `set` (RGB or gray, which is replicated to RGB as pytorch-fid's loader does).
    /// The last partial batch is padded with copies of its first image and the padding discarded.
    public func features(_ set: ImageSet) throws -> (features: FeatureMatrix, predictions: [Int]) {
        guard set.size == size, set.channels == 1 || set.channels == 3 else {
            throw UserError("\(set.description): \(set.channels)×\(set.size)² images, but this Inception reads 1 or 3×\(size)².")
        }
        let per = set.floatsPerImage, plane = size * size, d = featureDimension
        var features: [Double] = []
        features.reserveCapacity(set.count * d)
        var first = 0
        while first < set.count {
            let n = min(batch, set.count - first)
            var chunk: [Float] = []
            chunk.reserveCapacity(batch * 3 * plane)
            for i in 0..<batch {
                let image = set.images[((first + (i < n ? i : 0)) * per)..<((first + (i < n ? i : 0) + 1) * per)]
                if set.channels == 3 { chunk += image } else { for _ in 0..<3 { chunk += image } }
            }
            try backend.write(chunk, to: imagesBuffer)
            try executor.run(step: 0)
            let f = try backend.read(executor.buffer(net.features), count: batch * d)
            features += f.prefix(n * d).map(Double.init)
            first += n
        }
        return (FeatureMatrix(rows: set.count, dimension: d, values: features), [])
    }
}
