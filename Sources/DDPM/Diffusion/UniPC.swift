import DDPMCore
import Foundation

/// diffusers' UniPCMultistepScheduler (Zhao et al. 2023, "UniPC"): a multistep predictor (UniP) of
/// order 1–3 in log-SNR time and, from the second step on, a corrector (UniC) that refines the
/// model's input with the model's output at it before the predictor runs. Both are linear in the
/// stored predictions (x̂0, or ε̂ with predict_x0 false), so each step on the device is the convert op,
/// one solverUpdate for the corrector (two when it combines four predictions) and one for the predictor.
public struct UniPCSettings: Equatable {
    public enum SolverType: String, CaseIterable { case bh1, bh2 }

    public var order = 2
    public var solverType: SolverType = .bh2
    public var predictX0 = true
    public var lowerOrderFinal = true
    /// Steps (0-based) whose corrector is skipped: the corrector of step s + 1 uses the model output of
    /// step s + 1 to correct step s's update, so diffusers lists s.
    public var disableCorrector: Set<Int> = []
    public var finalSigmas: DPMSolverSettings.FinalSigmas = .zero
    public var ramp: SigmaRamp = .timesteps

    public init(order: Int = 2, karras: Bool = false) {
        precondition((1...3).contains(order), "UniPC has orders 1, 2 and 3 here")
        self.order = order; self.ramp = karras ? .karras : .timesteps
    }

    /// From a UniPCMultistepScheduler scheduler_config.json; unsupported options are refused.
    public init(json: [String: Any], source: String) throws {
        func refuse(_ what: String) -> UserError { UserError("\(source): \(what)") }
        let order = json["solver_order"] as? Int ?? 2
        guard (1...3).contains(order) else { throw refuse("solver_order \(order) is not supported; use 1, 2 or 3.") }
        self.init(order: order)
        let type = json["solver_type"] as? String ?? "bh2"
        // diffusers maps DPM-Solver's names to bh2 when it builds the scheduler.
        guard let solverType = ["midpoint", "heun", "logrho"].contains(type) ? .bh2 : SolverType(rawValue: type) else {
            throw refuse("solver_type \"\(type)\" is not supported; use bh1 or bh2.")
        }
        self.solverType = solverType
        predictX0 = json["predict_x0"] as? Bool ?? true
        lowerOrderFinal = json["lower_order_final"] as? Bool ?? true
        if let list = json["disable_corrector"] {
            guard let steps = list as? [Int] else { throw refuse("disable_corrector must be a list of step indices, e.g. [0, 1].") }
            disableCorrector = Set(steps)
        }
        let final = json["final_sigmas_type"] as? String ?? "zero"
        guard let finalSigmas = DPMSolverSettings.FinalSigmas(rawValue: final) else {
            throw refuse("final_sigmas_type \"\(final)\" is not supported; use zero or sigma_min.")
        }
        self.finalSigmas = finalSigmas
        ramp = try SigmaRamp(json: json, source: source)
        if let p = json["solver_p"], !(p is NSNull) { throw refuse("solver_p (an external predictor) is not supported; set it to null.") }
        for key in ["use_flow_sigmas", "use_dynamic_shifting"] where json[key] as? Bool == true {
            throw refuse("\(key) is not supported; set it to false.")
        }
        if json["prediction_type"] as? String == "flow_prediction" {
            throw refuse("prediction_type flow_prediction is not supported; use epsilon, sample or v_prediction.")
        }
        if finalSigmas == .zero && (solverType == .bh1 || !predictX0) {
            // h = ∞ at σ = 0: diffusers multiplies 0 by ∞ there (B(h) = −h for bh1; σ_t·(e^h − 1) with
            // predict_x0 false) and its last step is NaN.
            throw refuse("\(solverType == .bh1 ? "solver_type bh1" : "predict_x0 false") with final_sigmas_type zero ends in NaN in diffusers (0·∞ at σ = 0); set final_sigmas_type to sigma_min\(solverType == .bh1 ? " or solver_type to bh2" : " or predict_x0 to true").")
        }
        if finalSigmas == .zero && !lowerOrderFinal && order > 1 {
            throw refuse("lower_order_final false with final_sigmas_type zero divides by r = 0 at the last step (NaN in diffusers); set lower_order_final to true or final_sigmas_type to sigma_min.")
        }
        if !predictX0 && json["thresholding"] as? Bool == true {
            throw refuse("thresholding acts on x̂0 predictions, and predict_x0 is false (diffusers ignores it then); set thresholding to false or predict_x0 to true.")
        }
    }
}

extension SchedulerSettings {
    /// UniPCMultistepScheduler.set_timesteps(n): DPM-Solver++'s spacings; Karras timesteps always rounded,
    /// a ramp's sigma_min final sigma is the ramp's own last σ.
    func unipcTimesteps(count n: Int, unipc: UniPCSettings) -> (timesteps: [Int], sigmas: [Double]) {
        multistepTimesteps(count: n, ramp: unipc.ramp, finalSigmas: unipc.finalSigmas, roundKarras: true, finalFromRamp: true)
    }

    /// The steps of an n-step UniPC run, as UniPCMultistepScheduler.step computes them: the corrector
    /// of step s (s ≥ 1) with the order the predictor of step s − 1 used, then the predictor.
    public func unipcSteps(count n: Int, unipc: UniPCSettings) -> [SolverStep] {
        let (ts, sigmas) = unipcTimesteps(count: n, unipc: unipc)
        func alpha(_ s: Double) -> Double { 1 / (s * s + 1).squareRoot() }
        func lambda(_ s: Double) -> Double { log(alpha(s)) - log(s * alpha(s)) }
        let orders = ts.indices.map { s in
            min(unipc.lowerOrderFinal ? min(unipc.order, ts.count - s) : unipc.order, min(s, unipc.order) + 1)
        }
        /// The update from σ[from] to σ[to] of the given order over predictions newest-first: the history
        /// is m_newest (at `to` for the corrector, at `from` for the predictor), then older ones at σ[from − i].
        func update(from: Int, to: Int, order: Int, corrector: Bool) -> SolverCombination {
            let (a0, at) = (alpha(sigmas[from]), alpha(sigmas[to]))
            let (s0, st) = (sigmas[from] * a0, sigmas[to] * at)
            let h = lambda(sigmas[to]) - lambda(sigmas[from])
            var rks = (1..<max(order, 1)).map { i in (lambda(sigmas[from - i]) - lambda(sigmas[from])) / h }
            rks.append(1)
            let hh = unipc.predictX0 ? -h : h
            let hPhi1 = expm1(hh)
            let bh = unipc.solverType == .bh1 ? hh : expm1(hh)
            var hPhiK = hPhi1 / hh - 1
            var factorial = 1.0
            var b: [Double] = []
            for i in 1...order {
                b.append(hPhiK * factorial / bh)
                factorial *= Double(i + 1)
                hPhiK = hPhiK / hh - 1 / factorial
            }
            let matrix = (0..<order).map { i in rks.map { pow($0, Double(i)) } }   // R[i][k] = r_k^i
            let rhos: [Double]
            if corrector {
                rhos = order == 1 ? [0.5] : solveLinear(matrix, b)
            } else {
                rhos = order == 1 ? [] : order == 2 ? [0.5]
                    : solveLinear(matrix.dropLast().map { Array($0.dropLast()) }, Array(b.dropLast()))
            }
            let scale = unipc.predictX0 ? at : st
            let cx = unipc.predictX0 ? st / s0 : at / a0
            // x = cx·x − A·hφ1·m0 − A·B(h)·(Σ_k ρ_k·(m_k − m0)/r_k [+ ρ_last·(m_t − m0)]), expanded.
            let older = (0..<(order - 1)).map { k in -scale * bh * rhos[k] / rks[k] }
            let m0 = -scale * hPhi1 - older.reduce(0, +)
            guard corrector else { return SolverCombination(cx: cx, c: [m0] + older) }
            let last = scale * bh * rhos[order - 1]
            return SolverCombination(cx: cx, c: [-last, m0 + last] + older)
        }
        return ts.indices.map { s in
            let a = alpha(sigmas[s]), sd = sigmas[s] * a
            let (kx, km): (Double, Double)
            switch (prediction, unipc.predictX0) {
            case (.epsilon, true): (kx, km) = (1 / a, -sd / a)
            case (.sample, true): (kx, km) = (0, 1)
            case (.v, true): (kx, km) = (a, -sd)
            case (.epsilon, false): (kx, km) = (0, 1)
            case (.sample, false): (kx, km) = (1 / sd, -a / sd)
            case (.v, false): (kx, km) = (sd, a)
            }
            let predictor = update(from: s, to: s + 1, order: orders[s], corrector: false)
            var step = SolverStep(t: ts[s], kx: kx, km: km, cx: predictor.cx, c: predictor.c, noise: 0)
            if s > 0 && !unipc.disableCorrector.contains(s - 1) {
                step.corrector = update(from: s - 1, to: s, order: orders[s - 1], corrector: true)
            }
            return step
        }
    }
}

/// Solves A·x = b (n ≤ 3) by Gaussian elimination with partial pivoting, in double.
func solveLinear(_ a: [[Double]], _ b: [Double]) -> [Double] {
    var m = a, y = b
    let n = b.count
    for col in 0..<n {
        let pivot = (col..<n).max { abs(m[$0][col]) < abs(m[$1][col]) }!
        m.swapAt(col, pivot); y.swapAt(col, pivot)
        for row in (col + 1)..<n {
            let f = m[row][col] / m[col][col]
            for k in col..<n { m[row][k] -= f * m[col][k] }
            y[row] -= f * y[col]
        }
    }
    var x = [Double](repeating: 0, count: n)
    for row in (0..<n).reversed() {
        x[row] = (y[row] - ((row + 1)..<n).reduce(0) { $0 + m[row][$1] * x[$1] }) / m[row][row]
    }
    return x
}
