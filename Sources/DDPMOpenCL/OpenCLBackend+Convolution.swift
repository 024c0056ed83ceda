import DDPMCore
import Foundation

/// What a convolution's output pass adds (Conv2D's epilogue): `offsets` per output channel (the
/// bias: stride 0) or per image and channel (bias + t: stride Co), and a residual of the output's
/// shape. Every forward path (direct 3×3, Winograd, im2col + GEMM, 1×1) adds it as it stores.
struct ConvEpilogue {
    var offsets: CLBuffer?
    var offsetStride = 0
    var residual: CLBuffer?

    static let none = ConvEpilogue()

    /// offsets, has_offsets, offset stride, residual, has_residual; `unused` stands in for an absent buffer.
    func arguments(unused: CLBuffer) -> [CLArgument] {
        [.buffer(offsets ?? unused), .int(offsets == nil ? 0 : 1), .int(offsetStride), .buffer(residual ?? unused), .int(residual == nil ? 0 : 1)]
    }
}

/// Convolutions as im2col + GEMM. 1×1 stride-1 unpadded convolutions skip im2col. The im2col
/// buffer covers a chunk of images at a time so its size stays bounded, with the chunk's images side
/// by side in each row, so that one GEMM covers the chunk: with per-image GEMMs, an 8×8 or 4×4 layer
/// gave the GEMM 64 or 16 columns, a fraction of a CPU micro-tile's 32 or 64 (measured on a 2-core
/// AVX-512 EPYC, `cifar10` at batch 16: 150–380 GFLOP/s for those layers against 490 for 32×32).
/// The chunks of one convolution reuse the weights' packed panels (`reusePackedA`).
extension OpenCLBackend {
    /// The epilogue of a convolution with bias `b`, addend t[N, Co] and residual `r`: with an addend,
    /// b + t is summed first into a [N, Co] table (a launch of N·Co work-items).
    func convEpilogue(bias b: CLBuffer?, addend t: CLBuffer?, residual r: CLBuffer?, n: Int, cout: Int) throws -> ConvEpilogue {
        guard let t else { return ConvEpilogue(offsets: b, offsetStride: 0, residual: r) }
        return ConvEpilogue(offsets: try perImageOffsets(bias: b, addend: t, n: n, cout: cout), offsetStride: cout, residual: r)
    }

    /// off[n][co] = (b[co]) + (t[n][co]).
    private func perImageOffsets(bias b: CLBuffer?, addend t: CLBuffer?, n: Int, cout: Int) throws -> CLBuffer {
        let offsets = try scratch("conv offsets", floats: n * cout)
        try launch("conv_offsets", "elementwise.cl", count: n * cout,
                   [.buffer(offsets), .buffer(b ?? offsets), .int(b == nil ? 0 : 1), .buffer(t ?? offsets), .int(t == nil ? 0 : 1),
                    .int(cout), .int(n * cout)])
        return offsets
    }

    /// Floats of im2col scratch per chunk (at least one image), from the profile. CPUs: 4 MiB, small
    /// enough that the column buffer stays in cache between im2col (or the GEMM that writes it) and
    /// the GEMM's packing (or col2im) that reads it; measured on PoCL, whole-batch columns (up to
    /// 226 MB) were slower. GPUs: 256 MiB, so that each launch has plenty of work-items.
    private var columnBudget: Int { max(1, baseProfile.columnFloats) }

    private func isPointwise(_ c: Conv2D) -> Bool {
        c.kernelHeight == 1 && c.kernelWidth == 1 && c.stride == 1 && c.padTop == 0 && c.padLeft == 0 && c.padBottom == 0 && c.padRight == 0
    }

    /// Image chunks [(first, count)] whose im2col buffers fit the budget.
    private func chunks(images: Int, columnFloats: Int) -> [(first: Int, count: Int)] {
        let per = max(1, min(images, columnBudget / max(columnFloats, 1)))
        return stride(from: 0, to: images, by: per).map { ($0, min(per, images - $0)) }
    }

    /// col[Ci·k·k][row] from the chunk's images; columns past the chunk's pixels are zeros.
    private func im2col(_ col: CLBuffer, _ x: CLBuffer, first: Int, count: Int, _ xs: Shape, _ c: Conv2D, row: Int) throws {
        let (_, ci, h, w) = xs.nchw
        let (ho, wo) = c.outputSize(height: h, width: w)
        let items = count * ci * c.kernelHeight
        try launch("im2col", "im2col.cl", count: items, loops: true,
                   [.buffer(col), .buffer(x), .int(first), .int(ci), .int(h), .int(w), .int(c.kernelHeight), .int(c.kernelWidth), .int(c.stride),
                    .int(c.padTop), .int(c.padLeft), .int(ho), .int(wo), .int(row), .int(items)])
    }

    /// y[N,Co,Ho,Wo] = (r +) b (+ t) + W[Co, Ci·k·k] · col[Ci·k·k, chunk images·Ho·Wo], back in image order
    func conv2dForward(_ y: CLBuffer, _ x: CLBuffer, _ w: CLBuffer, _ b: CLBuffer?, _ xs: Shape, _ ws: Shape,
                       _ c: Conv2D, addend t: CLBuffer? = nil, residual r: CLBuffer? = nil) throws {
        let (n, ci, h, wd) = xs.nchw
        let co = ws[0], k = ci * c.taps
        let (ho, wo) = c.outputSize(height: h, width: wd)
        let p = ho * wo
        let tuningLayer = isDirect3x3Shape(c) && Self.isConv3x3TuningLayer(inputChannels: ci, flops: 2.0 * Double(n * co * p) * Double(k))
        if tuningLayer, let tuner = conv3x3Tuner,
           let layers = conv3x3SearchLayers(channels: (ci, co), h: h, width: wd), tuner.pending(layers) {
            try withSearchesDetached { try searchConv3x3(tuner, layers: layers, x: x, w: w, xs: xs, ws: ws, c: c) }
        }
        if tuningLayer, let tuner = conv3x3LayerTuner, let tiles = conv3x3Tiles {
            let key = Conv3x3LayerPlan.key(channels: (ci, co), h: h, width: wd, tiles: tiles)
            if conv3x3LayerPlans[key] == nil {
                try withSearchesDetached { try searchConv3x3Layer(tuner, key: key, x: x, w: w, xs: xs, ws: ws, c: c) }
            }
        }
        func epilogue() throws -> ConvEpilogue { try convEpilogue(bias: b, addend: t, residual: r, n: n, cout: co) }
        switch conv3x3Method(c, channels: (ci, co), h: h, width: wd) {
        case .winograd4: return try conv3x3Winograd(y, x, w, try epilogue(), n: n, cin: ci, cout: co, h: h, width: wd, flip: false)
        case .winograd2x2: return try conv3x3Winograd2x2(y, x, w, try epilogue(), n: n, cin: ci, cout: co, h: h, width: wd, flip: false)
        case .direct: return try conv3x3Direct(y, x, w, try epilogue(), n: n, cin: ci, cout: co, h: h, width: wd, flip: false)
        case .im2col: break
        }
        let weights = GEMMOperand(buffer: w, batchStride: 0, rowStride: k, columnStride: 1)
        if isPointwise(c) {
            // y starts as the epilogue (r + offsets, or the offsets), and the GEMM accumulates onto it.
            if r != nil || t != nil {
                let offsets = try perImageOffsets(bias: b, addend: t, n: n, cout: co)
                if let r {
                    try launchSpans("add_channels", "elementwise.cl", elements: n * co * p,
                                    [.buffer(y), .buffer(r), .buffer(offsets), .int(n * co * p), .int(p)])
                } else {
                    try launchSpans("fill_channels", "elementwise.cl", elements: n * co * p,
                                    [.buffer(y), .buffer(offsets), .int(n * co * p), .int(p), .int(n * co)])
                }
            } else if let b {
                try launchSpans("fill_channels", "elementwise.cl", elements: n * co * p,
                                [.buffer(y), .buffer(b), .int(n * co * p), .int(p), .int(co)])
            }
            try timedGEMM {
                try gemm.run(m: co, n: p, k: ci, batch: n, a: weights,
                             b: GEMMOperand(buffer: x, batchStride: ci * p, rowStride: p, columnStride: 1),
                             c: GEMMOperand(buffer: y, batchStride: co * p, rowStride: p, columnStride: 1),
                             accumulate: b != nil || t != nil || r != nil)
            }
            return
        }
        let outputEpilogue = try epilogue()
        for chunk in chunks(images: n, columnFloats: k * p) {
            let row = gemm.inPlaceWidth(m: co, n: chunk.count * p, k: k)
            let col = try scratch("im2col", floats: k * row)
            let rows = try scratch("conv2d rows", floats: co * row)
            try im2col(col, x, first: chunk.first, count: chunk.count, xs, c, row: row)
            try timedGEMM {
                try gemm.run(m: co, n: row, k: k, batch: 1, a: weights,
                             b: GEMMOperand(buffer: col, batchStride: 0, rowStride: row, columnStride: 1),
                             c: GEMMOperand(buffer: rows, batchStride: 0, rowStride: row, columnStride: 1),
                             reusePackedA: chunk.first > 0)
            }
            try launch("rows_to_images", "im2col.cl", count: chunk.count * co, loops: true,
                       [.buffer(y), .buffer(rows)] + outputEpilogue.arguments(unused: rows)
                        + [.int(chunk.first), .int(co), .int(p), .int(row), .int(chunk.count * co)])
        }
    }

    /// The chunk's images of `x` [N, channels, P] as rows[channels][row]: chunk images · P columns, then zeros.
    private func imagesToRows(_ x: CLBuffer, first: Int, count: Int, channels: Int, p: Int, row: Int) throws -> CLBuffer {
        let rows = try scratch("conv2d rows", floats: channels * row)
        try launch("images_to_rows", "im2col.cl", count: count * channels, loops: true,
                   [.buffer(rows), .buffer(x), .int(first), .int(channels), .int(p), .int(row), .int(count * channels)])
        return rows
    }

    /// dcol = Wᵀ · dy over a chunk's pixels, then col2im gathers it into dx.
    func conv2dBackwardInput(_ dx: CLBuffer, _ dxs: Shape, _ dy: CLBuffer, _ w: CLBuffer, _ dys: Shape,
                             _ c: Conv2D) throws {
        let (n, ci, h, wd) = dxs.nchw
        let (_, co, ho, wo) = dys.nchw
        let k = ci * c.taps, p = ho * wo
        switch conv3x3Method(c, channels: (ci, co), h: h, width: wd) {
        case .winograd4: return try conv3x3Winograd(dx, dy, w, .none, n: n, cin: co, cout: ci, h: h, width: wd, flip: true)
        case .winograd2x2: return try conv3x3Winograd2x2(dx, dy, w, .none, n: n, cin: co, cout: ci, h: h, width: wd, flip: true)
        case .direct: return try conv3x3Direct(dx, dy, w, .none, n: n, cin: co, cout: ci, h: h, width: wd, flip: true)
        case .im2col: break
        }
        let weightsT = GEMMOperand(buffer: w, batchStride: 0, rowStride: 1, columnStride: k)
        if isPointwise(c) {
            try timedGEMM {
                try gemm.run(m: ci, n: p, k: co, batch: n, a: weightsT,
                             b: GEMMOperand(buffer: dy, batchStride: co * p, rowStride: p, columnStride: 1),
                             c: GEMMOperand(buffer: dx, batchStride: ci * p, rowStride: p, columnStride: 1))
            }
            return
        }
        for chunk in chunks(images: n, columnFloats: k * p) {
            let row = gemm.inPlaceWidth(m: k, n: chunk.count * p, k: co)
            let col = try scratch("im2col", floats: k * row)
            let rows = try imagesToRows(dy, first: chunk.first, count: chunk.count, channels: co, p: p, row: row)
            try timedGEMM {
                try gemm.run(m: k, n: row, k: co, batch: 1, a: weightsT,
                             b: GEMMOperand(buffer: rows, batchStride: 0, rowStride: row, columnStride: 1),
                             c: GEMMOperand(buffer: col, batchStride: 0, rowStride: row, columnStride: 1),
                             reusePackedA: chunk.first > 0)
            }
            let items = chunk.count * ci
            try launch("col2im", "im2col.cl", count: items, loops: true,
                       [.buffer(dx), .buffer(col), .int(chunk.first), .int(ci), .int(h), .int(wd), .int(c.kernelHeight), .int(c.kernelWidth),
                        .int(c.stride), .int(c.padTop), .int(c.padLeft), .int(ho), .int(wo), .int(row), .int(items)])
        }
    }

    /// dW[Co, Ci·k·k] = Σ_chunks dy_chunk · col_chunkᵀ
    func conv2dBackwardWeight(_ dw: CLBuffer, _ dy: CLBuffer, _ x: CLBuffer, _ dys: Shape, _ xs: Shape,
                              _ c: Conv2D) throws {
        let (n, ci, _, _) = xs.nchw
        let (_, co, ho, wo) = dys.nchw
        let k = ci * c.taps, p = ho * wo
        switch conv3x3Method(c, channels: (ci, co), h: ho, width: wo, weightGradient: true) {
        case .winograd4: return try conv3x3WinogradGradWeight(dw, dy, x, n: n, cin: ci, cout: co, h: ho, width: wo)
        case .direct: return try conv3x3GradWeight(dw, dy, x, n: n, cin: ci, cout: co, h: ho, width: wo)
        case .winograd2x2, .im2col: break  // the fused kernel has no weight gradient (canRun)
        }
        let out = GEMMOperand(buffer: dw, batchStride: 0, rowStride: k, columnStride: 1)
        if isPointwise(c) {
            try timedGEMM {
                try gemm.run(m: co, n: ci, k: p, batch: n,
                             a: GEMMOperand(buffer: dy, batchStride: co * p, rowStride: p, columnStride: 1),
                             b: GEMMOperand(buffer: x, batchStride: ci * p, rowStride: 1, columnStride: p),
                             c: out, sumOverBatch: true)
            }
            return
        }
        for chunk in chunks(images: n, columnFloats: k * p) {
            let pixels = chunk.count * p
            let col = try scratch("im2col", floats: k * pixels)
            // B is colᵀ here (its columns are col's rows), which the GEMM packs: no padding.
            try im2col(col, x, first: chunk.first, count: chunk.count, xs, c, row: pixels)
            let rows = try imagesToRows(dy, first: chunk.first, count: chunk.count, channels: co, p: p, row: pixels)
            try timedGEMM {
                try gemm.run(m: co, n: k, k: pixels, batch: 1,
                             a: GEMMOperand(buffer: rows, batchStride: 0, rowStride: pixels, columnStride: 1),
                             b: GEMMOperand(buffer: col, batchStride: 0, rowStride: 1, columnStride: pixels),
                             c: out, accumulate: chunk.first > 0)
            }
        }
    }
}
