import DDPMCore
import Foundation

/// What `ddpm-cl sample` was asked for, checked against the loaded model before anything is
/// allocated: the step count against the schedule, the variance against the model's channels,
/// η, the initial noise file and the memory the images take.
public struct SampleRequest {
    public var count: Int
    public var deviceBatch: Int
    public var sampler: SamplerKind
    public var steps: Int?
    public var initialNoise: URL?

    public init(count: Int, deviceBatch: Int, sampler: SamplerKind, steps: Int?, initialNoise: URL?) {
        self.count = count; self.deviceBatch = deviceBatch; self.sampler = sampler; self.steps = steps; self.initialNoise = initialNoise
    }

    /// The step count: given, or all T for DDPM, 50 for DDIM and 20 for the fast solvers (at most T).
    public func stepCount(_ settings: SchedulerSettings) -> Int {
        steps ?? sampler.defaultSteps(timesteps: settings.schedule.timesteps)
    }

    /// Refuses what cannot be sampled, naming the flag or the scheduler key at fault.
    public func validate(_ pipeline: LoadedPipeline) throws {
        if count < 1 { throw UserError("--batch \(count): it takes a whole number of images ≥ 1.") }
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
        try s.checkSteps(stepCount(s))
        // The images are kept on the host as floats, bytes and PNG rows (about 13 bytes per value).
        let per = c.inChannels * c.sampleSize * c.sampleSize
        let host = MemoryLimits.host.totalBytes / 2
        let perImage = per * 13
        if count > host / perImage {
            throw UserError("--batch \(count): \(count) images of \(c.inChannels)×\(c.sampleSize)×\(c.sampleSize) need about \(formatBytes(count.multipliedClamped(perImage))) of host memory, more than half of this machine's \(formatBytes(MemoryLimits.host.totalBytes)). --batch \(host / perImage) fits; image i depends only on (--seed, i), so split a larger set across runs with different --out.")
        }
    }

    /// The initial noise x_T from `initialNoise` (N×C×H×W, finite), or nil when none was given.
    public func loadInitialNoise(_ config: UNetConfig) throws -> [Float]? {
        guard let url = initialNoise else { return nil }
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
