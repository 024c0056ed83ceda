import DDPMCore

/// The domain classifier as graph nodes (guided-diffusion's EncoderUNetModel, pool "adaptive"):
/// sinusoidal time embedding → MLP, conv_in, down blocks (ResnetBlock2D × layers, Downsample2D between
/// blocks), mid block resnets, then out.norm → SiLU → global average pool (the features) → out.linear
/// (the logits). Parameter names follow UNet2DModel's (conv_in, down_blocks.0.resnets.0.conv1, …).
/// The timestep input lets the same network become the noisy classifier of classifier guidance;
/// FID uses t = 0.
public struct EncoderClassifier {
    public let config: ClassifierConfig
    public let graph: Graph
    public let images: Value     // [N, C, S, S] in [-1, 1]
    public let timesteps: Value  // [N]
    public let features: Value   // [N, featureDimension]
    public let logits: Value     // [N, classes]

    /// `images` and `timesteps` default to graph inputs; a noisy classifier's trainer feeds x_t and t
    /// from the qSample op instead.
    public init(config: ClassifierConfig, batch: Int, graph: Graph = Graph(), images: Value? = nil, timesteps: Value? = nil) {
        self.config = config
        self.graph = graph
        let s = config.sampleSize
        self.images = images ?? graph.input("images", Shape(batch, config.inChannels, s, s))
        self.timesteps = timesteps ?? graph.input("timesteps", Shape(batch))
        var b = Builder(graph: graph, config: config.unet, training: false, dropoutSeed: 0)
        let h = b.encoder(self.images, self.timesteps)
        let pooled = graph(.globalAveragePool, b.groupNorm("out.norm", h, groups: config.normNumGroups, silu: true))
        features = pooled
        logits = b.linear("out.linear", pooled, out: config.classes)
    }
}

extension Builder {
    /// UNet2DModel's forward up to the end of its mid block's resnets (no attention, no up path).
    mutating func encoder(_ sample: Value, _ t: Value) -> Value {
        let c = config.blockOutChannels
        let projected = graph(.timestepEmbedding(TimestepEmbedding(dim: c[0], flipSinToCos: config.flipSinToCos,
                                                                     freqShift: Float(config.freqShift))), t)
        let temb = linear("time_embedding.linear_2", graph(.silu, linear("time_embedding.linear_1", projected, out: 4 * c[0])), out: 4 * c[0])
        let tembAct = graph(.silu, temb)
        var h = conv("conv_in", sample, out: c[0], kernel: 3)
        for i in c.indices {
            for j in 0..<config.layersPerBlock { h = resnet("down_blocks.\(i).resnets.\(j)", h, tembAct, out: c[i]) }
            if i < c.count - 1 { h = downsample("down_blocks.\(i).downsamplers.0", h) }
        }
        h = resnet("mid_block.resnets.0", h, tembAct, out: c.last!)
        return resnet("mid_block.resnets.1", h, tembAct, out: c.last!)
    }
}
