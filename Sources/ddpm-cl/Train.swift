import ArgumentParser
import DDPM
import DDPMCore
import Foundation

enum ScheduleChoice: String, ExpressibleByArgument, CaseIterable {
    case linear, cosine, quadratic, sigmoid
    var kind: NoiseSchedule.Kind {
        switch self { case .linear: return .linear; case .cosine: return .cosine; case .quadratic: return .quadratic; case .sigmoid: return .sigmoid }
    }
}

enum PredictionChoice: String, ExpressibleByArgument, CaseIterable {
    case epsilon, sample, v
    var prediction: Prediction {
        switch self { case .epsilon: return .epsilon; case .sample: return .sample; case .v: return .v }
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a U-Net diffusion model (DDPM, ε-prediction MSE by default).",
        discussion: """
            Writes a run directory (--out): checkpoint.safetensors (resumable), pipeline/ (a diffusers
            DDPMPipeline with the EMA weights: DDPMPipeline.from_pretrained("RUN/pipeline")), log.csv,
            loss.png and samples/step-N.png grids. Ctrl-C finishes the step, saves, and tells how to resume.

            Examples:
              ddpm-cl train --minutes 10                      Fashion-MNIST, `small` U-Net, device 0
              ddpm-cl train --data ~/faces --model cifar10 --steps 20000 --batch 32
              ddpm-cl train --resume runs/fashion-mnist --steps 5000
            """)

    @OptionGroup var device: DeviceOptions

    @Option(help: "Training images: `fashion-mnist` (Debian's dataset-fashion-mnist) or a folder of PNG files.")
    var data = "fashion-mnist"

    @Option(help: "Model: a preset (\(ModelPreset.allCases.map(\.rawValue).joined(separator: ", "))) or a diffusers UNet2DModel config.json.")
    var model = "small"

    @Option(help: "Train until this step (counting resumed steps).")
    var steps: Int?

    @Option(help: "Train for this many minutes (default 10 when --steps is not given).")
    var minutes: Double?

    @Option(help: "Images per step.")
    var batch = 64

    @Option(name: .customLong("accumulate"), help: "Average gradients over this many batches per optimizer step (effective batch = batch × accumulate).")
    var accumulate = 1

    @Option(help: "Peak learning rate of AdamW.")
    var lr: Float = 5e-4

    @Option(help: "Linear learning-rate warmup steps.")
    var warmup = 100

    @Option(name: .customLong("weight-decay"), help: "AdamW weight decay.")
    var weightDecay: Float = 0

    @Option(name: .customLong("grad-clip"), help: "Clip the global gradient norm to this (0: off).")
    var gradClip: Float = 1

    @Option(help: "Maximum EMA decay (the decay warms up as in diffusers' EMAModel, power 2/3).")
    var ema: Float = 0.9999

    @Option(help: "Noise schedule: \(ScheduleChoice.allCases.map(\.rawValue).joined(separator: ", ")).")
    var schedule: ScheduleChoice = .linear

    @Option(help: "Diffusion timesteps T.")
    var timesteps = 1000

    @Option(help: "What the network predicts: epsilon (the noise), sample (x₀) or v.")
    var prediction: PredictionChoice = .epsilon

    @Flag(help: "Flip training images horizontally at random.")
    var flip = false

    @Option(help: "Run directory to write (default runs/<data>-<model>-<time>).")
    var out: String?

    @Option(help: "Continue the run in this directory from its checkpoint (other settings come from it).")
    var resume: String?

    @Option(help: "Seed for weights, data order, noise and dropout.")
    var seed: UInt64 = 0

    @Option(name: .customLong("sample-every"), help: "Write a sample grid every N steps (0: only at the end).")
    var sampleEvery = 200

    @Option(name: .customLong("checkpoint-every"), help: "Save checkpoint and pipeline every N steps.")
    var checkpointEvery = 500

    @Option(name: .customLong("log-every"), help: "Read the loss and log every N steps.")
    var logEvery = 10

    @Option(name: .customLong("fid-every"), help: "Measure FID/KID of EMA samples every N steps (0: never); writes fid.csv and fid.png.")
    var fidEvery = 0

    @Option(name: .customLong("fid-samples"), help: "Samples per FID evaluation.")
    var fidSamples = 500

    @Option(name: .customLong("fid-steps"), help: "DDIM (η = 0) steps per FID sample.")
    var fidSteps = 10

    @Option(name: .customLong("fid-classifier"), help: "The classifier for --fid-every; default: the cached one of --data (`ddpm-cl classifier train`).")
    var fidClassifier: String?

    func validate() throws {
        if batch < 1 { throw ValidationError("--batch must be at least 1") }
        if accumulate < 1 { throw ValidationError("--accumulate must be at least 1") }
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1") }
        if let minutes, minutes <= 0 { throw ValidationError("--minutes must be positive") }
        if lr <= 0 { throw ValidationError("--lr must be positive") }
        if timesteps < 2 { throw ValidationError("--timesteps must be at least 2") }
        if logEvery < 1 { throw ValidationError("--log-every must be at least 1") }
        if fidEvery < 0 || fidSamples < 2 || fidSteps < 1 { throw ValidationError("--fid-every must be ≥ 0, --fid-samples ≥ 2, --fid-steps ≥ 1") }
    }

    func run() throws {
        try reportingErrors {
            let backend = try device.makeBackend()
            var checkpoint: Checkpoint?
            var options: TrainingOptions
            let directory: RunDirectory
            if let resume {
                directory = RunDirectory(URL(fileURLWithPath: resume))
                checkpoint = try Checkpoint.read(directory.checkpoint)
                options = checkpoint!.options
                print("resuming \(resume) at step \(checkpoint!.step)")
            } else {
                options = TrainingOptions(model: try loadModelConfig(model))
                options.data = data
                options.horizontalFlip = flip
                options.batch = batch
                options.gradientAccumulation = accumulate > 1 ? accumulate : nil
                options.learningRate = lr
                options.warmupSteps = warmup
                options.weightDecay = weightDecay
                options.gradientClip = gradClip
                options.emaMaxDecay = ema
                options.schedule = schedule.kind.rawValue
                options.timesteps = timesteps
                options.prediction = prediction.prediction.rawValue
                options.seed = seed
                let stamp = DateFormatter.runStamp.string(from: Date())
                let name = out ?? "runs/\(URL(fileURLWithPath: data).lastPathComponent)-\(URL(fileURLWithPath: model).deletingPathExtension().lastPathComponent)-\(stamp)"
                directory = RunDirectory(URL(fileURLWithPath: name))
                if FileManager.default.fileExists(atPath: directory.checkpoint.path) {
                    throw UserError("\(name) already holds a run. Continue it with --resume \(name), or choose another --out.")
                }
            }
            let trainingData = try TrainingData.load(options.data, size: options.model.sampleSize, channels: options.model.inChannels,
                                                     seed: options.seed, horizontalFlip: options.horizontalFlip)
            let trainer = try Trainer(backend: backend, options: options, resumeFrom: checkpoint)
            var settings = SessionSettings()
            settings.steps = steps
            settings.minutes = steps == nil ? (minutes ?? 10) : minutes
            settings.sampleEvery = sampleEvery
            settings.checkpointEvery = checkpointEvery
            settings.logEvery = logEvery
            if fidEvery > 0 {
                let reference = try ImageSource.parse(options.data)
                let file = fidClassifier.map { URL(fileURLWithPath: $0) } ?? TrainedClassifier.defaultURL(for: reference)
                let fid = try TrainingFID(backend: backend, classifier: try TrainedClassifier.read(file), reference: reference,
                                          samples: fidSamples, steps: fidSteps)
                fid.restore(from: directory, upTo: trainer.step)
                settings.fidEvery = fidEvery
                settings.fid = fid
                print(String(format: "FID every %d steps: %d DDIM-%d samples vs %@, classifier %@ (held-out accuracy %.2f%%)",
                             fidEvery, fidSamples, fidSteps, reference.description, file.path, 100 * fid.classifier.heldOutAccuracy))
            }
            if let total = settings.steps, total <= trainer.step {
                throw UserError("the run is already at step \(trainer.step); give --steps larger than that to continue.")
            }
            print("""
                training on \(backend.name): \(trainer.parameterCount) parameters, batch \(options.batch), \
                \(String(format: "%.1f", trainer.flopsPerStep / 1e9)) GFLOP per step, \
                \(trainer.plannedBytes / 1_048_576) MiB of activations and gradients
                data: \(trainingData.description); writing \(directory.url.path)
                """)
            Interruption.install()
            let session = TrainingSession(trainer: trainer, data: trainingData, directory: directory, settings: settings,
                                          terminal: isatty(STDERR_FILENO) == 1, say: { print($0) })
            switch try session.run() {
            case .finished(let step):
                print("finished at step \(step). Samples: \(directory.samples.path)  Loss plot: \(directory.lossPlot.path)")
                print("Pipeline (EMA weights) for diffusers: \(directory.pipeline.path)")
            case .interrupted(let step):
                print("interrupted at step \(step); checkpoint saved. Resume with:\n  ddpm-cl train --resume \(directory.url.path) --steps N")
                throw ExitCode(130)
            }
        }
    }
}

/// A preset name or a diffusers config.json.
func loadModelConfig(_ model: String) throws -> UNetConfig {
    if let preset = ModelPreset(rawValue: model) { return preset.config }
    var url = URL(fileURLWithPath: model)
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
        url = url.appendingPathComponent("config.json")
    }
    return try UNetConfig.load(url)
}

extension DateFormatter {
    static let runStamp: DateFormatter = {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd-HHmmss"
        return f
    }()
}
