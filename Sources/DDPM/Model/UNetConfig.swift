import DDPMCore
import Foundation

/// diffusers' UNet2DModel configuration (its config.json, snake_case keys). Keys we do not use are
/// ignored on reading; values we do not support are refused with a message saying what is.
public struct UNetConfig: Codable, Equatable {
    public var sampleSize: Int
    public var inChannels: Int
    public var outChannels: Int
    public var blockOutChannels: [Int]
    public var layersPerBlock: Int
    public var downBlockTypes: [String]
    public var upBlockTypes: [String]
    public var normNumGroups: Int
    public var normEps: Float
    public var attentionHeadDim: Int?
    public var dropout: Float
    public var downsamplePadding: Int
    public var flipSinToCos: Bool
    public var freqShift: Int
    public var addAttention: Bool
    public var centerInputSample: Bool
    public var midBlockScaleFactor: Float
    // Options we only accept at their supported value (checked by validate()).
    public var actFn: String
    public var timeEmbeddingType: String
    public var resnetTimeScaleShift: String
    public var downsampleType: String
    public var upsampleType: String
    public var midBlockType: String?
    public var classEmbedType: String?
    public var numClassEmbeds: Int?
    public var timeEmbeddingDim: Int?
    public var attnNormNumGroups: Int?

    /// Whether the U-Net takes class labels (diffusers' class_embedding, an nn.Embedding of
    /// num_class_embeds rows added to the time embedding).
    public var isClassConditional: Bool { numClassEmbeds != nil }

    public static let supportedDownBlocks: Set<String> = ["DownBlock2D", "AttnDownBlock2D"]
    public static let supportedUpBlocks: Set<String> = ["UpBlock2D", "AttnUpBlock2D"]

    enum CodingKeys: String, CodingKey, CaseIterable {
        case sampleSize = "sample_size", inChannels = "in_channels", outChannels = "out_channels"
        case blockOutChannels = "block_out_channels", layersPerBlock = "layers_per_block"
        case downBlockTypes = "down_block_types", upBlockTypes = "up_block_types"
        case normNumGroups = "norm_num_groups", normEps = "norm_eps", attentionHeadDim = "attention_head_dim"
        case dropout, downsamplePadding = "downsample_padding", flipSinToCos = "flip_sin_to_cos"
        case freqShift = "freq_shift", addAttention = "add_attention", centerInputSample = "center_input_sample"
        case midBlockScaleFactor = "mid_block_scale_factor", actFn = "act_fn"
        case timeEmbeddingType = "time_embedding_type", resnetTimeScaleShift = "resnet_time_scale_shift"
        case downsampleType = "downsample_type", upsampleType = "upsample_type", midBlockType = "mid_block_type"
        case classEmbedType = "class_embed_type", numClassEmbeds = "num_class_embeds"
        case timeEmbeddingDim = "time_embedding_dim", attnNormNumGroups = "attn_norm_num_groups"
    }

    /// UNet2DModel's defaults for everything not given.
    public init(sampleSize: Int, inChannels: Int, outChannels: Int, blockOutChannels: [Int], layersPerBlock: Int,
                downBlockTypes: [String], upBlockTypes: [String], normNumGroups: Int = 32, normEps: Float = 1e-5,
                attentionHeadDim: Int? = 8, dropout: Float = 0, downsamplePadding: Int = 1,
                flipSinToCos: Bool = true, freqShift: Int = 0) {
        self.sampleSize = sampleSize; self.inChannels = inChannels; self.outChannels = outChannels
        self.blockOutChannels = blockOutChannels; self.layersPerBlock = layersPerBlock
        self.downBlockTypes = downBlockTypes; self.upBlockTypes = upBlockTypes
        self.normNumGroups = normNumGroups; self.normEps = normEps; self.attentionHeadDim = attentionHeadDim
        self.dropout = dropout; self.downsamplePadding = downsamplePadding
        self.flipSinToCos = flipSinToCos; self.freqShift = freqShift
        addAttention = true; centerInputSample = false; midBlockScaleFactor = 1
        actFn = "silu"; timeEmbeddingType = "positional"; resnetTimeScaleShift = "default"
        downsampleType = "conv"; upsampleType = "conv"; midBlockType = "UNetMidBlock2D"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func opt<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        self.init(sampleSize: try opt(.sampleSize, 32), inChannels: try opt(.inChannels, 3),
                  outChannels: try opt(.outChannels, 3),
                  blockOutChannels: try opt(.blockOutChannels, [224, 448, 672, 896]),
                  layersPerBlock: try opt(.layersPerBlock, 2),
                  downBlockTypes: try opt(.downBlockTypes, ["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"]),
                  upBlockTypes: try opt(.upBlockTypes, ["AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"]),
                  normNumGroups: try opt(.normNumGroups, 32), normEps: try opt(.normEps, 1e-5),
                  attentionHeadDim: c.contains(.attentionHeadDim) ? try c.decodeIfPresent(Int.self, forKey: .attentionHeadDim) : 8,
                  dropout: try opt(.dropout, 0), downsamplePadding: try opt(.downsamplePadding, 1),
                  flipSinToCos: try opt(.flipSinToCos, true), freqShift: try opt(.freqShift, 0))
        addAttention = try opt(.addAttention, true)
        centerInputSample = try opt(.centerInputSample, false)
        midBlockScaleFactor = try opt(.midBlockScaleFactor, 1)
        actFn = try opt(.actFn, "silu")
        timeEmbeddingType = try opt(.timeEmbeddingType, "positional")
        resnetTimeScaleShift = try opt(.resnetTimeScaleShift, "default")
        downsampleType = try opt(.downsampleType, "conv")
        upsampleType = try opt(.upsampleType, "conv")
        // Absent: diffusers' default mid block; an explicit null means no mid block (refused by validate()).
        midBlockType = c.contains(.midBlockType) ? try c.decodeIfPresent(String.self, forKey: .midBlockType) : "UNetMidBlock2D"
        classEmbedType = try c.decodeIfPresent(String.self, forKey: .classEmbedType)
        numClassEmbeds = try c.decodeIfPresent(Int.self, forKey: .numClassEmbeds)
        timeEmbeddingDim = try c.decodeIfPresent(Int.self, forKey: .timeEmbeddingDim)
        attnNormNumGroups = try c.decodeIfPresent(Int.self, forKey: .attnNormNumGroups)
    }

    /// Writes every key, optional ones as null: a missing attention_head_dim reads back as
    /// diffusers' default 8, so nil must be written explicitly to survive a round trip.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(sampleSize, forKey: .sampleSize)
        try c.encode(inChannels, forKey: .inChannels)
        try c.encode(outChannels, forKey: .outChannels)
        try c.encode(blockOutChannels, forKey: .blockOutChannels)
        try c.encode(layersPerBlock, forKey: .layersPerBlock)
        try c.encode(downBlockTypes, forKey: .downBlockTypes)
        try c.encode(upBlockTypes, forKey: .upBlockTypes)
        try c.encode(normNumGroups, forKey: .normNumGroups)
        try c.encode(normEps, forKey: .normEps)
        try c.encode(attentionHeadDim, forKey: .attentionHeadDim)
        try c.encode(dropout, forKey: .dropout)
        try c.encode(downsamplePadding, forKey: .downsamplePadding)
        try c.encode(flipSinToCos, forKey: .flipSinToCos)
        try c.encode(freqShift, forKey: .freqShift)
        try c.encode(addAttention, forKey: .addAttention)
        try c.encode(centerInputSample, forKey: .centerInputSample)
        try c.encode(midBlockScaleFactor, forKey: .midBlockScaleFactor)
        try c.encode(actFn, forKey: .actFn)
        try c.encode(timeEmbeddingType, forKey: .timeEmbeddingType)
        try c.encode(resnetTimeScaleShift, forKey: .resnetTimeScaleShift)
        try c.encode(downsampleType, forKey: .downsampleType)
        try c.encode(upsampleType, forKey: .upsampleType)
        try c.encode(midBlockType, forKey: .midBlockType)
        try c.encode(classEmbedType, forKey: .classEmbedType)
        try c.encode(numClassEmbeds, forKey: .numClassEmbeds)
        try c.encode(timeEmbeddingDim, forKey: .timeEmbeddingDim)
        try c.encode(attnNormNumGroups, forKey: .attnNormNumGroups)
    }

    /// Refuses what the builder cannot represent, saying what is supported.
    public func validate(source: String) throws {
        func refuse(_ what: String) -> UserError {
            UserError("""
                \(source): \(what). ddpm-cl supports UNet2DModel with down blocks \
                \(Self.supportedDownBlocks.sorted().joined(separator: "/")), up blocks \
                \(Self.supportedUpBlocks.sorted().joined(separator: "/")), the UNetMidBlock2D mid block, positional \
                time embedding, act_fn silu and resnet_time_scale_shift "default".
                """)
        }
        try validateRanges(source: source)
        for t in downBlockTypes where !Self.supportedDownBlocks.contains(t) { throw refuse("unsupported down block type \"\(t)\"") }
        for t in upBlockTypes where !Self.supportedUpBlocks.contains(t) { throw refuse("unsupported up block type \"\(t)\"") }
        if downBlockTypes.count != blockOutChannels.count || upBlockTypes.count != blockOutChannels.count {
            throw refuse("down_block_types, up_block_types and block_out_channels must have the same length")
        }
        if actFn != "silu" { throw refuse("unsupported act_fn \"\(actFn)\"") }
        if timeEmbeddingType != "positional" { throw refuse("unsupported time_embedding_type \"\(timeEmbeddingType)\"") }
        if resnetTimeScaleShift != "default" { throw refuse("unsupported resnet_time_scale_shift \"\(resnetTimeScaleShift)\"") }
        if downsampleType != "conv" || upsampleType != "conv" { throw refuse("only conv down/upsampling is supported") }
        guard let m = midBlockType else { throw refuse("mid_block_type null (a U-Net without a mid block) is not supported") }
        if m != "UNetMidBlock2D" { throw refuse("unsupported mid_block_type \"\(m)\"") }
        if let type = classEmbedType {
            throw refuse("class_embed_type \"\(type)\" is not supported; class conditioning takes class_embed_type null with num_class_embeds (an nn.Embedding added to the time embedding)")
        }
        if timeEmbeddingDim != nil { throw refuse("time_embedding_dim is not supported") }
        if attnNormNumGroups != nil { throw refuse("attn_norm_num_groups is not supported") }
        if midBlockScaleFactor != 1 { throw refuse("mid_block_scale_factor other than 1 is not supported") }
        for c in blockOutChannels where c % normNumGroups != 0 {
            throw refuse("block_out_channels \(blockOutChannels) must be multiples of norm_num_groups \(normNumGroups)")
        }
        if let d = attentionHeadDim, d <= 0 { throw refuse("attention_head_dim must be positive") }
        let downsamples = blockOutChannels.count - 1
        if sampleSize % (1 << downsamples) != 0 {
            throw refuse("sample_size \(sampleSize) must be divisible by 2^\(downsamples)")
        }
        try validateSize(source: source)
    }

    public static func load(_ url: URL) throws -> UNetConfig {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw UserError("cannot read the model config \(url.path): no such file. Give a diffusers UNet2DModel config.json or a preset name (tiny, small, cifar10).")
        }
        let config = try JSONText.decode(UNetConfig.self, from: data, source: url.path, wholeNumbers: wholeNumberKeys)
        try config.validate(source: url.path)
        return config
    }

    /// config.json as diffusers writes it (so `UNet2DModel.from_pretrained` reads it).
    public func jsonData() throws -> Data {
        var object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(self)) as! [String: Any]
        object["_class_name"] = "UNet2DModel"
        object["_diffusers_version"] = "0.42.1"
        for key in ["attention_head_dim", "class_embed_type", "num_class_embeds", "time_embedding_dim", "attn_norm_num_groups", "num_train_timesteps"]
        where object[key] == nil { object[key] = NSNull() }
        object["norm_eps"] = Double(normEps)
        object["dropout"] = Double(dropout)
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }
}
