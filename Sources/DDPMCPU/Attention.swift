import DDPMCore
import Foundation

// Reference scaled dot-product attention (Op.attention) over q, k, v laid out [B][d][T]: channel c
// of token i is at c·T + i. Sums accumulate in Double; P is recomputed in the backward pass.

/// P[i][:] = softmax_j(scale · q[:, i]·k[:, j]) of one batch entry, row after row into `p` [T][T].
private func attentionWeights(_ p: inout [Double], _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, channels: Int, tokens t: Int,
                              scale: Float) {
    for i in 0..<t {
        var maximum = -Double.infinity
        for j in 0..<t {
            var dot = 0.0
            for c in 0..<channels { dot += Double(q[c * t + i]) * Double(k[c * t + j]) }
            p[i * t + j] = Double(scale) * dot
            maximum = max(maximum, p[i * t + j])
        }
        var sum = 0.0
        for j in 0..<t { p[i * t + j] = exp(p[i * t + j] - maximum); sum += p[i * t + j] }
        for j in 0..<t { p[i * t + j] /= sum }
    }
}

/// For each batch entry b in parallel: body(offset of b's [d][T] block, d, T, its P [T][T]).
private func forEachEntry(_ s: Shape, _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, scale: Float,
                          _ body: (_ base: Int, _ channels: Int, _ t: Int, _ p: [Double]) -> Void) {
    let (batch, channels, t) = (s[0], s[1], s[2])
    parallelFor(batch) { b in
        let base = b * channels * t
        var p = [Double](repeating: 0, count: t * t)
        attentionWeights(&p, q + base, k + base, channels: channels, tokens: t, scale: scale)
        body(base, channels, t, p)
    }
}

/// o[b][c][i] = Σ_j P[i][j]·v[b][c][j]
func attentionForward(_ o: UnsafeMutablePointer<Float>, _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
                      _ s: Shape, scale: Float) {
    forEachEntry(s, q, k, scale: scale) { base, channels, t, p in
        for c in 0..<channels {
            for i in 0..<t {
                var sum = 0.0
                for j in 0..<t { sum += p[i * t + j] * Double(v[base + c * t + j]) }
                o[base + c * t + i] = Float(sum)
            }
        }
    }
}

/// With dP[i][j] = Σ_c do[c][i]·v[c][j] and dS = P·(dP − Σ_j P·dP) per row:
/// dq[c][i] = scale·Σ_j dS[i][j]·k[c][j], dk[c][j] = scale·Σ_i dS[i][j]·q[c][i], dv[c][j] = Σ_i P[i][j]·do[c][i].
func attentionBackward(_ dq: UnsafeMutablePointer<Float>, _ dk: UnsafeMutablePointer<Float>, _ dv: UnsafeMutablePointer<Float>,
                       _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>, _ dout: UnsafePointer<Float>,
                       _ s: Shape, scale: Float) {
    forEachEntry(s, q, k, scale: scale) { base, channels, t, p in
        var ds = [Double](repeating: 0, count: t * t)
        for i in 0..<t {
            var dot = 0.0
            for j in 0..<t {
                var dp = 0.0
                for c in 0..<channels { dp += Double(dout[base + c * t + i]) * Double(v[base + c * t + j]) }
                ds[i * t + j] = dp
                dot += p[i * t + j] * dp
            }
            for j in 0..<t { ds[i * t + j] = p[i * t + j] * (ds[i * t + j] - dot) }
        }
        for c in 0..<channels {
            for i in 0..<t {
                var sum = 0.0
                for j in 0..<t { sum += ds[i * t + j] * Double(k[base + c * t + j]) }
                dq[base + c * t + i] = Float(Double(scale) * sum)
            }
            for j in 0..<t {
                var sumK = 0.0, sumV = 0.0
                for i in 0..<t {
                    sumK += ds[i * t + j] * Double(q[base + c * t + i])
                    sumV += p[i * t + j] * Double(dout[base + c * t + i])
                }
                dk[base + c * t + j] = Float(Double(scale) * sumK)
                dv[base + c * t + j] = Float(sumV)
            }
        }
    }
}
