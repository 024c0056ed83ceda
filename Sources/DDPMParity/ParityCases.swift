import DDPMCore
import Foundation

/// The parity table: every op, several shapes including odd sizes (not multiples of any tile),
/// batch 1 and 3, channel counts that are not multiples of 4. Backward ops have rows of their own.
public enum ParityCases {
    public static var all: [ParityCase] {
        convolution + linearAlgebra + normalization + elementwise + diffusion + optimizer + classification + conditioning
            + featureNetwork
    }

    static let n: InputFill = .normal(scale: 1)

    /// (input, weight shape, conv) configurations shared by the three convolution ops.
    static let convolutions: [(Shape, Shape, Conv2D)] = [
        (Shape(1, 3, 7, 5), Shape(4, 3, 3, 3), Conv2D(kernel: 3, padding: 1)),
        (Shape(3, 5, 8, 8), Shape(6, 5, 3, 3), Conv2D(kernel: 3, stride: 2, padding: 1)),
        // diffusers' downsample_padding=0: pad only right and bottom.
        (Shape(2, 4, 9, 8), Shape(4, 4, 3, 3), Conv2D(kernel: 3, stride: 2, padTop: 0, padLeft: 0, padBottom: 1, padRight: 1, bias: true)),
        (Shape(3, 6, 5, 7), Shape(5, 6, 1, 1), Conv2D(kernel: 1, padding: 0)),
        (Shape(2, 3, 9, 9), Shape(7, 3, 3, 3), Conv2D(kernel: 3, padding: 1, bias: false)),
        (Shape(2, 32, 16, 16), Shape(64, 32, 3, 3), Conv2D(kernel: 3, padding: 1)),
        // Direct 3×3 kernel (conv3x3.cl): a width over two vectors with a partial third, a height
        // that is not a multiple of its row block, channels that are not a multiple of its channel block.
        (Shape(2, 5, 11, 35), Shape(6, 5, 3, 3), Conv2D(kernel: 3, padding: 1)),
        // The row-vectorised weight gradient: a width of two 8-float vectors (one of 16), output
        // channels that are not a multiple of its channel block. With the small chunks of
        // ParityTests' conv3x3 test (256 pixels) both weight gradients sum 4 chunks of images here,
        // the last one partial.
        (Shape(10, 3, 5, 16), Shape(5, 3, 3, 3), Conv2D(kernel: 3, padding: 1)),
        // The row weight gradient's input channels per work-item (16): a full group and a partial one.
        (Shape(2, 20, 4, 16), Shape(3, 20, 3, 3), Conv2D(kernel: 3, padding: 1)),
        // One 8-float vector per row (two chunks of images at 256 pixels).
        (Shape(9, 4, 6, 8), Shape(7, 4, 3, 3), Conv2D(kernel: 3, padding: 1)),
        // Planes narrower than any CPU vector (im2col + GEMM on the CPU profiles): 4, 2 and 1 wide.
        (Shape(2, 5, 5, 4), Shape(6, 5, 3, 3), Conv2D(kernel: 3, padding: 1)),
        (Shape(3, 6, 3, 2), Shape(9, 6, 3, 3), Conv2D(kernel: 3, padding: 1, bias: false)),
        (Shape(1, 3, 5, 1), Shape(2, 3, 3, 3), Conv2D(kernel: 3, padding: 1)),
        // im2col's 600 columns are no whole number of 32-, 48- or 64-wide GEMM panels: the CPU profiles
        // pad them (GEMM.inPlaceWidth) for the GEMM to read in place, forward and input gradient.
        (Shape(1, 8, 40, 60), Shape(16, 8, 3, 3), Conv2D(kernel: 3, stride: 2, padding: 1)),
        // InceptionV3's shapes: rectangular 1×7 / 7×1 / 1×3 / 3×1 kernels with torch's (0, 3) / (3, 0)
        // padding (one wide enough for col2im's vector pieces), 5×5 with padding 2, 3×3 stride 2 unpadded.
        (Shape(2, 5, 9, 11), Shape(6, 5, 1, 7), Conv2D(kernelHeight: 1, kernelWidth: 7, padY: 0, padX: 3)),
        (Shape(1, 3, 6, 20), Shape(4, 3, 1, 7), Conv2D(kernelHeight: 1, kernelWidth: 7, padY: 0, padX: 3, bias: false)),
        (Shape(2, 4, 10, 6), Shape(3, 4, 7, 1), Conv2D(kernelHeight: 7, kernelWidth: 1, padY: 3, padX: 0)),
        (Shape(1, 6, 5, 9), Shape(4, 6, 1, 3), Conv2D(kernelHeight: 1, kernelWidth: 3, padY: 0, padX: 1)),
        (Shape(2, 3, 7, 4), Shape(5, 3, 3, 1), Conv2D(kernelHeight: 3, kernelWidth: 1, padY: 1, padX: 0)),
        (Shape(2, 3, 9, 10), Shape(4, 3, 5, 5), Conv2D(kernel: 5, padding: 2)),
        (Shape(2, 3, 11, 9), Shape(4, 3, 3, 3), Conv2D(kernel: 3, stride: 2, padding: 0, bias: false)),
    ]

    /// The inputs of a convolution: x, w, (b), (t[N, Co]), (r of the output's shape).
    static func convolutionInputs(_ x: Shape, _ w: Shape, _ c: Conv2D) -> [(Shape, InputFill)] {
        let (ho, wo) = c.outputSize(height: x[2], width: x[3])
        return [(x, n), (w, n)] + (c.bias ? [(Shape(w[0]), n)] : []) + (c.addsChannels ? [(Shape(x[0], w[0]), n)] : [])
            + (c.addsResidual ? [(Shape(x[0], w[0], ho, wo), n)] : [])
    }

    /// Every configuration with the epilogue (time-embedding add and residual add, through each
    /// forward path: direct 3×3, Winograd, im2col + GEMM, 1×1 GEMM); the 1×1 and a direct 3×3 one also
    /// with each part alone (the 1×1 path starts its output differently for each).
    static var epilogues: [(Shape, Shape, Conv2D)] {
        convolutions.flatMap { x, w, c -> [(Shape, Shape, Conv2D)] in
            let both = (x, w, c.adding(channels: true, residual: true))
            guard c.taps == 1 || (x[3] == 35 && c.stride == 1) else { return [both] }
            return [both, (x, w, c.adding(channels: true)), (x, w, c.adding(residual: true))]
        }
    }

    static var convolution: [ParityCase] {
        convolutions.flatMap { x, w, c -> [ParityCase] in
            let (ho, wo) = c.outputSize(height: x[2], width: x[3])
            let dy = Shape(x[0], w[0], ho, wo)
            return [
                ParityCase(.conv2d(c), convolutionInputs(x, w, c)),
                ParityCase(.conv2dBackwardInput(c, height: x[2], width: x[3]), [(dy, n), (w, n)]),
                ParityCase(.conv2dBackwardWeight(c), [(dy, n), (x, n)]),
            ]
        } + epilogues.map { x, w, c in ParityCase(.conv2d(c), convolutionInputs(x, w, c)) }
    }

    static var linearAlgebra: [ParityCase] {
        var cases = [
            ParityCase(.linear, [(Shape(3, 7), n), (Shape(5, 7), n), (Shape(5), n)]),
            ParityCase(.linear, [(Shape(64, 32), n), (Shape(128, 32), n), (Shape(128), n)]),
        ]
        for ta in [false, true] {
            for tb in [false, true] {
                let (b, m, k, nn) = (3, 5, 7, 9)
                cases.append(ParityCase(.matmul(MatMul(transposeA: ta, transposeB: tb, alpha: 0.35)),
                                        [(ta ? Shape(b, k, m) : Shape(b, m, k), n), (tb ? Shape(b, nn, k) : Shape(b, k, nn), n)]))
            }
        }
        // Attention-shaped: scores = Qᵀ·K over 64 tokens with head dim 8, and V·Pᵀ.
        cases.append(ParityCase(.matmul(MatMul(transposeA: true, alpha: 0.35355339)), [(Shape(6, 8, 64), n), (Shape(6, 8, 64), n)]))
        cases.append(ParityCase(.matmul(MatMul(transposeB: true)), [(Shape(6, 8, 64), n), (Shape(6, 64, 64), n)]))
        return cases
    }

    static var normalization: [ParityCase] {
        let shapes: [(Shape, Int)] = [(Shape(3, 6, 5, 7), 3), (Shape(1, 32, 16, 16), 8), (Shape(2, 6, 10), 2), (Shape(2, 5, 3, 3), 5)]
        var cases: [ParityCase] = []
        for (shape, groups) in shapes {
            let g = GroupNorm(groups: groups, eps: 1e-5)
            let c = Shape(shape[1])
            cases.append(ParityCase(.groupNorm(g), [(shape, .normal(scale: 2)), (c, n), (c, n)]))
            cases.append(ParityCase(.groupNormBackward(g), [(shape, .normal(scale: 2)), (c, n), (shape, n)]))
            // Fused with SiLU: backward takes beta as well.
            let fused = GroupNorm(groups: groups, eps: 1e-5, silu: true)
            cases.append(ParityCase(.groupNorm(fused), [(shape, .normal(scale: 2)), (c, n), (c, n)]))
            cases.append(ParityCase(.groupNormBackward(fused), [(shape, .normal(scale: 2)), (c, n), (shape, n), (c, n)]))
        }
        for shape in [Shape(3, 5, 17), Shape(2, 64, 64)] {
            cases.append(ParityCase(.softmax, [(shape, .normal(scale: 3))]))
            cases.append(ParityCase(.softmaxBackward, [(shape, .uniform(0, 0.2)), (shape, n)]))
        }
        // Fused attention (attention.cl): tokens that fill no whole vector (35 = 2·16 + 3, 4·8 + 3),
        // channels that are not a multiple of its channel block (5, 12 against 8), batch 1 (several
        // work-items per batch entry), and the U-Net's head shape (32 channels, 256 tokens).
        for shape in [Shape(3, 5, 35), Shape(1, 12, 20), Shape(2, 32, 256)] {
            cases.append(ParityCase(.attention(scale: 0.45), [(shape, n), (shape, n), (shape, n)]))
            cases.append(ParityCase(.attentionBackward(scale: 0.45), [(shape, n), (shape, n), (shape, n), (shape, n)]))
        }
        return cases
    }

    static var elementwise: [ParityCase] {
        let s = Shape(3, 5, 7, 2), big = Shape(100_003)
        return [
            ParityCase(.silu, [(s, .normal(scale: 4))]),
            ParityCase(.silu, [(big, .normal(scale: 4))]),
            ParityCase(.siluBackward, [(s, .normal(scale: 4)), (s, n)]),
            ParityCase(.add, [(s, n), (s, n)]),
            ParityCase(.add, [(big, n), (big, n)]),
            ParityCase(.mul, [(s, n), (s, n)]),
            ParityCase(.scale(-0.37), [(s, n)]),
            ParityCase(.addChannels, [(s, n), (Shape(3, 5), n)]),
            ParityCase(.sumToChannels(keepBatch: true), [(s, n)]),
            ParityCase(.sumToChannels(keepBatch: false), [(s, n)]),
            ParityCase(.sumToChannels(keepBatch: false), [(Shape(7, 5), n)]),
            ParityCase(.concatChannels, [(Shape(2, 3, 5, 7), n), (Shape(2, 4, 5, 7), n)]),
            ParityCase(.sliceChannels(start: 2, count: 4), [(Shape(2, 7, 5, 3), n)]),
            ParityCase(.sliceChannelsBackward(start: 2, total: 7), [(Shape(2, 4, 5, 3), n)]),
            ParityCase(.upsampleNearest2x, [(Shape(2, 3, 5, 7), n)]),
            ParityCase(.upsampleNearest2xBackward, [(Shape(2, 3, 10, 14), n)]),
            ParityCase(.reshape(Shape(2, 3, 20)), [(Shape(2, 3, 4, 5), n)]),
        ]
    }

    /// VLBTerm's inputs: quantised x0 with both edge bins, t = 0 (the decoder) and t > 0 (the KL),
    /// and the table of a real schedule (linear β from 0.05 to 0.3 over vlbSteps timesteps).
    static let vlbSteps = 7
    /// x_t is noised from x0 and the model's ε is off the true one by up to 0.3, as in training: the
    /// decoder's bin probabilities stay far from 0, where float32 and the double reference could not agree.
    public static var vlbInputs: [(Shape, InputFill)] {
        let x = Shape(3, 2, 5, 3), per = 30, ts = [0, 4, 6]
        var pixels = (0..<x.count).map { Float(($0 * 37 + 11) % 256) / 127.5 - 1 }
        pixels[0] = -1; pixels[1] = 1; pixels[31] = -1; pixels[32] = 1
        let acp = vlbAlphasCumprod(steps: vlbSteps)
        var xt = [Float](repeating: 0, count: x.count), m = xt
        for i in 0..<x.count {
            let a = acp[ts[i / per]]
            let eps = 1.3 * sin(1.7 * Double(i)), error = 0.3 * cos(2.3 * Double(i))
            xt[i] = Float(a.squareRoot() * Double(pixels[i]) + (1 - a).squareRoot() * eps)
            m[i] = Float(eps + error)
        }
        return [(x, .values(pixels)), (x, .values(xt)), (x, .values(m)), (x, .uniform(-1, 1)), (Shape(3), .values(ts.map(Float.init))),
                (Shape(6, vlbSteps), .values(vlbTable(steps: vlbSteps)))]
    }

    /// ᾱ of linear β from 0.05 to 0.3 (the VLB cases' schedule).
    static func vlbAlphasCumprod(steps: Int) -> [Double] {
        var acp: [Double] = [], product = 1.0
        for t in 0..<steps { product *= 1 - (0.05 + 0.25 * Double(t) / Double(steps - 1)); acp.append(product) }
        return acp
    }

    /// The rows of VLBTerm for ε-prediction (kx, km, c1, c2, log β̃ clipped, log β) of linear β.
    static func vlbTable(steps: Int) -> [Float] {
        let betas = (0..<steps).map { 0.05 + 0.25 * Double($0) / Double(steps - 1) }
        var acp: [Double] = [], product = 1.0
        for b in betas { product *= 1 - b; acp.append(product) }
        func prev(_ t: Int) -> Double { t > 0 ? acp[t - 1] : 1 }
        func posterior(_ t: Int) -> Double { betas[t] * (1 - prev(t)) / (1 - acp[t]) }
        let rows: [[Double]] = [
            acp.map { (1 / $0).squareRoot() }, acp.map { -(1 / $0 - 1).squareRoot() },
            (0..<steps).map { betas[$0] * prev($0).squareRoot() / (1 - acp[$0]) },
            (0..<steps).map { (1 - prev($0)) * (1 - betas[$0]).squareRoot() / (1 - acp[$0]) },
            (0..<steps).map { log(posterior($0 == 0 ? 1 : $0)) }, betas.map { log($0) },
        ]
        return rows.flatMap { $0.map(Float.init) }
    }

    static var diffusion: [ParityCase] {
        let x = Shape(3, 2, 5, 7), t = 50
        var table: [Float] = []
        var r = TestRandom(seed: 9)
        let alphaBar = (0..<t).map { _ in Float(r.uniform() * 0.98 + 0.01) }
        table = alphaBar.map { $0.squareRoot() } + alphaBar.map { (1 - $0).squareRoot() } + alphaBar.map { $0 / (1 - $0) }
        var cases = [
            // sin/cos of angles up to ~1000 rad: one ulp of the frequency moves the angle by ~6e-5,
            // and OpenCL's exp/sin/cos may differ from libm by a few ulp, hence 1e-6.
            ParityCase(.timestepEmbedding(TimestepEmbedding(dim: 32, flipSinToCos: true, freqShift: 0)),
                       [(Shape(5), .integers(1000))], tolerance: 1e-6),
            ParityCase(.timestepEmbedding(TimestepEmbedding(dim: 33, flipSinToCos: false, freqShift: 1)),
                       [(Shape(4), .integers(1000))], tolerance: 1e-6),
            // The mask comes from Philox on both sides: it must agree exactly.
            ParityCase(.dropout(Dropout(probability: 0.3, seed: 42, stream: 3)), [(Shape(3, 5, 7, 11), n)], tolerance: 0),
            // A data-parallel shard (images 4, 5, 6 of the batch): an odd per-image count moves the lane.
            ParityCase(.dropout(Dropout(probability: 0.3, seed: 42, stream: 3, firstImage: 4)), [(Shape(3, 5, 7, 11), n)], tolerance: 0),
            ParityCase(.mse(weighted: false), [(x, n), (x, n)]),
            ParityCase(.mse(weighted: true), [(x, n), (x, n), (Shape(3), .uniform(0.1, 2))]),
            ParityCase(.mseBackward(weighted: false), [(x, n), (x, n), (Shape(1), .values([0.7]))]),
            ParityCase(.mseBackward(weighted: true), [(x, n), (x, n), (Shape(3), .uniform(0.1, 2)), (Shape(1), .values([0.7]))]),
        ]
        for prediction in Prediction.allCases {
            // x_t and the ε target are Philox normals combined by the same rounded operations: exact.
            cases.append(ParityCase(.qSample(QSample(seed: 0x1234_5678_9ABC, timesteps: t, prediction: prediction)),
                                    [(x, n), (Shape(3, t), .values(table))], tolerance: 0))
        }
        // A data-parallel rank's shard: images drawn as global images 7, 8, 9.
        cases.append(ParityCase(.qSample(QSample(seed: 0x1234_5678_9ABC, timesteps: t, prediction: .epsilon, firstImage: 7)),
                                [(x, n), (Shape(3, t), .values(table))], tolerance: 0))
        // Offset noise: one more Philox normal per (image, channel), added with the same rounding.
        cases.append(ParityCase(.qSample(QSample(seed: 0x1234_5678_9ABC, timesteps: t, prediction: .v, offsetNoise: 0.1)),
                                [(x, n), (Shape(3, t), .values(table))], tolerance: 0))
        cases.append(ParityCase(.qSample(QSample(seed: 5, timesteps: t, prediction: .epsilon, offsetNoise: 0.35)),
                                [(Shape(2, 3, 4, 9), n), (Shape(3, t), .values(table))], tolerance: 0))
        // Improved DDPM's VLB term: the reference in double, the kernel in float (exp, log, tanh):
        // 1e-7 (NMSE) holds the float rounding of sums over hundreds of terms.
        let vlb = VLBTerm(timesteps: vlbSteps, scale: 0.7)
        cases.append(ParityCase(.vlbTerm(vlb), vlbInputs))
        cases.append(ParityCase(.vlbTermBackward(vlb), vlbInputs + [(Shape(1), .values([0.7]))]))
        let step = SamplerStep(kx: 1.3, km: -0.4, clip: 1, ex: 0.8, em: -0.6, p0: 0.5, pe: 0.3, px: 0.2, sigma: 0.1,
                               seed: 77, firstImage: 5)
        cases.append(ParityCase(.samplerStep(step), [(x, n), (x, n)]))
        var noClip = step
        noClip.clip = 0
        noClip.sigma = 0
        cases.append(ParityCase(.samplerStep(noClip), [(Shape(1, 1, 3, 3), n), (Shape(1, 1, 3, 3), n)]))
        var learned = step
        (learned.learnedVariance, learned.minLog, learned.maxLog) = (true, -6.2, -3.1)
        cases.append(ParityCase(.samplerStep(learned), [(x, n), (x, n), (x, .uniform(-1, 1))]))
        // Multistep solver updates with 1, 2 and 3 predictions, with and without SDE noise, odd shapes.
        for (c, sigma) in [([Float(0.9)], Float(0)), ([1.4, -0.45], 0), ([1.7, -0.9, 0.2], 0), ([0.8, -0.3], 0.25)] {
            let u = SolverUpdate(cx: 0.6, c: c, sigma: sigma, seed: 91, firstImage: 3)
            cases.append(ParityCase(.solverUpdate(u), [(x, n)] + c.map { _ in (x, n) }))
            cases.append(ParityCase(.solverUpdate(u), [(Shape(1, 1, 3, 3), n)] + c.map { _ in (Shape(1, 1, 3, 3), n) }))
        }
        // Values spread beyond ±1 so the threshold bites; ties and 1-element images as edge cases.
        cases.append(ParityCase(.dynamicThreshold(ratio: 0.9, maxValue: 1.5), [(Shape(3, 2, 5, 7), .normal(scale: 2))]))
        cases.append(ParityCase(.dynamicThreshold(ratio: 0.995, maxValue: 3), [(Shape(2, 1, 4, 4), .values((0..<32).map { Float($0 % 5) - 2 }))]))
        cases.append(ParityCase(.dynamicThreshold(ratio: 0.5, maxValue: 2), [(Shape(4, 1, 1, 1), .normal(scale: 3))]))
        return cases
    }

    static var optimizer: [ParityCase] {
        // 3001: shares of 48 floats over 64 lanes, a partial last share and idle lanes past it.
        let grads: [(Shape, InputFill)] = [(Shape(5, 7), n), (Shape(13), n), (Shape(3, 3, 3, 3), n), (Shape(3001), n)]
        let p = Shape(1001)
        return [
            ParityCase(.gradNorm(maxNorm: 1), grads),
            ParityCase(.gradNorm(maxNorm: 0), grads),
            // In place: the runner hands the backend param, m, v (ema, acc) as inputs and as outputs.
            ParityCase(.adamStep(Adam(learningRate: 1e-3, weightDecay: 0.01, step: 3)),
                       [(p, n), (Shape(2), .values([5, 0.7])), (p, n), (p, .normal(scale: 0.1)), (p, .uniform(0, 0.01))]),
            ParityCase(.emaUpdate(rate: 0.001), [(p, n), (p, n)]),
            ParityCase(.accumulate(scale: 0.25, reset: false), [(p, n), (p, n)]),
            ParityCase(.accumulate(scale: 0.5, reset: true), [(Shape(3, 5), .values([Float](repeating: .nan, count: 15))), (Shape(3, 5), n)]),
        ]
    }

    static var classification: [ParityCase] {
        var cases = [
            ParityCase(.globalAveragePool, [(Shape(3, 5, 7, 2), n)]),
            ParityCase(.globalAveragePool, [(Shape(2, 64, 8, 8), n)]),
            ParityCase(.globalAveragePoolBackward(height: 7, width: 3), [(Shape(3, 5), n)]),
        ]
        // Logits spread wide so some rows are dominated by one class; 1 and 7 rows, 10 and 3 classes.
        for (rows, classes) in [(7, 10), (1, 3), (33, 10)] {
            let logits: (Shape, InputFill) = (Shape(rows, classes), .normal(scale: 4))
            let labels: (Shape, InputFill) = (Shape(rows), .integers(classes))
            cases.append(ParityCase(.crossEntropy, [logits, labels]))
            cases.append(ParityCase(.crossEntropyBackward, [logits, labels, (Shape(1), .values([0.7]))]))
        }
        return cases
    }

    /// InceptionV3's forward-only ops at its own window shapes and at odd sizes: max pool 3/2 (the stem,
    /// Mixed_6a, Mixed_7a), max pool 3/1 padded (Mixed_7c), average pool 3/1 padded without the
    /// padding in the count (Mixed_5b…7b), and resizes up (28 → 299), down and mixed.
    static var featureNetwork: [ParityCase] {
        let s = Shape(3, 5, 7, 2), big = Shape(100_003)
        return [
            ParityCase(.relu, [(s, n)]),
            ParityCase(.relu, [(big, n)]),
            ParityCase(.maxPool2d(Pool2D(kernel: 3, stride: 2)), [(Shape(2, 3, 9, 11), n)]),
            ParityCase(.maxPool2d(Pool2D(kernel: 3, stride: 2)), [(Shape(1, 4, 8, 8), n)]),
            ParityCase(.maxPool2d(Pool2D(kernel: 3, stride: 1, padding: 1)), [(Shape(2, 3, 5, 7), n)]),
            ParityCase(.averagePool2d(Pool2D(kernel: 3, stride: 1, padding: 1)), [(Shape(2, 3, 5, 7), n)]),
            ParityCase(.averagePool2d(Pool2D(kernel: 3, stride: 1, padding: 1)), [(Shape(1, 2, 1, 3), n)]),
            ParityCase(.averagePool2d(Pool2D(kernel: 2, stride: 2)), [(Shape(2, 3, 6, 5), n)]),
            ParityCase(.resizeBilinear(height: 299, width: 299), [(Shape(1, 2, 28, 28), n)]),
            ParityCase(.resizeBilinear(height: 11, width: 4), [(Shape(2, 3, 5, 7), n)]),
            ParityCase(.resizeBilinear(height: 1, width: 3), [(Shape(1, 2, 1, 1), n)]),
        ]
    }

    static var conditioning: [ParityCase] {
        var cases: [ParityCase] = []
        // 11 rows (10 classes and the null class) of an odd width; a batch with repeated classes, one
        // of a single image, and one larger than the table so that some rows are hit several times.
        for (rows, dim, images) in [(11, 36, 7), (3, 5, 1), (11, 64, 33)] {
            let indices: (Shape, InputFill) = (Shape(images), .integers(rows))
            cases.append(ParityCase(.embedding, [(Shape(rows, dim), n), indices]))
            cases.append(ParityCase(.embeddingBackward(rows: rows), [(Shape(images, dim), n), indices]))
        }
        return cases
    }
}
