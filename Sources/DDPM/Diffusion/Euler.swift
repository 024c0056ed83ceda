import DDPMCore
import Foundation

/// diffusers' EulerDiscreteScheduler (Karras et al. 2022, Algorithm 2 without churn): Euler steps of
/// the probability-flow ODE in σ, d = (x_σ − x̂0)/σ, x_σ' = x_σ + (σ' − σ)·d, with x_σ = √(σ²+1)·x.
/// ddpm-cl keeps x = x_σ/√(σ²+1) (what the model is fed, so x_T is the same N(0, I) draw), which
/// makes each step x' = cx·x + c·x̂0: the same samplerStep + solverUpdate ops as DPM-Solver++.
public struct EulerSettings: Equatable {
    /// Karras or exponential σ between the spacing's first and last σ (use_karras_sigmas, use_exponential_sigmas).
    public var ramp: SigmaRamp = .timesteps
    public var finalSigmas: DPMSolverSettings.FinalSigmas = .zero
    /// Euler ancestral (diffusers' EulerAncestralDiscreteScheduler): step to σ_down, add σ_up·z with
    /// Philox noise by (seed, image, step = t).
    public var ancestral = false
    public init(ancestral: Bool = false, ramp: SigmaRamp = .timesteps) { self.ancestral = ancestral; self.ramp = ramp }

    /// From an EulerDiscreteScheduler or EulerAncestralDiscreteScheduler scheduler_config.json;
    /// unsupported options are refused.
    public init(json: [String: Any], source: String) throws {
        func refuse(_ what: String) -> UserError { UserError("\(source): \(what)") }
        ancestral = json["_class_name"] as? String == "EulerAncestralDiscreteScheduler"
        // EulerAncestralDiscreteScheduler has no Karras or exponential σ.
        ramp = ancestral ? .timesteps : try SigmaRamp(json: json, source: source)
        let final = json["final_sigmas_type"] as? String ?? "zero"
        guard let finalSigmas = DPMSolverSettings.FinalSigmas(rawValue: final) else {
            throw refuse("final_sigmas_type \"\(final)\" is not supported; use zero or sigma_min.")
        }
        self.finalSigmas = finalSigmas
        if let type = json["interpolation_type"] as? String, type != "linear" {
            throw refuse("interpolation_type \"\(type)\" is not supported; use linear.")
        }
        if let type = json["timestep_type"] as? String, type != "discrete" {
            throw refuse("timestep_type \"\(type)\" is not supported; use discrete.")
        }
    }
}

extension SchedulerSettings {
    /// EulerDiscreteScheduler.set_timesteps(n): float timesteps (linspace is not rounded), σ by
    /// linear interpolation of the σ table (np.interp), or Karras/exponential σ between the run's ends
    /// with fractional timesteps from log σ (float32, as diffusers stores them).
    public func eulerTimesteps(count n: Int, euler: EulerSettings) -> (timesteps: [Double], sigmas: [Double]) {
        let total = schedule.timesteps
        let table = dpmSigmas
        var ts: [Double]
        switch spacing {
        case .linspace:
            ts = Spacings.linspace(0, Double(total - 1), n).reversed().map { Double(Float($0)) }
        case .leading:
            let ratio = total / n
            ts = (0..<n).reversed().map { Double($0 * ratio + stepsOffset) }
        case .trailing:
            ts = Spacings.arange(Double(total), 0, -Double(total) / Double(n)).prefix(n).map { Double(Spacings.roundHalfEven($0) - 1) }
        }
        // np.interp: slope·(x − x_j) + y_j on the bracketing integers, y_j itself at an integer.
        var sigmas = ts.map { t -> Double in
            let j = min(max(Int(t.rounded(.down)), 0), total - 1)
            if Double(j) == t || j == total - 1 { return Double(table[j]) }
            let slope = (Double(table[j + 1]) - Double(table[j])) / 1
            return slope * (t - Double(j)) + Double(table[j])
        }
        if euler.ramp != .timesteps {
            sigmas = euler.ramp.sigmas(from: sigmas.first!, to: sigmas.last!, count: n)
            ts = sigmas.map { Double(Float(Spacings.timestep(ofSigma: $0, in: table))) }
        }
        let last = euler.finalSigmas == .zero ? 0 : Double(table[0])
        return (ts, (sigmas + [last]).map { Double(Float($0)) })
    }

    /// The steps of an n-step Euler run, as EulerDiscreteScheduler.step computes them (s_churn 0).
    public func eulerSteps(count n: Int, euler: EulerSettings) -> [SolverStep] {
        let (ts, sigmas) = eulerTimesteps(count: n, euler: euler)
        return ts.indices.map { i in
            sigmaSpaceStep(t: ts[i], sigma: sigmas[i], next: sigmas[i + 1], ancestral: euler.ancestral)
        }
    }

    /// x̂0 = kx·x + km·m at noise level σ, for the model's input x = x_σ/√(σ²+1).
    func sigmaSpacePrediction(_ sigma: Double) -> (kx: Double, km: Double) {
        let s = (sigma * sigma + 1).squareRoot()
        switch prediction {
        case .epsilon: return (s, -sigma)          // x̂0 = x_σ − σ·m
        case .sample: return (0, 1)
        case .v: return (1 / s, -sigma / s)        // x̂0 = m·(−σ/s) + x_σ/s²
        }
    }

    /// One Euler step from σ to σ' in the model-input scale (also Heun's first-order half).
    func sigmaSpaceStep(t: Double, sigma: Double, next: Double, ancestral: Bool = false) -> SolverStep {
        let (s, sNext) = ((sigma * sigma + 1).squareRoot(), (next * next + 1).squareRoot())
        let (kx, km) = sigmaSpacePrediction(sigma)
        // x_σ' = (σ_d/σ)·x_σ − ((σ_d − σ)/σ)·x̂0 (+ σ_up·z), divided by √(σ'²+1); σ_d = σ' unless ancestral.
        var down = next, up = 0.0
        if ancestral {
            up = (next * next * (sigma * sigma - next * next) / (sigma * sigma)).squareRoot()
            down = (next * next - up * up).squareRoot()
        }
        return SolverStep(t: Int(t.rounded()), kx: kx, km: km, cx: down * s / (sigma * sNext),
                          c: [-(down - sigma) / (sigma * sNext)], noise: up / sNext, modelTimestep: t)
    }
}
