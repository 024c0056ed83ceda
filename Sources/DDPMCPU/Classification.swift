import DDPMCore
import Foundation

// Reference ops of the domain classifier: global average pooling and cross-entropy.

/// y[N,C] = mean over H·W of x[N,C,H,W]
func globalAveragePool(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ s: Shape) {
    let (n, c, h, w) = s.nchw
    let area = h * w
    elementwise(y, count: n * c) { plane in
        var sum: Float = 0
        for i in 0..<area { sum += x[plane * area + i] }
        return sum / Float(area)
    }
}

/// dx[N,C,H,W] = dy[N,C] / (H·W)
func globalAveragePoolBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ out: Shape) {
    let (_, _, h, w) = out.nchw
    let area = h * w
    elementwise(dx, count: out.count) { i in dy[i / area] / Float(area) }
}

/// The class index stored as a float; a programmer error (the data loader checks labels) if outside 0..<k.
@inline(__always) func classIndex(_ label: Float, classes k: Int) -> Int {
    let c = Int(label)
    precondition(Float(c) == label && c >= 0 && c < k, "cross-entropy label \(label) is not a class in 0..<\(k)")
    return c
}

/// loss = mean_n( m_n + log Σ_k exp(z_nk − m_n) − z_n[label_n] ), m_n = max_k z_nk
func crossEntropy(_ logits: UnsafePointer<Float>, _ labels: UnsafePointer<Float>, _ s: Shape) -> Float {
    let (n, k) = (s[0], s[1])
    var total = 0.0
    for row in 0..<n {
        let z = logits + row * k
        var m = -Float.infinity
        for j in 0..<k { m = max(m, z[j]) }
        var sum: Float = 0
        for j in 0..<k { sum += expf(z[j] - m) }
        total += Double(m + logf(sum) - z[classIndex(labels[row], classes: k)])
    }
    return Float(total / Double(n))
}

/// dz_nk = dloss · (softmax(z_n)_k − [k = label_n]) / N
func crossEntropyBackward(_ dz: UnsafeMutablePointer<Float>, _ logits: UnsafePointer<Float>, _ labels: UnsafePointer<Float>,
                          _ dloss: Float, _ s: Shape) {
    let (n, k) = (s[0], s[1])
    let factor = dloss / Float(n)
    parallelFor(n) { row in
        let z = logits + row * k
        let label = classIndex(labels[row], classes: k)
        var m = -Float.infinity
        for j in 0..<k { m = max(m, z[j]) }
        var sum: Float = 0
        for j in 0..<k { sum += expf(z[j] - m) }
        for j in 0..<k {
            let p = expf(z[j] - m) / sum
            dz[row * k + j] = factor * (p - (j == label ? 1 : 0))
        }
    }
}
