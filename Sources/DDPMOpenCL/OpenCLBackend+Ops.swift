import DDPMCore

/// One launcher per op. The meaning of each op is the CPU reference's (Sources/DDPMCPU); the
/// kernels live in Kernels/<family>.cl under the names used here.
extension OpenCLBackend {
    public func run(_ op: Op, inputs: [TensorRef], outputs: [TensorRef], step: UInt32) throws {
        let x = inputs.map { ($0.buffer as! CLFloatBuffer).storage }
        let y = outputs.map { ($0.buffer as! CLFloatBuffer).storage }
        y.forEach { forgetDerived(from: $0) }  // outputs written into constant buffers
        let s = inputs.map(\.shape)
        let count = outputs.first?.shape.count ?? 0
        switch op {
        case .conv2d(let c):
            try conv2dForward(y[0], x[0], x[1], c.biasInput.map { x[$0] }, s[0], s[1], c,
                              addend: c.channelAddendInput.map { x[$0] }, residual: c.residualInput.map { x[$0] })
        case .conv2dBackwardInput(let c, _, _):
            try conv2dBackwardInput(y[0], outputs[0].shape, x[0], x[1], s[0], c)
        case .conv2dBackwardWeight(let c):
            try conv2dBackwardWeight(y[0], x[0], x[1], s[0], s[1], c)
        case .linear:
            let (n, i, o) = (s[0][0], s[0][1], s[1][0])
            try launchSpans("fill_channels", "elementwise.cl", elements: n * o, [.buffer(y[0]), .buffer(x[2]), .int(n * o), .int(1), .int(o)])
            try timedGEMM {
                try gemm.run(m: n, n: o, k: i, batch: 1,
                             a: GEMMOperand(buffer: x[0], batchStride: 0, rowStride: i, columnStride: 1),
                             b: GEMMOperand(buffer: x[1], batchStride: 0, rowStride: 1, columnStride: i),
                             c: GEMMOperand(buffer: y[0], batchStride: 0, rowStride: o, columnStride: 1),
                             accumulate: true)
            }
        case .matmul(let p):
            let (m, k) = p.transposeA ? (s[0][2], s[0][1]) : (s[0][1], s[0][2])
            try matmul(y[0], x[0], x[1], batch: s[0][0], m: m, n: p.transposeB ? s[1][1] : s[1][2], k: k, p)
        case .attention(let scale):
            try attentionForward(y[0], q: x[0], k: x[1], v: x[2], s[0], scale: scale)
        case .attentionBackward(let scale):
            try attentionBackward(dq: y[0], dk: y[1], dv: y[2], q: x[0], k: x[1], v: x[2], dout: x[3], s[0], scale: scale)
        case .groupNorm(let g):
            let (n, c) = (s[0][0], s[0][1])
            try launch("group_norm_forward", "group_norm.cl", count: n * g.groups, loops: true,
                       [.buffer(y[0]), .buffer(x[0]), .buffer(x[1]), .buffer(x[2]),
                        .int(g.groups), .int(c / g.groups), .int(count / (n * c)), .float(g.eps), .int(g.silu ? 1 : 0),
                        .int(n * g.groups)])
        case .groupNormBackward(let g):
            let (n, c) = (s[0][0], s[0][1])
            let partial = try scratch("group_norm_partial", floats: 2 * n * c)
            try launch("group_norm_backward_input", "group_norm.cl", count: n * g.groups, loops: true,
                       [.buffer(y[0]), .buffer(partial), .buffer(x[0]), .buffer(x[1]), .buffer(x[2]),
                        .buffer(g.silu ? x[3] : x[1]), .int(g.silu ? 1 : 0),
                        .int(g.groups), .int(c / g.groups), .int(count / (n * c)), .float(g.eps), .int(n * g.groups)])
            try launch("group_norm_backward_affine", "group_norm.cl", count: c, loops: true,
                       [.buffer(y[1]), .buffer(y[2]), .buffer(partial), .int(n), .int(c)])
        case .silu:
            try launchSpans("silu_forward", "silu.cl", elements: count, [.buffer(y[0]), .buffer(x[0]), .int(count)])
        case .relu:
            try launchSpans("relu_forward", "pooling.cl", elements: count, [.buffer(y[0]), .buffer(x[0]), .int(count)])
        case .siluBackward:
            try launchSpans("silu_backward", "silu.cl", elements: count, [.buffer(y[0]), .buffer(x[0]), .buffer(x[1]), .int(count)])
        case .softmax:
            try softmaxForward(y[0], x[0], rows: count / s[0].dims.last!, length: s[0].dims.last!)
        case .softmaxBackward:
            try softmaxBackward(y[0], y: x[0], dy: x[1], rows: count / s[0].dims.last!, length: s[0].dims.last!)
        case .add:
            try launchSpans("add", "elementwise.cl", elements: count, [.buffer(y[0]), .buffer(x[0]), .buffer(x[1]), .int(count)])
        case .mul:
            try launchSpans("mul", "elementwise.cl", elements: count, [.buffer(y[0]), .buffer(x[0]), .buffer(x[1]), .int(count)])
        case .scale(let f):
            try launchSpans("scale", "elementwise.cl", elements: count, [.buffer(y[0]), .buffer(x[0]), .float(f), .int(count)])
        case .reshape:
            try launchSpans("copy", "elementwise.cl", elements: count, [.buffer(y[0]), .buffer(x[0]), .int(count)])
        case .addChannels:
            let (_, _, h, w) = s[0].nchw
            try launchSpans("add_channels", "elementwise.cl", elements: count,
                       [.buffer(y[0]), .buffer(x[0]), .buffer(x[1]), .int(count), .int(h * w)])
        case .sumToChannels(let keepBatch):
            let (n, c, h, w) = s[0].nchw
            if keepBatch {
                try launch("sum_planes", "elementwise.cl", count: n * c, loops: true,
                           [.buffer(y[0]), .buffer(x[0]), .int(n * c), .int(h * w)])
            } else {
                try launch("sum_channels", "elementwise.cl", count: c, loops: true,
                           [.buffer(y[0]), .buffer(x[0]), .int(n), .int(c), .int(h * w)])
            }
        case .concatChannels:
            let (_, ca, h, w) = s[0].nchw
            try launchSpans("concat_channels", "elementwise.cl", elements: count,
                       [.buffer(y[0]), .buffer(x[0]), .buffer(x[1]), .int(ca), .int(s[1][1]), .int(h * w), .int(count)])
        case .sliceChannels(let start, let n):
            let (_, c, h, w) = s[0].nchw
            try launchSpans("slice_channels", "elementwise.cl", elements: count,
                       [.buffer(y[0]), .buffer(x[0]), .int(c), .int(start), .int(n), .int(h * w), .int(count)])
        case .sliceChannelsBackward(let start, let total):
            let (_, c, h, w) = s[0].nchw
            try launchSpans("slice_channels_backward", "elementwise.cl", elements: count,
                       [.buffer(y[0]), .buffer(x[0]), .int(c), .int(start), .int(total), .int(h * w), .int(count)])
        case .upsampleNearest2x:
            let (n, c, h, w) = s[0].nchw
            try launchSpans("upsample_nearest2x", "elementwise.cl", elements: n * c * h, unit: 4 * w,
                            [.buffer(y[0]), .buffer(x[0]), .int(h), .int(w), .int(n * c * h)])
        case .upsampleNearest2xBackward:
            let (n, c, h, w) = outputs[0].shape.nchw
            try launchSpans("upsample_nearest2x_backward", "elementwise.cl", elements: n * c * h, unit: 4 * w,
                            [.buffer(y[0]), .buffer(x[0]), .int(h), .int(w), .int(n * c * h)])
        case .timestepEmbedding(let e):
            try launch("timestep_embedding", "diffusion.cl", count: count,
                       [.buffer(y[0]), .buffer(x[0]), .int(e.dim), .int(e.flipSinToCos ? 1 : 0),
                        .float(e.freqShift), .float(e.maxPeriod), .int(count)])
        case .dropout(let d):
            try launch("dropout", "diffusion.cl", count: count,
                       [.buffer(y[0]), .buffer(x[0]), .float(d.probability), .float(1 / (1 - d.probability)),
                        .uint(UInt32(truncatingIfNeeded: d.seed)), .uint(UInt32(truncatingIfNeeded: d.seed >> 32)),
                        .uint(RandomStream.dropoutBase + d.stream), .uint(step), .int(count),
                        .uint(d.firstImage), .int(count / s[0][0])])
        case .mse(let weighted):
            let n = s[0][0]
            let partial = try scratch("mse_partial", floats: n)
            try launch("mse_per_image", "diffusion.cl", count: n, loops: true,
                       [.buffer(partial), .buffer(x[0]), .buffer(x[1]), .buffer(weighted ? x[2] : x[0]),
                        .int(weighted ? 1 : 0), .int(s[0].count / n), .int(n)])
            try launch("mse_finish", "diffusion.cl", count: 1, loops: true, [.buffer(y[0]), .buffer(partial), .int(n)])
        case .mseBackward(let weighted):
            let n = s[0][0]
            try launch("mse_backward", "diffusion.cl", count: count,
                       [.buffer(y[0]), .buffer(x[0]), .buffer(x[1]), .buffer(weighted ? x[2] : x[0]),
                        .int(weighted ? 1 : 0), .buffer(x[weighted ? 3 : 2]), .int(count / n), .int(count)])
        case .qSample(let q):
            let prediction: Int
            switch q.prediction { case .epsilon: prediction = 0; case .sample: prediction = 1; case .v: prediction = 2 }
            // Elements per work-item: a multiple of 4 (one Philox block gives 4 normals); CPUs 256, GPUs 4.
            let per = count / s[0][0], span = max(4, spanElements / 64 * 4)
            try launch("q_sample", "diffusion.cl", count: s[0][0] * ((per + span - 1) / span), loops: true,
                       [.buffer(y[0]), .buffer(y[1]), .buffer(y[2]), .buffer(y[3]), .buffer(x[0]), .buffer(x[1]),
                        .int(q.timesteps), .int(prediction),
                        .uint(UInt32(truncatingIfNeeded: q.seed)), .uint(UInt32(truncatingIfNeeded: q.seed >> 32)),
                        .uint(q.firstImage), .uint(step), .int(per), .int(count), .int(span), .float(q.offsetNoise), .int(per / s[0][1])])
        case .vlbTerm(let p):
            let n = s[0][0]
            let partial = try scratch("vlb_partial", floats: n)
            try launch("vlb_term_per_image", "vlb_term.cl", count: n, loops: true,
                       [.buffer(partial), .buffer(x[0]), .buffer(x[1]), .buffer(x[2]), .buffer(x[3]), .buffer(x[4]), .buffer(x[5]),
                        .int(p.timesteps), .int(s[0].count / n), .int(n)])
            try launch("vlb_term_finish", "vlb_term.cl", count: 1, loops: true, [.buffer(y[0]), .buffer(partial), .float(p.scale), .int(n)])
        case .vlbTermBackward(let p):
            try launch("vlb_term_backward", "vlb_term.cl", count: count,
                       [.buffer(y[0]), .buffer(x[0]), .buffer(x[1]), .buffer(x[2]), .buffer(x[3]), .buffer(x[4]), .buffer(x[5]),
                        .buffer(x[6]), .float(p.scale), .int(p.timesteps), .int(count / s[0][0]), .int(count)])
        case .samplerStep(let p):
            try launch("sampler_step", "diffusion.cl", count: count,
                       [.buffer(y[0]), .buffer(x[0]), .buffer(x[1]),
                        .float(p.kx), .float(p.km), .float(p.clip), .float(p.ex), .float(p.em),
                        .float(p.p0), .float(p.pe), .float(p.px), .float(p.sigma),
                        .uint(UInt32(truncatingIfNeeded: p.seed)), .uint(UInt32(truncatingIfNeeded: p.seed >> 32)),
                        .uint(p.firstImage), .uint(step), .int(count / s[0][0]), .int(count),
                        .int(p.learnedVariance ? 1 : 0), .float(p.minLog), .float(p.maxLog), .buffer(p.learnedVariance ? x[2] : x[0])])
        case .solverUpdate(let u):
            let c = u.c + [Float](repeating: 0, count: 3 - u.c.count)
            let d = (0..<3).map { k in k < u.c.count ? x[1 + k] : x[1] }
            try launch("solver_update", "diffusion.cl", count: count,
                       [.buffer(y[0]), .buffer(x[0]), .buffer(d[0]), .buffer(d[1]), .buffer(d[2]), .int(u.c.count),
                        .float(u.cx), .float(c[0]), .float(c[1]), .float(c[2]), .float(u.sigma),
                        .uint(UInt32(truncatingIfNeeded: u.seed)), .uint(UInt32(truncatingIfNeeded: u.seed >> 32)),
                        .uint(u.firstImage), .uint(step), .int(count / s[0][0]), .int(count)])
        case .dynamicThreshold(let ratio, let maxValue):
            let images = s[0][0]
            try launch("dynamic_threshold", "diffusion.cl", count: images, loops: true,
                       [.buffer(y[0]), .buffer(x[0]), .float(ratio), .float(maxValue), .int(count / images), .int(images)])
        case .gradNorm(let maxNorm):
            let lanes = 64
            let partials = try scratch("grad_norm_partials", floats: inputs.count * lanes)
            for (slot, g) in x.enumerated() {
                try launch("sum_squares", "optimizer.cl", count: lanes, loops: true,
                           [.buffer(partials), .buffer(g), .int(s[slot].count), .int(slot), .int(lanes)])
            }
            try launch("grad_norm_finish", "optimizer.cl", count: 1, loops: true,
                       [.buffer(y[0]), .buffer(partials), .int(inputs.count * lanes), .float(maxNorm)])
        case .adamStep(let a):
            let c = AdamCoefficients(a)
            try launch("adam_step", "optimizer.cl", count: s[0].count,
                       [.buffer(y[0]), .buffer(y[1]), .buffer(y[2]), .buffer(x[0]), .buffer(x[1]),
                        .float(c.decay), .float(c.oneMinusBeta1), .float(c.oneMinusBeta2), .float(a.beta2),
                        .float(c.stepSize), .float(c.biasCorrection2Sqrt), .float(a.eps), .int(s[0].count)])
        case .emaUpdate(let rate):
            try launch("ema_update", "optimizer.cl", count: s[0].count,
                       [.buffer(y[0]), .buffer(x[0]), .float(rate), .int(s[0].count)])
        case .accumulate(let scale, let reset):
            try launch("accumulate", "optimizer.cl", count: s[0].count,
                       [.buffer(y[0]), .buffer(x[1]), .float(scale), .int(reset ? 1 : 0), .int(s[0].count)])
        case .globalAveragePool:
            let (n, c, h, w) = s[0].nchw
            try launch("global_average_pool", "classifier.cl", count: n * c, loops: true,
                       [.buffer(y[0]), .buffer(x[0]), .int(n * c), .int(h * w)])
        case .globalAveragePoolBackward(let h, let w):
            try launch("global_average_pool_backward", "classifier.cl", count: count,
                       [.buffer(y[0]), .buffer(x[0]), .int(count), .int(h * w)])
        case .crossEntropy:
            let (n, k) = (s[0][0], s[0][1])
            let partial = try scratch("cross_entropy_partial", floats: n)
            try launch("cross_entropy_rows", "classifier.cl", count: n, loops: true,
                       [.buffer(partial), .buffer(x[0]), .buffer(x[1]), .int(n), .int(k)])
            try launch("cross_entropy_finish", "classifier.cl", count: 1, loops: true, [.buffer(y[0]), .buffer(partial), .int(n)])
        case .crossEntropyBackward:
            let (n, k) = (s[0][0], s[0][1])
            try launch("cross_entropy_backward", "classifier.cl", count: n, loops: true,
                       [.buffer(y[0]), .buffer(x[0]), .buffer(x[1]), .buffer(x[2]), .int(n), .int(k)])
        case .maxPool2d(let p), .averagePool2d(let p):
            let (n, c, h, w) = s[0].nchw
            let (ho, wo) = p.outputSize(height: h, width: w)
            var average = 0
            if case .averagePool2d = op { average = 1 }
            try launch("pool2d", "pooling.cl", count: n * c * ho, loops: true,
                       [.buffer(y[0]), .buffer(x[0]), .int(h), .int(w), .int(ho), .int(wo), .int(p.kernel), .int(p.stride),
                        .int(p.padding), .int(average), .int(n * c * ho)])
        case .resizeBilinear(let ho, let wo):
            let (n, c, h, w) = s[0].nchw
            try launch("resize_bilinear", "pooling.cl", count: n * c * ho, loops: true,
                       [.buffer(y[0]), .buffer(x[0]), .int(h), .int(w), .int(ho), .int(wo), .int(n * c * ho)])
        case .embedding:
            try launch("embedding_forward", "embedding.cl", count: count,
                       [.buffer(y[0]), .buffer(x[0]), .buffer(x[1]), .int(s[0][0]), .int(s[0][1]), .int(count)])
        case .embeddingBackward:
            try launch("embedding_backward", "embedding.cl", count: count, loops: true,
                       [.buffer(y[0]), .buffer(x[0]), .buffer(x[1]), .int(s[0][0]), .int(s[0][1]), .int(count)])
        }
    }
}
