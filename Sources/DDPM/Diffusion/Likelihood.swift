import DDPMCore
import Foundation

/// Anything that predicts the noise ε̂(x_t, t) of a batch (N×C×H×W).
public protocol NoisePredictor {
    func predictNoise(_ x: [Float], t: Int) throws -> [Float]
}

/// Negative log-likelihood in bits per dimension through the variational bound (Ho et al. eq. 5,
/// Nichol & Dhariwal §2): L = L_T + Σ_{t≥1} L_{t−1} + L_0 with
///   L_T      = KL(q(x_T|x_0) ‖ N(0, I))
///   L_{t−1}  = KL(q(x_{t−1}|x_t, x_0) ‖ p(x_{t−1}|x_t)), p with σ²_t = β̃_t (fixed_small) or β_t
///   L_0      = −log p(x_0|x_1), a Gaussian discretised to the 256 pixel bins.
/// Indices follow diffusers (t = 0…T−1; "t = 0" is the decoder term). Each x_t is drawn from
/// q(x_t|x_0) with Philox noise (seed, image, t), so the estimate is reproducible.
public struct VariationalBound {
    public let settings: SchedulerSettings
    public init(settings: SchedulerSettings) { self.settings = settings }

    public struct Result {
        /// Mean over images of the total, in bits per dimension.
        public var bitsPerDim: Double
        public var priorBitsPerDim: Double
        public var decoderBitsPerDim: Double
        /// Σ of the KL terms.
        public var diffusionBitsPerDim: Double
    }

    /// `images` are N×D values in [-1, 1] (quantised pixels). With `stride` > 1 only every stride-th
    /// KL term is evaluated and multiplied by stride (an approximation; stride 1 is the exact bound).
    public func evaluate(images: [Float], count: Int, model: NoisePredictor, seed: UInt64, stride: Int = 1,
                         progress: (Int, Int) -> Void = { _, _ in }) throws -> Result {
        let d = images.count / count
        let acp = settings.schedule.alphasCumprod.map(Double.init)
        let total = acp.count
        let ln2 = log(2.0)
        // Prior: KL(N(√ᾱ x0, 1−ᾱ) ‖ N(0, 1)) per dimension.
        let aT = acp[total - 1]
        var prior = 0.0
        for x in images { prior += gaussianKL(mean1: aT.squareRoot() * Double(x), logVar1: log(1 - aT), mean2: 0, logVar2: 0) }
        prior /= Double(count * d) * ln2

        var diffusion = 0.0, decoder = 0.0
        let ts = Array(Swift.stride(from: 0, to: total, by: stride))
        for (done, t) in ts.enumerated() {
            let a = acp[t], aPrev = t > 0 ? acp[t - 1] : 1
            let beta = 1 - a / aPrev
            var xt = [Float](repeating: 0, count: images.count)
            for n in 0..<count {
                for i in 0..<d {
                    let z = Philox.normal(seed: seed, index: i, image: UInt32(n), step: UInt32(t), stream: RandomStream.initialNoise)
                    xt[n * d + i] = Float(a.squareRoot() * Double(images[n * d + i]) + (1 - a).squareRoot() * Double(z))
                }
            }
            let eps = try model.predictNoise(xt, t: t)
            // Posterior q(x_{t−1}|x_t, x0) and the model's mean from x̂0 (clipped to [-1, 1]).
            let c0 = aPrev.squareRoot() * beta / (1 - a), c1 = (a / aPrev).squareRoot() * (1 - aPrev) / (1 - a)
            let posteriorVariance = beta * (1 - aPrev) / (1 - a)
            // At t = 0 the posterior variance is 0; as in Improved DDPM the model uses β̃_1 there.
            let modelVariance: Double
            if settings.variance == .fixedLarge {
                modelVariance = t == 0 ? Self.posteriorVariance(acp, 1) : beta
            } else {
                modelVariance = t == 0 ? Self.posteriorVariance(acp, 1) : posteriorVariance
            }
            var term = 0.0
            for j in 0..<images.count {
                let x0 = Double(images[j]), x = Double(xt[j])
                let x0Hat = min(max((x - (1 - a).squareRoot() * Double(eps[j])) / a.squareRoot(), -1), 1)
                let modelMean = c0 * x0Hat + c1 * x
                if t == 0 {
                    term -= discretizedGaussianLogLikelihood(x0, mean: modelMean, logScale: 0.5 * log(modelVariance))
                } else {
                    term += gaussianKL(mean1: c0 * x0 + c1 * x, logVar1: log(posteriorVariance), mean2: modelMean, logVar2: log(modelVariance))
                }
            }
            term /= Double(count * d) * ln2
            if t == 0 { decoder = term } else { diffusion += term * Double(stride) }
            progress(done + 1, ts.count)
        }
        return Result(bitsPerDim: prior + diffusion + decoder, priorBitsPerDim: prior, decoderBitsPerDim: decoder,
                      diffusionBitsPerDim: diffusion)
    }

    static func posteriorVariance(_ acp: [Double], _ t: Int) -> Double {
        let a = acp[t], aPrev = t > 0 ? acp[t - 1] : 1
        return (1 - a / aPrev) * (1 - aPrev) / (1 - a)
    }
}

/// KL(N(m1, e^lv1) ‖ N(m2, e^lv2)) in nats.
public func gaussianKL(mean1: Double, logVar1: Double, mean2: Double, logVar2: Double) -> Double {
    0.5 * (-1 + logVar2 - logVar1 + exp(logVar1 - logVar2) + (mean1 - mean2) * (mean1 - mean2) * exp(-logVar2))
}

/// log P(x) of a Gaussian discretised to 256 bins of width 2/255 on [-1, 1], the edge bins open
/// (Ho et al. §3.3).
public func discretizedGaussianLogLikelihood(_ x: Double, mean: Double, logScale: Double) -> Double {
    func cdf(_ v: Double) -> Double { 0.5 * (1 + erf(v / 2.0.squareRoot())) }
    let inverseScale = exp(-logScale)
    let upper = x < 0.999 ? cdf(inverseScale * (x - mean + 1 / 255)) : 1
    let lower = x > -0.999 ? cdf(inverseScale * (x - mean - 1 / 255)) : 0
    return log(max(upper - lower, 1e-12))
}

/// The U-Net as a NoisePredictor (ε-prediction models; x₀ and v outputs are converted).
public final class UNetNoisePredictor: NoisePredictor {
    let backend: Backend
    let net: UNet
    let executor: Executor
    let settings: SchedulerSettings
    let batch: Int

    public init(backend: Backend, config: UNetConfig, weights: Weights, settings: SchedulerSettings, batch: Int) throws {
        self.backend = backend; self.settings = settings; self.batch = batch
        net = UNet(config: config, batch: batch)
        executor = try Executor(graph: net.graph, outputs: [net.output], backend: backend)
        for (name, value) in net.graph.parameters { executor.bind(value, to: try backend.makeBuffer(weights.values[name]!)) }
    }

    public func predictNoise(_ x: [Float], t: Int) throws -> [Float] {
        precondition(x.count == net.graph.shape(net.sample).count, "evaluate in batches of \(batch)")
        executor.bind(net.sample, to: try backend.makeBuffer(x))
        executor.bind(net.timesteps, to: try backend.makeBuffer([Float](repeating: Float(t), count: batch)))
        try executor.run(step: 0)
        var out = try backend.read(executor.buffer(net.output), count: net.graph.shape(net.output).count)
        if out.count == 2 * x.count {
            // A learned-variance model outputs [prediction, variance] per image: keep the prediction half.
            let per = x.count / batch
            out = (0..<batch).flatMap { out[($0 * 2 * per)..<($0 * 2 * per + per)] }
        }
        let a = Double(settings.schedule.alphasCumprod[t]), b = 1 - a
        switch settings.prediction {
        case .epsilon: return out
        case .sample: return zip(x, out).map { Float((Double($0) - a.squareRoot() * Double($1)) / b.squareRoot()) }
        case .v: return zip(x, out).map { Float(a.squareRoot() * Double($1) + b.squareRoot() * Double($0)) }
        }
    }
}
