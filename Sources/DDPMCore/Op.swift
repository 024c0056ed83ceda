/// The op catalogue. A graph node records an op and its inputs only; the math lives in the
/// backends (CPUBackend defines it, OpenCLBackend must agree). Inputs and outputs are listed on
/// each case as `inputs → outputs`. Every op has a parity case and, when it has a gradient rule,
/// a finite-difference check (Tests; the coverage test walks `OpKind.allCases`).
public enum Op: Hashable, Sendable {
    // MARK: Convolution and matrix products
    /// x[N,Ci,H,W], w[Co,Ci,kh,kw], (b[Co] if bias) → y[N,Co,Ho,Wo]
    case conv2d(Conv2D)
    /// dy[N,Co,Ho,Wo], w[Co,Ci,kh,kw] → dx[N,Ci,H,W]
    case conv2dBackwardInput(Conv2D, height: Int, width: Int)
    /// dy[N,Co,Ho,Wo], x[N,Ci,H,W] → dw[Co,Ci,kh,kw]
    case conv2dBackwardWeight(Conv2D)
    /// x[N,I], w[O,I], b[O] → y[N,O] = x·wᵀ + b
    case linear
    /// a, b → c[B,M,N] = alpha · op(a[b]) · op(b[b]); a is [B,M,K] ([B,K,M] if transposeA),
    /// b is [B,K,N] ([B,N,K] if transposeB).
    case matmul(MatMul)

    // MARK: Normalisation and activations
    /// x[N,C,H,W] (or [N,C,T]), gamma[C], beta[C] → y
    case groupNorm(GroupNorm)
    /// x, gamma[C], dy[, beta[C] when fused with SiLU] → dx, dgamma[C], dbeta[C]
    case groupNormBackward(GroupNorm)
    /// x → x·sigmoid(x)
    case silu
    /// x → max(x, 0). Forward only (InceptionV3's features).
    case relu
    /// x, dy → dx
    case siluBackward
    /// x[..., L] → softmax over the last dimension
    case softmax
    /// y (the softmax output), dy → dx
    case softmaxBackward
    /// q, k, v [B, d, T] (tokens along the last axis, the U-Net's per-head layout) → o[B, d, T]:
    /// o[b][:, i] = Σ_j P[i][j]·v[b][:, j] with P[i][:] = softmax_j(scale · q[b][:, i]·k[b][:, j]),
    /// scaled dot-product attention in one op, so that no [B, T, T] score matrix is stored.
    case attention(scale: Float)
    /// q, k, v, do → dq, dk, dv (P recomputed from q and k)
    case attentionBackward(scale: Float)

    // MARK: Elementwise and layout
    /// a, b (same shape) → a + b
    case add
    /// a, b (same shape) → a · b
    case mul
    /// x → factor · x
    case scale(Float)
    /// x[N,C,H,W], v[N,C] → x + v broadcast over H, W (the time-embedding add)
    case addChannels
    /// x[N,C,H,W] (or [N,C]) → [N,C] summed over H·W, or [C] summed over N·H·W when !keepBatch
    case sumToChannels(keepBatch: Bool)
    /// a[N,Ca,H,W], b[N,Cb,H,W] → [N,Ca+Cb,H,W]
    case concatChannels
    /// x[N,C,H,W] → x[:, start..<start+count]
    case sliceChannels(start: Int, count: Int)
    /// dy[N,count,H,W] → dx[N,total,H,W], zero outside channels start..<start+count
    case sliceChannelsBackward(start: Int, total: Int)
    /// x[N,C,H,W] → [N,C,2H,2W] (nearest)
    case upsampleNearest2x
    /// dy[N,C,2H,2W] → dx[N,C,H,W] (sum of each 2×2 block)
    case upsampleNearest2xBackward
    /// x → the same values seen with another shape of equal count (a view: no kernel runs)
    case reshape(Shape)

    // MARK: Diffusion-specific
    /// t[N] (float timesteps) → [N, dim] sinusoidal embedding as diffusers' get_timestep_embedding
    case timestepEmbedding(TimestepEmbedding)
    /// x → x · mask / (1 - p); mask from Philox(seed, stream, step, element). Its own gradient.
    case dropout(Dropout)
    /// pred, target (, weights[N]) → loss[1] = mean_n( w_n · mean_i (pred − target)² )
    case mse(weighted: Bool)
    /// pred, target, (weights[N],) dloss[1] → dpred
    case mseBackward(weighted: Bool)
    /// x0[N,C,H,W], table[3,T] (√ᾱ_t, √(1−ᾱ_t), w_t) → x_t, target, t[N], w[N]: draws
    /// t ~ U{0..T−1} and ε ~ N(0, I) with Philox (seed, step), forms x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε and
    /// the target, and copies each image's loss weight w_t (the trainer puts SNR_t = ᾱ_t/(1−ᾱ_t) or a
    /// min-SNR or P2 weight there). With offsetNoise o, ε = z + o·z_c, z_c one normal per (image, channel).
    case qSample(QSample)
    /// x0, x_t, m (the mean prediction), v (the variance output), all [N,C,H,W], t[N], table[6,T]
    /// (VLBTerm's rows) → loss[1] = scale · mean_n L_t(n) / ln 2: Improved DDPM's variational-bound
    /// term per image in bits per dimension (KL of the posterior and the model's Gaussian for t > 0,
    /// the discretised decoder's −log p at t = 0), as improved-diffusion's _vb_terms_bpd. m gets no
    /// gradient: the mean is stopped, so only v learns from this term.
    case vlbTerm(VLBTerm)
    /// x0, x_t, m, v, t, table, dloss[1] → dv
    case vlbTermBackward(VLBTerm)
    /// x_t, model output (, v with learnedVariance) → x_prev: one reverse step (DDPM or DDIM) with
    /// coefficients from the host.
    case samplerStep(SamplerStep)
    /// x, d_0 … d_{k−1} (k = 1…3, the newest x̂0 predictions first) → x_next: one multistep solver
    /// update (DPM-Solver++) with coefficients from the host.
    case solverUpdate(SolverUpdate)
    /// x̂0[N, …] → per image s = clamp(quantile(|x̂0|, ratio), 1, maxValue), clamp(x̂0, −s, s) / s
    /// (Imagen's dynamic thresholding, as diffusers' _threshold_sample; linear-interpolated quantile).
    case dynamicThreshold(ratio: Float, maxValue: Float)

    // MARK: Optimizer (in place: see inPlaceInputs)
    /// grads g_1…g_P → stats[2] = (global L2 norm, clip factor min(1, maxNorm / (norm + 1e-6)))
    case gradNorm(maxNorm: Float)
    /// grad, stats[2] (clip factor at [1]), param, m, v → param, m, v updated in place (AdamW, torch
    /// semantics)
    case adamStep(Adam)
    /// param, ema → ema updated in place: ema ← ema − rate·(ema − param), rate = 1 − decay (formed in
    /// double by the caller, as diffusers' EMAModel does in Python)
    case emaUpdate(rate: Float)
    /// acc, g → acc updated in place: acc ← acc + scale·g, or scale·g when `reset` (gradient
    /// accumulation over micro-batches: the first one resets)
    case accumulate(scale: Float, reset: Bool)

    // MARK: Classification (the domain classifier behind `ddpm-cl fid --features classifier`)
    /// x[N,C,H,W] → [N,C], the mean over H·W (global average pooling)
    case globalAveragePool
    /// dy[N,C] → dx[N,C,H,W] = dy / (H·W) at every position
    case globalAveragePoolBackward(height: Int, width: Int)
    /// logits[N,K], labels[N] (floats holding class indices in 0..<K) → loss[1] =
    /// mean_n( logsumexp(logits_n) − logits_n[label_n] ): softmax and negative log-likelihood in one op
    case crossEntropy
    /// logits[N,K], labels[N], dloss[1] → dlogits = dloss · (softmax(logits_n) − onehot(label_n)) / N
    case crossEntropyBackward

    // MARK: Feature networks (InceptionV3 for `ddpm-cl fid --features inception`; forward only)
    /// x[N,C,H,W] → [N,C,Ho,Wo], the maximum over each window (padded cells ignored)
    case maxPool2d(Pool2D)
    /// x[N,C,H,W] → [N,C,Ho,Wo], the mean over each window's cells inside the image
    /// (torch's avg_pool2d with count_include_pad=False)
    case averagePool2d(Pool2D)
    /// x[N,C,H,W] → [N,C,height,width], bilinear as torch's F.interpolate(mode="bilinear",
    /// align_corners=False): source coordinate (o + ½)·(in/out) − ½, clamped at 0
    case resizeBilinear(height: Int, width: Int)

    // MARK: Conditioning
    /// table[K,D], indices[N] (floats holding row indices in 0..<K) → [N,D], row indices[n] of the
    /// table (torch's nn.Embedding: diffusers' class_embedding)
    case embedding
    /// dy[N,D], indices[N] → dtable[rows,D]: row k sums dy[n] over the n with indices[n] = k
    case embeddingBackward(rows: Int)

    public var kind: OpKind {
        switch self {
        case .conv2d: return .conv2d
        case .conv2dBackwardInput: return .conv2dBackwardInput
        case .conv2dBackwardWeight: return .conv2dBackwardWeight
        case .linear: return .linear
        case .matmul: return .matmul
        case .groupNorm: return .groupNorm
        case .groupNormBackward: return .groupNormBackward
        case .silu: return .silu
        case .relu: return .relu
        case .siluBackward: return .siluBackward
        case .softmax: return .softmax
        case .softmaxBackward: return .softmaxBackward
        case .attention: return .attention
        case .attentionBackward: return .attentionBackward
        case .add: return .add
        case .mul: return .mul
        case .scale: return .scale
        case .addChannels: return .addChannels
        case .sumToChannels: return .sumToChannels
        case .concatChannels: return .concatChannels
        case .sliceChannels: return .sliceChannels
        case .sliceChannelsBackward: return .sliceChannelsBackward
        case .upsampleNearest2x: return .upsampleNearest2x
        case .upsampleNearest2xBackward: return .upsampleNearest2xBackward
        case .reshape: return .reshape
        case .timestepEmbedding: return .timestepEmbedding
        case .dropout: return .dropout
        case .mse: return .mse
        case .mseBackward: return .mseBackward
        case .qSample: return .qSample
        case .vlbTerm: return .vlbTerm
        case .vlbTermBackward: return .vlbTermBackward
        case .samplerStep: return .samplerStep
        case .solverUpdate: return .solverUpdate
        case .dynamicThreshold: return .dynamicThreshold
        case .gradNorm: return .gradNorm
        case .adamStep: return .adamStep
        case .emaUpdate: return .emaUpdate
        case .accumulate: return .accumulate
        case .globalAveragePool: return .globalAveragePool
        case .globalAveragePoolBackward: return .globalAveragePoolBackward
        case .crossEntropy: return .crossEntropy
        case .crossEntropyBackward: return .crossEntropyBackward
        case .maxPool2d: return .maxPool2d
        case .averagePool2d: return .averagePool2d
        case .resizeBilinear: return .resizeBilinear
        case .embedding: return .embedding
        case .embeddingBackward: return .embeddingBackward
        }
    }
}

extension Op {
    /// For ops that update state in place: output i overwrites input `inPlaceInputs[i]`. The
    /// Executor gives both the same buffer (and checks that nothing reads the old value later);
    /// backends read and write it through the output.
    public var inPlaceInputs: [Int]? {
        switch self {
        case .adamStep: return [2, 3, 4]
        case .emaUpdate: return [1]
        case .accumulate: return [0]
        default: return nil
        }
    }
}

/// The op's name without parameters; what the coverage test walks.
public enum OpKind: String, CaseIterable, Sendable {
    case conv2d, conv2dBackwardInput, conv2dBackwardWeight, linear, matmul
    case groupNorm, groupNormBackward, silu, siluBackward, relu, softmax, softmaxBackward, attention, attentionBackward
    case add, mul, scale, addChannels, sumToChannels, concatChannels, sliceChannels, sliceChannelsBackward
    case upsampleNearest2x, upsampleNearest2xBackward, reshape
    case timestepEmbedding, dropout, mse, mseBackward, qSample, vlbTerm, vlbTermBackward, samplerStep, solverUpdate, dynamicThreshold
    case gradNorm, adamStep, emaUpdate, accumulate
    case globalAveragePool, globalAveragePoolBackward, crossEntropy, crossEntropyBackward
    case maxPool2d, averagePool2d, resizeBilinear
    case embedding, embeddingBackward
}

// MARK: - Parameters

public struct Conv2D: Hashable, Sendable {
    /// The kernel's height and width: square in the U-Net, 1×7, 7×1, 1×3 and 3×1 in InceptionV3.
    public var kernelHeight: Int, kernelWidth: Int
    public var stride: Int
    /// Zero padding per side; diffusers' downsample_padding=0 pads only right and bottom by 1.
    public var padTop: Int, padLeft: Int, padBottom: Int, padRight: Int
    public var bias: Bool
    /// The epilogue, fused into the convolution's output pass (a ResNet block's time-embedding add
    /// and residual add): with `addsChannels` an input t[N, Co] is added per image and channel, with
    /// `addsResidual` an input r of the output's shape. Inputs: x, w, (b), (t), (r).
    public var addsChannels = false, addsResidual = false

    public init(kernel: Int, stride: Int = 1, padding: Int, bias: Bool = true) {
        self.init(kernel: kernel, stride: stride, padTop: padding, padLeft: padding,
                  padBottom: padding, padRight: padding, bias: bias)
    }
    public init(kernel: Int, stride: Int, padTop: Int, padLeft: Int, padBottom: Int, padRight: Int, bias: Bool) {
        self.init(kernelHeight: kernel, kernelWidth: kernel, stride: stride, padTop: padTop, padLeft: padLeft,
                  padBottom: padBottom, padRight: padRight, bias: bias)
    }
    /// A kernelHeight × kernelWidth kernel with torch's padding=(padY, padX) on both sides of each axis.
    public init(kernelHeight: Int, kernelWidth: Int, stride: Int = 1, padY: Int, padX: Int, bias: Bool = true) {
        self.init(kernelHeight: kernelHeight, kernelWidth: kernelWidth, stride: stride, padTop: padY, padLeft: padX,
                  padBottom: padY, padRight: padX, bias: bias)
    }
    public init(kernelHeight: Int, kernelWidth: Int, stride: Int, padTop: Int, padLeft: Int, padBottom: Int, padRight: Int,
                bias: Bool) {
        precondition(kernelHeight >= 1 && kernelWidth >= 1 && stride >= 1)
        self.kernelHeight = kernelHeight; self.kernelWidth = kernelWidth; self.stride = stride
        self.padTop = padTop; self.padLeft = padLeft; self.padBottom = padBottom; self.padRight = padRight
        self.bias = bias
    }

    /// Weights per (output, input) channel pair: kernelHeight · kernelWidth.
    public var taps: Int { kernelHeight * kernelWidth }

    /// The input positions of the bias, the per-channel addend t and the residual r (nil if absent).
    public var biasInput: Int? { bias ? 2 : nil }
    public var channelAddendInput: Int? { addsChannels ? 2 + (bias ? 1 : 0) : nil }
    public var residualInput: Int? { addsResidual ? 2 + (bias ? 1 : 0) + (addsChannels ? 1 : 0) : nil }
    public var inputCount: Int { 2 + (bias ? 1 : 0) + (addsChannels ? 1 : 0) + (addsResidual ? 1 : 0) }

    /// The same convolution with an epilogue.
    public func adding(channels: Bool = false, residual: Bool = false) -> Conv2D {
        var c = self
        (c.addsChannels, c.addsResidual) = (channels, residual)
        return c
    }

    public func outputSize(height: Int, width: Int) -> (h: Int, w: Int) {
        ((height + padTop + padBottom - kernelHeight) / stride + 1, (width + padLeft + padRight - kernelWidth) / stride + 1)
    }
}

/// A pooling window: kernel × kernel, stride, `padding` cells on every side (torch's max_pool2d /
/// avg_pool2d with ceil_mode=False). Padded cells never count: max ignores them, the average
/// divides by the cells inside the image (count_include_pad=False).
public struct Pool2D: Hashable, Sendable {
    public var kernel: Int
    public var stride: Int
    public var padding: Int
    public init(kernel: Int, stride: Int, padding: Int = 0) {
        precondition(kernel >= 1 && stride >= 1 && padding >= 0 && padding <= kernel / 2, "pool \(kernel)/\(stride)/\(padding)")
        self.kernel = kernel; self.stride = stride; self.padding = padding
    }
    public func outputSize(height: Int, width: Int) -> (h: Int, w: Int) {
        ((height + 2 * padding - kernel) / stride + 1, (width + 2 * padding - kernel) / stride + 1)
    }
}

public struct MatMul: Hashable, Sendable {
    public var transposeA: Bool
    public var transposeB: Bool
    public var alpha: Float
    public init(transposeA: Bool = false, transposeB: Bool = false, alpha: Float = 1) {
        self.transposeA = transposeA; self.transposeB = transposeB; self.alpha = alpha
    }
}

public struct GroupNorm: Hashable, Sendable {
    public var groups: Int
    public var eps: Float
    /// y = silu(groupNorm(x)) in one pass: the ResNet blocks' norm → SiLU without the intermediate
    /// tensor (its backward recomputes the pre-activation from x, gamma and beta).
    public var silu: Bool
    public init(groups: Int, eps: Float, silu: Bool = false) { (self.groups, self.eps, self.silu) = (groups, eps, silu) }
}

public struct TimestepEmbedding: Hashable, Sendable {
    public var dim: Int
    public var flipSinToCos: Bool
    public var freqShift: Float
    public var maxPeriod: Float
    public init(dim: Int, flipSinToCos: Bool, freqShift: Float, maxPeriod: Float = 10000) {
        self.dim = dim; self.flipSinToCos = flipSinToCos; self.freqShift = freqShift; self.maxPeriod = maxPeriod
    }
}

/// The mask of element i of image n (of N) is drawn as element (firstImage + n)·(count/N) + i of the
/// whole batch, so a data-parallel rank's shard drops what one process with the whole batch drops.
public struct Dropout: Hashable, Sendable {
    public var probability: Float
    public var seed: UInt64
    /// Distinguishes the dropout layers of one model so they draw different masks.
    public var stream: UInt32
    public var firstImage: UInt32
    public init(probability: Float, seed: UInt64, stream: UInt32, firstImage: UInt32 = 0) {
        self.probability = probability; self.seed = seed; self.stream = stream; self.firstImage = firstImage
    }
}

/// What the network learns to predict (diffusers' prediction_type).
public enum Prediction: String, Hashable, Sendable, CaseIterable, Codable {
    case epsilon, sample, v = "v_prediction"
}

/// The fused noising step. Image n of the batch draws its timestep and noise as image
/// `firstImage + n`, so a data-parallel rank holding images [first, first + N) of a global batch
/// draws exactly what one process with the whole batch draws for them.
public struct QSample: Hashable, Sendable {
    public var seed: UInt64
    public var timesteps: Int
    public var prediction: Prediction
    public var firstImage: UInt32
    /// Offset noise (diffusers' --noise_offset): ε += offsetNoise · N(0, 1) per image and channel.
    public var offsetNoise: Float
    public init(seed: UInt64, timesteps: Int, prediction: Prediction, firstImage: UInt32 = 0, offsetNoise: Float = 0) {
        self.seed = seed; self.timesteps = timesteps; self.prediction = prediction; self.firstImage = firstImage
        self.offsetNoise = offsetNoise
    }
}

/// Improved DDPM's L_vlb term (Nichol & Dhariwal 2021, improved-diffusion's _vb_terms_bpd with the
/// mean stopped). Per timestep t the table's rows hold, computed by the host in double:
///   0 kx, 1 km      x̂0 = kx·x_t + km·m (no clipping in training)
///   2 c1, 3 c2      posterior mean μ̃ = c1·x0 + c2·x_t, the model's μ = c1·x̂0 + c2·x_t
///   4 log β̃_t       the posterior's log variance, clipped at t = 0 to log β̃_1 (min_log)
///   5 log β_t       max_log; the model's log σ² = f·max_log + (1 − f)·min_log, f = (v + 1)/2
/// L_t = KL(N(μ̃, β̃) ‖ N(μ, σ²)) for t > 0 and −log p(x0 | μ, σ) for t = 0 (the discretised
/// Gaussian with improved-diffusion's tanh approximation of Φ), averaged over an image's elements.
public struct VLBTerm: Hashable, Sendable {
    public var timesteps: Int
    /// Multiplies the batch mean (the hybrid loss's λ·T, e.g. T/1000 for λ = 0.001).
    public var scale: Float
    public init(timesteps: Int, scale: Float) { self.timesteps = timesteps; self.scale = scale }
}

/// One reverse step written as a few coefficients that the host computes from the schedule:
///   x̂0 = clamp(kx·x_t + km·m, ±clip)          (clip ≤ 0: no clamp; m the model output)
///   ε̂  = ex·x_t + em·m                       (the noise estimate, from the unclipped prediction)
///   x_prev = p0·x̂0 + pe·ε̂ + px·x_t + σ·σ_v·z,  z ~ N(0, I) from Philox(seed, image index, step)
/// σ_v is 1, or with `learnedVariance` (Improved DDPM, diffusers "learned_range") a third input v gives
///   σ_v = exp(½·(f·maxLog + (1−f)·minLog)),  f = (v + 1)/2.
/// The per-image noise stream is `firstImage + n`, so image i depends only on (seed, i).
public struct SamplerStep: Hashable, Sendable {
    public var kx: Float, km: Float, clip: Float
    public var ex: Float, em: Float
    public var p0: Float, pe: Float, px: Float, sigma: Float
    public var seed: UInt64
    public var firstImage: UInt32
    public var learnedVariance: Bool
    public var minLog: Float, maxLog: Float
    public init(kx: Float, km: Float, clip: Float, ex: Float, em: Float, p0: Float, pe: Float, px: Float,
                sigma: Float, seed: UInt64, firstImage: UInt32, learnedVariance: Bool = false, minLog: Float = 0, maxLog: Float = 0) {
        self.kx = kx; self.km = km; self.clip = clip; self.ex = ex; self.em = em
        self.p0 = p0; self.pe = pe; self.px = px; self.sigma = sigma; self.seed = seed; self.firstImage = firstImage
        self.learnedVariance = learnedVariance; self.minLog = minLog; self.maxLog = maxLog
    }
}

/// A multistep solver update with host coefficients (per-step, computed in double once per run):
///   x_next = cx·x + c[0]·d_0 + c[1]·d_1 + c[2]·d_2 (as many terms as c has, summed in this order)
///            + σ·z,  z ~ N(0, I) from Philox(seed, image firstImage + n, step, samplerNoise) when σ ≠ 0.
public struct SolverUpdate: Hashable, Sendable {
    public var cx: Float
    public var c: [Float]
    public var sigma: Float
    public var seed: UInt64
    public var firstImage: UInt32
    public init(cx: Float, c: [Float], sigma: Float = 0, seed: UInt64 = 0, firstImage: UInt32 = 0) {
        precondition((1...3).contains(c.count), "a solver update combines 1 to 3 predictions")
        self.cx = cx; self.c = c; self.sigma = sigma; self.seed = seed; self.firstImage = firstImage
    }
}

/// AdamW exactly as torch.optim.AdamW computes it (bias corrections from `step`, counted from 1).
public struct Adam: Hashable, Sendable {
    public var learningRate: Float
    public var beta1: Float, beta2: Float, eps: Float
    public var weightDecay: Float
    public var step: Int
    public init(learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8,
                weightDecay: Float = 0, step: Int) {
        self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps
        self.weightDecay = weightDecay; self.step = step
    }
}

/// Philox stream numbers (the counter's last word), one per purpose, so draws never collide.
public enum RandomStream {
    public static let trainingNoise: UInt32 = 1
    public static let trainingTimestep: UInt32 = 2
    public static let samplerNoise: UInt32 = 3
    public static let initialNoise: UInt32 = 4
    /// The timesteps a strided likelihood estimate draws (one counter per stratum).
    public static let likelihoodTimestep: UInt32 = 5
    /// Offset noise of training (one normal per image and channel).
    public static let trainingOffsetNoise: UInt32 = 6
    public static let dropoutBase: UInt32 = 0x100
}
