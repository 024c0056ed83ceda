import DDPMCore
import Foundation

/// The reverse-process settings of diffusers' DDPMScheduler/DDIMScheduler (scheduler_config.json).
public struct SchedulerSettings: Equatable {
    /// σ² = β̃ (fixed_small), β (fixed_large), or learned: the model's second half of channels
    /// interpolates log σ² between log β̃ and log β (Improved DDPM, diffusers learned_range).
    public enum Variance: String { case fixedSmall = "fixed_small", fixedLarge = "fixed_large", learnedRange = "learned_range" }
    public enum Spacing: String, CaseIterable { case leading, trailing, linspace }

    public var schedule: NoiseSchedule
    public var prediction: Prediction = .epsilon
    public var variance: Variance = .fixedSmall
    public var clipSample = true
    public var clipSampleRange: Float = 1
    public var spacing: Spacing = .leading
    public var stepsOffset = 0
    public var setAlphaToOne = true
    /// Dynamic thresholding of x̂0 (replaces clipping when on), diffusers' thresholding settings.
    public var thresholding = false
    public var dynamicThresholdingRatio: Float = 0.995
    public var sampleMaxValue: Float = 1

    public init(schedule: NoiseSchedule) { self.schedule = schedule }

    /// From a diffusers scheduler_config.json (DDPMScheduler or DDIMScheduler).
    public init(json: [String: Any], source: String) throws {
        try SchedulerConfigCheck.validateSettings(json, source: source)
        schedule = try NoiseSchedule(schedulerConfig: json, source: source)
        if let p = json["prediction_type"] as? String {
            guard let value = Prediction(rawValue: p) else { throw UserError("\(source): unknown prediction_type \"\(p)\" (epsilon, sample or v_prediction).") }
            prediction = value
        }
        if let v = json["variance_type"] as? String {
            guard let value = Variance(rawValue: v) else {
                throw UserError("\(source): variance_type \"\(v)\" is not supported (fixed_small, fixed_large or learned_range).")
            }
            variance = value
        }
        thresholding = json["thresholding"] as? Bool ?? false
        dynamicThresholdingRatio = (json["dynamic_thresholding_ratio"] as? NSNumber)?.floatValue ?? 0.995
        sampleMaxValue = (json["sample_max_value"] as? NSNumber)?.floatValue ?? 1
        clipSample = json["clip_sample"] as? Bool ?? true
        clipSampleRange = (json["clip_sample_range"] as? NSNumber)?.floatValue ?? 1
        if let s = json["timestep_spacing"] as? String {
            guard let value = Spacing(rawValue: s) else { throw UserError("\(source): unknown timestep_spacing \"\(s)\".") }
            spacing = value
        }
        stepsOffset = json["steps_offset"] as? Int ?? 0
        if schedule.rescaledToZeroSNR && prediction == .epsilon {
            throw UserError("\(source): rescale_betas_zero_snr makes ᾱ_T = 0, where an ε-prediction model cannot give x₀ (diffusers divides by zero there). Zero terminal SNR needs prediction_type v_prediction (Lin et al. 2023).")
        }
        setAlphaToOne = json["set_alpha_to_one"] as? Bool ?? true
    }

    /// scheduler_config.json for a DDPMPipeline (diffusers' DDPMScheduler keys).
    public var json: [String: Any] {
        schedule.configEntries.merging(
        ["_class_name": "DDPMScheduler", "_diffusers_version": "0.42.1", "variance_type": variance.rawValue,
         "clip_sample": clipSample, "clip_sample_range": Double(clipSampleRange), "prediction_type": prediction.rawValue,
         "thresholding": thresholding, "dynamic_thresholding_ratio": Double(dynamicThresholdingRatio),
         "sample_max_value": Double(sampleMaxValue),
         "timestep_spacing": spacing.rawValue, "steps_offset": stepsOffset]) { $1 }
    }

    /// The timesteps of an n-step run, as diffusers' set_timesteps(n) (DDPMScheduler, DDIMScheduler),
    /// with numpy's arithmetic reproduced exactly (a test compares every n in 1…1000 with numpy).
    public func timesteps(count n: Int) -> [Int] {
        let total = schedule.timesteps
        precondition(n >= 1 && n <= total, "steps must be in 1…\(total)")
        switch spacing {
        case .linspace:
            return Spacings.linspace(0, Double(total - 1), n).map(Spacings.roundHalfEven).reversed()
        case .leading:
            let ratio = total / n
            return (0..<n).map { $0 * ratio + stepsOffset }.reversed()
        case .trailing:
            // np.round(np.arange(N, 0, −N/n)) − 1. numpy's arange makes n + 1 values for some n (61, 103,
            // 121, … with N = 1000), the extra one rounding to t = −1, which diffusers then evaluates as
            // t = −1 (ᾱ[−1] is the last entry in Python). n steps were asked for: keep the first n.
            let values = Spacings.arange(Double(total), 0, -Double(total) / Double(n))
            return values.prefix(n).map { Spacings.roundHalfEven($0) - 1 }
        }
    }
}

/// A reverse sampler: DDPM ancestral sampling (Ho et al. Algorithm 2), DDIM (Song et al.) or
/// DPM-Solver++ (Lu et al.; diffusers' DPMSolverMultistepScheduler).
public enum SamplerKind: Equatable {
    case ddpm
    case ddim(eta: Float)
    case dpmSolver(DPMSolverSettings)
    case euler(EulerSettings)
    case unipc(UniPCSettings)
    case heun(HeunSettings)
}

extension SchedulerSettings {
    /// The host-computed steps of a multistep or σ-space solver (nil for DDPM and DDIM, which take
    /// reverseSteps); after checking that every σ_t is finite.
    public func solverSteps(_ sampler: SamplerKind, count n: Int) throws -> [SolverStep]? {
        switch sampler {
        case .ddpm, .ddim: return nil
        case .dpmSolver(let solver): try checkDPMSolverSchedule(); return dpmSolverSteps(count: n, solver: solver)
        case .euler(let euler): try checkDPMSolverSchedule(); return eulerSteps(count: n, euler: euler)
        case .unipc(let unipc): try checkDPMSolverSchedule(); return unipcSteps(count: n, unipc: unipc)
        case .heun(let heun): try checkDPMSolverSchedule(); return heunSteps(count: n, heun: heun)
        }
    }
}

/// One step of a sampling run: the model is evaluated at `t`, the op's coefficients map x_t to x_prev.
public struct ReverseStep {
    public let t: Int
    public let previous: Int
    public let op: SamplerStep
}

extension SchedulerSettings {
    /// The steps of a run, coefficients computed in double precision from the float32 ᾱ table.
    public func reverseSteps(_ sampler: SamplerKind, count: Int, seed: UInt64) -> [ReverseStep] {
        switch sampler {
        case .dpmSolver, .euler, .unipc, .heun: preconditionFailure("multistep runs take solverSteps")
        case .ddpm, .ddim: break
        }
        let ts = timesteps(count: count)
        let acp = schedule.alphasCumprod.map(Double.init)
        return ts.enumerated().map { index, t in
            let a = acp[t], b = 1 - a
            // x̂0 = kx·x_t + km·m and ε̂ = ex·x_t + em·m for each prediction type.
            let (kx, km, ex, em): (Double, Double, Double, Double)
            switch prediction {
            case .epsilon: (kx, km, ex, em) = (1 / a.squareRoot(), -(b / a).squareRoot(), 0, 1)
            case .sample: (kx, km, ex, em) = (0, 1, 1 / b.squareRoot(), -(a / b).squareRoot())
            case .v: (kx, km, ex, em) = (a.squareRoot(), -b.squareRoot(), b.squareRoot(), a.squareRoot())
            }
            let clip: Float = clipSample && !thresholding ? clipSampleRange : 0
            var p0 = 0.0, pe = 0.0, px = 0.0, sigma = 0.0
            var minLog = 0.0, maxLog = 0.0
            let previous: Int
            switch sampler {
            case .ddpm:
                previous = index + 1 < ts.count ? ts[index + 1] : -1
                let aPrev = previous >= 0 ? acp[previous] : 1
                let bPrev = 1 - aPrev
                let alpha = a / aPrev, beta = 1 - alpha
                p0 = aPrev.squareRoot() * beta / b
                px = alpha.squareRoot() * bPrev / b
                if t > 0 {
                    switch variance {
                    case .fixedSmall: sigma = max(bPrev / b * beta, 1e-20).squareRoot()
                    case .fixedLarge: sigma = beta.squareRoot()
                    case .learnedRange:
                        sigma = 1   // scaled per element by the model's variance output
                        (minLog, maxLog) = (log(max(bPrev / b * beta, 1e-20)), log(beta))
                    }
                }
            case .dpmSolver, .euler, .unipc, .heun:
                preconditionFailure("unreachable")
            case .ddim(let eta):
                previous = t - schedule.timesteps / count
                let aPrev = previous >= 0 ? acp[previous] : (setAlphaToOne ? 1 : acp[0])
                let variance = (1 - aPrev) / b * (1 - a / aPrev)
                sigma = Double(eta) * variance.squareRoot()
                p0 = aPrev.squareRoot()
                pe = max(1 - aPrev - sigma * sigma, 0).squareRoot()
            }
            let op = SamplerStep(kx: Float(kx), km: Float(km), clip: clip, ex: Float(ex), em: Float(em),
                                 p0: Float(p0), pe: Float(pe), px: Float(px), sigma: Float(sigma), seed: seed, firstImage: 0,
                                 learnedVariance: variance == .learnedRange && sampler == .ddpm,
                                 minLog: Float(minLog), maxLog: Float(maxLog))
            return ReverseStep(t: t, previous: previous, op: op)
        }
    }
}
