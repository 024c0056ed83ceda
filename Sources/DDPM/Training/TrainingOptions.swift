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
    public var emaMaxDecay: Float = 0.9999
    /// diffusers EMAModel warmup: decay = 1 − (1 + step/invGamma)^−power.
    public var emaPower: Float = 2.0 / 3.0
    public var emaInvGamma: Float = 1
    /// Typed: a checkpoint whose metadata names an unknown schedule or prediction is refused on
    /// reading (the JSON holds diffusers' names, e.g. "squaredcos_cap_v2", "v_prediction").
    public var schedule: NoiseSchedule.Kind = .linear
    public var timesteps = 1000
    public var betaStart: Float = 1e-4
    public var betaEnd: Float = 0.02
    public var prediction: Prediction = .epsilon
    public var seed: UInt64 = 0

    public init(model: UNetConfig) { self.model = model }

    public var noiseSchedule: NoiseSchedule {
        NoiseSchedule(kind: schedule, timesteps: timesteps, betaStart: betaStart, betaEnd: betaEnd)
    }
    public var predictionType: Prediction { prediction }

    /// Linear warmup to the base rate, then constant (diffusers' "constant_with_warmup").
    public func learningRate(step: Int) -> Float {
        warmupSteps > 0 ? learningRate * min(1, Float(step) / Float(warmupSteps)) : learningRate
    }

    /// diffusers' EMAModel.get_decay with use_ema_warmup (update_after_step 0, min_decay 0).
    public func emaDecay(step: Int) -> Float {
        let s = Double(max(0, step - 1))
        if s <= 0 { return 0 }
        let decay = 1 - pow(1 + s / Double(emaInvGamma), -Double(emaPower))
        return Float(min(decay, Double(emaMaxDecay)))
    }

    public var schedulerSettings: SchedulerSettings {
        var s = SchedulerSettings(schedule: noiseSchedule)
        s.prediction = predictionType
        return s
    }
}
