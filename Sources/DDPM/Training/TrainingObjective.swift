import DDPMCore
import Foundation

// What a training step minimises: the noising (qSample, with offset noise), the per-image loss
// weights (SNR, min-SNR-γ, P2) and, for learned-variance models, Improved DDPM's hybrid loss.

extension TrainingOptions {
    /// λ of the hybrid loss L_simple + λ·L_vlb (Nichol & Dhariwal 2021, §3.1).
    public static let hybridLossLambda = 0.001

    /// Whether the model learns its variance (Improved DDPM): out_channels = 2·in_channels, the
    /// hybrid loss, and variance_type learned_range for sampling. nil in older checkpoints: no.
    public var learnsVariance: Bool { learnSigma ?? false }

    /// Per-timestep weights of the per-image MSE of the target, or nil when every weight is 1 (the
    /// plain MSE). With SNR_t = ᾱ_t/(1−ᾱ_t), each weighting is a weight W_t on the x₀-MSE, and a loss
    /// on the ε target is SNR_t times the x₀-MSE, on the v target (SNR_t + 1) times it; so the
    /// weight of the target's MSE is W_t / SNR_t (ε), W_t (x₀), W_t / (SNR_t + 1) (v):
    /// - min-SNR-γ (Hang et al. 2023, arXiv 2303.09556): W_t = min(SNR_t, γ), as diffusers'
    ///   train_text_to_image computes it (ε: min(SNR, γ)/SNR, a zero SNR there weighted 1 as diffusers
    ///   does; v: min(SNR, γ)/(SNR + 1); x₀: min(SNR, γ)).
    /// - P2 (Choi et al. 2022): the ε-MSE weighted by 1/(k + SNR_t)^γ, k = 1: W_t = SNR_t/(1 + SNR_t)^γ.
    /// - neither: x₀ with the SNR weighting (W_t = SNR_t, the ε-MSE of Ho et al.) or the plain MSE.
    public func lossWeights(_ schedule: NoiseSchedule) -> [Float]? {
        if let gamma = snrGamma {
            return schedule.alphasCumprod.map { a in
                let snr = Double(a) / (1 - Double(a)), w = min(snr, gamma)
                switch predictionType {
                case .epsilon: return snr == 0 ? 1 : Float(w / snr)
                case .sample: return Float(w)
                case .v: return Float(w / (snr + 1))
                }
            }
        }
        if let gamma = p2Gamma {
            return schedule.alphasCumprod.map { a in
                let snr = Double(a) / (1 - Double(a)), p2 = 1 / pow(1 + snr, gamma)
                switch predictionType {
                case .epsilon: return Float(p2)
                case .sample: return Float(snr * p2)
                case .v: return Float(snr * p2 / (snr + 1))
                }
            }
        }
        // The SNR row exactly as it always was (float arithmetic), so older runs train identically.
        return weightsLossBySNR ? schedule.alphasCumprod.map { $0 / (1 - $0) } : nil
    }

    /// x_t, the target, t and the per-image weight of a batch x0, drawn on the device (qSample).
    /// `firstImage`: the batch's images are images firstImage… of the global batch (a data-parallel shard).
    public func noised(_ x0: Value, in graph: Graph, firstImage: UInt32 = 0) -> [Value] {
        let schedule = noiseSchedule
        let sqrtAlphas = schedule.alphasCumprod.map { $0.squareRoot() }, sqrtOneMinus = schedule.alphasCumprod.map { (1 - $0).squareRoot() }
        let weights = lossWeights(schedule) ?? [Float](repeating: 1, count: schedule.timesteps)
        let table = graph.constant(sqrtAlphas + sqrtOneMinus + weights, Shape(3, schedule.timesteps))
        let q = QSample(seed: seed, timesteps: schedule.timesteps, prediction: predictionType, firstImage: firstImage,
                         offsetNoise: offsetNoise ?? 0)
        return graph.apply(.qSample(q), [x0, table])
    }

    /// The scalar loss of the network's output on a noised batch (noised = qSample's outputs).
    /// Learned variance: the output is [prediction, v] per image; L_simple on the prediction plus
    /// λ·L_vlb on v with the prediction stopped (improved-diffusion's training_losses with
    /// RESCALED_MSE: the VLB term in bits per dimension times T/1000, i.e. λ·T·L_t with λ = 0.001).
    public func loss(output: Value, x0: Value, noised: [Value], in graph: Graph) -> Value {
        let c = model.inChannels
        let prediction = learnsVariance ? graph(.sliceChannels(start: 0, count: c), output) : output
        let weighted = lossWeights(noiseSchedule) != nil
        let simple = weighted ? graph(.mse(weighted: true), prediction, noised[1], noised[3])
                              : graph(.mse(weighted: false), prediction, noised[1])
        guard learnsVariance else { return simple }
        let variance = graph(.sliceChannels(start: c, count: c), output)
        let term = VLBTerm(timesteps: timesteps, scale: Float(Self.hybridLossLambda * Double(timesteps)))
        let table = graph.constant(vlbTable, Shape(6, timesteps))
        let vlb = graph(.vlbTerm(term), x0, noised[0], prediction, variance, noised[2], table)
        return graph(.add, simple, vlb)
    }

    /// VLBTerm's table for this schedule and prediction, in double from the float32 ᾱ (as the
    /// sampler and `eval` compute their coefficients): rows kx, km, c1, c2, log β̃ (clipped), log β.
    public var vlbTable: [Float] {
        let acp = noiseSchedule.alphasCumprod.map(Double.init)
        let n = acp.count
        var rows = [[Double]](repeating: [Double](repeating: 0, count: n), count: 6)
        func posteriorVariance(_ t: Int) -> Double {
            let a = acp[t], aPrev = t > 0 ? acp[t - 1] : 1
            return (1 - a / aPrev) * (1 - aPrev) / (1 - a)
        }
        for t in 0..<n {
            let a = acp[t], aPrev = t > 0 ? acp[t - 1] : 1, beta = 1 - a / aPrev
            switch predictionType {
            case .epsilon: (rows[0][t], rows[1][t]) = ((1 / a).squareRoot(), -(1 / a - 1).squareRoot())
            case .sample: (rows[0][t], rows[1][t]) = (0, 1)
            case .v: (rows[0][t], rows[1][t]) = (a.squareRoot(), -(1 - a).squareRoot())
            }
            rows[2][t] = beta * aPrev.squareRoot() / (1 - a)
            rows[3][t] = (1 - aPrev) * (a / aPrev).squareRoot() / (1 - a)
            // improved-diffusion: log(append(posterior_variance[1], posterior_variance[1:])).
            rows[4][t] = log(posteriorVariance(t == 0 ? 1 : t))
            rows[5][t] = log(beta)
        }
        return rows.flatMap { $0.map(Float.init) }
    }

    /// The loss-shaping options' ranges and relations (part of validate()).
    func validateLossOptions(_ check: (Bool, String?, String, Any, String) throws -> Void) throws {
        if let g = snrGamma {
            try check(g.isFinite && g > 0, "--snr-gamma", "snrGamma", g, "it takes a positive number, e.g. 5 (Hang et al. 2023)")
        }
        if let g = p2Gamma {
            try check(g.isFinite && g >= 0 && g <= 10, "--p2-gamma", "p2Gamma", g, "it takes a number in [0, 10], e.g. 1 (Choi et al. 2022; 0 is the plain ε-MSE)")
        }
        try check(snrGamma == nil || p2Gamma == nil, "--p2-gamma", "p2Gamma", p2Gamma ?? 0,
                  "it cannot be combined with --snr-gamma: both set the per-timestep weights; choose one")
        try check((snrGamma == nil && p2Gamma == nil) || prediction != .sample || weightsLossBySNR, "--sample-loss-weight", "sampleLossWeighting",
                  sampleLossWeighting ?? "none", "--snr-gamma and --p2-gamma set the x₀ loss weights themselves; leave --sample-loss-weight at snr")
        if let o = offsetNoise {
            try check(o.isFinite && o >= 0 && o <= 1, "--offset-noise", "offsetNoise", o, "it takes a number in [0, 1], e.g. 0.1")
        }
        let out = model.outChannels, c = model.inChannels
        try check(learnsVariance ? out == 2 * c : out == c, learnsVariance ? "--learn-sigma" : "--model", "model.out_channels", out,
                  learnsVariance ? "a learned-variance model outputs twice its in_channels (\(2 * c)): the prediction and the variance"
                                 : "training needs out_channels = in_channels (\(c)); pass --learn-sigma for a model with twice as many (Improved DDPM)")
    }
}
