import DDPMCore
import Foundation

/// Where a training value came from, so a refusal names what the user typed or the file they gave:
/// a command-line flag (`--ema`) or a key of a checkpoint's stored options (`emaMaxDecay`).
public enum ValueOrigin {
    case flags
    case checkpoint(String)
}

extension TrainingOptions {
    /// The largest T accepted (published models use 1000 or 4000).
    public static let maxTimesteps = SchedulerConfigCheck.maxTrainTimesteps

    /// Checks every option's type-level range and their relations before anything is allocated.
    /// The error names the flag (or the checkpoint and key), the value and what is allowed.
    public func validate(_ origin: ValueOrigin) throws {
        func check(_ ok: Bool, flag: String?, key: String, _ value: Any, _ allowed: String) throws {
            guard !ok else { return }
            switch origin {
            case .flags:
                throw UserError("\(flag ?? key) \(value): \(allowed).")
            case .checkpoint(let file):
                throw UserError("\(file): the training options in its metadata have \(key) = \(value); \(allowed). The checkpoint was edited or damaged: restore it from a backup or start a new run.")
            }
        }
        try check(batch >= 1, flag: "--batch", key: "batch", batch, "it takes a whole number of images ≥ 1")
        try check((gradientAccumulation ?? 1) >= 1 && (gradientAccumulation ?? 1) <= 100_000, flag: "--accumulate", key: "gradientAccumulation",
                  gradientAccumulation ?? 1, "it takes a whole number in 1…100000")
        try check(learningRate.isFinite && learningRate > 0, flag: "--lr", key: "learningRate", learningRate, "it takes a positive finite number, e.g. 5e-4")
        try check(warmupSteps >= 0, flag: "--warmup", key: "warmupSteps", warmupSteps, "it takes a whole number of steps ≥ 0")
        try check(weightDecay.isFinite && weightDecay >= 0, flag: "--weight-decay", key: "weightDecay", weightDecay, "it takes a finite number ≥ 0")
        try check(gradientClip.isFinite && gradientClip >= 0, flag: "--grad-clip", key: "gradientClip", gradientClip, "it takes a finite number ≥ 0 (0 turns clipping off)")
        try check(emaMaxDecay.isFinite && emaMaxDecay >= 0 && emaMaxDecay <= 1, flag: "--ema", key: "emaMaxDecay", emaMaxDecay,
                  "it takes a decay in [0, 1], e.g. 0.9999")
        try check(emaPower.isFinite && emaPower > 0, flag: nil, key: "emaPower", emaPower, "it takes a positive finite number (diffusers: 2/3)")
        try check(emaInvGamma.isFinite && emaInvGamma > 0, flag: nil, key: "emaInvGamma", emaInvGamma, "it takes a positive finite number (diffusers: 1)")
        try check((2...Self.maxTimesteps).contains(timesteps), flag: "--timesteps", key: "timesteps", timesteps,
                  "it takes a whole number in 2…\(Self.maxTimesteps)")
        try check(betaStart.isFinite && betaStart > 0 && betaStart < 1, flag: nil, key: "betaStart", betaStart, "it takes a number in (0, 1)")
        try check(betaEnd.isFinite && betaEnd > 0 && betaEnd < 1, flag: nil, key: "betaEnd", betaEnd, "it takes a number in (0, 1)")
        try check(schedule == .cosine || betaStart < betaEnd, flag: nil, key: "betaEnd", betaEnd, "it must be larger than betaStart \(betaStart)")
        try check(!data.isEmpty, flag: "--data", key: "data", "\"\"", "it takes fashion-mnist or a folder of PNG files")
        try check(zeroTerminalSNR != true || prediction == .v, flag: "--zero-snr", key: "zeroTerminalSNR", "with prediction \(prediction.rawValue)",
                  "zero terminal SNR makes ᾱ_T = 0, where ε or x₀ targets degenerate; pass --prediction v with it (Lin et al. 2023)")
        try check(sampleLossWeighting.map { SampleLossWeighting(rawValue: $0) != nil } ?? true, flag: "--sample-loss-weight",
                  key: "sampleLossWeighting", sampleLossWeighting ?? "", "it takes snr or none")
        let drop = conditionDrop ?? 0
        try check(drop.isFinite && drop >= 0 && drop < 1, flag: "--cond-drop", key: "conditionDrop", drop,
                  "it takes a probability in [0, 1), e.g. 0.1 (classifier-free guidance, Ho & Salimans 2022)")
        try check(drop == 0 || classNames != nil, flag: "--cond-drop", key: "conditionDrop", drop,
                  "it drops class labels, so it needs --class-conditional")
        try check(classNames.map { $0.count >= 2 && model.numClassEmbeds == $0.count + 1 } ?? (model.numClassEmbeds == nil),
                  flag: "--class-conditional", key: "classNames", classNames.map { "\($0.count) classes" } ?? "none",
                  model.numClassEmbeds.map { "the model has num_class_embeds \($0): train it with --class-conditional on data with \($0 - 1) classes (the last row is the null class)" }
                    ?? "a class-conditional run needs at least 2 classes and num_class_embeds = classes + 1")
        if lrSchedule == .cosine {
            try check((cosineSteps == nil) != (cosineMinutes == nil), flag: "--lr-schedule", key: "cosineSteps", "cosine",
                      "a cosine schedule ends either at a step count (--steps) or after a time (--minutes), exactly one of them")
            try check((cosineSteps ?? 1) >= 1, flag: "--steps", key: "cosineSteps", cosineSteps ?? 0, "it takes a whole number of steps ≥ 1")
            try check(cosineMinutes.map { $0.isFinite && $0 > 0 } ?? true, flag: "--minutes", key: "cosineMinutes", cosineMinutes ?? 0,
                      "it takes a positive number of minutes")
        } else {
            try check(cosineSteps == nil && cosineMinutes == nil, flag: "--lr-schedule", key: "cosineSteps", "constant",
                      "a cosine horizon belongs only to --lr-schedule cosine")
        }
        try validateLossOptions(check)
        switch origin {
        case .flags: break
        case .checkpoint(let file): try model.validate(source: "\(file) (the model config in its metadata)")
        }
    }
}

extension SessionSettings {
    /// The session's flags: --steps, --minutes, --log-every, --sample-every, --checkpoint-every.
    public func validate() throws {
        if let steps, steps < 1 { throw UserError("--steps \(steps): it takes a whole number of steps ≥ 1.") }
        if let minutes, !(minutes.isFinite && minutes > 0 && minutes <= 10_000_000) {
            throw UserError("--minutes \(minutes): it takes a positive number of minutes, e.g. 10.")
        }
        if logEvery < 1 { throw UserError("--log-every \(logEvery): it takes a whole number of steps ≥ 1.") }
        if sampleEvery < 0 { throw UserError("--sample-every \(sampleEvery): it takes a whole number of steps ≥ 0 (0: only at the end).") }
        if checkpointEvery < 0 { throw UserError("--checkpoint-every \(checkpointEvery): it takes a whole number of steps ≥ 0 (0: only at the end).") }
    }
}
