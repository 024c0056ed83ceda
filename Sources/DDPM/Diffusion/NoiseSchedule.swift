import DDPMCore
import Foundation

/// The forward process q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I) (Ho et al. 2020, eq. 4), with the
/// β schedules of diffusers' DDPMScheduler. β in float32 as diffusers computes it, ᾱ as torch's cumprod
/// (the fixtures' ᾱ tables are matched to the bit).
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
        /// β geometric from beta_start to beta_end: β_i = start·(end/start)^(i/(T−1)), in double.
        /// diffusers has no such beta_schedule name: pipelines get these betas as `trained_betas`.
        case exponential
        /// β given as a list (diffusers' trained_betas).
        case trained = "trained_betas"
    }

    public let kind: Kind
    public let betaStart: Double
    public let betaEnd: Double
    /// Zero terminal SNR (Lin et al. 2023, Algorithm 1; diffusers' rescale_betas_zero_snr).
    public let rescaledToZeroSNR: Bool
    public let betas: [Float]
    /// β before the zero-SNR rescaling (what a config's trained_betas hold).
    public let baseBetas: [Float]
    public let alphasCumprod: [Float]
    public var timesteps: Int { betas.count }

    public init(kind: Kind, timesteps: Int = 1000, betaStart: Double = 1e-4, betaEnd: Double = 0.02, rescaleToZeroSNR: Bool = false) {
        precondition(timesteps >= 2, "a schedule needs at least 2 timesteps")
        precondition(kind != .trained, "use init(trainedBetas:)")
        let betas: [Float]
        switch kind {
        case .linear:
            betas = Self.linspace(Float(betaStart), Float(betaEnd), timesteps)
        case .quadratic:
            betas = Self.linspace(Float(betaStart.squareRoot()), Float(betaEnd.squareRoot()), timesteps).map { $0 * $0 }
        case .sigmoid:
            let range = Float(betaEnd - betaStart), start = Float(betaStart)
            betas = Self.linspace(-6, 6, timesteps).map { 1 / (1 + expf(-$0)) * range + start }
        case .cosine:
            func alphaBar(_ t: Double) -> Double { pow(cos((t + 0.008) / 1.008 * Double.pi / 2), 2) }
            betas = (0..<timesteps).map { i in
                Float(min(1 - alphaBar(Double(i + 1) / Double(timesteps)) / alphaBar(Double(i) / Double(timesteps)), 0.999))
            }
        case .exponential:
            betas = (0..<timesteps).map { i in Float(betaStart * pow(betaEnd / betaStart, Double(i) / Double(timesteps - 1))) }
        case .trained:
            fatalError("unreachable")
        }
        self.init(kind: kind, betas: betas, betaStart: betaStart, betaEnd: betaEnd, rescaleToZeroSNR: rescaleToZeroSNR)
    }

    /// A schedule from a list of β (diffusers' trained_betas).
    public init(trainedBetas: [Float], rescaleToZeroSNR: Bool = false) {
        precondition(trainedBetas.count >= 2, "a schedule needs at least 2 timesteps")
        self.init(kind: .trained, betas: trainedBetas, betaStart: Double(trainedBetas.first!), betaEnd: Double(trainedBetas.last!),
                  rescaleToZeroSNR: rescaleToZeroSNR)
    }

    private init(kind: Kind, betas: [Float], betaStart: Double, betaEnd: Double, rescaleToZeroSNR: Bool) {
        self.kind = kind
        self.betaStart = betaStart
        self.betaEnd = betaEnd
        self.rescaledToZeroSNR = rescaleToZeroSNR
        baseBetas = betas
        self.betas = rescaleToZeroSNR ? Self.rescaleZeroTerminalSNR(betas) : betas
        alphasCumprod = Self.cumulativeProduct(self.betas)
    }

    /// ᾱ_t = Π_{s≤t} (1 − β_s) as torch.cumprod on float32 computes it: 1 − β in float32, the running
    /// product accumulated in double, each partial product rounded to float32 once.
    static func cumulativeProduct(_ betas: [Float]) -> [Float] {
        var product = 1.0
        return betas.map { product *= Double(1 - $0); return Float(product) }
    }

    /// diffusers' rescale_zero_terminal_snr, operation for operation in float32: √ᾱ shifted so that
    /// √ᾱ_T = 0 and scaled so that √ᾱ_0 is unchanged, then β recovered from the new ᾱ.
    static func rescaleZeroTerminalSNR(_ betas: [Float]) -> [Float] {
        var root = cumulativeProduct(betas).map { $0.squareRoot() }
        let first = root[0], last = root[root.count - 1]
        let factor = first / (first - last)
        root = root.map { ($0 - last) * factor }
        let alphaBar = root.map { $0 * $0 }
        let alphas = [alphaBar[0]] + (1..<alphaBar.count).map { alphaBar[$0] / alphaBar[$0 - 1] }
        return alphas.map { 1 - $0 }
    }

    /// torch.linspace in float32 as its CPU kernel computes it: start + step·i for the first half,
    /// end − step·(n−1−i) after, each a fused multiply-add (the fixtures' ᾱ match only with FMA).
    static func linspace(_ start: Float, _ end: Float, _ n: Int) -> [Float] {
        let step = (end - start) / Float(n - 1)
        return (0..<n).map { i in
            i < n / 2 ? start.addingProduct(step, Float(i)) : end.addingProduct(-step, Float(n - 1 - i))
        }
    }

    /// [√ᾱ_0 … √ᾱ_{T−1}, √(1−ᾱ_0) … √(1−ᾱ_{T−1}), SNR_0 … SNR_{T−1}], the [3, T] table q_sample reads on
    /// the device; SNR_t = ᾱ_t / (1 − ᾱ_t) in float32 as diffusers' train_unconditional computes it.
    public var qSampleTable: [Float] {
        alphasCumprod.map { $0.squareRoot() } + alphasCumprod.map { (1 - $0).squareRoot() } + alphasCumprod.map { $0 / (1 - $0) }
    }

    /// Reads diffusers' scheduler_config.json fields (beta_schedule, beta_start, beta_end,
    /// num_train_timesteps, trained_betas, rescale_betas_zero_snr).
    public init(schedulerConfig c: [String: Any], source: String) throws {
        try SchedulerConfigCheck.validateSchedule(c, source: source)
        let rescale = c["rescale_betas_zero_snr"] as? Bool ?? false
        if let trained = c["trained_betas"], !(trained is NSNull) {
            guard let list = trained as? [NSNumber], list.count >= 2 else {
                throw UserError("\(source): trained_betas must be a list of at least 2 numbers.")
            }
            let betas = list.map(\.floatValue)
            guard betas.allSatisfy({ $0 > 0 && $0 < 1 }) else { throw UserError("\(source): trained_betas must lie in (0, 1).") }
            if let n = c["num_train_timesteps"] as? Int, n != betas.count {
                throw UserError("\(source): trained_betas has \(betas.count) entries but num_train_timesteps is \(n).")
            }
            self.init(trainedBetas: betas, rescaleToZeroSNR: rescale)
            return
        }
        let name = c["beta_schedule"] as? String ?? "linear"
        let names = Kind.allCases.filter { $0 != .trained && $0 != .exponential }.map(\.rawValue)
        guard let kind = Kind(rawValue: name), kind != .trained else {
            throw UserError("\(source): unknown beta_schedule \"\(name)\"; supported: \(names.joined(separator: ", ")), or trained_betas.")
        }
        let start = (c["beta_start"] as? NSNumber)?.doubleValue ?? 1e-4
        let end = (c["beta_end"] as? NSNumber)?.doubleValue ?? 0.02
        let timesteps = (c["num_train_timesteps"] as? Int) ?? 1000
        guard timesteps >= 2 else { throw UserError("\(source): num_train_timesteps must be at least 2.") }
        self.init(kind: kind, timesteps: timesteps, betaStart: start, betaEnd: end, rescaleToZeroSNR: rescale)
    }

    /// The scheduler_config.json keys that describe this schedule. Schedules diffusers cannot name
    /// (exponential, trained) are written as trained_betas.
    public var configEntries: [String: Any] {
        var entries: [String: Any] = ["num_train_timesteps": timesteps, "beta_start": betaStart, "beta_end": betaEnd,
                                      "rescale_betas_zero_snr": rescaledToZeroSNR, "trained_betas": NSNull()]
        switch kind {
        case .exponential, .trained:
            // Unrescaled β: diffusers applies rescale_betas_zero_snr to trained_betas too.
            entries["beta_schedule"] = Kind.linear.rawValue
            entries["trained_betas"] = baseBetas.map(Double.init)
        default:
            entries["beta_schedule"] = kind.rawValue
        }
        return entries
    }
}
