import DDPMCore

/// Winograd F(2×2, 3×3) fused into one kernel (Kernels/winograd2x2.cl) for the stride-1 3×3 layers
/// that F(4×4, 3×3) leaves out (fewer than `winogradMinChannels` channels, or its profile flag off):
/// the forward pass and the input gradient, with 4/9 of the direct kernel's multiply-adds and no
/// transformed tensors in memory. The profile's `conv3x3.winograd2x2` turns it on; the 3×3 search
/// times it. The weight gradient stays direct.
extension OpenCLBackend {
    /// Planes narrower than this many tiles along a row (15 columns) keep the direct kernel or
    /// im2col: the kernel's vector lanes run along a tile row, and 8 is its narrowest vector.
    static let winograd2x2MinTiles = 8

    func usesWinograd2x2(_ c: Conv2D, width: Int) -> Bool {
        guard let tiles = conv3x3Tiles, tiles.winograd2x2, isDirect3x3Shape(c) else { return false }
        return (width + 1) / 2 >= Self.winograd2x2MinTiles
    }

    /// y[N,Cout,H,W] = (epilogue) + conv3x3(x[N,Cin,H,W]) with W as [Cout][Cin][3][3]; with `flip`, W is
    /// [Cin][Cout][3][3] and is used transposed and flipped (the input gradient).
    func conv3x3Winograd2x2(_ y: CLBuffer, _ x: CLBuffer, _ w: CLBuffer, _ epilogue: ConvEpilogue,
                            n: Int, cin: Int, cout: Int, h: Int, width: Int, flip: Bool) throws {
        let plan = Winograd2x2Plan(n: n, h: h, width: width, vw: conv3x3Tiles!.vw)
        let options = "-DVW=\(plan.vw) -DCOB=\(plan.cob) -DNB=\(plan.nb)"
        let xp = try scratch("winograd2x2 padded input", floats: n * cin * plan.planeFloats)
        try launch("winograd2_pad", "winograd2x2.cl", options: options, count: n * cin * plan.hp,
                   [.buffer(xp), .buffer(x), .int(h), .int(width), .int(plan.hp), .int(plan.half), .int(n * cin * plan.hp)])
        let copad = (cout + plan.cob - 1) / plan.cob * plan.cob
        let u = try scratch("winograd2x2 weights", floats: 16 * cin * copad)
        try launch("winograd2_weights", "winograd2x2.cl", options: options, count: cout * cin,
                   [.buffer(u), .buffer(w), .int(cin), .int(cout), .int(copad), .int(flip ? 1 : 0), .int(cout * cin)])
        let v = try scratch("winograd2x2 transformed input", floats: plan.workers * 16 * cin * plan.vw * plan.nb)
        try launchGrid("winograd2_forward", "winograd2x2.cl", options: options, global: [plan.workers],
                       [.buffer(y), .buffer(xp), .buffer(u), .buffer(v)] + epilogue.arguments(unused: u)
                        + [.int(cin), .int(cout), .int(copad), .int(h), .int(width), .int(plan.hp), .int(plan.half),
                           .int(plan.tilesY), .int(plan.xBlocks), .int(plan.jobs), .int(plan.workers)])
    }
}

/// The tiling of one fused F(2×2, 3×3) convolution: 2×2 output tiles in bands of vw along a tile
/// row (8-float vectors where a row has fewer than the profile's 16 tiles, so lanes are not left
/// idle), padded planes of hp rows stored as `half` even then `half` odd columns (one spare for the
/// loads shifted by a column), and `workers` work-items taking groups of `nb` bands in turn, each
/// with its own slice of transformed input (16·Ci·nb vectors: L1 or L2 sized).
struct Winograd2x2Plan {
    /// Bands (NB) × output channels (COB) per accumulator block: per input channel the products
    /// load NB transformed-input vectors and COB broadcast weights for NB·COB multiply-adds. With
    /// AVX-512's 32 vector registers (a profile 16 floats wide) 1 × 8, as measured on the Zen 4 where
    /// the kernel was written; with AVX2's 16, 2 × 6 (12 accumulators, 2 inputs and a weight): on a
    /// 2-core Zen 3, `small` b64 alternated four times, medians 1.756 against 1.846 s per training
    /// step and 0.490 against 0.533 s per sampling evaluation (2 × 4: 1.794 and 0.501).
    let nb: Int, cob: Int
    let vw: Int, tilesY: Int, xBlocks: Int, hp: Int, half: Int, jobs: Int, workers: Int
    var planeFloats: Int { hp * 2 * half }

    init(n: Int, h: Int, width: Int, vw profileWidth: Int) {
        let tilesX = (width + 1) / 2
        (nb, cob) = profileWidth >= 16 ? (1, 8) : (2, 6)
        vw = tilesX >= profileWidth ? profileWidth : 8
        tilesY = (h + 1) / 2
        xBlocks = (tilesX + vw - 1) / vw
        hp = 2 * tilesY + 2
        half = xBlocks * vw + 1
        jobs = n * tilesY * xBlocks
        // Enough work-items to balance two to a few dozen cores; each holds a scratch slice.
        workers = min((jobs + nb - 1) / nb, 64)
    }
}
