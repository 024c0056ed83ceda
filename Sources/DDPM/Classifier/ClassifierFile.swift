import DDPMCore
import Foundation

/// A trained domain classifier in one safetensors file: its weights, and in the metadata its
/// config, the data it learned from and its held-out accuracy (printed with every FID, so the
/// number is never read without its ruler).
public struct TrainedClassifier {
    public var config: ClassifierConfig
    public var weights: Weights
    /// Fraction of the held-out images classified correctly.
    public var heldOutAccuracy: Double
    public var heldOutDescription: String
    public var trainingDescription: String
    public var steps: Int

    public static let format = "ddpm-cl-classifier-1"

    public init(config: ClassifierConfig, weights: Weights, heldOutAccuracy: Double, heldOutDescription: String,
                trainingDescription: String, steps: Int) {
        self.config = config; self.weights = weights; self.heldOutAccuracy = heldOutAccuracy
        self.heldOutDescription = heldOutDescription; self.trainingDescription = trainingDescription; self.steps = steps
    }

    public func write(to url: URL) throws {
        let configJSON = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        try writeSafetensors(weights.entries(), metadata: [
            "format": Self.format, "config": configJSON, "held_out_accuracy": String(heldOutAccuracy),
            "held_out": heldOutDescription, "trained_on": trainingDescription, "steps": String(steps),
        ], to: url)
    }

    public static func read(_ url: URL) throws -> TrainedClassifier {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw UserError("no classifier at \(url.path). Train one with `ddpm-cl classifier train --data fashion-mnist` "
                + "(a few minutes on a CPU), or pass --classifier FILE.")
        }
        let file = try readSafetensors(url)
        guard file.metadata["format"] == format, let configText = file.metadata["config"],
              let config = try? JSONDecoder().decode(ClassifierConfig.self, from: Data(configText.utf8)),
              let accuracy = file.metadata["held_out_accuracy"].flatMap(Double.init) else {
            throw UserError("\(url.path) is not a ddpm-cl classifier (its metadata lacks the format, config or accuracy).")
        }
        try config.validate(source: url.path)
        var weights = Weights(graph: EncoderClassifier(config: config, batch: 1).graph)
        try weights.load(file, source: url.path)
        return TrainedClassifier(config: config, weights: weights, heldOutAccuracy: accuracy,
                                 heldOutDescription: file.metadata["held_out"] ?? "?", trainingDescription: file.metadata["trained_on"] ?? "?",
                                 steps: Int(file.metadata["steps"] ?? "") ?? 0)
    }

    /// FNV-1a over the weights' bits in parameter order: names cached features of this classifier.
    public var fingerprint: String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for name in weights.names {
            for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
            for v in weights.values[name]! { hash = (hash ^ UInt64(v.bitPattern)) &* 0x100_0000_01B3 }
        }
        return String(hash, radix: 16)
    }

    /// Where `classifier train` keeps the classifier of a data source unless told otherwise:
    /// $XDG_CACHE_HOME/ddpm-cl (or ~/.cache/ddpm-cl)/classifier-<source>.safetensors.
    public static func defaultURL(for source: ImageSource, noisy: Bool = false) -> URL {
        let name: String
        switch source {
        case .fashionMNIST: name = "fashion-mnist"
        case .npy(let url), .folder(let url):
            var hash: UInt64 = 0xCBF2_9CE4_8422_2325
            for byte in url.standardizedFileURL.path.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
            name = url.lastPathComponent + "-" + String(hash, radix: 16)
        }
        return cacheDirectory().appendingPathComponent("classifier-\(noisy ? "noisy-" : "")\(name).safetensors")
    }
}

/// $XDG_CACHE_HOME/ddpm-cl, or ~/.cache/ddpm-cl; DDPM_CL_CACHE overrides (tests use it).
public func cacheDirectory() -> URL {
    let env = ProcessInfo.processInfo.environment
    if let dir = env["DDPM_CL_CACHE"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
    if let xdg = env["XDG_CACHE_HOME"], !xdg.isEmpty { return URL(fileURLWithPath: xdg).appendingPathComponent("ddpm-cl") }
    return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/ddpm-cl")
}
