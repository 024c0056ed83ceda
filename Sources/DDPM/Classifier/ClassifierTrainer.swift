import DDPMCore
import Foundation

/// What `ddpm-cl classifier train` sets.
public struct ClassifierTrainingOptions {
    public var batch = 64
    public var learningRate: Float = 2e-3
    public var warmup = 50
    public var weightDecay: Float = 0
    public var gradientClip: Float = 1
    public var seed: UInt64 = 0
    /// Train on noisy images x_t of this schedule (a noisy classifier for classifier guidance); nil: clean.
    public var noise: ClassifierNoise?
    /// Train until this many steps, or for this many minutes (whichever is given; steps win).
    public var steps: Int?
    public var minutes: Double?
    public init() {}

    /// Linear warmup, then constant.
    func learningRate(step: Int) -> Float {
        warmup > 0 ? learningRate * min(1, Float(step) / Float(warmup)) : learningRate
    }
}

/// Trains the domain classifier with ddpm-cl's own graph and ops: one step is one graph run
/// (forward, cross-entropy, backward, gradient norm, AdamW on flat buffers), as the DDPM Trainer does.
/// A noisy classifier (config.noise) first noises each batch on the device with the qSample op, which
/// draws t and ε with Philox by (seed, step), and sees x_t with its t.
public final class ClassifierTrainer {
    public let config: ClassifierConfig
    public let options: ClassifierTrainingOptions
    public private(set) var step = 0
    let backend: Backend
    let net: EncoderClassifier
    let loss: Value
    let executor: Executor
    let imagesBuffer: DeviceBuffer, labelsBuffer: DeviceBuffer
    private let optimizer: FlatOptimizer

    public init(backend: Backend, config: ClassifierConfig, options: ClassifierTrainingOptions) throws {
        self.backend = backend; self.config = config; self.options = options
        let graph = Graph()
        let s = config.sampleSize
        let clean = graph.input("images", Shape(options.batch, config.inChannels, s, s))
        if let noise = config.noise {
            let schedule = noise.noiseSchedule
            let table = graph.constant(schedule.qSampleTable, Shape(3, schedule.timesteps))
            let noised = graph.apply(.qSample(QSample(seed: options.seed, timesteps: schedule.timesteps, prediction: .epsilon)), [clean, table])
            net = EncoderClassifier(config: config, batch: options.batch, graph: graph, images: noised[0], timesteps: noised[2])
        } else {
            net = EncoderClassifier(config: config, batch: options.batch, graph: graph, images: clean)
        }
        let labels = graph.input("labels", Shape(options.batch))
        loss = graph(.crossEntropy, net.logits, labels)
        let gradients = graph.gradients(of: loss, wrt: graph.parameters.map(\.value))
        var weights = Weights(graph: graph)
        weights.initialize(seed: options.seed)
        optimizer = try FlatOptimizer(graph: graph, gradients: gradients, backend: backend, maxNorm: options.gradientClip,
                                      accumulationSteps: 1, weights: weights, keepsEMA: false)
        executor = try Executor(graph: graph, outputs: [loss] + optimizer.outputs, backend: backend, placements: optimizer.placements)
        optimizer.bind(to: executor)
        imagesBuffer = try backend.makeBuffer(count: graph.shape(clean).count)
        labelsBuffer = try backend.makeBuffer(count: options.batch)
        executor.bind(clean, to: imagesBuffer)
        executor.bind(labels, to: labelsBuffer)
        if config.noise == nil { executor.bind(net.timesteps, to: try backend.makeBuffer([Float](repeating: 0, count: options.batch))) }
    }

    /// One AdamW step on a batch (N×C×S×S in [-1, 1]) and its labels.
    public func trainStep(images: [Float], labels: [Int]) throws {
        precondition(labels.count == options.batch)
        step += 1
        let adam = Adam(learningRate: options.learningRate(step: step), weightDecay: options.weightDecay, step: step)
        try optimizer.step(executor: executor, adam: adam, emaRate: nil, hook: nil) { _ in
            try backend.write(images, to: imagesBuffer)
            try backend.write(labels.map(Float.init), to: labelsBuffer)
            return UInt32(truncatingIfNeeded: step)
        }
    }

    /// The cross-entropy of the last step (waits for the device).
    public func readLoss() throws -> Float { try backend.read(executor.buffer(loss), count: 1)[0] }

    /// d(loss)/d(parameter) of the last step by parameter name (before clipping).
    public func gradientValues() throws -> [String: [Float]] { try optimizer.read(optimizer.gradients, into: net.graph).values }

    public func weights() throws -> Weights { try optimizer.read(optimizer.parameters, into: net.graph) }
}

/// The whole `classifier train`: batches in a seeded shuffled order (with random horizontal flips
/// when asked), the held-out accuracy at the end, the result ready to write.
public enum ClassifierTraining {
    public static func run(backend: Backend, train: ImageSet, heldOut: ImageSet, options: ClassifierTrainingOptions,
                           flip: Bool = false, say: (Int, Float, Double) -> Void) throws -> TrainedClassifier {
        guard let labels = train.labels, let names = train.classNames else {
            throw UserError("\(train.description) has no labels: give fashion-mnist or a folder with one subfolder per class.")
        }
        guard train.count >= options.batch else {
            throw UserError("\(train.description) has \(train.count) images, fewer than one batch of \(options.batch); use a smaller --batch.")
        }
        var config = ClassifierConfig.standard(sampleSize: train.size, inChannels: train.channels, classNames: names)
        config.noise = options.noise
        try config.validate(source: "classifier")
        let trainer = try ClassifierTrainer(backend: backend, config: config, options: options)
        let data = TrainingData(images: train.images, count: train.count, channels: train.channels, size: train.size,
                                description: train.description, seed: options.seed, horizontalFlip: flip)
        let start = Date()
        func done() -> Bool {
            if let s = options.steps { return trainer.step >= s }
            return Date().timeIntervalSince(start) >= (options.minutes ?? 3) * 60
        }
        while !done() {
            let s = trainer.step + 1
            let images = data.batch(step: s, size: options.batch)
            // The same positions of the same shuffled order, so each image keeps its label.
            let batchLabels = (0..<options.batch).map { labels[data.index(at: (s - 1) * options.batch + $0)] }
            try trainer.trainStep(images: images, labels: batchLabels)
            if trainer.step % 25 == 0 {
                let loss = try trainer.readLoss()
                guard loss.isFinite else { throw UserError("the classifier's loss became \(loss) at step \(trainer.step); try a lower --lr.") }
                say(trainer.step, loss, Date().timeIntervalSince(start))
            }
        }
        let weights = try trainer.weights()
        var result = TrainedClassifier(config: config, weights: weights, heldOutAccuracy: 0, heldOutDescription: heldOut.description,
                                       trainingDescription: train.description, steps: trainer.step)
        result.heldOutAccuracy = try ClassifierFeatures(backend: backend, classifier: result).accuracy(heldOut)
        return result
    }
}

extension ClassifierTraining {
    /// The training and held-out images of a labelled source: Fashion-MNIST's train and test splits,
    /// or for an image folder with class subfolders every 10th image held out.
    public static func split(_ source: ImageSource, size: Int, channels: Int) throws -> (train: ImageSet, heldOut: ImageSet) {
        switch source {
        case .fashionMNIST:
            return (try ImageSource.fashionMNIST(.train).load(size: size, channels: channels),
                    try ImageSource.fashionMNIST(.test).load(size: size, channels: channels))
        case .folder(let url):
            let all = try source.load(size: size, channels: channels)
            guard all.labels != nil else {
                throw UserError("\(url.path) has no class subfolders; a classifier needs one subfolder per class (DIR/CLASS/*.png).")
            }
            let held = stride(from: 9, to: all.count, by: 10).map { $0 }
            guard !held.isEmpty else { throw UserError("\(url.path) has \(all.count) images; a classifier needs at least 10.") }
            let heldSet = Set(held)
            return (all.selecting((0..<all.count).filter { !heldSet.contains($0) }, description: "\(url.path) (\(all.count - held.count) images, 9 of every 10)"),
                    all.selecting(held, description: "\(url.path) (\(held.count) held-out images, every 10th)"))
        case .npy(let url):
            throw UserError("\(url.path) has no labels; train the classifier on fashion-mnist or a folder with one subfolder per class.")
        }
    }
}
