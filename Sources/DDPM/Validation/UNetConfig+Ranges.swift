import DDPMCore
import Foundation

extension UNetConfig {
    /// Bounds far above any published UNet2DModel, so that a typo is refused before a graph or a
    /// buffer is built. (ddpm-ema-church-256 has sample_size 256 and at most 512 channels.)
    public static let maxSampleSize = 2048
    public static let maxChannels = 8192
    public static let maxImageChannels = 64
    public static let maxBlocks = 8
    public static let maxLayersPerBlock = 32
    public static let maxParameters = 2_000_000_000
    /// Rows of a class embedding (ImageNet has 1000 classes).
    public static let maxClasses = 100_000

    /// Every config.json key ddpm-cl reads.
    public static var jsonKeys: [String] { CodingKeys.allCases.map(\.rawValue) }

    /// The config.json keys that take whole numbers (or lists of them).
    public static let wholeNumberKeys = ["sample_size", "in_channels", "out_channels", "block_out_channels", "layers_per_block",
                                         "norm_num_groups", "attention_head_dim", "downsample_padding", "freq_shift",
                                         "num_class_embeds", "time_embedding_dim", "attn_norm_num_groups"]

    /// Types are checked by decoding; this checks each number's range and the relations between
    /// them (divisibility, head sizes), naming the key, the value and what is allowed.
    func validateRanges(source: String) throws {
        func refuse(_ key: String, _ value: Any, _ allowed: String) -> UserError {
            UserError("\(source): \"\(key)\" is \(value); \(allowed).")
        }
        func whole(_ key: String, _ value: Int, _ range: ClosedRange<Int>) throws {
            guard range.contains(value) else { throw refuse(key, value, "it takes a whole number in \(range.lowerBound)…\(range.upperBound)") }
        }
        try whole("sample_size", sampleSize, 1...Self.maxSampleSize)
        try whole("in_channels", inChannels, 1...Self.maxImageChannels)
        try whole("out_channels", outChannels, 1...2 * Self.maxImageChannels)
        try whole("layers_per_block", layersPerBlock, 1...Self.maxLayersPerBlock)
        try whole("norm_num_groups", normNumGroups, 1...Self.maxChannels)
        try whole("downsample_padding", downsamplePadding, 0...1)
        try whole("freq_shift", freqShift, 0...1)
        if let k = numClassEmbeds { try whole("num_class_embeds", k, 1...Self.maxClasses) }
        guard (1...Self.maxBlocks).contains(blockOutChannels.count) else {
            throw refuse("block_out_channels", blockOutChannels, "it takes a list of 1…\(Self.maxBlocks) channel counts")
        }
        for c in blockOutChannels where !(1...Self.maxChannels).contains(c) {
            throw refuse("block_out_channels", blockOutChannels, "each entry must be a whole number in 1…\(Self.maxChannels)")
        }
        guard normEps.isFinite, normEps > 0, normEps <= 1 else { throw refuse("norm_eps", normEps, "it takes a number in (0, 1], e.g. 1e-5") }
        guard dropout.isFinite, dropout >= 0, dropout < 1 else { throw refuse("dropout", dropout, "it takes a probability in [0, 1)") }
        guard midBlockScaleFactor.isFinite else { throw refuse("mid_block_scale_factor", midBlockScaleFactor, "it takes 1") }
        for c in blockOutChannels where c % normNumGroups != 0 {
            throw refuse("norm_num_groups", normNumGroups, "every entry of block_out_channels \(blockOutChannels) must be a multiple of it")
        }
        if let d = attentionHeadDim {
            guard d >= 1 else { throw refuse("attention_head_dim", d, "it takes a positive whole number (or null: one head per block)") }
            var attended: [Int] = []
            for (i, t) in downBlockTypes.enumerated() where t == "AttnDownBlock2D" && i < blockOutChannels.count { attended.append(blockOutChannels[i]) }
            for (i, t) in upBlockTypes.enumerated() where t == "AttnUpBlock2D" && i < blockOutChannels.count {
                attended.append(blockOutChannels[blockOutChannels.count - 1 - i])
            }
            if addAttention, let last = blockOutChannels.last { attended.append(last) }
            for c in attended where c % d != 0 {
                throw refuse("attention_head_dim", d, "it must divide the channels of every block with attention (\(c) here)")
            }
        }
        let downsamples = blockOutChannels.count - 1
        if sampleSize % (1 << downsamples) != 0 {
            throw refuse("sample_size", sampleSize, "with \(blockOutChannels.count) blocks it must be a multiple of 2^\(downsamples) = \(1 << downsamples)")
        }
    }

    /// The parameter count of the U-Net this config builds (symbolic: nothing is allocated).
    /// Call after validate().
    public var parameterCount: Int {
        let graph = UNet(config: self, batch: 1).graph
        return graph.parameters.reduce(0) { $0 + graph.shape($1.value).count }
    }

    /// validate(), then a bound on the size of the weights.
    func validateSize(source: String) throws {
        let count = parameterCount
        if count > Self.maxParameters {
            throw UserError("\(source): this U-Net would have \(count) parameters (\(count / 250_000_000) GB per copy of the weights); ddpm-cl takes at most \(Self.maxParameters). Use fewer or narrower blocks.")
        }
    }
}
