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
        let options = "-DVW=\(plan.vw) -DCOB=\(Winograd2x2Plan.cob)"
        let xp = try scratch("winograd2x2 padded input", floats: n * cin * plan.planeFloats)
        try launch("winograd2_pad", "winograd2x2.cl", options: options, count: n * cin * plan.hp,
                   [.buffer(xp), .buffer(x), .int(h), .int(width), .int(plan.hp), .int(plan.half), .int(n * cin * plan.hp)])
        let copad = (cout + Winograd2x2Plan.cob - 1) / Winograd2x2Plan.cob * Winograd2x2Plan.cob
        let u = try scratch("winograd2x2 weights", floats: 16 * cin * copad)
        try launch("winograd2_weights", "winograd2x2.cl", options: options, count: cout * cin,
                   [.buffer(u), .buffer(w), .int(cin), .int(cout), .int(copad), .int(flip ? 1 : 0), .int(cout * cin)])
        let v = try scratch("winograd2x2 transformed input", floats: plan.workers * 16 * cin * plan.vw)
        try launchGrid("winograd2_forward", "winograd2x2.cl", options: options, global: [plan.workers],
                       [.buffer(y), .buffer(xp), .buffer(u), .buffer(v)] + epilogue.arguments(unused: u)
                        + [.int(cin), .int(cout), .int(copad), .int(h), .int(width), .int(plan.hp), .int(plan.half),
                           .int(plan.tilesY), .int(plan.xBlocks), .int(plan.jobs), .int(plan.workers)])
    }
}

/// The tiling of one fused F(2×2, 3×3) convolution: 2×2 output tiles in bands of vw along a tile
/// row (8-float vectors where a row has fewer than the profile's 16 tiles, so lanes are not left
/// idle), padded planes of hp rows stored as `half` even then `half` odd columns (one spare for the
/// loads shifted by a column), and `workers` work-items taking the bands in turn, each with its own
/// slice of transformed input (16·Ci vectors: L1 or L2 sized).
struct Winograd2x2Plan {
    /// Output channels per accumulator block (COB): 8 vectors, fed by one transformed-input load
    /// and 8 broadcast weights per input channel.
    static let cob = 8
    let vw: Int, tilesY: Int, xBlocks: Int, hp: Int, half: Int, jobs: Int, workers: Int
    var planeFloats: Int { hp * 2 * half }

    init(n: Int, h: Int, width: Int, vw profileWidth: Int) {
        let tilesX = (width + 1) / 2
        vw = tilesX >= profileWidth ? profileWidth : 8
        tilesY = (h + 1) / 2
        xBlocks = (tilesX + vw - 1) / vw
        hp = 2 * tilesY + 2
        half = xBlocks * vw + 1
        jobs = n * tilesY * xBlocks
        // Enough work-items to balance two to a few dozen cores; each holds a scratch slice.
        workers = min(jobs, 64)
    }
}
