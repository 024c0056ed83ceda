import DDPMCore
import Foundation

/// The classifier's forward pass on a backend, in batches: penultimate-layer features and logits.
public final class ClassifierFeatures {
    public let classifier: TrainedClassifier
    public let batch: Int
    let backend: Backend
    let net: EncoderClassifier
    let executor: Executor
    let imagesBuffer: DeviceBuffer

    public init(backend: Backend, classifier: TrainedClassifier, batch: Int = 100) throws {
        self.backend = backend
        self.classifier = classifier
        self.batch = batch
        net = EncoderClassifier(config: classifier.config, batch: batch)
        executor = try Executor(graph: net.graph, outputs: [net.features, net.logits], backend: backend)
        imagesBuffer = try backend.makeBuffer(count: net.graph.shape(net.images).count)
        executor.bind(net.images, to: imagesBuffer)
        // t = 0: the classifier sees clean images.
        executor.bind(net.timesteps, to: try backend.makeBuffer([Float](repeating: 0, count: batch)))
        for (name, value) in net.graph.parameters {
            executor.bind(value, to: try backend.makeBuffer(classifier.weights.values[name]!))
        }
    }

    public struct Output {
        /// count × featureDimension
        public var features: FeatureMatrix
        /// count × classes, row-major
        public var logits: [Float]
        public var predictions: [Int]
    }

    /// Runs every image of `set` (which must have the classifier's size and channels). The last
    /// partial batch is padded with copies of its first image and the padding discarded.
    public func run(_ set: ImageSet, progress: ((Int, Int) -> Void)? = nil) throws -> Output {
        let c = classifier.config
        guard set.size == c.sampleSize, set.channels == c.inChannels else {
            throw UserError("\(set.description): \(set.channels)×\(set.size)² images, but the classifier reads \(c.inChannels)×\(c.sampleSize)².")
        }
        let per = set.floatsPerImage, d = c.featureDimension, k = c.classes
        var features: [Double] = [], logits: [Float] = []
        features.reserveCapacity(set.count * d)
        logits.reserveCapacity(set.count * k)
        var first = 0
        while first < set.count {
            let n = min(batch, set.count - first)
            var chunk = Array(set.images[(first * per)..<((first + n) * per)])
            for _ in n..<batch { chunk += set.images[(first * per)..<((first + 1) * per)] }
            try backend.write(chunk, to: imagesBuffer)
            try executor.run(step: 0)
            let f = try backend.read(executor.buffer(net.features), count: batch * d)
            let l = try backend.read(executor.buffer(net.logits), count: batch * k)
            features += f.prefix(n * d).map(Double.init)
            logits += l.prefix(n * k)
            first += n
            progress?(first, set.count)
        }
        let predictions = (0..<set.count).map { i -> Int in
            let row = logits[(i * k)..<((i + 1) * k)]
            return row.indices.max { row[$0] < row[$1] }! - i * k
        }
        return Output(features: FeatureMatrix(rows: set.count, dimension: d, values: features), logits: logits, predictions: predictions)
    }

    /// The fraction of `set`'s labelled images whose predicted class is their label.
    public func accuracy(_ set: ImageSet) throws -> Double {
        guard let labels = set.labels else { throw UserError("\(set.description) has no labels to measure accuracy against.") }
        let out = try run(set)
        return Double(zip(out.predictions, labels).filter { $0 == $1 }.count) / Double(max(set.count, 1))
    }
}
