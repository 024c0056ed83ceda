import DDPMCore
import Foundation

/// How a σ-based scheduler (DPM-Solver++, UniPC, Euler, Heun) places its n noise levels: at the
/// spacing's timesteps (σ read from the table), on Karras et al.'s (2022) ρ = 7 ramp, or equally
/// spaced in log σ: diffusers' use_karras_sigmas and use_exponential_sigmas.
public enum SigmaRamp: String, CaseIterable, Equatable, Sendable {
    case timesteps, karras, exponential

    /// From a scheduler_config.json's use_karras_sigmas / use_exponential_sigmas. use_beta_sigmas,
    /// two at once, and sigma_min/sigma_max overrides are refused with what to set.
    public init(json: [String: Any], source: String) throws {
        func on(_ key: String) -> Bool { json[key] as? Bool == true }
        if on("use_beta_sigmas") {
            throw UserError("\(source): use_beta_sigmas is not supported; set it to false (use_karras_sigmas and use_exponential_sigmas are).")
        }
        if on("use_karras_sigmas") && on("use_exponential_sigmas") {
            throw UserError("\(source): use_karras_sigmas and use_exponential_sigmas are both true; diffusers allows one of them. Set the other to false.")
        }
        for key in ["sigma_min", "sigma_max"] where !(json[key] == nil || json[key] is NSNull) {
            throw UserError("\(source): \(key) \(json[key]!) is not supported; set it to null (the ramp then runs between the schedule's own σ_min and σ_max).")
        }
        self = on("use_karras_sigmas") ? .karras : on("use_exponential_sigmas") ? .exponential : .timesteps
    }

    /// n levels from `hi` down to `lo` in float64, as diffusers' _convert_to_karras / _convert_to_exponential.
    func sigmas(from hi: Double, to lo: Double, count n: Int) -> [Double] {
        switch self {
        case .timesteps: preconditionFailure("the timestep spacing reads σ from the table")
        case .karras: return Spacings.karrasSigmas(from: hi, to: lo, count: n)
        case .exponential: return Spacings.exponentialSigmas(from: hi, to: lo, count: n)
        }
    }
}
