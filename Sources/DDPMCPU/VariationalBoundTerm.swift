import DDPMCore
import Foundation

// Improved DDPM's L_vlb term (see VLBTerm in Op.swift), in double: the reference every backend
// must agree with. Written as improved-diffusion's losses.py and _vb_terms_bpd read.

/// improved-diffusion's approx_standard_normal_cdf: ½(1 + tanh(√(2/π)(x + 0.044715x³))).
func approximateNormalCDF(_ x: Double) -> Double { 0.5 * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x))) }

/// d/dx of approximateNormalCDF.
func approximateNormalCDFDerivative(_ x: Double) -> Double {
    let k = (2 / Double.pi).squareRoot(), th = tanh(k * (x + 0.044715 * x * x * x))
    return 0.5 * (1 - th * th) * k * (1 + 3 * 0.044715 * x * x)
}

/// One element's term in nats and its derivative with respect to v.
/// Table rows (per timestep): kx, km, c1, c2, log β̃ (clipped), log β.
func vlbElement(x0: Double, xt: Double, m: Double, v: Double, t: Int, table: UnsafePointer<Float>, timesteps T: Int)
    -> (value: Double, dv: Double) {
    func row(_ r: Int) -> Double { Double(table[r * T + t]) }
    let (kx, km, c1, c2, minLog, maxLog) = (row(0), row(1), row(2), row(3), row(4), row(5))
    let x0Hat = kx * xt + km * m
    let modelMean = c1 * x0Hat + c2 * xt
    let f = (v + 1) / 2
    let logVariance = f * maxLog + (1 - f) * minLog
    let dLogVariance = (maxLog - minLog) / 2          // d logVariance / dv
    if t > 0 {
        // normal_kl(μ̃, log β̃, μ, log σ²) = ½(−1 + lv2 − lv1 + e^(lv1 − lv2) + (μ̃ − μ)² e^(−lv2))
        let trueMean = c1 * x0 + c2 * xt, d = trueMean - modelMean
        let value = 0.5 * (-1 + logVariance - minLog + exp(minLog - logVariance) + d * d * exp(-logVariance))
        let dValue = 0.5 * (1 - exp(minLog - logVariance) - d * d * exp(-logVariance))
        return (value, dValue * dLogVariance)
    }
    // −discretized_gaussian_log_likelihood(x0, μ, log_scale = ½ log σ²); bins of 2/255, open edges.
    let inverseScale = exp(-0.5 * logVariance)
    let centered = x0 - modelMean
    let plusIn = inverseScale * (centered + 1 / 255.0), minIn = inverseScale * (centered - 1 / 255.0)
    let cdfPlus = approximateNormalCDF(plusIn), cdfMin = approximateNormalCDF(minIn)
    // d(plusIn)/d(logScale) = −plusIn; d(logScale)/dv = ½ dLogVariance. A clamped value has no gradient.
    let dPlus = -approximateNormalCDFDerivative(plusIn) * plusIn, dMin = -approximateNormalCDFDerivative(minIn) * minIn
    let logProb: Double, dLogProb: Double
    if x0 < -0.999 {
        logProb = log(max(cdfPlus, 1e-12)); dLogProb = cdfPlus > 1e-12 ? dPlus / cdfPlus : 0
    } else if x0 > 0.999 {
        logProb = log(max(1 - cdfMin, 1e-12)); dLogProb = 1 - cdfMin > 1e-12 ? -dMin / (1 - cdfMin) : 0
    } else {
        let delta = cdfPlus - cdfMin
        logProb = log(max(delta, 1e-12)); dLogProb = delta > 1e-12 ? (dPlus - dMin) / delta : 0
    }
    return (-logProb, -dLogProb * 0.5 * dLogVariance)
}

/// loss = scale · mean_n( mean_i L_{t_n}(n, i) ) / ln 2
func vlbTerm(_ x0: UnsafePointer<Float>, _ xt: UnsafePointer<Float>, _ m: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
             _ t: UnsafePointer<Float>, _ table: UnsafePointer<Float>, _ s: Shape, _ p: VLBTerm) -> Float {
    let n = s[0], per = s.count / n
    var total = 0.0
    for image in 0..<n {
        let ti = Int(t[image])
        var sum = 0.0
        for i in image * per..<(image + 1) * per {
            sum += vlbElement(x0: Double(x0[i]), xt: Double(xt[i]), m: Double(m[i]), v: Double(v[i]), t: ti,
                              table: table, timesteps: p.timesteps).value
        }
        total += sum / Double(per)
    }
    return Float(Double(p.scale) * total / Double(n) / log(2.0))
}

/// dv = dloss · scale · ∂L/∂v / (N · per · ln 2)
func vlbTermBackward(_ dv: UnsafeMutablePointer<Float>, _ x0: UnsafePointer<Float>, _ xt: UnsafePointer<Float>,
                     _ m: UnsafePointer<Float>, _ v: UnsafePointer<Float>, _ t: UnsafePointer<Float>,
                     _ table: UnsafePointer<Float>, _ dloss: Float, _ s: Shape, _ p: VLBTerm) {
    let per = s.count / s[0]
    let factor = Double(dloss) * Double(p.scale) / (Double(s.count) * log(2.0))
    elementwise(dv, count: s.count) { i in
        let d = vlbElement(x0: Double(x0[i]), xt: Double(xt[i]), m: Double(m[i]), v: Double(v[i]), t: Int(t[i / per]),
                           table: table, timesteps: p.timesteps).dv
        return Float(factor * d)
    }
}
