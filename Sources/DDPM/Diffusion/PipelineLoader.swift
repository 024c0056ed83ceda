import DDPMCore
import Foundation

/// A model ready to sample: a diffusers UNet2DModel and its scheduler settings, read from a
/// ddpm-cl run directory, a diffusers DDPMPipeline directory, or a bare UNet2DModel directory.
public struct LoadedPipeline {
    public var config: UNetConfig
    public var weights: Weights
    public var settings: SchedulerSettings
    /// The DPM-Solver++ options when the pipeline's scheduler is a DPMSolverMultistepScheduler.
    public var solver: DPMSolverSettings?
    /// The Euler options when the pipeline's scheduler is an EulerDiscreteScheduler.
    public var euler: EulerSettings?
    public var description: String

    public static func load(_ url: URL) throws -> LoadedPipeline {
        let fm = FileManager.default
        var dir = url
        if fm.fileExists(atPath: dir.appendingPathComponent("pipeline/model_index.json").path) {
            dir = dir.appendingPathComponent("pipeline")
        }
        let unetDir: URL
        var settings: SchedulerSettings?
        var solver: DPMSolverSettings?
        var euler: EulerSettings?
        if fm.fileExists(atPath: dir.appendingPathComponent("model_index.json").path) {
            unetDir = dir.appendingPathComponent("unet")
            let schedulerFile = dir.appendingPathComponent("scheduler/scheduler_config.json")
            if let data = fm.contents(atPath: schedulerFile.path) {
                let json = try PythonJSON.object(data, source: schedulerFile.path)
                let supported = ["DDPMScheduler", "DDIMScheduler", "DPMSolverMultistepScheduler", "EulerDiscreteScheduler",
                                 "EulerAncestralDiscreteScheduler"]
                if let name = json["_class_name"] as? String, !supported.contains(name) {
                    throw UserError("\(schedulerFile.path) names \(name), which ddpm-cl does not implement; it samples \(supported.joined(separator: ", ")) configs. Set _class_name to one of them (the betas are read the same way) and choose the solver with --sampler ddpm|ddim|dpm++2m|dpm++3m|dpm++2m-sde|euler|euler-a.")
                }
                if json["_class_name"] as? String == "DPMSolverMultistepScheduler" {
                    solver = try DPMSolverSettings(json: json, source: schedulerFile.path)
                }
                if (json["_class_name"] as? String)?.hasPrefix("Euler") == true {
                    euler = try EulerSettings(json: json, source: schedulerFile.path)
                }
                settings = try SchedulerSettings(json: json, source: schedulerFile.path)
            }
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
        let schedule = settings ?? SchedulerSettings(schedule: NoiseSchedule(kind: .linear))
        return LoadedPipeline(config: config, weights: weights, settings: schedule, solver: solver, euler: euler, description: dir.path)
    }
}
