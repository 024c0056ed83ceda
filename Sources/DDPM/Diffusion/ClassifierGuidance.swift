import DDPMCore
import Foundation

/// Classifier guidance (Dhariwal & Nichol 2021): a noisy classifier's ∇_x log p(y | x_t, t), from
/// our own autodiff on the device, steers each sampling step toward class y.
///   DDPM with a fixed variance (their Algorithm 1): the mean moves by s·Σ·∇, x_prev += s·σ_t²·∇.
///   Every other solver (their Algorithm 2, guided-diffusion's condition_score): the prediction is
///   shifted as ε̃ = ε − √(1−ᾱ_t)·s·∇, written in the model's own parametrisation (x₀ and v moved
///   by the same change of ε at fixed x_t).
/// The gradient graph: x_t, t → classifier → logits → N · cross-entropy with the labels (the sum
/// over the batch of −log p(y_n | x_n); N·(1/N) is exactly 1, so no batch-dependent rounding enters),
/// differentiated with respect to the images: ∇ log p(y_n | x_n) = −d(loss)/d(x_n), each image's
/// depending on that image only, whatever the batch and its padding. The sampler's step graph adds
/// the shift (GuidanceTerm), with the coefficient `predictionShift` or `meanShift` of each step.
public final class ClassifierGuide {
    public let classifier: TrainedClassifier
    public let scale: Float
    public let batch: Int
    /// The class each image is steered toward (the classifier's class indices).
    public let labelsOfImages: ClassConditioning
    let backend: Backend
    let net: EncoderClassifier
    let labels: Value
    let loss: Value
    let gradient: Value
    let executor: Executor
    let labelBuffer: DeviceBuffer

    public init(backend: Backend, classifier: TrainedClassifier, scale: Float, batch: Int, labels: ClassConditioning) throws {
        self.backend = backend; self.classifier = classifier; self.scale = scale; self.batch = batch
        labelsOfImages = labels
        let graph = Graph()
        net = EncoderClassifier(config: classifier.config, batch: batch, graph: graph)
        self.labels = graph.input("labels", Shape(batch))
        loss = graph(.scale(Float(batch)), graph(.crossEntropy, net.logits, self.labels))
        gradient = graph.gradients(of: loss, wrt: [net.images])[0]
        executor = try Executor(graph: graph, outputs: [gradient], backend: backend)
        for (name, value) in graph.parameters { executor.bind(value, to: try backend.makeConstantBuffer(classifier.weights.values[name]!)) }
        labelBuffer = try backend.makeBuffer(count: batch)
        executor.bind(self.labels, to: labelBuffer)
    }

    /// Refuses a classifier that cannot guide this model: another image shape, no timestep training,
    /// another noise schedule, or a model whose classes are not the classifier's.
    public static func check(_ classifier: TrainedClassifier, source: String, model config: UNetConfig, settings: SchedulerSettings) throws {
        let c = classifier.config
        guard c.sampleSize == config.sampleSize, c.inChannels == config.inChannels else {
            throw UserError("--classifier \(source) reads \(c.inChannels)×\(c.sampleSize)² images, the model makes \(config.inChannels)×\(config.sampleSize)²; train a noisy classifier on this data.")
        }
        guard let noise = c.noise else {
            throw UserError("--classifier \(source) was trained on clean images (the FID classifier); classifier guidance needs p(y | x_t, t) on noisy ones: `ddpm-cl classifier train --noisy` (with the model's --schedule and --timesteps).")
        }
        guard noise.noiseSchedule.alphasCumprod == settings.schedule.alphasCumprod else {
            throw UserError("--classifier \(source) learned x_t of the \(noise.schedule.rawValue) schedule with T = \(noise.timesteps), which is not this model's noise schedule (T = \(settings.schedule.timesteps)); train it with the model's --schedule and --timesteps.")
        }
    }

    /// d(loss)/dx at (x, t) with the batch's labels uploaded by `setLabels`. Enqueued; nothing is read.
    func lossGradient(x: TensorRef, timesteps: DeviceBuffer) throws -> TensorRef {
        executor.bind(net.images, to: x.buffer)
        executor.bind(net.timesteps, to: timesteps)
        try executor.run(step: 0)
        return executor.tensor(gradient)
    }

    /// ∇_x log p(y_n | x_n, t_n) for a host batch (N×C×S×S, N timesteps; labels of images 0 ..< N),
    /// read back: what every guided step uses, for tests and inspection.
    public func logProbabilityGradient(x: [Float], timesteps: [Float]) throws -> [Float] {
        try setLabels(first: 0, count: batch)
        let g = try lossGradient(x: TensorRef(try backend.makeBuffer(x), net.graph.shape(net.images)), timesteps: try backend.makeBuffer(timesteps))
        return try backend.read(g.buffer, count: g.shape.count).map { -$0 }
    }

    /// Uploads the labels of images first ..< first + count.
    func setLabels(first: Int, count: Int) throws {
        try backend.write(labelsOfImages.batchLabels(first: first, count: count, batch: batch), to: labelBuffer)
    }

    /// The coefficient of d(loss)/dx = −∇_x log p(y | x, t) that shifts the model's prediction by
    /// ε̃ = ε − √(1−ᾱ)·s·∇, in the model's parametrisation.
    func predictionShift(alphaBar: Double, prediction: Prediction) -> Float {
        let b = (1 - alphaBar).squareRoot(), a = alphaBar.squareRoot()
        let factor: Double
        switch prediction {
        case .epsilon: factor = -b               // ε − √(1−ᾱ)·s∇
        case .sample: factor = b * b / a         // x₀ = (x − √(1−ᾱ)ε)/√ᾱ moves by (1−ᾱ)/√ᾱ·s∇
        case .v: factor = -b / a                 // v = √ᾱ ε − √(1−ᾱ) x₀ moves by −√((1−ᾱ)/ᾱ)·s∇
        }
        return Float(-factor * Double(scale))
    }

    /// The coefficient of d(loss)/dx that moves x_prev by s·σ²·∇ (the mean shift of Algorithm 1; σ the
    /// step's noise std).
    func meanShift(sigma: Float) -> Float { Float(-Double(sigma) * Double(sigma) * Double(scale)) }
}

extension SolverStep {
    /// ᾱ of the x the model sees at this step, from the solver's own x̂0 conversion: x̂0 = x/√ᾱ − … for
    /// ε (kx = 1/√ᾱ), √ᾱ·x − … for v (kx = √ᾱ); an x₀ model (kx = 0) reads the schedule at the
    /// model's timestep, interpolated linearly between integers (Euler's are fractional).
    func alphaBar(_ settings: SchedulerSettings) -> Double {
        switch settings.prediction {
        case .epsilon: return 1 / (kx * kx)
        case .v: return kx * kx
        case .sample:
            let table = settings.schedule.alphasCumprod
            let t = min(max(modelTimestep, 0), Double(table.count - 1))
            let j = min(Int(t), table.count - 2)
            return Double(table[j]) + (t - Double(j)) * (Double(table[j + 1]) - Double(table[j]))
        }
    }
}
