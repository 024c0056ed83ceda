import DDPMCore
import Foundation

/// How the learning rate moves after the linear warmup (`train --lr-schedule`).
public enum LearningRateSchedule: String, Codable, CaseIterable, Sendable {
    /// The base rate after warmup: diffusers' "constant_with_warmup".
    case constant
    /// Half a cosine from the base rate down to 0 at the end of the run. Driven by steps (diffusers'
    /// get_cosine_schedule_with_warmup with num_training_steps = --steps) or, for a --minutes run, by
    /// the training time spent (see TrainingOptions.learningRate(step:trainingSeconds:)).
    case cosine
}

extension TrainingOptions {
    /// The schedule in effect; checkpoints written before the option (nil) are constant.
    public var lrSchedule: LearningRateSchedule { learningRateSchedule ?? .constant }

    /// Whether the cosine decays by wall-clock time (a --minutes run) rather than by steps.
    public var learningRateFollowsTime: Bool { lrSchedule == .cosine && cosineSteps == nil }

    /// The rate of optimizer step `step` (counted from 1). With `trainingSeconds`, the training time
    /// spent before this step (all sessions of the run together; the checkpoint stores it).
    ///
    /// - constant: base · λ_w, λ_w = min(1, (step − 1)/warmup) (torch's LambdaLR stepped after each
    ///   step, so the first step runs at 0).
    /// - cosine by steps (cosineSteps = S): diffusers' get_cosine_schedule_with_warmup at k = step − 1:
    ///   k/W during warmup, then max(0, ½(1 + cos(π·(k − W)/(S − W)))). In double, as Python.
    /// - cosine by time (cosineMinutes = M, no step count): base · λ_w · ½(1 + cos(π·min(1, τ/60M))),
    ///   τ = `trainingSeconds`. It reaches 0 when the budget is spent; a run that is stopped and
    ///   resumed continues from the stored τ, but which rate a given step gets depends on the speed of
    ///   the machine, so two runs of the same seed differ.
    public func learningRate(step: Int, trainingSeconds: Double) -> Float {
        let k = Double(step - 1), w = Double(warmupSteps)
        let warm = warmupSteps > 0 ? min(1, k / w) : 1
        switch lrSchedule {
        case .constant:
            return warmupSteps > 0 ? Float(Double(learningRate) * warm) : learningRate
        case .cosine:
            if let total = cosineSteps {
                if k < w { return Float(Double(learningRate) * k / max(1, w)) }
                let progress = (k - w) / max(1, Double(total) - w)
                return Float(Double(learningRate) * max(0, 0.5 * (1 + cos(Double.pi * progress))))
            }
            let horizon = (cosineMinutes ?? 0) * 60
            let progress = horizon > 0 ? min(1, max(0, trainingSeconds) / horizon) : 1
            return Float(Double(learningRate) * warm * 0.5 * (1 + cos(Double.pi * progress)))
        }
    }

    /// A resumed run whose cosine has already reached 0 (or would pass its end) is refused: it
    /// would train at rate 0. `targetStep` is the session's --steps (nil for a --minutes session).
    public func checkCosineHorizon(resumingAt step: Int, trainingSeconds: Double, targetStep: Int?) throws {
        guard lrSchedule == .cosine else { return }
        if let total = cosineSteps {
            if let target = targetStep, target > total {
                throw UserError("--steps \(target): this run's cosine learning-rate schedule ends at step \(total) (the --steps it was started with); continue it with --steps \(total) at most, or start a new run.")
            }
            if targetStep == nil && step >= total {
                throw UserError("this run's cosine learning-rate schedule ended at step \(total); the learning rate is 0 from there. Start a new run (or a constant --lr-schedule) to train further.")
            }
        } else if let minutes = cosineMinutes, trainingSeconds >= minutes * 60 {
            throw UserError("this run's time-driven cosine learning-rate schedule has spent its \(minutes) minutes (\(String(format: "%.1f", trainingSeconds / 60)) min trained); the learning rate is 0 from there. Start a new run to train further.")
        }
    }
}
