import DDPMCore
import Foundation

/// The forward process q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I) (Ho et al. 2020, eq. 4), with the
/// β schedules of diffusers' DDPMScheduler. Computed in float32 as diffusers does.
public struct NoiseSchedule: Equatable {
    public enum Kind: String, CaseIterable, Codable {
        /// Ho et al.: β linear from beta_start to beta_end (diffusers "linear").
        case linear
        /// Nichol & Dhariwal's cosine ᾱ with β capped at 0.999 (diffusers "squaredcos_cap_v2").
        case cosine = "squaredcos_cap_v2"
        /// β = (linspace(√start, √end))² (diffusers "scaled_linear"; "quadratic" on the CLI).
        case quadratic = "scaled_linear"
        /// β = sigmoid(linspace(−6, 6)) · (end − start) + start (diffusers "sigmoid").
        case sigmoid
    }

    public let kind: Kind
    public let betaStart: Float
    public let betaEnd: Float
    public let betas: [Float]
    public let alphasCumprod: [Float]
    public var timesteps: Int { betas.count }

    public init(kind: Kind, timesteps: Int = 1000, betaStart: Float = 1e-4, betaEnd: Float = 0.02) {
        precondition(timesteps >= 2, "a schedule needs at least 2 timesteps")
        self.kind = kind
        self.betaStart = betaStart
        self.betaEnd = betaEnd
        switch kind {
        case .linear:
            betas = Self.linspace(betaStart, betaEnd, timesteps)
        case .quadratic:
            betas = Self.linspace(betaStart.squareRoot(), betaEnd.squareRoot(), timesteps).map { $0 * $0 }
        case .sigmoid:
            betas = Self.linspace(-6, 6, timesteps).map { 1 / (1 + expf(-$0)) * (betaEnd - betaStart) + betaStart }
        case .cosine:
            func alphaBar(_ t: Double) -> Double { pow(cos((t + 0.008) / 1.008 * Double.pi / 2), 2) }
            betas = (0..<timesteps).map { i in
                Float(min(1 - alphaBar(Double(i + 1) / Double(timesteps)) / alphaBar(Double(i) / Double(timesteps)), 0.999))
            }
        }
        var product: Float = 1
        alphasCumprod = betas.map { product *= (1 - $0); return product }
    }

    /// torch.linspace in float32: start + i·step for the first half, end − (n−1−i)·step after.
    static func linspace(_ start: Float, _ end: Float, _ n: Int) -> [Float] {
        let step = (end - start) / Float(n - 1)
        return (0..<n).map { i in i < n / 2 ? start + step * Float(i) : end - step * Float(n - 1 - i) }
    }

    /// [√ᾱ_0 … √ᾱ_{T−1}, √(1−ᾱ_0) … √(1−ᾱ_{T−1})], the table q_sample reads on the device.
    public var qSampleTable: [Float] {
        alphasCumprod.map { $0.squareRoot() } + alphasCumprod.map { (1 - $0).squareRoot() }
    }

    /// Reads diffusers' scheduler_config.json fields (beta_schedule, beta_start, beta_end,
    /// num_train_timesteps); trained_betas are refused.
    public init(schedulerConfig c: [String: Any], source: String) throws {
        try SchedulerConfigCheck.validateSchedule(c, source: source)
        if let trained = c["trained_betas"], !(trained is NSNull) {
            throw UserError("\(source): trained_betas are not supported; use beta_schedule linear, scaled_linear, squaredcos_cap_v2 or sigmoid.")
        }
        let name = c["beta_schedule"] as? String ?? "linear"
        guard let kind = Kind(rawValue: name) else {
            throw UserError("\(source): unknown beta_schedule \"\(name)\"; supported: \(Kind.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        let start = (c["beta_start"] as? NSNumber)?.floatValue ?? 1e-4
        let end = (c["beta_end"] as? NSNumber)?.floatValue ?? 0.02
        self.init(kind: kind, timesteps: (c["num_train_timesteps"] as? Int) ?? 1000, betaStart: start, betaEnd: end)
    }
}
