import DDPMCore
import Foundation

/// A resumable training state in one safetensors file: raw weights (`model.`), their EMA (`ema.`),
/// Adam moments (`adam_m.`, `adam_v.`), and in the metadata the step and the options. The data
/// order and every random draw are functions of (seed, step), so the step is the whole RNG state.
public struct Checkpoint {
    public var step: Int
    public var options: TrainingOptions
    public var model: Weights
    public var ema: Weights
    public var adamM: Weights
    public var adamV: Weights
    /// Training time spent up to this step, all sessions together (metadata "training_seconds";
    /// 0 in checkpoints before it). A time-driven cosine learning rate continues from it.
    public var trainingSeconds: Double = 0

    public static let fileName = "checkpoint.safetensors"

    public func write(to url: URL) throws {
        var tensors = model.entries(prefix: "model.")
        tensors.merge(ema.entries(prefix: "ema."), uniquingKeysWith: { a, _ in a })
        tensors.merge(adamM.entries(prefix: "adam_m."), uniquingKeysWith: { a, _ in a })
        tensors.merge(adamV.entries(prefix: "adam_v."), uniquingKeysWith: { a, _ in a })
        // Sorted keys: the same run writes the same bytes (Foundation's key order varies by process).
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let optionsJSON = String(decoding: try encoder.encode(options), as: UTF8.self)
        var metadata = ["format": "ddpm-cl-checkpoint-1", "step": String(step), "options": optionsJSON]
        // Only a time-driven schedule needs the clock; other runs keep writing the same bytes.
        if options.learningRateFollowsTime { metadata["training_seconds"] = String(trainingSeconds) }
        try writeSafetensors(tensors, metadata: metadata, to: url)
    }

    /// Reads a checkpoint; a missing, truncated or foreign file gives a user error.
    public static func read(_ url: URL) throws -> Checkpoint {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw UserError("no checkpoint at \(url.path). Give --resume the run directory of an earlier `ddpm-cl train`.")
        }
        let file = try readSafetensors(url)
        guard file.metadata["format"] == "ddpm-cl-checkpoint-1", let stepText = file.metadata["step"],
              let optionsText = file.metadata["options"] else {
            throw UserError("\(url.path) is not a ddpm-cl checkpoint (its metadata lacks the format, the step or the training options).")
        }
        guard let step = Int(stepText), step >= 0 else {
            throw UserError("\(url.path): the step in its metadata is \"\(stepText)\"; it takes a whole number ≥ 0. The checkpoint was edited or damaged.")
        }
        var trainingSeconds = 0.0
        if let text = file.metadata["training_seconds"] {
            guard let value = Double(text), value.isFinite, value >= 0 else {
                throw UserError("\(url.path): the training_seconds in its metadata is \"\(text)\"; it takes a finite number ≥ 0. The checkpoint was edited or damaged.")
            }
            trainingSeconds = value
        }
        let options = try JSONText.decode(TrainingOptions.self, from: Data(optionsText.utf8),
                                          source: "\(url.path) (the training options in its metadata)",
                                          wholeNumbers: ["batch", "gradientAccumulation", "warmupSteps", "timesteps", "cosineSteps"]
                                            + UNetConfig.wholeNumberKeys.map { "model." + $0 })
        try options.validate(.checkpoint(url.path))
        let graph = UNet(config: options.model, batch: 1).graph
        var parts: [Weights] = []
        for prefix in ["model.", "ema.", "adam_m.", "adam_v."] {
            var w = Weights(graph: graph)
            try w.load(file, source: url.path, prefix: prefix)
            parts.append(w)
        }
        return Checkpoint(step: step, options: options, model: parts[0], ema: parts[1], adamM: parts[2], adamV: parts[3],
                          trainingSeconds: trainingSeconds)
    }
}
