import DDPMCore

// Reference convolutions and matrix products. Outputs first; shapes in the comments.
// Sums run in the order ci, ky, kx (the order of the OpenCL im2col rows) in float32.

/// y[N,Co,Ho,Wo] = (r +) b[Co] + Σ_{ci,ky,kx} w[Co,Ci,ky,kx] · x[N,Ci, oy·s+ky−pt, ox·s+kx−pl] (+ t[N,Co])
func conv2dForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                   _ b: UnsafePointer<Float>?, _ xs: Shape, _ ws: Shape, _ c: Conv2D,
                   addend t: UnsafePointer<Float>? = nil, residual r: UnsafePointer<Float>? = nil) {
    let (n, ci, h, wd) = xs.nchw
    let co = ws[0], kh = c.kernelHeight, kw = c.kernelWidth
    let (ho, wo) = c.outputSize(height: h, width: wd)
    parallelFor(n * co) { job in
        let (image, oc) = job.quotientAndRemainder(dividingBy: co)
        for oy in 0..<ho {
            for ox in 0..<wo {
                var acc: Float = b?[oc] ?? 0
                for ic in 0..<ci {
                    for ky in 0..<kh {
                        let iy = oy * c.stride + ky - c.padTop
                        guard iy >= 0 && iy < h else { continue }
                        for kx in 0..<kw {
                            let ix = ox * c.stride + kx - c.padLeft
                            guard ix >= 0 && ix < wd else { continue }
                            acc += w[((oc * ci + ic) * kh + ky) * kw + kx] * x[((image * ci + ic) * h + iy) * wd + ix]
                        }
                    }
                }
                let o = ((image * co + oc) * ho + oy) * wo + ox
                // The epilogue in the unfused graph's order: (conv + b) + t, then r + that.
                if let t { acc += t[image * co + oc] }
                y[o] = r.map { $0[o] + acc } ?? acc
            }
        }
    }
}

/// dx[N,Ci,H,W] = Σ_{co,ky,kx} w[co,ci,ky,kx] · dy[n,co,oy,ox] over the (oy, ox) that read (iy, ix)
func conv2dBackwardInput(_ dx: UnsafeMutablePointer<Float>, _ dxs: Shape, _ dy: UnsafePointer<Float>,
                         _ w: UnsafePointer<Float>, _ dys: Shape, _ c: Conv2D) {
    let (n, ci, h, wd) = dxs.nchw
    let (_, co, ho, wo) = dys.nchw
    let kh = c.kernelHeight, kw = c.kernelWidth
    parallelFor(n * ci) { job in
        let (image, ic) = job.quotientAndRemainder(dividingBy: ci)
        for iy in 0..<h {
            for ix in 0..<wd {
                var acc: Float = 0
                for oc in 0..<co {
                    for ky in 0..<kh {
                        let ty = iy + c.padTop - ky
                        guard ty >= 0 && ty % c.stride == 0 && ty / c.stride < ho else { continue }
                        for kx in 0..<kw {
                            let tx = ix + c.padLeft - kx
                            guard tx >= 0 && tx % c.stride == 0 && tx / c.stride < wo else { continue }
                            acc += w[((oc * ci + ic) * kh + ky) * kw + kx]
                                 * dy[((image * co + oc) * ho + ty / c.stride) * wo + tx / c.stride]
                        }
                    }
                }
                dx[((image * ci + ic) * h + iy) * wd + ix] = acc
            }
        }
    }
}

/// dw[Co,Ci,kh,kw] = Σ_{n,oy,ox} dy[n,co,oy,ox] · x[n,ci, oy·s+ky−pt, ox·s+kx−pl]
func conv2dBackwardWeight(_ dw: UnsafeMutablePointer<Float>, _ dws: Shape, _ dy: UnsafePointer<Float>,
                          _ x: UnsafePointer<Float>, _ dys: Shape, _ xs: Shape, _ c: Conv2D) {
    let (n, ci, h, wd) = xs.nchw
    let (_, co, ho, wo) = dys.nchw
    let kh = c.kernelHeight, kw = c.kernelWidth
    parallelFor(co * ci) { job in
        let (oc, ic) = job.quotientAndRemainder(dividingBy: ci)
        for ky in 0..<kh {
            for kx in 0..<kw {
                var acc: Float = 0
                for image in 0..<n {
                    for oy in 0..<ho {
                        let iy = oy * c.stride + ky - c.padTop
                        guard iy >= 0 && iy < h else { continue }
                        for ox in 0..<wo {
                            let ix = ox * c.stride + kx - c.padLeft
                            guard ix >= 0 && ix < wd else { continue }
                            acc += dy[((image * co + oc) * ho + oy) * wo + ox] * x[((image * ci + ic) * h + iy) * wd + ix]
                        }
                    }
                }
                dw[((oc * ci + ic) * kh + ky) * kw + kx] = acc
            }
        }
    }
}

/// y[N,O] = b[O] + Σ_i x[N,I] · w[O,I]
func linearForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                   _ b: UnsafePointer<Float>, n: Int, inFeatures: Int, outFeatures: Int) {
    parallelFor(n) { row in
        for o in 0..<outFeatures {
            var acc = b[o]
            for i in 0..<inFeatures { acc += x[row * inFeatures + i] * w[o * inFeatures + i] }
            y[row * outFeatures + o] = acc
        }
    }
}

/// c[B,M,N] = alpha · Σ_k opA(a)[b,m,k] · opB(b)[b,k,n]
func matmul(_ c: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
            _ sa: Shape, _ sb: Shape, _ p: MatMul) {
    let batch = sa[0]
    let (m, k) = p.transposeA ? (sa[2], sa[1]) : (sa[1], sa[2])
    let n = p.transposeB ? sb[1] : sb[2]
    parallelFor(batch * m) { job in
        let (bi, i) = job.quotientAndRemainder(dividingBy: m)
        let aBase = bi * m * k, bBase = bi * k * n
        for j in 0..<n {
            var acc: Float = 0
            for kk in 0..<k {
                let av = p.transposeA ? a[aBase + kk * m + i] : a[aBase + i * k + kk]
                let bv = p.transposeB ? b[bBase + j * k + kk] : b[bBase + kk * n + j]
                acc += av * bv
            }
            c[(bi * m + i) * n + j] = p.alpha * acc
        }
    }
}
