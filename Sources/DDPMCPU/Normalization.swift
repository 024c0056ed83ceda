import DDPMCore
import Foundation

// Reference group norm, softmax and channel reductions. Statistics accumulate in Double.

/// Mean and 1/√(var + eps) of each (image, group): x[N,C,…] with C/G channels per group.
private func groupStatistics(_ x: UnsafePointer<Float>, image: Int, group: Int, channelsPerGroup: Int,
                             spatial: Int, channels: Int, eps: Float) -> (mean: Double, rstd: Double) {
    let base = (image * channels + group * channelsPerGroup) * spatial
    let count = channelsPerGroup * spatial
    var sum = 0.0
    for i in 0..<count { sum += Double(x[base + i]) }
    let mean = sum / Double(count)
    var squares = 0.0
    for i in 0..<count { let d = Double(x[base + i]) - mean; squares += d * d }
    return (mean, 1 / (squares / Double(count) + Double(eps)).squareRoot())
}

/// y = (x − μ_g) / √(σ²_g + eps) · gamma[c] + beta[c], statistics per (image, group); biased variance.
/// Fused with SiLU: y = z·sigmoid(z) of that z.
func groupNormForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ gamma: UnsafePointer<Float>,
                      _ beta: UnsafePointer<Float>, _ xs: Shape, _ g: GroupNorm) {
    let n = xs[0], c = xs[1], spatial = xs.count / (n * c), cpg = c / g.groups
    parallelFor(n * g.groups) { job in
        let (image, group) = job.quotientAndRemainder(dividingBy: g.groups)
        let (mean, rstd) = groupStatistics(x, image: image, group: group, channelsPerGroup: cpg,
                                           spatial: spatial, channels: c, eps: g.eps)
        for ch in group * cpg..<(group + 1) * cpg {
            let base = (image * c + ch) * spatial
            for i in 0..<spatial {
                let normalized = (Double(x[base + i]) - mean) * rstd
                let z = normalized * Double(gamma[ch]) + Double(beta[ch])
                y[base + i] = Float(g.silu ? z / (1 + exp(-z)) : z)
            }
        }
    }
}

/// dx = rstd · (g − mean(g) − x̂ · mean(g·x̂)) with g = dy·gamma; dgamma = Σ dy·x̂; dbeta = Σ dy.
/// Fused with SiLU (`beta` given), dy is first taken through the SiLU: dz = dy·silu′(z), z = x̂·gamma + beta.
func groupNormBackward(_ dx: UnsafeMutablePointer<Float>, _ dgamma: UnsafeMutablePointer<Float>,
                       _ dbeta: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                       _ gamma: UnsafePointer<Float>, _ dyOut: UnsafePointer<Float>, _ beta: UnsafePointer<Float>?,
                       _ xs: Shape, _ g: GroupNorm) {
    let n = xs[0], c = xs[1], spatial = xs.count / (n * c), cpg = c / g.groups
    let stats = UnsafeMutablePointer<(Double, Double)>.allocate(capacity: n * g.groups)
    defer { stats.deallocate() }
    // The gradient reaching the normalisation's output (through the SiLU when fused), in Double.
    let upstream = UnsafeMutablePointer<Double>.allocate(capacity: xs.count)
    defer { upstream.deallocate() }
    parallelFor(n * g.groups) { job in
        let (image, group) = job.quotientAndRemainder(dividingBy: g.groups)
        let (mean, rstd) = groupStatistics(x, image: image, group: group, channelsPerGroup: cpg,
                                           spatial: spatial, channels: c, eps: g.eps)
        stats[job] = (mean, rstd)
        for ch in group * cpg..<(group + 1) * cpg {
            let base = (image * c + ch) * spatial
            for i in 0..<spatial {
                var d = Double(dyOut[base + i])
                if let beta {
                    let z = (Double(x[base + i]) - mean) * rstd * Double(gamma[ch]) + Double(beta[ch])
                    let s = 1 / (1 + exp(-z))
                    d *= s * (1 + z * (1 - s))
                }
                upstream[base + i] = d
            }
        }
    }
    let dy = UnsafePointer(upstream)
    parallelFor(n * g.groups) { job in
        let (image, group) = job.quotientAndRemainder(dividingBy: g.groups)
        let (mean, rstd) = stats[job]
        var sumG = 0.0, sumGX = 0.0
        for ch in group * cpg..<(group + 1) * cpg {
            let base = (image * c + ch) * spatial
            for i in 0..<spatial {
                let gv = Double(dy[base + i]) * Double(gamma[ch])
                sumG += gv
                sumGX += gv * (Double(x[base + i]) - mean) * rstd
            }
        }
        let count = Double(cpg * spatial)
        let (meanG, meanGX) = (sumG / count, sumGX / count)
        for ch in group * cpg..<(group + 1) * cpg {
            let base = (image * c + ch) * spatial
            for i in 0..<spatial {
                let xhat = (Double(x[base + i]) - mean) * rstd
                let gv = Double(dy[base + i]) * Double(gamma[ch])
                dx[base + i] = Float(rstd * (gv - meanG - xhat * meanGX))
            }
        }
    }
    parallelFor(c) { ch in
        let group = ch / cpg
        var sumDy = 0.0, sumDyX = 0.0
        for image in 0..<n {
            let (mean, rstd) = stats[image * g.groups + group]
            let base = (image * c + ch) * spatial
            for i in 0..<spatial {
                sumDy += Double(dy[base + i])
                sumDyX += Double(dy[base + i]) * (Double(x[base + i]) - mean) * rstd
            }
        }
        dgamma[ch] = Float(sumDyX)
        dbeta[ch] = Float(sumDy)
    }
}

/// y[r, :] = softmax(x[r, :]) for each of `rows` rows of `length`.
func softmaxForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, length: Int) {
    parallelFor(rows) { r in
        let base = r * length
        var maximum = -Float.infinity
        for i in 0..<length { maximum = max(maximum, x[base + i]) }
        var sum = 0.0
        for i in 0..<length { sum += Double(expf(x[base + i] - maximum)) }
        for i in 0..<length { y[base + i] = Float(Double(expf(x[base + i] - maximum)) / sum) }
    }
}

/// dx = y · (dy − Σ_j dy_j·y_j) per row.
func softmaxBackward(_ dx: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                     rows: Int, length: Int) {
    parallelFor(rows) { r in
        let base = r * length
        var dot = 0.0
        for i in 0..<length { dot += Double(dy[base + i]) * Double(y[base + i]) }
        for i in 0..<length { dx[base + i] = Float(Double(y[base + i]) * (Double(dy[base + i]) - dot)) }
    }
}

/// out[N,C] = Σ_{h,w} x[N,C,H,W]; or out[C] = Σ_{n,h,w} x when !keepBatch.
func sumToChannels(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ xs: Shape, keepBatch: Bool) {
    let (n, c, h, w) = xs.nchw
    let spatial = h * w
    if keepBatch {
        parallelFor(n * c) { plane in
            var sum = 0.0
            for i in 0..<spatial { sum += Double(x[plane * spatial + i]) }
            out[plane] = Float(sum)
        }
    } else {
        parallelFor(c) { ch in
            var sum = 0.0
            for image in 0..<n { for i in 0..<spatial { sum += Double(x[(image * c + ch) * spatial + i]) } }
            out[ch] = Float(sum)
        }
    }
}

/// out[N,Ca+Cb,H,W] = [a, b] along channels.
func concatChannels(_ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                    _ sa: Shape, _ sb: Shape) {
    let (n, ca, h, w) = sa.nchw
    let cb = sb[1], plane = h * w, c = ca + cb
    elementwise(out, count: n * c * plane) { i in
        let (image, rest) = i.quotientAndRemainder(dividingBy: c * plane)
        let ch = rest / plane
        return ch < ca ? a[image * ca * plane + rest] : b[image * cb * plane + rest - ca * plane]
    }
}
