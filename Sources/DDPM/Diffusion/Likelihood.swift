import DDPMCore
import Foundation

/// Anything that predicts the noise ε̂(x_t, t) of a batch (N×C×H×W) and, for learned-variance
/// models, the variance weight v ∈ [-1, 1] per element (Improved DDPM's learned_range).
public protocol NoisePredictor {
    func predictNoise(_ x: [Float], t: Int) throws -> [Float]
    /// ε̂ and, when the model learns its variance, v (nil: the scheduler's fixed variance).
    func predictNoiseAndVariance(_ x: [Float], t: Int) throws -> (noise: [Float], variance: [Float]?)
}

extension NoisePredictor {
    public func predictNoiseAndVariance(_ x: [Float], t: Int) throws -> (noise: [Float], variance: [Float]?) {
        (try predictNoise(x, t: t), nil)
    }
}

/// Negative log-likelihood in bits per dimension through the variational bound (Ho et al. eq. 5,
/// Nichol & Dhariwal §2): L = L_T + Σ_{t≥1} L_{t−1} + L_0 with
///   L_T      = KL(q(x_T|x_0) ‖ N(0, I))
///   L_{t−1}  = KL(q(x_{t−1}|x_t, x_0) ‖ p(x_{t−1}|x_t)), p with σ²_t = β̃_t (fixed_small), β_t
///              (fixed_large) or the model's own log σ² = f·log β_t + (1−f)·log β̃_t, f = (v+1)/2
///              (learned_range, improved-diffusion's p_mean_variance)
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
        /// Σ of the KL terms (estimated when strided).
        public var diffusionBitsPerDim: Double
        /// Standard error of the estimate from sampling timesteps (0 for the exact bound).
        public var standardError: Double
        /// Model evaluations per image.
        public var evaluatedTerms: Int
        /// Every term evaluated (stride 1, or strata too small to sample).
        public var exact: Bool
    }

    /// Which terms an evaluation computes: the first `exactTerms` (t = 0 is the decoder) always,
    /// and from the rest, strata of 2·stride consecutive timesteps with two distinct timesteps drawn
    /// uniformly per stratum (Philox, seed and stratum); strata of ≤ 2 timesteps are computed whole.
    /// Each stratum's sum is estimated by its size × the mean of its two terms: unbiased, with the
    /// variance m²(1 − 2/m)·s²/2 per stratum (s² the two terms' sample variance).
    public struct Plan {
        public var exact: [Int]
        public var strata: [(size: Int, drawn: [Int])]
        public var evaluated: [Int] { exact + strata.flatMap(\.drawn) }

        public init(timesteps total: Int, stride: Int, exactTerms: Int, seed: UInt64) {
            precondition(stride >= 1 && exactTerms >= 1)
            guard stride > 1 else { exact = Array(0..<total); strata = []; return }
            let k = min(exactTerms, total)
            exact = Array(0..<k)
            strata = []
            var first = k, index: UInt32 = 0
            while first < total {
                let size = min(2 * stride, total - first)
                if size <= 2 {
                    exact += Array(first..<first + size)
                } else {
                    let a = Philox.integer(below: size, seed: seed, counter: (index, 0, 0, RandomStream.likelihoodTimestep))
                    var b = Philox.integer(below: size - 1, seed: seed, counter: (index, 1, 0, RandomStream.likelihoodTimestep))
                    if b >= a { b += 1 }
                    strata.append((size, [first + a, first + b]))
                }
                first += size
                index += 1
            }
        }
    }

    /// `images` are N×D values in [-1, 1] (quantised pixels). With `stride` > 1 the terms are
    /// estimated by `Plan` (the first `exactTerms` exactly); stride 1 is the exact bound.
    public func evaluate(images: [Float], count: Int, model: NoisePredictor, seed: UInt64, stride: Int = 1, exactTerms: Int = 10,
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

        let plan = Plan(timesteps: total, stride: stride, exactTerms: exactTerms, seed: seed)
        let ts = plan.evaluated
        var terms: [Int: Double] = [:]
        for (done, t) in ts.enumerated() {
            terms[t] = try term(t, images: images, count: count, model: model, seed: seed, acp: acp) / (Double(count * d) * ln2)
            progress(done + 1, ts.count)
        }
        let decoder = terms[0]!
        var diffusion = plan.exact.filter { $0 > 0 }.reduce(0) { $0 + terms[$1]! }
        var variance = 0.0
        for stratum in plan.strata {
            let (y1, y2) = (terms[stratum.drawn[0]]!, terms[stratum.drawn[1]]!)
            let m = Double(stratum.size)
            diffusion += m * (y1 + y2) / 2
            let sampleVariance = (y1 - y2) * (y1 - y2) / 2
            variance += m * m * (1 - 2 / m) * sampleVariance / 2
        }
        return Result(bitsPerDim: prior + diffusion + decoder, priorBitsPerDim: prior, decoderBitsPerDim: decoder,
                      diffusionBitsPerDim: diffusion, standardError: variance.squareRoot(), evaluatedTerms: ts.count,
                      exact: plan.strata.isEmpty)
    }

    /// Σ over all images and dimensions of term t in nats: the decoder's −log p at t = 0, else the KL.
    func term(_ t: Int, images: [Float], count: Int, model: NoisePredictor, seed: UInt64, acp: [Double]) throws -> Double {
        let d = images.count / count
        let a = acp[t], aPrev = t > 0 ? acp[t - 1] : 1
        let beta = 1 - a / aPrev
        var xt = [Float](repeating: 0, count: images.count)
        for n in 0..<count {
            for i in 0..<d {
                let z = Philox.normal(seed: seed, index: i, image: UInt32(n), step: UInt32(t), stream: RandomStream.initialNoise)
                xt[n * d + i] = Float(a.squareRoot() * Double(images[n * d + i]) + (1 - a).squareRoot() * Double(z))
            }
        }
        let (eps, v) = try model.predictNoiseAndVariance(xt, t: t)
        precondition((v != nil) == (settings.variance == .learnedRange),
                     "a learned_range bound needs the model's variance output, and only then")
        // Posterior q(x_{t−1}|x_t, x0) and the model's mean from x̂0 (clipped to [-1, 1]).
        let c0 = aPrev.squareRoot() * beta / (1 - a), c1 = (a / aPrev).squareRoot() * (1 - aPrev) / (1 - a)
        let posteriorVariance = beta * (1 - aPrev) / (1 - a)
        // At t = 0 the posterior variance is 0; as in Improved DDPM the clipped log β̃ uses β̃_1 there.
        let clippedLogPosterior = log(t == 0 ? Self.posteriorVariance(acp, 1) : posteriorVariance)
        let fixedLogVariance: Double
        switch settings.variance {
        case .fixedLarge: fixedLogVariance = t == 0 ? clippedLogPosterior : log(beta)
        case .fixedSmall, .learnedRange: fixedLogVariance = clippedLogPosterior
        }
        let maxLog = log(beta)
        var sum = 0.0
        for j in 0..<images.count {
            let x0 = Double(images[j]), x = Double(xt[j])
            let x0Hat = min(max((x - (1 - a).squareRoot() * Double(eps[j])) / a.squareRoot(), -1), 1)
            let modelMean = c0 * x0Hat + c1 * x
            var logVariance = fixedLogVariance
            if let v {
                let f = (Double(v[j]) + 1) / 2
                logVariance = f * maxLog + (1 - f) * clippedLogPosterior
            }
            if t == 0 {
                sum -= discretizedGaussianLogLikelihood(x0, mean: modelMean, logScale: 0.5 * logVariance)
            } else {
                sum += gaussianKL(mean1: c0 * x0 + c1 * x, logVar1: log(posteriorVariance), mean2: modelMean, logVar2: logVariance)
            }
        }
        return sum
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

    /// `labels`: the class of each of the `batch` images, for a class-conditional model (the bound is
    /// then that of log p(x | y)); nil for an unconditional one.
    public init(backend: Backend, config: UNetConfig, weights: Weights, settings: SchedulerSettings, batch: Int,
                labels: [Int]? = nil) throws {
        self.backend = backend; self.settings = settings; self.batch = batch
        if settings.variance == .learnedRange && config.outChannels != 2 * config.inChannels {
            throw UserError("variance_type learned_range needs a model whose out_channels (\(config.outChannels)) are twice its in_channels (\(config.inChannels)); this model has a fixed variance: set variance_type fixed_small or fixed_large.")
        }
        precondition(config.isClassConditional == (labels != nil) && (labels?.count ?? batch) == batch,
                     "a class-conditional model needs one label per image, an unconditional one none")
        net = UNet(config: config, batch: batch)
        executor = try Executor(graph: net.graph, outputs: [net.output], backend: backend)
        for (name, value) in net.graph.parameters { executor.bind(value, to: try backend.makeConstantBuffer(weights.values[name]!)) }
        if let labels, let input = net.classLabels { executor.bind(input, to: try backend.makeBuffer(labels.map(Float.init))) }
    }

    /// The labels `eval` conditions a class-conditional model on: the data's own (the first `count`
    /// images'), or with `nullClass` the null class that `train --cond-drop` trained (the model's
    /// unconditional mode). nil for an unconditional model.
    public static func evaluationLabels(classes: ClassLabels?, data: TrainingData, count: Int, nullClass: Bool) throws -> [Int]? {
        guard let classes else {
            if nullClass { throw UserError("--null-class is for class-conditional models; this one is unconditional.") }
            return nil
        }
        if nullClass {
            guard let null = classes.nullClass else {
                throw UserError("--null-class: this model has no null class (it was not trained with --cond-drop, or its class_labels.json does not name one), so it has no unconditional mode to evaluate.")
            }
            return [Int](repeating: null, count: count)
        }
        guard let labels = data.labels, let names = data.classNames else {
            throw UserError("this model is class-conditional, so eval needs the class of every image: \(data.description) has no labels. Use --data fashion-mnist or a folder of class subfolders (DIR/CLASS/*.png), or --null-class for the model's unconditional mode.")
        }
        guard names.count == classes.names.count else {
            throw UserError("the model knows \(classes.names.count) classes but \(data.description) has \(names.count); evaluate it on data with the classes it was trained on, or use --null-class.")
        }
        return Array(labels.prefix(count))
    }

    public func predictNoise(_ x: [Float], t: Int) throws -> [Float] { try predictNoiseAndVariance(x, t: t).noise }

    /// ε̂ from the prediction half; v from the variance half of a learned-variance model when the
    /// scheduler's variance_type is learned_range.
    public func predictNoiseAndVariance(_ x: [Float], t: Int) throws -> (noise: [Float], variance: [Float]?) {
        precondition(x.count == net.graph.shape(net.sample).count, "evaluate in batches of \(batch)")
        executor.bind(net.sample, to: try backend.makeBuffer(x))
        executor.bind(net.timesteps, to: try backend.makeBuffer([Float](repeating: Float(t), count: batch)))
        try executor.run(step: 0)
        var out = try backend.read(executor.buffer(net.output), count: net.graph.shape(net.output).count)
        var variance: [Float]?
        if out.count == 2 * x.count {
            // A learned-variance model outputs [prediction, variance] per image.
            let per = x.count / batch
            if settings.variance == .learnedRange {
                variance = (0..<batch).flatMap { out[($0 * 2 * per + per)..<($0 * 2 * per + 2 * per)] }
            }
            out = (0..<batch).flatMap { out[($0 * 2 * per)..<($0 * 2 * per + per)] }
        }
        return (try noise(from: out, x: x, t: t), variance)
    }

    private func noise(from out: [Float], x: [Float], t: Int) throws -> [Float] {
        let a = Double(settings.schedule.alphasCumprod[t]), b = 1 - a
        switch settings.prediction {
        case .epsilon: return out
        case .sample: return zip(x, out).map { Float((Double($0) - a.squareRoot() * Double($1)) / b.squareRoot()) }
        case .v: return zip(x, out).map { Float(a.squareRoot() * Double($1) + b.squareRoot() * Double($0)) }
        }
    }
}
