import DDPMCore
import Foundation

/// What `ddpm-cl sample` asks for, as given, before it is checked against a model. `plan` checks
/// that the model, its scheduler and the solver fit together and resolves every default; errors
/// name the flag (or the scheduler key) at fault.
public struct SampleRequest {
    /// --num-images: images to draw (per class with `classChoice` "all").
    public var count = 64
    /// --device-batch: images per model evaluation; larger requests are split.
    public var deviceBatch = 64
    /// nil: the solver the pipeline's scheduler names, else DDPM.
    public var sampler: SamplerName?
    /// nil: all T for DDPM, 50 for DDIM, 20 for the fast solvers (at most T).
    public var steps: Int?
    public var sigmas: SigmaRamp?
    /// --karras: the same as `sigmas` .karras.
    public var karras = false
    public var eta: Float = 0
    // Scheduler overrides; nil keeps the scheduler_config.json's setting.
    public var variance: SchedulerSettings.Variance?
    public var spacing: SchedulerSettings.Spacing?
    public var clipSample: Bool?
    public var dynamicThreshold: Float?
    public var sampleMaxValue: Float?
    public var seed: UInt64 = 0
    public var initialNoise: URL?
    /// Snapshots of x_t kept for trajectory.png (0: none).
    public var snapshots = 0
    public var classChoice: String?
    public var guidance: Float = 0
    /// A noisy classifier for classifier guidance, and its scale s.
    public var classifier: URL?
    public var classifierScale: Float = 1

    public init() {}

    /// The request resolved against `pipeline`: everything that can be refused without a device is refused here.
    public func plan(_ loaded: LoadedPipeline) throws -> SamplePlan {
        var pipeline = loaded
        if let variance { pipeline.settings.variance = variance }
        if let spacing { pipeline.settings.spacing = spacing }
        if let clipSample { pipeline.settings.clipSample = clipSample }
        if let dynamicThreshold {
            pipeline.settings.thresholding = true
            pipeline.settings.dynamicThresholdingRatio = dynamicThreshold
        }
        if let sampleMaxValue { pipeline.settings.sampleMaxValue = sampleMaxValue }
        if karras, let sigmas, sigmas != .karras {
            throw UserError("--karras and --sigmas \(sigmas.rawValue) disagree; pass one of them.")
        }
        guard classifierScale.isFinite && classifierScale >= 0 else {
            throw UserError("--classifier-scale \(classifierScale): it takes a finite scale ≥ 0 (guided-diffusion uses 1–10).")
        }
        let guide = try classifier.map { url -> SamplePlan.Guide in
            let trained = try TrainedClassifier.read(url)
            try ClassifierGuide.check(trained, source: url.path, model: pipeline.config, settings: pipeline.settings)
            return SamplePlan.Guide(url: url, classifier: trained, scale: classifierScale)
        }
        let classes = try ClassRequest(choice: classChoice, guidance: guidance).plan(pipeline, batch: count, classifier: guide?.classifier)
        let total = classes?.count ?? count
        // Default: the solver the pipeline's scheduler names, else DDPM; the scheduler's options are kept.
        let kind = try SamplerKind.resolve(sampler, sigmas: karras ? .karras : sigmas, eta: eta, scheduler: pipeline.scheduler)
        let stepCount = steps ?? kind.defaultSteps(timesteps: pipeline.settings.schedule.timesteps)
        try Self.check(count: total, deviceBatch: deviceBatch, sampler: kind, steps: stepCount, pipeline)
        let noise = try initialNoise.map { try Self.loadInitialNoise($0, count: total, pipeline.config) }
        return SamplePlan(pipeline: pipeline, sampler: kind, steps: stepCount, count: total, deviceBatch: min(deviceBatch, total),
                          seed: seed, classes: classes, guide: guide, initialNoise: noise, snapshots: snapshots,
                          classChoice: classChoice)
    }

    /// Refuses what cannot be sampled: the counts, η, a variance or thresholding the model or scheduler
    /// cannot have, a step count the schedule has no room for, more images than the host can hold.
    static func check(count: Int, deviceBatch: Int, sampler: SamplerKind, steps: Int, _ pipeline: LoadedPipeline) throws {
        if count < 1 { throw UserError("--num-images \(count): it takes a whole number of images ≥ 1.") }
        if deviceBatch < 1 { throw UserError("--device-batch \(deviceBatch): it takes a whole number of images ≥ 1.") }
        if case .ddim(let eta) = sampler, !(eta.isFinite && eta >= 0 && eta <= 1) {
            throw UserError("--eta \(eta): DDIM's η takes a number in [0, 1] (0: deterministic, 1: DDPM's noise level).")
        }
        let c = pipeline.config, s = pipeline.settings
        if s.variance == .learnedRange && c.outChannels != 2 * c.inChannels {
            throw UserError("learned variance needs a model whose out_channels (\(c.outChannels)) are twice its in_channels (\(c.inChannels)): ε and the variance. This model predicts a fixed variance; use --variance beta or beta-tilde.")
        }
        if c.outChannels != c.inChannels && c.outChannels != 2 * c.inChannels {
            throw UserError("the model has in_channels \(c.inChannels) and out_channels \(c.outChannels); ddpm-cl samples models with out_channels equal to in_channels, or twice that (learned variance).")
        }
        if s.thresholding && !(s.dynamicThresholdingRatio > 0 && s.dynamicThresholdingRatio < 1) {
            throw UserError("--dynamic-threshold \(s.dynamicThresholdingRatio): it takes a quantile in (0, 1), e.g. 0.995.")
        }
        if !(s.sampleMaxValue.isFinite && s.sampleMaxValue >= 1) {
            throw UserError("--sample-max-value \(s.sampleMaxValue): it takes a finite number ≥ 1.")
        }
        try s.checkSteps(steps)
        // The images are kept on the host as floats, bytes and PNG rows (about 13 bytes per value).
        let per = c.inChannels * c.sampleSize * c.sampleSize
        let host = MemoryLimits.host.totalBytes / 2
        let perImage = per * 13
        if count > host / perImage {
            throw UserError("--num-images \(count): \(count) images of \(c.inChannels)×\(c.sampleSize)×\(c.sampleSize) need about \(formatBytes(count.multipliedClamped(perImage))) of host memory, more than half of this machine's \(formatBytes(MemoryLimits.host.totalBytes)). --num-images \(host / perImage) fits; image i depends only on (--seed, i), so split a larger set across runs with different --out.")
        }
    }

    /// The initial noise x_T from `url` (count×C×H×W, finite).
    static func loadInitialNoise(_ url: URL, count: Int, _ config: UNetConfig) throws -> [Float] {
        let array = try readNPY(url)
        let expected = [count, config.inChannels, config.sampleSize, config.sampleSize]
        guard array.shape == expected else {
            throw UserError("--init-noise \(url.path) has shape \(array.shape); sampling \(count) images needs \(expected).")
        }
        if let bad = array.values.firstIndex(where: { !$0.isFinite }) {
            throw UserError("--init-noise \(url.path) holds \(array.values[bad]) at element \(bad); the initial noise must be finite (draw it with numpy.random.randn).")
        }
        return array.values
    }
}

extension SchedulerSettings {
    /// A run of `n` steps must stay inside the schedule: 1 ≤ n ≤ T, and every timestep the spacing
    /// (with steps_offset) picks must lie in 0…T−1.
    public func checkSteps(_ n: Int) throws {
        let total = schedule.timesteps
        guard (1...total).contains(n) else {
            throw UserError("--steps \(n): the model has \(total) training timesteps, so it takes 1…\(total).")
        }
        if let bad = timesteps(count: n).first(where: { !(0..<total).contains($0) }) {
            throw UserError("--steps \(n) with \(spacing.rawValue) spacing and steps_offset \(stepsOffset) reaches timestep \(bad), outside 0…\(total - 1). Use fewer --steps, another --spacing, or a smaller steps_offset in scheduler_config.json.")
        }
    }
}
