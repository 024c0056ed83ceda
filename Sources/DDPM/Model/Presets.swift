/// Named model configurations for `--model`.
public enum ModelPreset: String, CaseIterable {
    /// For tests: 8×8 gray, two levels, attention at 4×4 (the same shape as the diffusers fixture unet-tiny).
    case tiny
    /// The Fashion-MNIST default: 1×32×32, block_out 32/64/64, 2 layers per block, attention at 16×16
    /// (2 heads of 32 channels), 8 groups.
    case small
    /// google/ddpm-cifar10-32's configuration (35.7M parameters).
    case cifar10

    public var config: UNetConfig {
        switch self {
        case .tiny:
            return UNetConfig(sampleSize: 8, inChannels: 1, outChannels: 1, blockOutChannels: [8, 16], layersPerBlock: 1,
                              downBlockTypes: ["DownBlock2D", "AttnDownBlock2D"], upBlockTypes: ["AttnUpBlock2D", "UpBlock2D"],
                              normNumGroups: 4, attentionHeadDim: 4)
        case .small:
            return UNetConfig(sampleSize: 32, inChannels: 1, outChannels: 1, blockOutChannels: [32, 64, 64], layersPerBlock: 2,
                              downBlockTypes: ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D"],
                              upBlockTypes: ["UpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
                              normNumGroups: 8, attentionHeadDim: 32)
        case .cifar10:
            return UNetConfig(sampleSize: 32, inChannels: 3, outChannels: 3, blockOutChannels: [128, 256, 256, 256],
                              layersPerBlock: 2,
                              downBlockTypes: ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"],
                              upBlockTypes: ["UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
                              normNumGroups: 32, normEps: 1e-6, attentionHeadDim: nil, downsamplePadding: 0,
                              flipSinToCos: false, freqShift: 1)
        }
    }
}
