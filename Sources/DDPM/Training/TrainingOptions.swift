import DDPMCore
import Foundation

/// Everything that determines a training run. Stored in the checkpoint so `--resume` continues
/// with the same settings.
public struct TrainingOptions: Codable, Equatable {
    public var model: UNetConfig
    public var data = "fashion-mnist"
    public var horizontalFlip = false
    public var batch = 64
    /// Micro-batches of `batch` images whose gradients are averaged per optimizer step (nil = 1).
    public var gradientAccumulation: Int?
    public var accumulationSteps: Int { max(gradientAccumulation ?? 1, 1) }
    public var learningRate: Float = 5e-4
    public var warmupSteps = 100
    public var weightDecay: Float = 0
    public var gradientClip: Float = 1
    public var emaMaxDecay: Double = 0.9999
    /// diffusers EMAModel warmup: decay = 1 − (1 + step/invGamma)^−power.
    public var emaPower: Double = 2.0 / 3.0
    public var emaInvGamma: Double = 1
    /// Typed: a checkpoint whose metadata names an unknown schedule or prediction is refused on
    /// reading (the JSON holds diffusers' names, e.g. "squaredcos_cap_v2", "v_prediction").
    public var schedule: NoiseSchedule.Kind = .linear
    public var timesteps = 1000
    public var betaStart: Double = 1e-4
    public var betaEnd: Double = 0.02
    public var prediction: Prediction = .epsilon
    /// Rescale β to zero terminal SNR (Lin et al. 2023; diffusers' rescale_betas_zero_snr). nil = off.
    public var zeroTerminalSNR: Bool?
    /// With prediction "sample": "snr" weights each image's x₀-MSE by SNR_t = ᾱ_t/(1−ᾱ_t) (diffusers'
    /// train_unconditional; this equals the ε-MSE, Ho et al.'s L_simple), "none" is the plain x₀-MSE.
    /// New runs default to "snr"; checkpoints written before the option (nil) keep "none".
    public var sampleLossWeighting: String? = SampleLossWeighting.snr.rawValue
    public var seed: UInt64 = 0
    /// Class-conditional training (`--class-conditional`; nil: unconditional): the data's class names
    /// in label order. The model's num_class_embeds is their count + 1; the last row is the null class.
    public var classNames: [String]?
    /// The probability that a label is replaced by the null class (`--cond-drop`, classifier-free
    /// guidance training); nil = 0.
    public var conditionDrop: Float?
    /// After warmup: constant or cosine (LearningRateSchedule). nil in checkpoints before the option: constant.
    public var learningRateSchedule: LearningRateSchedule?
    /// The cosine's end: the step count of a --steps run, or the minutes of a --minutes run (then
    /// cosineSteps is nil and the decay follows the training time). Fixed when the run starts.
    public var cosineSteps: Int?
    public var cosineMinutes: Double?
    /// Loss shaping (TrainingObjective.swift); nil in older checkpoints and when off.
    /// min-SNR-γ weighting (Hang et al. 2023).
    public var snrGamma: Double?
    /// P2 weighting γ (Choi et al. 2022), k = 1.
    public var p2Gamma: Double?
    /// Offset noise strength (diffusers' noise_offset): ε += o·N(0, 1) per image and channel.
    public var offsetNoise: Float?
    /// Improved DDPM's learned variance (out_channels = 2·in_channels, hybrid loss).
    public var learnSigma: Bool?

    public init(model: UNetConfig) { self.model = model }

    public var noiseSchedule: NoiseSchedule {
        NoiseSchedule(kind: schedule, timesteps: timesteps, betaStart: betaStart, betaEnd: betaEnd,
                      rescaleToZeroSNR: zeroTerminalSNR ?? false)
    }
    public var predictionType: Prediction { prediction }

    public enum SampleLossWeighting: String, CaseIterable { case snr, none }

    /// Whether the loss is the SNR-weighted x₀-MSE.
    public var weightsLossBySNR: Bool {
        predictionType == .sample && SampleLossWeighting(rawValue: sampleLossWeighting ?? "none") == .snr
    }

    /// Linear warmup to the base rate, then constant: diffusers' "constant_with_warmup", a torch
    /// LambdaLR with λ(k) = min(1, k / warmup) stepped after each optimizer step, so optimizer step
    /// `step` (counted from 1) runs at λ(step − 1): the first step at rate 0, the full rate from
    /// step warmup + 1 on. For a cosine schedule, see learningRate(step:trainingSeconds:).
    public func learningRate(step: Int) -> Float { learningRate(step: step, trainingSeconds: 0) }

    /// diffusers' EMAModel.get_decay with use_ema_warmup (update_after_step 0, min_decay 0).
    /// In double, as Python computes it.
    public func emaDecay(step: Int) -> Double {
        let s = Double(max(0, step - 1))
        if s <= 0 { return 0 }
        let decay = 1 - pow(1 + s / emaInvGamma, -emaPower)
        return min(decay, emaMaxDecay)
    }

    /// The EMA rate 1 − decay, formed in double and rounded once to float32 (torch multiplies the
    /// float32 tensor by the Python float `one_minus_decay`): 1 − 0.9999 is 1e-4, not 1.000166e-4.
    public func emaRate(step: Int) -> Float { Float(1 - emaDecay(step: step)) }

    public var schedulerSettings: SchedulerSettings {
        var s = SchedulerSettings(schedule: noiseSchedule)
        s.prediction = predictionType
        if learnsVariance { s.variance = .learnedRange }
        return s
    }
}
