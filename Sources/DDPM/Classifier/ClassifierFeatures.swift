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
    let timestepsBuffer: DeviceBuffer

    public init(backend: Backend, classifier: TrainedClassifier, batch: Int = 100) throws {
        self.backend = backend
        self.classifier = classifier
        self.batch = batch
        net = EncoderClassifier(config: classifier.config, batch: batch)
        executor = try Executor(graph: net.graph, outputs: [net.features, net.logits], backend: backend)
        imagesBuffer = try backend.makeBuffer(count: net.graph.shape(net.images).count)
        executor.bind(net.images, to: imagesBuffer)
        // t = 0 unless `run` is given another: the classifier sees clean images.
        timestepsBuffer = try backend.makeBuffer([Float](repeating: 0, count: batch))
        executor.bind(net.timesteps, to: timestepsBuffer)
        for (name, value) in net.graph.parameters {
            executor.bind(value, to: try backend.makeConstantBuffer(classifier.weights.values[name]!))
        }
    }

    public struct Output {
        /// count × featureDimension
        public var features: FeatureMatrix
        /// count × classes, row-major
        public var logits: [Float]
        public var predictions: [Int]
    }

    /// Runs every image of `set` (which must have the classifier's size and channels), telling the
    /// network they are at `timestep` (a noisy classifier's input; 0 for clean images). The last
    /// partial batch is padded with copies of its first image and the padding discarded.
    public func run(_ set: ImageSet, timestep: Int = 0, progress: ((Int, Int) -> Void)? = nil) throws -> Output {
        let c = classifier.config
        guard set.size == c.sampleSize, set.channels == c.inChannels else {
            throw UserError("\(set.description): \(set.channels)×\(set.size)² images, but the classifier reads \(c.inChannels)×\(c.sampleSize)².")
        }
        try backend.write([Float](repeating: Float(timestep), count: batch), to: timestepsBuffer)
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

    /// The fraction of `set`'s labelled images whose predicted class is their label, the images
    /// taken as being at `timestep`.
    public func accuracy(_ set: ImageSet, timestep: Int = 0) throws -> Double {
        guard let labels = set.labels else { throw UserError("\(set.description) has no labels to measure accuracy against.") }
        let out = try run(set, timestep: timestep)
        return Double(zip(out.predictions, labels).filter { $0 == $1 }.count) / Double(max(set.count, 1))
    }

    /// A noisy classifier's accuracy at each of `timesteps`: every image noised to
    /// x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε with the schedule it was trained on (Philox noise addressed by
    /// seed, image and t, so the figure is reproducible). What classifier guidance can rely on at
    /// each noise level.
    public func accuracyByNoiseLevel(_ set: ImageSet, timesteps: [Int], seed: UInt64 = 0) throws -> [(timestep: Int, accuracy: Double)] {
        guard let noise = classifier.config.noise else {
            throw UserError("this classifier was trained on clean images (without --noisy); accuracy per noise level is for noisy classifiers.")
        }
        let acp = noise.noiseSchedule.alphasCumprod
        return try timesteps.map { t in
            guard acp.indices.contains(t) else {
                throw UserError("timestep \(t): the classifier's schedule has timesteps 0…\(acp.count - 1).")
            }
            return (t, try accuracy(Self.noised(set, alphaCumprod: Double(acp[t]), timestep: t, seed: seed), timestep: t))
        }
    }

    /// `set` as q(x_t | x₀) draws at ᾱ_t.
    public static func noised(_ set: ImageSet, alphaCumprod a: Double, timestep t: Int, seed: UInt64) -> ImageSet {
        var out = set
        let per = set.floatsPerImage
        let (signal, spread) = (a.squareRoot(), (1 - a).squareRoot())
        for n in 0..<set.count {
            for i in 0..<per {
                let z = Philox.normal(seed: seed, index: i, image: UInt32(n), step: UInt32(t), stream: RandomStream.initialNoise)
                out.images[n * per + i] = Float(signal * Double(set.images[n * per + i]) + spread * Double(z))
            }
        }
        out.description = "\(set.description) at t = \(t)"
        return out
    }
}
