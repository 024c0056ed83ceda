import DDPMCore

/// Direct 3×3 convolutions (Kernels/conv3x3.cl) for the profile's `conv3x3` blocking: stride 1,
/// padding 1 on every side. The forward pass and the input gradient (the same convolution of dy with
/// transposed, flipped weights) skip im2col, col2im and the GEMM's packing.
extension OpenCLBackend {
    /// Whether `c` takes the direct path on this backend.
    /// The forward pass and the input gradient vectorise along image rows, so rows narrower than a
    /// vector would leave lanes idle (half of them at 8×8 with 16-float vectors): those layers take
    /// im2col + GEMM. (Measured on a 2-core AVX-512 Xeon: the same kernels built with 8-float vectors
    /// for the 8×8 layers of `small` were no faster in training and 4 % slower in sampling.) The weight
    /// gradient vectorises along rows where the width is a multiple of the vector (`gradRows`), or
    /// else along output channels.
    func usesDirect3x3(_ c: Conv2D, width: Int, channels: Int? = nil) -> Bool {
        guard let tiles = conv3x3Tiles, isDirect3x3Shape(c) else { return false }
        if let channels { return usesRowWeightGradient(width: width) || channels * 2 >= tiles.vw }
        return width >= tiles.vw
    }

    private func usesRowWeightGradient(width: Int) -> Bool {
        guard let tiles = conv3x3Tiles else { return false }
        return tiles.gradRows && width % tiles.vw == 0
    }

    func isDirect3x3Shape(_ c: Conv2D) -> Bool {
        c.kernelHeight == 3 && c.kernelWidth == 3 && c.stride == 1 && c.padTop == 1 && c.padLeft == 1 && c.padBottom == 1 && c.padRight == 1
    }

    /// y[N,Cout,H,W] = (epilogue) + conv3x3(x[N,Cin,H,W]) with W as [Cout][Cin][3][3]; with `flip`, W is
    /// [Cin][Cout][3][3] and is used transposed and flipped (the input gradient).
    func conv3x3Direct(_ y: CLBuffer, _ x: CLBuffer, _ w: CLBuffer, _ epilogue: ConvEpilogue,
                       n: Int, cin: Int, cout: Int, h: Int, width: Int, flip: Bool) throws {
        let tiles = conv3x3Tiles!
        let options = tiles.buildOptions
        let (hp, wp) = paddedPlane(h: h, width: width)
        let coBlocks = (cout + tiles.cob - 1) / tiles.cob
        let padded = try pad3x3(x, planes: n * cin, h: h, width: width, into: "conv3x3 input")
        let packed = try scratch("conv3x3 weights", floats: coBlocks * cin * 9 * tiles.cob)
        try launch("conv3x3_pack_weights", "conv3x3.cl", options: options, count: coBlocks, loops: true,
                   [.buffer(packed), .buffer(w), .int(cin), .int(cout), .int(flip ? 1 : 0), .int(coBlocks)])
        try launchGrid("conv3x3_direct", "conv3x3.cl", options: options,
                       global: [1, 1, n * coBlocks],
                       [.buffer(y), .buffer(padded), .buffer(packed)] + epilogue.arguments(unused: packed)
                        + [.int(cin), .int(cout), .int(h), .int(width), .int(hp), .int(wp), .int(coBlocks)])
    }

    /// Input channels per work-item of the row-vectorised weight gradient (GCIB), one after another,
    /// so its GCOB rows of dy stay in L1 across them. Measured on the 2-core AVX-512 Xeon (`bench
    /// --profile`, two alternations): the kernel's share of a `cifar10` b16 training step 28.7 / 29.1 %
    /// with 1, 24.5–25.3 % with 4, 23.8 / 23.9 % with 8, 22.9 / 23.5 % with 16; of a `small` b64 step
    /// 19.3 / 17.5 % with 1, 15.5 / 15.7 % with 16, 16.3 / 15.3 % with 32.
    static let conv3x3GradientInputChannels = 16

    /// dw[Co,Ci,3,3] = Σ_n dy_n ⋆ x_n, for the same convolutions. Both variants sum chunks of images
    /// into partial sums (added up in a fixed order), so that a chunk's dy and x stay in cache while
    /// every work-item of the chunk reads them.
    func conv3x3GradWeight(_ dw: CLBuffer, _ dy: CLBuffer, _ x: CLBuffer, n: Int, cin: Int, cout: Int, h: Int, width: Int) throws {
        let tiles = conv3x3Tiles!
        let (hp, wp) = paddedPlane(h: h, width: width)
        let xp = try pad3x3(x, planes: n * cin, h: h, width: width, into: "conv3x3 input")
        let chunkImages = max(1, min(n, conv3x3GradientChunkPixels / (h * width)))
        let chunks = (n + chunkImages - 1) / chunkImages
        let items = cout * cin * 9
        let part = chunks == 1 ? dw : try scratch("conv3x3 weight gradient chunks", floats: chunks * items)
        if usesRowWeightGradient(width: width) {
            let perItem = Self.conv3x3GradientInputChannels
            try launchGrid("conv3x3_grad_weight_rows", "conv3x3.cl", options: tiles.buildOptions + " -DGCIB=\(perItem)",
                           global: [(cout + tiles.gradCob - 1) / tiles.gradCob, (cin + perItem - 1) / perItem, chunks],
                           [.buffer(part), .buffer(dy), .buffer(xp), .int(n), .int(chunkImages), .int(cin), .int(cout),
                            .int(h), .int(width), .int(hp), .int(wp)])
        } else {
            let block = tiles.vw * tiles.gradCov
            let cpad = (cout + block - 1) / block * block
            let pixels = n * h * width
            let dyt = try scratch("conv3x3 gradient", floats: pixels * cpad)
            try launch("conv3x3_channels_last", "conv3x3.cl", options: tiles.buildOptions, count: pixels,
                       [.buffer(dyt), .buffer(dy), .int(cout), .int(cpad), .int(h * width), .int(pixels)])
            try launchGrid("conv3x3_grad_weight", "conv3x3.cl", options: tiles.buildOptions,
                           global: [(cin + tiles.gradCob - 1) / tiles.gradCob, cpad / block, chunks],
                           [.buffer(part), .buffer(dyt), .buffer(xp), .int(n), .int(chunkImages), .int(cin), .int(cout),
                            .int(cpad), .int(h), .int(width), .int(hp), .int(wp)])
        }
        if chunks > 1 {
            try launch("conv3x3_sum_chunks", "conv3x3.cl", options: tiles.buildOptions, count: items,
                       [.buffer(dw), .buffer(part), .int(chunks), .int(items)])
        }
    }

    /// Rows and columns of a padded plane: a border of 1, rows up to a multiple of the row block and
    /// columns up to a multiple of the vector width (zeros), so whole blocks and vectors can be loaded.
    private func paddedPlane(h: Int, width: Int) -> (Int, Int) {
        let tiles = conv3x3Tiles!
        return ((h + tiles.rows - 1) / tiles.rows * tiles.rows + 2, (width + tiles.vw - 1) / tiles.vw * tiles.vw + 2)
    }

    /// `planes` planes of h×width from `x`, padded into the scratch buffer `name` as planes of
    /// `size` (default: `paddedPlane`), followed by `slack` floats.
    func pad3x3(_ x: CLBuffer, planes: Int, h: Int, width: Int, into name: String,
                size: (Int, Int)? = nil, slack: Int = 0) throws -> CLBuffer {
        let (hp, wp) = size ?? paddedPlane(h: h, width: width)
        let padded = try scratch(name, floats: planes * hp * wp + slack)
        try launch("conv3x3_pad_planes", "conv3x3.cl", options: conv3x3Tiles!.buildOptions, count: planes, loops: true,
                   [.buffer(padded), .buffer(x), .int(h), .int(width), .int(hp), .int(wp), .int(planes)])
        return padded
    }
}
