import DDPMCore
import Foundation

/// diffusers' DPMSolverMultistepScheduler (Lu et al. 2022, "DPM-Solver++"): the multistep solver of
/// the diffusion ODE (dpmsolver++) or SDE (sde-dpmsolver++) in log-SNR time, solver_type midpoint,
/// orders 1–3 from the last model outputs. Coefficients are computed here in double once per run;
/// each step on the device is x̂0 = convert(model output) (the samplerStep op) followed by one
/// solverUpdate op: x_next = cx·x + Σ_k c_k·x̂0_k (+ σ·z for the SDE).
public struct DPMSolverSettings: Equatable {
    public enum Algorithm: String, CaseIterable { case ode = "dpmsolver++", sde = "sde-dpmsolver++" }
    public enum FinalSigmas: String, CaseIterable { case zero, sigmaMin = "sigma_min" }

    public var algorithm: Algorithm = .ode
    public var order = 2
    public var lowerOrderFinal = true
    public var eulerAtFinal = false
    public var finalSigmas: FinalSigmas = .zero
    public var ramp: SigmaRamp = .timesteps
    /// Karras σ (use_karras_sigmas, `--karras`).
    public var karras: Bool {
        get { ramp == .karras }
        set { ramp = newValue ? .karras : .timesteps }
    }

    public init(algorithm: Algorithm = .ode, order: Int = 2, karras: Bool = false) {
        precondition((1...3).contains(order), "DPM-Solver++ has orders 1, 2 and 3")
        self.algorithm = algorithm; self.order = order; self.ramp = karras ? .karras : .timesteps
    }
}

extension DPMSolverSettings {
    /// From a DPMSolverMultistepScheduler scheduler_config.json. Options ddpm-cl does not implement are
    /// refused with what to set instead.
    public init(json: [String: Any], source: String) throws {
        func refuse(_ what: String) -> UserError { UserError("\(source): \(what)") }
        let name = json["algorithm_type"] as? String ?? "dpmsolver++"
        guard let algorithm = Algorithm(rawValue: name) else {
            throw refuse("algorithm_type \"\(name)\" is not supported; use dpmsolver++ or sde-dpmsolver++ (DPM-Solver++ predicts x₀, which is what diffusers recommends).")
        }
        let order = json["solver_order"] as? Int ?? 2
        guard (1...3).contains(order) else { throw refuse("solver_order \(order) is not supported; use 1, 2 or 3.") }
        if algorithm == .sde && order == 3 { throw refuse("sde-dpmsolver++ has no third-order update in diffusers; use solver_order 2.") }
        self.init(algorithm: algorithm, order: order)
        ramp = try SigmaRamp(json: json, source: source)
        lowerOrderFinal = json["lower_order_final"] as? Bool ?? true
        eulerAtFinal = json["euler_at_final"] as? Bool ?? false
        let final = json["final_sigmas_type"] as? String ?? "zero"
        guard let finalSigmas = FinalSigmas(rawValue: final) else { throw refuse("final_sigmas_type \"\(final)\" is not supported; use zero or sigma_min.") }
        self.finalSigmas = finalSigmas
        if let type = json["solver_type"] as? String, type != "midpoint" {
            throw refuse("solver_type \"\(type)\" is not supported; use midpoint.")
        }
        for key in ["use_lu_lambdas", "use_flow_sigmas", "use_dynamic_shifting"] where json[key] as? Bool == true {
            throw refuse("\(key) is not supported; set it to false (use_karras_sigmas and use_exponential_sigmas are supported).")
        }
        if let clipped = (json["lambda_min_clipped"] as? NSNumber)?.doubleValue, clipped != -.infinity {
            throw refuse("lambda_min_clipped \(clipped) is not supported; use -Infinity (no clipping).")
        }
        if let v = json["variance_type"] as? String, v != "learned_range", v != "learned" {
            throw refuse("variance_type \"\(v)\" is not supported; use null (or learned_range for models that output a variance, which DPM-Solver++ ignores).")
        }
        if let p = json["prediction_type"] as? String, p == "flow_prediction" {
            throw refuse("prediction_type flow_prediction is not supported; use epsilon, sample or v_prediction.")
        }
    }
}

/// One solver step: the model runs at `t`; its prediction d = kx·x + km·m (x̂0, or ε̂ for UniPC with
/// predict_x0 false; clamped to ±clip when clip > 0) goes into the history; then
/// x_next = cx·x + Σ c[k]·d of the k-th newest step (c[0] this step's) + noise·z.
public struct SolverStep: Equatable {
    public var t: Int
    public var kx: Double, km: Double
    public var cx: Double
    public var c: [Double]
    public var noise: Double
    /// The timestep the model sees (Euler's linspace timesteps are not integers); `t` is its rounding.
    public var modelTimestep: Double
    public var clip: Double = 0
    /// UniPC's corrector: before the update, x := corrector.cx·x_prev + Σ corrector.c[k]·d_k, where
    /// x_prev is the previous step's (corrected) input and d_0 this step's prediction.
    public var corrector: SolverCombination?

    public init(t: Int, kx: Double, km: Double, cx: Double, c: [Double], noise: Double, modelTimestep: Double? = nil) {
        self.t = t; self.kx = kx; self.km = km; self.cx = cx; self.c = c; self.noise = noise
        self.modelTimestep = modelTimestep ?? Double(t)
    }

    /// History slots the step reads (this step's prediction and the older ones).
    var terms: Int { max(c.count, corrector?.c.count ?? 0) }
}

/// cx·x + Σ c[k]·(k-th newest prediction).
public struct SolverCombination: Equatable {
    public var cx: Double
    public var c: [Double]
}

extension SchedulerSettings {
    /// σ_t = √((1 − ᾱ_t)/ᾱ_t) in float32, as diffusers computes it from the float32 ᾱ table (with
    /// zero terminal SNR diffusers sets ᾱ_T = 2⁻²⁴ first, so that σ_T is finite).
    var dpmSigmas: [Float] {
        var acp = schedule.alphasCumprod
        if schedule.rescaledToZeroSNR { acp[acp.count - 1] = 0x1p-24 }
        return acp.map { ((1 - $0) / $0).squareRoot() }
    }

    /// Throws when some σ_t is infinite (ᾱ_t rounds to 0: β too large for float32).
    public func checkDPMSolverSchedule() throws {
        guard dpmSigmas.allSatisfy(\.isFinite) else {
            throw UserError("this schedule's ᾱ_t reaches 0 in float32 (β up to \(schedule.betas.max()!) over \(schedule.timesteps) steps), so σ_t = √((1−ᾱ)/ᾱ) is infinite and DPM-Solver++ cannot run; use --sampler ddpm or ddim.")
        }
    }

    /// DPMSolverMultistepScheduler.set_timesteps(n) (lambda_min_clipped −∞: the last timestep is N):
    /// n + 1 points in the chosen spacing with the last dropped, or Karras/exponential sigmas mapped
    /// back to t. Returns the timesteps and the n + 1 sigmas (the last the final sigma).
    func dpmTimesteps(count n: Int, solver: DPMSolverSettings) -> (timesteps: [Int], sigmas: [Double]) {
        // diffusers rounds Karras timesteps except with the cosine schedule (then int64 truncates).
        multistepTimesteps(count: n, ramp: solver.ramp, finalSigmas: solver.finalSigmas,
                           roundKarras: schedule.kind != .cosine, finalFromRamp: false)
    }

    /// The timesteps and sigmas of DPMSolverMultistepScheduler and UniPCMultistepScheduler, which differ
    /// only in whether Karras timesteps are rounded and where a ramp's sigma_min final sigma comes from.
    func multistepTimesteps(count n: Int, ramp: SigmaRamp, finalSigmas: DPMSolverSettings.FinalSigmas,
                            roundKarras: Bool, finalFromRamp: Bool) -> (timesteps: [Int], sigmas: [Double]) {
        let total = schedule.timesteps
        let table = dpmSigmas
        var ts: [Int]
        var sigmas: [Double]
        switch spacing {
        case .linspace:
            ts = Array(Spacings.linspace(0, Double(total - 1), n + 1).map(Spacings.roundHalfEven).reversed().dropLast())
        case .leading:
            let ratio = total / (n + 1)
            ts = Array((0...n).map { $0 * ratio }.reversed().dropLast()).map { $0 + stepsOffset }
        case .trailing:
            // As DDPM's trailing: numpy's arange can add a value that rounds to −1; keep n.
            ts = Spacings.arange(Double(total), 0, -Double(total) / Double(n)).prefix(n).map { Spacings.roundHalfEven($0) - 1 }
        }
        sigmas = ts.map { Double(table[$0]) }
        if ramp != .timesteps {
            // Karras or exponential σ between the table's σ_max and σ_min, in float64; timesteps by
            // interpolating log σ (diffusers' _sigma_to_t), rounded for Karras, then made int64 (truncated).
            sigmas = ramp.sigmas(from: Double(table[total - 1]), to: Double(table[0]), count: n)
            let round = ramp == .karras && roundKarras
            ts = sigmas.map { sigma in
                let t = Spacings.timestep(ofSigma: sigma, in: table)
                return round ? Spacings.roundHalfEven(t) : Int(t)
            }
        }
        let sigmaMin = finalFromRamp && ramp != .timesteps ? sigmas.last!
            : Double(((1 - schedule.alphasCumprod[0]) / schedule.alphasCumprod[0]).squareRoot())
        let last = finalSigmas == .zero ? 0 : sigmaMin
        return (ts, (sigmas + [last]).map { Double(Float($0)) })
    }

    /// The steps of an n-step DPM-Solver++ run, as DPMSolverMultistepScheduler.step computes them.
    public func dpmSolverSteps(count n: Int, solver: DPMSolverSettings) -> [SolverStep] {
        let (ts, sigmas) = dpmTimesteps(count: n, solver: solver)
        func alpha(_ s: Double) -> Double { 1 / (s * s + 1).squareRoot() }
        func lambda(_ s: Double) -> Double { log(alpha(s)) - log(s * alpha(s)) }
        return ts.indices.map { i in
            let s0 = sigmas[i], st = sigmas[i + 1]
            let (a0, b0) = (alpha(s0), s0 * alpha(s0)), (at, bt) = (alpha(st), st * alpha(st))
            let (kx, km): (Double, Double)
            switch prediction {
            case .epsilon: (kx, km) = (1 / a0, -b0 / a0)
            case .sample: (kx, km) = (0, 1)
            case .v: (kx, km) = (a0, -b0)
            }
            let count = ts.count
            let lowerFinal = i == count - 1 && (solver.eulerAtFinal || (solver.lowerOrderFinal && count < 15) || solver.finalSigmas == .zero)
            let lowerSecond = i == count - 2 && solver.lowerOrderFinal && count < 15
            let available = min(i, solver.order)    // diffusers' lower_order_nums
            let order: Int
            if solver.order == 1 || available < 1 || lowerFinal { order = 1 }
            else if solver.order == 2 || available < 2 || lowerSecond { order = 2 }
            else { order = 3 }
            let h = lambda(st) - lambda(s0)
            let sde = solver.algorithm == .sde
            // x = cx·x + A·D0 + B·D1 + C·D2 in diffusers' notation, then D expanded into the x̂0's.
            let cx = sde ? bt / b0 * exp(-h) : bt / b0
            let first = sde ? at * (1 - exp(-2 * h)) : -at * (exp(-h) - 1)
            let noise = sde ? bt * max(1 - exp(-2 * h), 0).squareRoot() : 0
            var c: [Double]
            switch order {
            case 1:
                c = [first]
            case 2:
                let r0 = (lambda(s0) - lambda(sigmas[i - 1])) / h
                // midpoint: x = cx·x + first·D0 + ½·first·D1 with D1 = (m0 − m1)/r0
                c = [first * (1 + 0.5 / r0), -first * 0.5 / r0]
            default:
                let (l0, l1, l2) = (lambda(s0), lambda(sigmas[i - 1]), lambda(sigmas[i - 2]))
                let r0 = (l0 - l1) / h, r1 = (l1 - l2) / h
                let a = -at * (exp(-h) - 1), b = at * ((exp(-h) - 1) / h + 1), cc = -at * ((exp(-h) - 1 + h) / (h * h) - 0.5)
                let q = r0 / (r0 + r1)
                // D1_0 = (m0 − m1)/r0, D1_1 = (m1 − m2)/r1, Δ = D1_0 − D1_1; D1 = D1_0 + q·Δ, D2 = Δ/(r0 + r1).
                let d10 = [1 / r0, -1 / r0, 0.0], d11 = [0.0, 1 / r1, -1 / r1]
                c = (0..<3).map { k in
                    let delta = d10[k] - d11[k]
                    return (k == 0 ? a : 0) + b * (d10[k] + q * delta) + cc * delta / (r0 + r1)
                }
            }
            return SolverStep(t: ts[i], kx: kx, km: km, cx: cx, c: c, noise: noise)
        }
    }
}
