import DDPMCore

/// diffusers' UNet2DModel written as graph nodes. The blocks are named like diffusers' modules and
/// their parameters carry diffusers' state_dict names (conv_in.weight,
/// down_blocks.0.resnets.0.norm1.weight, …), so weights move between the two unchanged.
public struct UNet {
    public let config: UNetConfig
    public let graph: Graph
    public let sample: Value      // x_t [N, C, H, W]
    public let timesteps: Value   // t [N] as floats
    /// y [N] as floats holding class indices in 0..<num_class_embeds (class-conditional configs only)
    public let classLabels: Value?
    public let output: Value      // [N, out_channels, H, W]

    /// Builds the forward pass into `graph` for a batch of `batch` images. Dropout layers draw their
    /// masks from Philox(dropoutSeed) when `training` is true and are identity otherwise; the batch's
    /// images are drawn as images `firstImage`… of a larger batch (a data-parallel shard). A
    /// class-conditional config gets a `class_labels` input unless `classLabels` is given.
    public init(config: UNetConfig, batch: Int, graph: Graph = Graph(), sample: Value? = nil, timesteps: Value? = nil,
                classLabels: Value? = nil, training: Bool = false, dropoutSeed: UInt64 = 0, firstImage: UInt32 = 0) {
        precondition(classLabels == nil || config.isClassConditional, "class labels given to a U-Net without num_class_embeds")
        self.config = config
        self.graph = graph
        let size = config.sampleSize
        self.sample = sample ?? graph.input("sample", Shape(batch, config.inChannels, size, size))
        self.timesteps = timesteps ?? graph.input("timesteps", Shape(batch))
        self.classLabels = config.isClassConditional ? classLabels ?? graph.input("class_labels", Shape(graph.shape(self.sample)[0])) : nil
        var b = Builder(graph: graph, config: config, training: training && config.dropout > 0, dropoutSeed: dropoutSeed)
        b.firstImage = firstImage
        output = b.forward(self.sample, self.timesteps, classLabels: self.classLabels)
    }
}

/// Emits the nodes of each diffusers block. One method per module type (EncoderClassifier reuses them).
struct Builder {
    let graph: Graph
    let config: UNetConfig
    let training: Bool
    let dropoutSeed: UInt64
    var dropoutLayers: UInt32 = 0
    var firstImage: UInt32 = 0

    init(graph: Graph, config: UNetConfig, training: Bool, dropoutSeed: UInt64) {
        self.graph = graph; self.config = config; self.training = training; self.dropoutSeed = dropoutSeed
    }

    var groups: Int { config.normNumGroups }

    mutating func forward(_ sampleIn: Value, _ t: Value, classLabels: Value? = nil) -> Value {
        let c = config.blockOutChannels
        var sample = sampleIn
        if config.centerInputSample { sample = graph(.add, graph(.scale(2), sample), graph.constant([Float](repeating: -1, count: graph.shape(sample).count), graph.shape(sample))) }

        // Time: sinusoidal projection, then TimestepEmbedding (linear_1, SiLU, linear_2). Each
        // ResnetBlock2D applies SiLU to it before its own projection; that SiLU is shared here.
        let projected = graph(.timestepEmbedding(TimestepEmbedding(dim: c[0], flipSinToCos: config.flipSinToCos,
                                                                     freqShift: Float(config.freqShift))), t)
        var temb = linear("time_embedding.linear_2", graph(.silu, linear("time_embedding.linear_1", projected, out: 4 * c[0])), out: 4 * c[0])
        if let labels = classLabels, let classes = config.numClassEmbeds {
            // UNet2DModel with class_embed_type None: emb = time_embedding(t) + class_embedding(y).
            let table = graph.parameter("class_embedding.weight", Shape(classes, 4 * c[0]))
            temb = graph(.add, temb, graph(.embedding, table, labels))
        }
        let tembAct = graph(.silu, temb)

        var h = conv("conv_in", sample, out: c[0], kernel: 3)
        var skips = [h]
        for (i, type) in config.downBlockTypes.enumerated() {
            let prefix = "down_blocks.\(i)"
            let isFinal = i == c.count - 1
            for j in 0..<config.layersPerBlock {
                h = resnet("\(prefix).resnets.\(j)", h, tembAct, out: c[i])
                if type == "AttnDownBlock2D" { h = attention("\(prefix).attentions.\(j)", h, headDim: config.attentionHeadDim ?? c[i]) }
                skips.append(h)
            }
            if !isFinal {
                h = downsample("\(prefix).downsamplers.0", h)
                skips.append(h)
            }
        }

        h = resnet("mid_block.resnets.0", h, tembAct, out: c.last!)
        if config.addAttention { h = attention("mid_block.attentions.0", h, headDim: config.attentionHeadDim ?? c.last!) }
        h = resnet("mid_block.resnets.1", h, tembAct, out: c.last!)

        let reversed = Array(c.reversed())
        for (i, type) in config.upBlockTypes.enumerated() {
            let prefix = "up_blocks.\(i)"
            let isFinal = i == c.count - 1
            for j in 0...config.layersPerBlock {
                h = graph(.concatChannels, h, skips.removeLast())
                h = resnet("\(prefix).resnets.\(j)", h, tembAct, out: reversed[i])
                if type == "AttnUpBlock2D" { h = attention("\(prefix).attentions.\(j)", h, headDim: config.attentionHeadDim ?? reversed[i]) }
            }
            if !isFinal { h = upsample("\(prefix).upsamplers.0", h) }
        }

        h = groupNorm("conv_norm_out", h, groups: groups, silu: true)
        return conv("conv_out", h, out: config.outChannels, kernel: 3)
    }

    // MARK: Modules

    /// ResnetBlock2D: norm1 → SiLU → conv1 → + time_emb_proj(SiLU(temb)) → norm2 → SiLU → dropout → conv2,
    /// plus the input (through conv_shortcut when the channel count changes).
    mutating func resnet(_ name: String, _ x: Value, _ tembAct: Value, out: Int) -> Value {
        let inChannels = graph.shape(x)[1]
        var h = groupNorm("\(name).norm1", x, groups: groups, silu: true)
        // Parameters in diffusers' order (Weights.initialize draws them in graph order).
        let conv1 = convParameters("\(name).conv1", inChannels: inChannels, out: out, kernel: 3)
        let t = linear("\(name).time_emb_proj", tembAct, out: out)
        h = convolve(h, conv1, addend: t)
        h = groupNorm("\(name).norm2", h, groups: groups, silu: true)
        if training {
            dropoutLayers += 1
            h = graph(.dropout(Dropout(probability: config.dropout, seed: dropoutSeed, stream: dropoutLayers, firstImage: firstImage)), h)
        }
        let conv2 = convParameters("\(name).conv2", inChannels: out, out: out, kernel: 3)
        let shortcut = inChannels == out ? x : conv("\(name).conv_shortcut", x, out: out, kernel: 1)
        return convolve(h, conv2, residual: shortcut)
    }

    /// Attention as UNet2DModel uses it: group_norm, to_q/to_k/to_v (linear over channels, i.e. 1×1
    /// convolutions), softmax(QᵀK/√d)·V per head (one fused op), to_out.0, residual.
    func attention(_ name: String, _ x: Value, headDim: Int) -> Value {
        let s = graph.shape(x)
        let (n, c, tokens) = (s[0], s[1], s[2] * s[3])
        let heads = c / headDim
        let h = groupNorm("\(name).group_norm", x, groups: groups)
        func project(_ p: String, _ input: Value) -> Value { pointwise("\(name).\(p)", input, out: c) }
        let perHead = Shape(n * heads, headDim, tokens)
        let q = graph(.reshape(perHead), project("to_q", h))
        let k = graph(.reshape(perHead), project("to_k", h))
        let v = graph(.reshape(perHead), project("to_v", h))
        let mixed = graph(.attention(scale: 1 / Float(headDim).squareRoot()), q, k, v)  // [B·h, d, T]
        return pointwise("\(name).to_out.0", graph(.reshape(s), mixed), out: c, residual: x)
    }

    /// Downsample2D: a stride-2 3×3 convolution; downsample_padding 0 pads only right and bottom.
    func downsample(_ name: String, _ x: Value) -> Value {
        let p = config.downsamplePadding
        let c = graph.shape(x)[1]
        let params = p == 0
            ? Conv2D(kernel: 3, stride: 2, padTop: 0, padLeft: 0, padBottom: 1, padRight: 1, bias: true)
            : Conv2D(kernel: 3, stride: 2, padding: p)
        return convolution("\(name).conv", x, out: c, params)
    }

    /// Upsample2D: nearest ×2, then a 3×3 convolution.
    func upsample(_ name: String, _ x: Value) -> Value {
        conv("\(name).conv", graph(.upsampleNearest2x, x), out: graph.shape(x)[1], kernel: 3)
    }

    // MARK: Layers with parameters

    /// A convolution's parameters: its weight [out, in, kh, kw] and bias.
    struct ConvParameters {
        var weight: Value, bias: Value, params: Conv2D
    }

    func convParameters(_ name: String, inChannels c: Int, out: Int, _ params: Conv2D) -> ConvParameters {
        ConvParameters(weight: graph.parameter("\(name).weight", Shape(out, c, params.kernelHeight, params.kernelWidth)),
                       bias: graph.parameter("\(name).bias", Shape(out)), params: params)
    }

    func convParameters(_ name: String, inChannels: Int, out: Int, kernel: Int) -> ConvParameters {
        convParameters(name, inChannels: inChannels, out: out, Conv2D(kernel: kernel, padding: kernel / 2))
    }

    /// The convolution, with the time embedding's projection t[N, out] added per channel (`addend`)
    /// or a residual added: the conv's epilogue, one pass over the output instead of three.
    func convolve(_ x: Value, _ p: ConvParameters, addend: Value? = nil, residual: Value? = nil) -> Value {
        let op = Op.conv2d(p.params.adding(channels: addend != nil, residual: residual != nil))
        return graph.apply(op, [x, p.weight, p.bias] + [addend, residual].compactMap { $0 })[0]
    }

    func conv(_ name: String, _ x: Value, out: Int, kernel: Int) -> Value {
        convolution(name, x, out: out, Conv2D(kernel: kernel, padding: kernel / 2))
    }

    func convolution(_ name: String, _ x: Value, out: Int, _ params: Conv2D) -> Value {
        convolve(x, convParameters(name, inChannels: graph.shape(x)[1], out: out, params))
    }

    /// A torch Linear over the channel dimension of an image tensor: its [out, in] weight as a 1×1 conv.
    func pointwise(_ name: String, _ x: Value, out: Int, residual: Value? = nil) -> Value {
        let c = graph.shape(x)[1]
        let w = graph.parameter("\(name).weight", Shape(out, c))
        let p = ConvParameters(weight: graph(.reshape(Shape(out, c, 1, 1)), w), bias: graph.parameter("\(name).bias", Shape(out)),
                               params: Conv2D(kernel: 1, padding: 0))
        return convolve(x, p, residual: residual)
    }

    func linear(_ name: String, _ x: Value, out: Int) -> Value {
        let w = graph.parameter("\(name).weight", Shape(out, graph.shape(x)[1]))
        let b = graph.parameter("\(name).bias", Shape(out))
        return graph(.linear, x, w, b)
    }

    /// GroupNorm, followed by SiLU in the same op when `silu` (the norm → SiLU of ResNet blocks).
    func groupNorm(_ name: String, _ x: Value, groups: Int, silu: Bool = false) -> Value {
        let c = graph.shape(x)[1]
        let gamma = graph.parameter("\(name).weight", Shape(c))
        let beta = graph.parameter("\(name).bias", Shape(c))
        return graph(.groupNorm(GroupNorm(groups: groups, eps: config.normEps, silu: silu)), x, gamma, beta)
    }
}
