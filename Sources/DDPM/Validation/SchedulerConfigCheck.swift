import DDPMCore
import Foundation

/// Checks a diffusers scheduler_config.json before anything reads it: every key ddpm-cl uses has
/// the right type and range, and the values agree with each other. Unknown keys are ignored (the
/// config may carry keys of newer diffusers versions that do not change DDPM/DDIM sampling).
public enum SchedulerConfigCheck {
    public static let supportedClasses = ["DDPMScheduler", "DDIMScheduler", "DPMSolverMultistepScheduler", "UniPCMultistepScheduler",
                                          "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler", "HeunDiscreteScheduler"]
    /// Far above any published model (1000 or 4000); a bound so a typo cannot allocate gigabytes.
    public static let maxTrainTimesteps = 100_000

    /// The β schedule's keys: num_train_timesteps, beta_schedule, beta_start, beta_end.
    public static func validateSchedule(_ json: [String: Any], source: String) throws {
        let f = JSONFields(json, source: source)
        let t = try f.int("num_train_timesteps", in: 2...maxTrainTimesteps) ?? 1000
        _ = t
        let kind = try f.choice("beta_schedule", NoiseSchedule.Kind.self) ?? .linear
        let start = try f.number("beta_start", allowed: "a number in (0, 1)") { $0 > 0 && $0 < 1 } ?? 1e-4
        let end = try f.number("beta_end", allowed: "a number in (0, 1)") { $0 > 0 && $0 < 1 } ?? 0.02
        if kind != .cosine && !(Float(start) < Float(end)) {
            throw UserError("\(source): beta_start \(start) must be smaller than beta_end \(end) (β grows over the forward process); the usual values are 0.0001 and 0.02.")
        }
    }

    /// Every key that SchedulerSettings reads, and the class name.
    public static func validateSettings(_ json: [String: Any], source: String) throws {
        let f = JSONFields(json, source: source)
        guard let name = try f.string("_class_name") else {
            throw UserError("\(source) has no \"_class_name\"; ddpm-cl reads \(supportedClasses.joined(separator: " and ")) configs. Add \"_class_name\": \"DDPMScheduler\" if this is one.")
        }
        guard supportedClasses.contains(name) else {
            throw UserError("\(source): \"_class_name\" is \"\(name)\", which ddpm-cl does not implement; it samples \(supportedClasses.joined(separator: ", ")) configs. Set _class_name to one of them (the betas are read the same way) and choose the solver with --sampler ddpm|ddim|dpm++2m|dpm++3m|dpm++2m-sde|unipc|euler|euler-a|heun.")
        }
        try validateSchedule(json, source: source)
        let total = try f.int("num_train_timesteps", in: 2...maxTrainTimesteps) ?? 1000
        _ = try f.choice("prediction_type", Prediction.self)
        _ = try f.oneOf("variance_type", ["fixed_small", "fixed_large", "learned_range"])
        _ = try f.oneOf("timestep_spacing", SchedulerSettings.Spacing.allCases.map(\.rawValue))
        for key in ["clip_sample", "thresholding", "set_alpha_to_one", "rescale_betas_zero_snr"] { _ = try f.bool(key) }
        _ = try f.number("clip_sample_range", allowed: "a positive number") { $0 > 0 }
        _ = try f.number("dynamic_thresholding_ratio", allowed: "a quantile in (0, 1)") { $0 > 0 && $0 < 1 }
        _ = try f.number("sample_max_value", allowed: "a positive number") { $0 > 0 }
        _ = try f.int("steps_offset", in: 0...(total - 1))
    }
}
