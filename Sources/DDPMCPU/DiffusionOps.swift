import DDPMCore
import Foundation

// Reference ops specific to diffusion: time embedding, dropout, losses, noising and sampler steps.

/// emb[N, dim]: diffusers' get_timestep_embedding: freq_i = exp(−ln(maxPeriod)·i / (dim/2 − shift)),
/// [sin(t·freq), cos(t·freq)], or [cos, sin] with flipSinToCos; an odd dim gets a zero last column.
func timestepEmbedding(_ y: UnsafeMutablePointer<Float>, _ t: UnsafePointer<Float>, n: Int, _ e: TimestepEmbedding) {
    let half = e.dim / 2
    for image in 0..<n {
        for i in 0..<half {
            let exponent = -logf(e.maxPeriod) * Float(i) / (Float(half) - e.freqShift)
            let angle = t[image] * expf(exponent)
            let (first, second) = e.flipSinToCos ? (cosf(angle), sinf(angle)) : (sinf(angle), cosf(angle))
            y[image * e.dim + i] = first
            y[image * e.dim + half + i] = second
        }
        if e.dim % 2 == 1 { y[image * e.dim + e.dim - 1] = 0 }
    }
}

/// y = keep ? x / (1 − p) : 0 with keep = uniform(Philox(seed, [i/4, 0, step, stream])[i%4]) ≥ p.
/// `first`: the batch-wide index of element 0 (see Dropout.firstImage).
func dropout(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int, first: Int, _ d: Dropout, step: UInt32) {
    let scale = 1 / (1 - d.probability)
    elementwise(y, count: count) { i in
        let g = first + i
        let r = Philox.block(seed: d.seed, counter: (UInt32(truncatingIfNeeded: g / 4), 0, step, RandomStream.dropoutBase + d.stream))
        let word = [r.0, r.1, r.2, r.3][g % 4]
        return Philox.uniform(word) >= d.probability ? x[i] * scale : 0
    }
}

/// mean_n( w_n · mean_i (pred − target)² ), w_n = 1 when unweighted.
func meanSquaredError(_ pred: UnsafePointer<Float>, _ target: UnsafePointer<Float>, _ weights: UnsafePointer<Float>?,
                      _ s: Shape) -> Float {
    let n = s[0], per = s.count / n
    var total = 0.0
    for image in 0..<n {
        var sum = 0.0
        for i in 0..<per { let d = Double(pred[image * per + i]) - Double(target[image * per + i]); sum += d * d }
        total += Double(weights?[image] ?? 1) * sum / Double(per)
    }
    return Float(total / Double(n))
}

/// dpred = dloss · w_n · 2 (pred − target) / (N · per-sample count)
func meanSquaredErrorBackward(_ dpred: UnsafeMutablePointer<Float>, _ pred: UnsafePointer<Float>,
                              _ target: UnsafePointer<Float>, _ weights: UnsafePointer<Float>?, _ dloss: Float, _ s: Shape) {
    let n = s[0], per = s.count / n
    let factor = 2 * dloss / Float(s.count)
    elementwise(dpred, count: s.count) { i in
        (weights?[i / per] ?? 1) * factor * (pred[i] - target[i])
    }
}

/// x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε and the target (ε, x0, or v = √ᾱ_t·ε − √(1−ᾱ_t)·x0), with
/// t_n = Philox(seed, [0, firstImage + n, step, timestep stream]) mod-free in 0..<T and ε from the
/// noise stream of image firstImage + n (plus offsetNoise · normal number c of the offset stream for
/// channel c, when offsetNoise ≠ 0); weight[n] = table[2T + t_n].
func qSample(_ xt: UnsafeMutablePointer<Float>, _ target: UnsafeMutablePointer<Float>, _ tOut: UnsafeMutablePointer<Float>,
             _ weight: UnsafeMutablePointer<Float>, _ x0: UnsafePointer<Float>, _ table: UnsafePointer<Float>, _ s: Shape,
             _ q: QSample, step: UInt32) {
    let n = s[0], per = s.count / n, plane = per / s[1]
    parallelFor(n) { image in
        let t = Philox.integer(below: q.timesteps, seed: q.seed,
                               counter: (0, q.firstImage + UInt32(image), step, RandomStream.trainingTimestep))
        tOut[image] = Float(t)
        weight[image] = table[2 * q.timesteps + t]
        let a = table[t], b = table[q.timesteps + t]
        for i in 0..<per {
            var eps = Philox.normal(seed: q.seed, index: i, image: q.firstImage + UInt32(image), step: step,
                                    stream: RandomStream.trainingNoise)
            if q.offsetNoise != 0 {
                eps = eps + q.offsetNoise * Philox.normal(seed: q.seed, index: i / plane, image: q.firstImage + UInt32(image), step: step,
                                                          stream: RandomStream.trainingOffsetNoise)
            }
            let x = x0[image * per + i]
            xt[image * per + i] = a * x + b * eps
            switch q.prediction {
            case .epsilon: target[image * per + i] = eps
            case .sample: target[image * per + i] = x
            case .v: target[image * per + i] = a * eps - b * x
            }
        }
    }
}

/// One reverse step; see SamplerStep for the formula. z for image n uses stream (firstImage + n).
func samplerStep(_ out: UnsafeMutablePointer<Float>, _ xt: UnsafePointer<Float>, _ model: UnsafePointer<Float>,
                 _ v: UnsafePointer<Float>?, _ s: Shape, _ p: SamplerStep, step: UInt32) {
    let n = s[0], per = s.count / n
    parallelFor(n) { image in
        for i in 0..<per {
            let j = image * per + i
            var x0 = p.kx * xt[j] + p.km * model[j]
            if p.clip > 0 { x0 = min(max(x0, -p.clip), p.clip) }
            let eps = p.ex * xt[j] + p.em * model[j]
            var value = p.p0 * x0 + p.pe * eps + p.px * xt[j]
            if p.sigma != 0 {
                let z = Philox.normal(seed: p.seed, index: i, image: p.firstImage + UInt32(image), step: step,
                                      stream: RandomStream.samplerNoise)
                var scale = p.sigma
                if let v {
                    let f = (v[j] + 1) / 2
                    scale = scale * expf(0.5 * (f * p.maxLog + (1 - f) * p.minLog))
                }
                value = value + scale * z
            }
            out[j] = value
        }
    }
}

/// out = cx·x + Σ_k c_k·d_k (in order k = 0, 1, 2) + σ·z; see SolverUpdate. As diffusers' DPM-Solver++
/// step reads once its D terms are expanded into the stored x̂0 predictions.
func solverUpdate(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ d: [UnsafePointer<Float>],
                  _ s: Shape, _ u: SolverUpdate, step: UInt32) {
    let n = s[0], per = s.count / n
    parallelFor(n) { image in
        for i in 0..<per {
            let j = image * per + i
            var value = u.cx * x[j]
            for (k, dk) in d.enumerated() { value = value + u.c[k] * dk[j] }
            if u.sigma != 0 {
                let z = Philox.normal(seed: u.seed, index: i, image: u.firstImage + UInt32(image), step: step,
                                      stream: RandomStream.samplerNoise)
                value = value + u.sigma * z
            }
            out[j] = value
        }
    }
}

/// Per image: s = clamp(quantile(|x|, ratio), 1, maxValue) with torch.quantile's linear
/// interpolation between the sorted values at ⌊ratio·(D−1)⌋ and the next; out = clamp(x, −s, s) / s.
func dynamicThreshold(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ s: Shape, ratio: Float, maxValue: Float) {
    let n = s[0], per = s.count / n
    parallelFor(n) { image in
        let sorted = (0..<per).map { abs(x[image * per + $0]) }.sorted()
        let position = ratio * Float(per - 1)
        let lo = min(Int(position), per - 1), hi = min(lo + 1, per - 1)
        let quantile = sorted[lo] + (position - Float(lo)) * (sorted[hi] - sorted[lo])
        let t = min(max(quantile, 1), maxValue)
        for i in 0..<per { out[image * per + i] = min(max(x[image * per + i], -t), t) / t }
    }
}

/// stats = (‖g‖₂ over all gradients, min(1, maxNorm / (‖g‖ + 1e-6))) as torch's clip_grad_norm_.
func gradNorm(_ stats: UnsafeMutablePointer<Float>, _ grads: [(UnsafePointer<Float>, Int)], maxNorm: Float) {
    var sum = 0.0
    for (g, count) in grads { for i in 0..<count { sum += Double(g[i]) * Double(g[i]) } }
    let norm = Float(sum.squareRoot())
    stats[0] = norm
    stats[1] = maxNorm > 0 ? min(1, maxNorm / (norm + 1e-6)) : 1
}

/// torch.optim.AdamW on one tensor, the gradient scaled by the clip factor first.
func adamStep(param: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
              grad: UnsafePointer<Float>, clip: Float, count: Int, _ a: Adam) {
    let c = AdamCoefficients(a)
    for i in 0..<count {
        let g = grad[i] * clip
        param[i] = param[i] * c.decay
        m[i] = m[i] + c.oneMinusBeta1 * (g - m[i])
        v[i] = v[i] * a.beta2 + c.oneMinusBeta2 * (g * g)
        let denom = v[i].squareRoot() / c.biasCorrection2Sqrt + a.eps
        param[i] = param[i] - c.stepSize * (m[i] / denom)
    }
}

/// ema ← ema − rate·(ema − param), rate = 1 − decay, as diffusers' EMAModel.step.
func emaUpdate(ema: UnsafeMutablePointer<Float>, param: UnsafePointer<Float>, count: Int, rate: Float) {
    for i in 0..<count { ema[i] = ema[i] - rate * (ema[i] - param[i]) }
}
