import DDPMCore

/// pytorch-fid's FID InceptionV3 (`pytorch_fid.inception.InceptionV3([3])`, resize_input and
/// normalize_input on) up to pool3, as a graph of ddpm-cl's ops: bilinear resize to 299×299
/// (align_corners=False), the stem, Mixed_5b…5d (FIDInceptionA), Mixed_6a, Mixed_6b…6e
/// (FIDInceptionC), Mixed_7a, Mixed_7b (FIDInceptionE_1), Mixed_7c (FIDInceptionE_2) and the
/// adaptive average pool to 1×1: 2048 features per image.
///
/// Each BasicConv2d (conv without bias, BatchNorm eps 0.001, ReLU) is a conv2d with bias and a relu:
/// InceptionWeights folds the batch norm into the conv's weight and bias on load. Parameters are
/// named after pytorch-fid's modules, "<module>.weight" and "<module>.bias" (e.g.
/// "Mixed_6b.branch7x7_2.weight"), the file's tensors "<module>.conv.weight" and "<module>.bn.*".
///
/// Input: images in [−1, 1] (ddpm-cl's u/127.5 − 1). pytorch-fid resizes images in [0, 1] and then
/// maps them to 2x − 1; bilinear weights sum to 1, so resizing the already-mapped image is the same
/// function (up to float rounding). Gray images are replicated to RGB before (ImageSet, targetChannels 3),
/// as pytorch-fid's loader does with PIL's convert("RGB").
public final class InceptionV3 {
    public static let inputSize = 299
    public static let featureDimension = 2048
    public static let batchNormEps = 0.001

    /// One BasicConv2d: its module name, channels and convolution.
    public struct Layer {
        public var name: String
        public var inChannels: Int, outChannels: Int
        public var conv: Conv2D
        public var weightShape: Shape { Shape(outChannels, inChannels, conv.kernelHeight, conv.kernelWidth) }
    }

    public let graph = Graph()
    /// [N, 3, size, size] in [−1, 1]
    public let images: Value
    /// [N, 2048]
    public private(set) var features: Value
    public private(set) var layers: [Layer] = []

    /// The network for `batch` images of `size`×`size` (resized to 299×299 inside).
    public init(batch: Int, size: Int = InceptionV3.inputSize) {
        images = graph.input("images", Shape(batch, 3, size, size))
        features = images
        var x = size == Self.inputSize ? images : graph(.resizeBilinear(height: Self.inputSize, width: Self.inputSize), images)
        // Block 0 and 1: the stem, with its two max pools.
        x = basic("Conv2d_1a_3x3", x, out: 32, 3, 3, stride: 2)
        x = basic("Conv2d_2a_3x3", x, out: 32, 3, 3)
        x = basic("Conv2d_2b_3x3", x, out: 64, 3, 3, pad: (1, 1))
        x = graph(.maxPool2d(Pool2D(kernel: 3, stride: 2)), x)
        x = basic("Conv2d_3b_1x1", x, out: 80, 1, 1)
        x = basic("Conv2d_4a_3x3", x, out: 192, 3, 3)
        x = graph(.maxPool2d(Pool2D(kernel: 3, stride: 2)), x)
        // Block 2 and 3.
        x = blockA("Mixed_5b", x, poolFeatures: 32)
        x = blockA("Mixed_5c", x, poolFeatures: 64)
        x = blockA("Mixed_5d", x, poolFeatures: 64)
        x = blockB("Mixed_6a", x)
        x = blockC("Mixed_6b", x, c7: 128)
        x = blockC("Mixed_6c", x, c7: 160)
        x = blockC("Mixed_6d", x, c7: 160)
        x = blockC("Mixed_6e", x, c7: 192)
        x = blockD("Mixed_7a", x)
        x = blockE("Mixed_7b", x, maxPool: false)
        x = blockE("Mixed_7c", x, maxPool: true)
        features = graph(.globalAveragePool, x)
    }

    /// The layers of the network (independent of batch and input size).
    public static let architecture: [Layer] = InceptionV3(batch: 1).layers

    // MARK: Blocks (torchvision's InceptionA…E with pytorch-fid's FID patches)

    /// BasicConv2d: conv (BatchNorm folded into weight and bias) + ReLU.
    private func basic(_ name: String, _ x: Value, out: Int, _ kh: Int, _ kw: Int, stride: Int = 1,
                       pad: (y: Int, x: Int) = (0, 0)) -> Value {
        let c = graph.shape(x)[1]
        let conv = Conv2D(kernelHeight: kh, kernelWidth: kw, stride: stride, padY: pad.y, padX: pad.x)
        let layer = Layer(name: name, inChannels: c, outChannels: out, conv: conv)
        layers.append(layer)
        let w = graph.parameter("\(name).weight", layer.weightShape)
        let b = graph.parameter("\(name).bias", Shape(out))
        return graph(.relu, graph(.conv2d(conv), x, w, b))
    }

    private func cat(_ parts: [Value]) -> Value {
        parts.dropFirst().reduce(parts[0]) { graph(.concatChannels, $0, $1) }
    }

    /// TensorFlow's average pool leaves the padding out of the count (pytorch-fid's patch).
    private func averagePool(_ x: Value) -> Value { graph(.averagePool2d(Pool2D(kernel: 3, stride: 1, padding: 1)), x) }

    /// FIDInceptionA: 1×1 | 1×1 → 5×5 | 1×1 → 3×3 → 3×3 | avg pool → 1×1.
    private func blockA(_ n: String, _ x: Value, poolFeatures: Int) -> Value {
        let b1 = basic("\(n).branch1x1", x, out: 64, 1, 1)
        var b5 = basic("\(n).branch5x5_1", x, out: 48, 1, 1)
        b5 = basic("\(n).branch5x5_2", b5, out: 64, 5, 5, pad: (2, 2))
        var b3 = basic("\(n).branch3x3dbl_1", x, out: 64, 1, 1)
        b3 = basic("\(n).branch3x3dbl_2", b3, out: 96, 3, 3, pad: (1, 1))
        b3 = basic("\(n).branch3x3dbl_3", b3, out: 96, 3, 3, pad: (1, 1))
        let bp = basic("\(n).branch_pool", averagePool(x), out: poolFeatures, 1, 1)
        return cat([b1, b5, b3, bp])
    }

    /// InceptionB (Mixed_6a): 3×3/2 | 1×1 → 3×3 → 3×3/2 | max pool 3/2.
    private func blockB(_ n: String, _ x: Value) -> Value {
        let b3 = basic("\(n).branch3x3", x, out: 384, 3, 3, stride: 2)
        var bd = basic("\(n).branch3x3dbl_1", x, out: 64, 1, 1)
        bd = basic("\(n).branch3x3dbl_2", bd, out: 96, 3, 3, pad: (1, 1))
        bd = basic("\(n).branch3x3dbl_3", bd, out: 96, 3, 3, stride: 2)
        return cat([b3, bd, graph(.maxPool2d(Pool2D(kernel: 3, stride: 2)), x)])
    }

    /// FIDInceptionC: 1×1 | 1×1 → 1×7 → 7×1 | 1×1 → 7×1 → 1×7 → 7×1 → 1×7 | avg pool → 1×1.
    private func blockC(_ n: String, _ x: Value, c7: Int) -> Value {
        let b1 = basic("\(n).branch1x1", x, out: 192, 1, 1)
        var b7 = basic("\(n).branch7x7_1", x, out: c7, 1, 1)
        b7 = basic("\(n).branch7x7_2", b7, out: c7, 1, 7, pad: (0, 3))
        b7 = basic("\(n).branch7x7_3", b7, out: 192, 7, 1, pad: (3, 0))
        var bd = basic("\(n).branch7x7dbl_1", x, out: c7, 1, 1)
        bd = basic("\(n).branch7x7dbl_2", bd, out: c7, 7, 1, pad: (3, 0))
        bd = basic("\(n).branch7x7dbl_3", bd, out: c7, 1, 7, pad: (0, 3))
        bd = basic("\(n).branch7x7dbl_4", bd, out: c7, 7, 1, pad: (3, 0))
        bd = basic("\(n).branch7x7dbl_5", bd, out: 192, 1, 7, pad: (0, 3))
        let bp = basic("\(n).branch_pool", averagePool(x), out: 192, 1, 1)
        return cat([b1, b7, bd, bp])
    }

    /// InceptionD (Mixed_7a): 1×1 → 3×3/2 | 1×1 → 1×7 → 7×1 → 3×3/2 | max pool 3/2.
    private func blockD(_ n: String, _ x: Value) -> Value {
        var b3 = basic("\(n).branch3x3_1", x, out: 192, 1, 1)
        b3 = basic("\(n).branch3x3_2", b3, out: 320, 3, 3, stride: 2)
        var b7 = basic("\(n).branch7x7x3_1", x, out: 192, 1, 1)
        b7 = basic("\(n).branch7x7x3_2", b7, out: 192, 1, 7, pad: (0, 3))
        b7 = basic("\(n).branch7x7x3_3", b7, out: 192, 7, 1, pad: (3, 0))
        b7 = basic("\(n).branch7x7x3_4", b7, out: 192, 3, 3, stride: 2)
        return cat([b3, b7, graph(.maxPool2d(Pool2D(kernel: 3, stride: 2)), x)])
    }

    /// FIDInceptionE_1 / _2: 1×1 | 1×1 → (1×3 | 3×1) | 1×1 → 3×3 → (1×3 | 3×1) | pool → 1×1, where the
    /// pool is the average without padding (E_1, Mixed_7b) or a 3×3 max pool (E_2, Mixed_7c).
    private func blockE(_ n: String, _ x: Value, maxPool: Bool) -> Value {
        let b1 = basic("\(n).branch1x1", x, out: 320, 1, 1)
        let b3 = basic("\(n).branch3x3_1", x, out: 384, 1, 1)
        let b3a = basic("\(n).branch3x3_2a", b3, out: 384, 1, 3, pad: (0, 1))
        let b3b = basic("\(n).branch3x3_2b", b3, out: 384, 3, 1, pad: (1, 0))
        var bd = basic("\(n).branch3x3dbl_1", x, out: 448, 1, 1)
        bd = basic("\(n).branch3x3dbl_2", bd, out: 384, 3, 3, pad: (1, 1))
        let bda = basic("\(n).branch3x3dbl_3a", bd, out: 384, 1, 3, pad: (0, 1))
        let bdb = basic("\(n).branch3x3dbl_3b", bd, out: 384, 3, 1, pad: (1, 0))
        let pooled = maxPool ? graph(.maxPool2d(Pool2D(kernel: 3, stride: 1, padding: 1)), x) : averagePool(x)
        let bp = basic("\(n).branch_pool", pooled, out: 192, 1, 1)
        return cat([b1, b3a, b3b, bda, bdb, bp])
    }
}
