import DDPMCore

/// Winograd F(4×4, 3×3) for the stride-1 3×3 convolutions padded by 1 (Kernels/winograd.cl): the
/// forward pass and the input gradient (the same convolution of dy with the weights transposed and
/// flipped) as 36 batched GEMMs with a quarter of the direct kernel's multiply-adds, between an input
/// and an output transform; the weight gradient as 36 GEMMs of transformed inputs and transformed
/// output gradients summed over the tiles. The profile's `conv3x3.winograd` turns it on; the 3×3
/// search times it.
extension OpenCLBackend {
    /// Planes smaller than this (on either side) keep the direct kernel or im2col: a 4×4 plane is one
    /// tile per image, so the GEMMs get as few columns as there are images.
    public static let winogradMinPlane = 8

    func usesWinograd(_ c: Conv2D, h: Int, width: Int, channels: (Int, Int), weightGradient: Bool = false) -> Bool {
        guard let tiles = conv3x3Tiles, tiles.winograd, isDirect3x3Shape(c) else { return false }
        return winogradApplies(channels: channels, h: h, width: width, weightGradient: weightGradient)
    }

    /// Whether a stride-1 3×3 layer of these channels (in, out) and plane is one for Winograd.
    func winogradApplies(channels: (Int, Int), h: Int, width: Int, weightGradient: Bool = false) -> Bool {
        min(channels.0, channels.1) >= winogradMinChannels
            && min(h, width) >= (weightGradient ? winogradGradWeightMinPlane : Self.winogradMinPlane)
    }

    /// y[N,Cout,H,W] = (epilogue) + conv3x3(x[N,Cin,H,W]) with W as [Cout][Cin][3][3]; with `flip`, W is
    /// [Cin][Cout][3][3] and is used transposed and flipped (the input gradient).
    func conv3x3Winograd(_ y: CLBuffer, _ x: CLBuffer, _ w: CLBuffer, _ epilogue: ConvEpilogue,
                         n: Int, cin: Int, cout: Int, h: Int, width: Int, flip: Bool) throws {
        let plan = WinogradPlan(n: n, h: h, width: width, channels: max(cin, cout), vw: conv3x3Tiles!.vw, chunkFloats: winogradChunkFloats)
        let u = try scratch("winograd weights", floats: 36 * cout * cin)
        let transformed = GEMMOperand(buffer: u, batchStride: cout * cin, rowStride: cin, columnStride: 1)
        let packed = try transformWeights(w, into: transformed, cin: cin, cout: cout, flip: flip)
        let xp = try winogradPad(x, planes: n * cin, plan, into: "winograd padded input")
        let options = conv3x3Tiles!.buildOptions
        for first in stride(from: 0, to: n, by: plan.chunkImages) {
            let images = min(plan.chunkImages, n - first)
            let tiles = images * plan.perImage
            let v = try scratch("winograd input", floats: 36 * cin * tiles)
            let m = try scratch("winograd products", floats: 36 * cout * tiles)
            try transformTiles("winograd_input", into: v, from: xp, channels: cin, first: first, images: images, plan)
            try timedGEMM {
                try gemm.run(m: cout, n: tiles, k: cin, batch: 36, a: transformed,
                             b: GEMMOperand(buffer: v, batchStride: cin * tiles, rowStride: tiles, columnStride: 1),
                             c: GEMMOperand(buffer: m, batchStride: cout * tiles, rowStride: tiles, columnStride: 1),
                             reusePackedA: first > 0, packedA: packed)
            }
            try launchGrid("winograd_output", "winograd.cl", options: options, global: [images * plan.tilesY, cout],
                           [.buffer(y), .buffer(m)] + epilogue.arguments(unused: m) + [.int(first), .int(cout),
                            .int(h), .int(width), .int(plan.tilesY), .int(plan.tilesX), .int(tiles)])
        }
    }

    /// dw[Co,Ci,3,3] = Σ_n dy_n ⋆ x_n for the same convolutions: both transformed per tile
    /// (winograd_input, winograd_gradient_output), 36 GEMMs summed over the tiles of each chunk of
    /// images, then Gᵀ·dU·G.
    func conv3x3WinogradGradWeight(_ dw: CLBuffer, _ dy: CLBuffer, _ x: CLBuffer, n: Int, cin: Int, cout: Int, h: Int, width: Int) throws {
        let plan = WinogradPlan(n: n, h: h, width: width, channels: max(cin, cout), vw: conv3x3Tiles!.vw, chunkFloats: winogradChunkFloats)
        let options = conv3x3Tiles!.buildOptions
        let xp = try winogradPad(x, planes: n * cin, plan, into: "winograd padded input")
        let dyp = try winogradPad(dy, planes: n * cout, plan, into: "winograd padded gradient")
        let du = try scratch("winograd weight gradient", floats: 36 * cin * cout)
        for first in stride(from: 0, to: n, by: plan.chunkImages) {
            let images = min(plan.chunkImages, n - first)
            let tiles = images * plan.perImage
            let v = try scratch("winograd input", floats: 36 * cin * tiles)
            let dm = try scratch("winograd products", floats: 36 * cout * tiles)
            try transformTiles("winograd_input", into: v, from: xp, channels: cin, first: first, images: images, plan)
            try transformTiles("winograd_gradient_output", into: dm, from: dyp, channels: cout, first: first, images: images, plan)
            try timedGEMM {
                try gemm.run(m: cin, n: cout, k: tiles, batch: 36,
                             a: GEMMOperand(buffer: v, batchStride: cin * tiles, rowStride: tiles, columnStride: 1),
                             b: GEMMOperand(buffer: dm, batchStride: cout * tiles, rowStride: 1, columnStride: tiles),
                             c: GEMMOperand(buffer: du, batchStride: cin * cout, rowStride: cout, columnStride: 1),
                             accumulate: first > 0)
            }
        }
        try launch("winograd_gradient_weights", "winograd.cl", options: options, count: cin * cout,
                   [.buffer(dw), .buffer(du), .int(cin), .int(cout), .int(cin * cout)])
    }

    /// U = G·g·Gᵀ of every (output, input) channel pair into `u`; for constant weights (sampling)
    /// packed for the GEMM once and kept, and then returned without transforming again (u is left
    /// stale: the GEMM reads the kept panels).
    private func transformWeights(_ w: CLBuffer, into u: GEMMOperand, cin: Int, cout: Int, flip: Bool) throws -> PackedA? {
        let key = flip ? "winograd packed weights, flipped" : "winograd packed weights"
        if let kept = derived(from: w, key: key) as? PackedA, gemm.uses(kept, m: cout, k: cin, batch: 36) { return kept }
        try launch("winograd_weights", "winograd.cl", count: cout * cin,
                   [.buffer(u.buffer), .buffer(w), .int(cin), .int(cout), .int(flip ? 1 : 0), .int(cout * cin)])
        // A failed allocation only means no cache: this call goes on as for any weights.
        guard let bytes = gemm.packedBytes(m: cout, k: cin, batch: 36), canKeepDerived(bytes: bytes, from: w, key: key),
              let packed = try? gemm.pack(m: cout, k: cin, batch: 36, a: u) else { return nil }
        keepDerived(packed, bytes: bytes, from: w, key: key)
        return packed
    }

    /// `planes` planes of x padded for the transforms, with a vector's slack after the last plane
    /// (the kernels load whole vectors and drop the lanes past the last tile).
    private func winogradPad(_ x: CLBuffer, planes: Int, _ plan: WinogradPlan, into name: String) throws -> CLBuffer {
        try pad3x3(x, planes: planes, h: plan.h, width: plan.width, into: name, size: (plan.hp, plan.wp), slack: 2 * plan.vw)
    }

    /// winograd_input or winograd_gradient_output (the same arguments) over one chunk of images.
    private func transformTiles(_ kernel: String, into out: CLBuffer, from padded: CLBuffer, channels: Int,
                                first: Int, images: Int, _ plan: WinogradPlan) throws {
        try launchGrid(kernel, "winograd.cl", options: conv3x3Tiles!.buildOptions, global: [images * plan.tilesY, channels],
                       [.buffer(out), .buffer(padded), .int(first * channels * plan.hp * plan.wp), .int(channels),
                        .int(plan.hp), .int(plan.wp), .int(plan.tilesY), .int(plan.tilesX), .int(images * plan.perImage)])
    }
}

/// The tiling of one Winograd convolution: 4×4 output tiles, padded planes with a border of 1,
/// 4·tilesY + 2 rows and columns for whole groups of tiles per vector, and chunks of images whose
/// transformed floats (36 per tile and channel) fit the chunk budget, at least one image each.
struct WinogradPlan {
    let h: Int, width: Int, vw: Int
    let tilesY: Int, tilesX: Int, perImage: Int
    let hp: Int, wp: Int
    let chunkImages: Int

    init(n: Int, h: Int, width: Int, channels: Int, vw: Int, chunkFloats: Int) {
        (self.h, self.width, self.vw) = (h, width, vw)
        tilesY = (h + 3) / 4
        tilesX = (width + 3) / 4
        perImage = tilesY * tilesX
        let perVector = vw / 4
        hp = 4 * tilesY + 2
        wp = 4 * ((tilesX + perVector - 1) / perVector * perVector) + 2
        chunkImages = max(1, min(n, chunkFloats / (36 * channels * perImage)))
    }
}
