import DDPMCore
import Foundation

/// The domain classifier's shape: the encoder half of a UNet2DModel (conv_in, down blocks of
/// ResnetBlock2D + Downsample2D, the mid block's resnets) with a pooled head, like guided-diffusion's
/// EncoderUNetModel (pool "adaptive"): GroupNorm → SiLU → global average pool → Linear to the classes.
/// The pooled vector (the last block's channel count) is the penultimate layer: FID's features.
public struct ClassifierConfig: Codable, Equatable {
    public var sampleSize: Int
    public var inChannels: Int
    public var classNames: [String]
    public var blockOutChannels: [Int]
    public var layersPerBlock: Int
    public var normNumGroups: Int
    /// A noisy classifier (classifier guidance, Dhariwal & Nichol 2021) learned p(y | x_t, t) on x_t of
    /// this noise schedule; nil: clean images (t = 0, the FID classifier).
    public var noise: ClassifierNoise?

    public var classes: Int { classNames.count }
    public var featureDimension: Int { blockOutChannels.last! }

    public init(sampleSize: Int, inChannels: Int, classNames: [String], blockOutChannels: [Int] = [16, 32, 64],
                layersPerBlock: Int = 1, normNumGroups: Int = 8) {
        self.sampleSize = sampleSize; self.inChannels = inChannels; self.classNames = classNames
        self.blockOutChannels = blockOutChannels; self.layersPerBlock = layersPerBlock; self.normNumGroups = normNumGroups
    }

    /// The default for 32×32 Fashion-MNIST-like data: 3 blocks of 16/32/64 channels, 1 resnet each,
    /// 64-d features; small enough to train to ~90% on Fashion-MNIST in minutes on 2 CPU cores.
    public static func standard(sampleSize: Int, inChannels: Int, classNames: [String]) -> ClassifierConfig {
        ClassifierConfig(sampleSize: sampleSize, inChannels: inChannels, classNames: classNames)
    }

    /// The UNet2DModel configuration whose down half and mid resnets this classifier shares.
    var unet: UNetConfig {
        UNetConfig(sampleSize: sampleSize, inChannels: inChannels, outChannels: inChannels, blockOutChannels: blockOutChannels,
                   layersPerBlock: layersPerBlock, downBlockTypes: blockOutChannels.map { _ in "DownBlock2D" },
                   upBlockTypes: blockOutChannels.map { _ in "UpBlock2D" }, normNumGroups: normNumGroups, attentionHeadDim: nil)
    }

    public func validate(source: String) throws {
        guard classes >= 2 else { throw UserError("\(source): a classifier needs at least 2 classes, got \(classes).") }
        guard !blockOutChannels.isEmpty, layersPerBlock >= 1 else {
            throw UserError("\(source): block_out_channels must not be empty and layers_per_block must be at least 1.")
        }
        try unet.validate(source: source)
    }
}

/// The forward process a noisy classifier was trained on: x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε, t ~ U{0…T−1}.
public struct ClassifierNoise: Codable, Equatable {
    public var schedule: NoiseSchedule.Kind
    public var timesteps: Int
    public var betaStart: Double
    public var betaEnd: Double

    public init(schedule: NoiseSchedule.Kind = .linear, timesteps: Int = 1000, betaStart: Double = 1e-4, betaEnd: Double = 0.02) {
        self.schedule = schedule; self.timesteps = timesteps; self.betaStart = betaStart; self.betaEnd = betaEnd
    }

    public var noiseSchedule: NoiseSchedule {
        NoiseSchedule(kind: schedule, timesteps: timesteps, betaStart: betaStart, betaEnd: betaEnd)
    }
}
