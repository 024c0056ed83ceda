import DDPMCore
import Foundation

/// A model ready to sample: a diffusers UNet2DModel and its scheduler settings, read from a
/// ddpm-cl run directory, a diffusers DDPMPipeline directory, or a bare UNet2DModel directory.
public struct LoadedPipeline {
    public var config: UNetConfig
    public var weights: Weights
    public var settings: SchedulerSettings
    /// The solver the pipeline's scheduler names (DPM-Solver++, UniPC, Euler, Heun) with its options;
    /// nil for DDPMScheduler and DDIMScheduler.
    public var scheduler: SamplerKind?
    /// A class-conditional model's classes: class_labels.json beside the pipeline, or unnamed.
    public var classes: ClassLabels?
    public var description: String

    public static func load(_ url: URL) throws -> LoadedPipeline {
        let fm = FileManager.default
        var dir = url
        if fm.fileExists(atPath: dir.appendingPathComponent("pipeline/model_index.json").path) {
            dir = dir.appendingPathComponent("pipeline")
        }
        let unetDir: URL
        var settings: SchedulerSettings?
        var scheduler: SamplerKind?
        if fm.fileExists(atPath: dir.appendingPathComponent("model_index.json").path) {
            unetDir = dir.appendingPathComponent("unet")
            try checkModelIndex(dir.appendingPathComponent("model_index.json"))
            let schedulerFile = dir.appendingPathComponent("scheduler/scheduler_config.json")
            guard let data = fm.contents(atPath: schedulerFile.path) else {
                throw UserError("""
                    \(dir.path) is a pipeline directory (it has model_index.json) but \(schedulerFile.path) is missing \
                    or unreadable. Copy the scheduler/ folder of the pipeline these weights come from; ddpm-cl does \
                    not guess the noise schedule.
                    """)
            }
            let json = try JSONText.object(data, source: schedulerFile.path)
            settings = try SchedulerSettings(json: json, source: schedulerFile.path)
            scheduler = try SamplerKind.named(byScheduler: json, source: schedulerFile.path)
        } else if fm.fileExists(atPath: dir.appendingPathComponent("config.json").path) {
            unetDir = dir
        } else {
            throw UserError("""
                \(url.path) is not a model directory. Give a ddpm-cl run directory, a diffusers DDPMPipeline \
                directory (model_index.json, unet/, scheduler/) or a UNet2DModel directory (config.json and \
                diffusion_pytorch_model.safetensors).
                """)
        }
        let config = try UNetConfig.load(unetDir.appendingPathComponent("config.json"))
        let weightsFile = unetDir.appendingPathComponent("diffusion_pytorch_model.safetensors")
        guard fm.fileExists(atPath: weightsFile.path) else {
            if fm.fileExists(atPath: unetDir.appendingPathComponent("diffusion_pytorch_model.bin").path) {
                throw UserError("""
                    \(unetDir.path) holds diffusion_pytorch_model.bin (a pickle), which ddpm-cl does not read: \
                    pickles can run code. Convert it once in Python: \
                    UNet2DModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True).
                    """)
            }
            throw UserError("\(unetDir.path) has no diffusion_pytorch_model.safetensors.")
        }
        var weights = Weights(graph: UNet(config: config, batch: 1).graph)
        try weights.load(readSafetensors(weightsFile), source: weightsFile.path)
        // A bare UNet2DModel directory has no scheduler: diffusers' DDPMScheduler defaults, said so.
        let schedule = settings ?? SchedulerSettings(schedule: NoiseSchedule(kind: .linear))
        let text = settings == nil ? "\(dir.path) (no scheduler_config.json: DDPMScheduler defaults, linear β, T=1000)" : dir.path
        var classes: ClassLabels?
        if let rows = config.numClassEmbeds {
            let file = [dir, unetDir].map { $0.appendingPathComponent(ClassLabels.fileName) }.first { fm.fileExists(atPath: $0.path) }
            classes = try file.map { try ClassLabels.read($0, embeddings: rows) } ?? ClassLabels.unnamed(embeddings: rows)
        }
        return LoadedPipeline(config: config, weights: weights, settings: schedule, scheduler: scheduler, classes: classes,
                              description: text)
    }

    /// model_index.json must be a JSON object naming a DDPM or DDIM pipeline (or no class at all).
    static func checkModelIndex(_ url: URL) throws {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw UserError("cannot read \(url.path). Check its permissions.")
        }
        let index = JSONFields(try JSONText.object(data, source: url.path), source: url.path)
        _ = try index.oneOf("_class_name", ["DDPMPipeline", "DDIMPipeline"])
    }
}
