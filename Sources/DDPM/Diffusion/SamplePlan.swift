import DDPMCore
import Foundation

/// A checked SampleRequest: the pipeline with its scheduler overrides, the solver, the step count,
/// the number of images and how many go into each model evaluation. `makeSampler` allocates on a
/// device, `run` draws the images.
public struct SamplePlan {
    /// Classifier guidance: the noisy classifier and its scale s.
    public struct Guide {
        public var url: URL
        public var classifier: TrainedClassifier
        public var scale: Float
    }

    public var pipeline: LoadedPipeline
    public var sampler: SamplerKind
    public var steps: Int
    /// Images to draw (with --class all: per class times the classes).
    public var count: Int
    /// Images per model evaluation: the request's --device-batch, at most `count`.
    public var deviceBatch: Int
    public var seed: UInt64
    public var classes: ClassRequest.Plan?
    public var guide: Guide?
    public var initialNoise: [Float]?
    public var snapshots: Int
    /// The request's --class, for the output folder's name.
    public var classChoice: String?

    /// "<sampler>-<steps>-seed<seed>" and "-class3", "-classall", "-w2", "-cg4" when classes or guidance
    /// are asked for: the default output folder's name under MODEL/samples/.
    public var outputName: String {
        var name = "\(sampler.name.rawValue)-\(steps)-seed\(seed)"
        name += classChoice.map { "-class\($0.replacingOccurrences(of: "/", with: "_"))" } ?? ""
        if let w = classes?.conditioning.guidance, w != 0 { name += String(format: "-w%g", w) }
        if let guide { name += String(format: "-cg%g", guide.scale) }
        return name
    }

    /// The Sampler for `deviceBatch` images per evaluation, refused with a batch that fits when it
    /// cannot fit the device, with the classifier guide attached.
    public func makeSampler(on backend: Backend) throws -> Sampler {
        let engine = try Sampler.fitting(backend: backend, config: pipeline.config, weights: pipeline.weights, settings: pipeline.settings,
                                         batch: deviceBatch, conditioning: classes?.modelConditioning, flag: "--device-batch")
        if let guide, let classes {
            engine.classifierGuide = try ClassifierGuide(backend: backend, classifier: guide.classifier, scale: guide.scale,
                                                         batch: deviceBatch, labels: classes.conditioning)
        }
        return engine
    }

    /// Draws the images; `progress(done, all)` after every model evaluation. The trajectory keeps
    /// x_t of the first min(count, 8, deviceBatch) images at `snapshots` points.
    public func run(_ engine: Sampler, progress: (Int, Int) -> Void = { _, _ in }) throws -> SampledImages {
        let c = pipeline.config
        let shown = min(count, 8, deviceBatch)
        let per = c.inChannels * c.sampleSize * c.sampleSize
        var trajectory: [[Float]] = []
        let images = try engine.sample(count: count, seed: seed, sampler: sampler, steps: steps, initialNoise: initialNoise,
                                       snapshots: snapshots, trajectory: { _, x in trajectory.append(Array(x.prefix(shown * per))) },
                                       progress: progress)
        return SampledImages(values: images, count: count, channels: c.inChannels, size: c.sampleSize, columns: classes?.columns,
                             rowLabels: classes?.rowLabels, trajectory: trajectory, trajectoryImages: shown)
    }
}

extension Sampler {
    /// A Sampler for `batch` images per model evaluation, measured against the device first: a batch
    /// that cannot fit is refused naming `flag` and a batch that fits (`sample`, `bench`).
    public static func fitting(backend: Backend, config: UNetConfig, weights: Weights, settings: SchedulerSettings, batch: Int,
                               conditioning: ClassConditioning? = nil, flag: String) throws -> Sampler {
        let need = try MemoryNeed.sampling(config, weights: weights, settings: settings, conditioning: conditioning)
        try need.check(batch: batch, flag: flag, on: backend, what: "sampling")
        return try need.allocating(batch: batch, flag: flag, on: backend, what: "sampling") {
            try Sampler(backend: backend, config: config, weights: weights, settings: settings, batch: batch, conditioning: conditioning)
        }
    }
}
