import DDPMCore

/// Op.attention on q, k, v [B, d, T]. CPU profiles run the fused kernels of Kernels/attention.cl,
/// which never write the [B, T, T] scores to memory (measured on a 2-core AVX-512 Xeon: the five
/// attention layers of `small` at 16×16 took about a quarter of a batch-64 training step as
/// GEMM + softmax + GEMM, most of it moving the 33 MB score matrices). The GPU profile keeps that
/// decomposition: its tiled GEMM is the fast path there, and the scores go through scratch.
extension OpenCLBackend {
    private var fusesAttention: Bool { baseProfile.defaultGEMM.variant == .cpu }

    /// Lane vectors per pass of attention.cl (QV): each broadcast feeds this many FMAs. Two
    /// measured 13.4–13.8 % of a `small` batch-64 training step against 15.9–16.4 % with one
    /// (`bench --profile`, alternated, 2-core AVX-512 Xeon).
    private var attentionLaneVectors: Int { 2 }

    /// Build options of attention.cl: the profile's CPU vector width, QV and the register blocks
    /// (QV·8 accumulators with 16-float vectors for AVX-512's 32 registers, QV·4 with 8-float
    /// vectors for AVX2's 16).
    private var attentionOptions: String {
        let vw = baseProfile.defaultGEMM.vw, block = vw >= 16 ? 8 : 4
        return "-DVW=\(vw) -DQV=\(attentionLaneVectors) -DAJB=\(block) -DADB=\(block)"
    }

    /// Work-items per batch entry: enough for every core when the batch is small, each taking the
    /// groups of QV·VW queries (or keys) split, split + splits, ...
    private func attentionSplits(batch: Int, tokens: Int) -> Int {
        let group = baseProfile.defaultGEMM.vw * attentionLaneVectors
        return max(1, min((tokens + group - 1) / group, (64 + batch - 1) / batch))
    }

    /// The per-work-item score slices: 2·QV·T vectors each.
    private func attentionScratch(items: Int, tokens: Int) throws -> CLBuffer {
        try scratch("attention scores", floats: items * 2 * attentionLaneVectors * tokens * baseProfile.defaultGEMM.vw)
    }

    func attentionForward(_ o: CLBuffer, q: CLBuffer, k: CLBuffer, v: CLBuffer, _ s: Shape, scale: Float) throws {
        let (batch, channels, t) = (s[0], s[1], s[2])
        guard fusesAttention else {
            let p = try attentionWeights(q: q, k: k, s, scale: scale)
            return try matmul(o, v, p, batch: batch, m: channels, n: t, k: t, MatMul(transposeB: true))
        }
        let splits = attentionSplits(batch: batch, tokens: t)
        try launchGrid("attention_forward", "attention.cl", options: attentionOptions, global: [batch * splits],
                       [.buffer(o), .buffer(q), .buffer(k), .buffer(v), .buffer(try attentionScratch(items: batch * splits, tokens: t)),
                        .int(channels), .int(t), .int(splits), .float(scale)])
    }

    func attentionBackward(dq: CLBuffer, dk: CLBuffer, dv: CLBuffer, q: CLBuffer, k: CLBuffer, v: CLBuffer, dout: CLBuffer,
                           _ s: Shape, scale: Float) throws {
        let (batch, channels, t) = (s[0], s[1], s[2])
        guard fusesAttention else {
            let p = try attentionWeights(q: q, k: k, s, scale: scale)
            let ds = try scratch("attention score gradient", floats: batch * t * t)
            try matmul(ds, dout, v, batch: batch, m: t, n: t, k: channels, MatMul(transposeA: true))  // dP
            try softmaxBackward(ds, y: p, dy: ds, rows: batch * t, length: t)                          // dS, in place
            try matmul(dq, k, ds, batch: batch, m: channels, n: t, k: t, MatMul(transposeB: true, alpha: scale))
            try matmul(dk, q, ds, batch: batch, m: channels, n: t, k: t, MatMul(alpha: scale))
            return try matmul(dv, dout, p, batch: batch, m: channels, n: t, k: t, MatMul())
        }
        let splits = attentionSplits(batch: batch, tokens: t)
        let work = try attentionScratch(items: batch * splits, tokens: t)
        let stats = try scratch("attention statistics", floats: batch * 2 * t)
        let tail: [CLArgument] = [.buffer(q), .buffer(k), .buffer(v), .buffer(dout), .buffer(work),
                                  .int(channels), .int(t), .int(splits), .float(scale)]
        try launchGrid("attention_backward_queries", "attention.cl", options: attentionOptions, global: [batch * splits],
                       [.buffer(dq), .buffer(stats)] + tail)
        try launchGrid("attention_backward_keys", "attention.cl", options: attentionOptions, global: [batch * splits],
                       [.buffer(dk), .buffer(dv), .buffer(stats)] + tail)
    }

    /// P = softmax(scale·qᵀk) [B, T, T] in scratch (the GPU path).
    private func attentionWeights(q: CLBuffer, k: CLBuffer, _ s: Shape, scale: Float) throws -> CLBuffer {
        let (batch, channels, t) = (s[0], s[1], s[2])
        let p = try scratch("attention weights", floats: batch * t * t)
        try matmul(p, q, k, batch: batch, m: t, n: t, k: channels, MatMul(transposeA: true, alpha: scale))
        try softmaxForward(p, p, rows: batch * t, length: t)
        return p
    }

    /// c[B, m, n] = alpha·op(a)·op(b), as Op.matmul.
    func matmul(_ c: CLBuffer, _ a: CLBuffer, _ b: CLBuffer, batch: Int, m: Int, n: Int, k: Int, _ p: MatMul) throws {
        try timedGEMM {
            try gemm.run(m: m, n: n, k: k, batch: batch,
                         a: GEMMOperand(buffer: a, batchStride: m * k, rowStride: p.transposeA ? 1 : k, columnStride: p.transposeA ? m : 1),
                         b: GEMMOperand(buffer: b, batchStride: k * n, rowStride: p.transposeB ? 1 : n, columnStride: p.transposeB ? k : 1),
                         c: GEMMOperand(buffer: c, batchStride: m * n, rowStride: n, columnStride: 1),
                         alpha: p.alpha)
        }
    }

    /// y = softmax over rows of `length` (in place when y is x).
    func softmaxForward(_ y: CLBuffer, _ x: CLBuffer, rows: Int, length: Int) throws {
        try launch("softmax_forward", "softmax.cl", count: rows, loops: true, [.buffer(y), .buffer(x), .int(rows), .int(length)])
    }

    /// dx = y·(dy − Σ dy·y) per row (in place when dx is dy).
    func softmaxBackward(_ dx: CLBuffer, y: CLBuffer, dy: CLBuffer, rows: Int, length: Int) throws {
        try launch("softmax_backward", "softmax.cl", count: rows, loops: true, [.buffer(dx), .buffer(y), .buffer(dy), .int(rows), .int(length)])
    }
}
