import ArgumentParser
import DDPM
import DDPMCore
import Foundation

enum ScheduleChoice: String, ExpressibleByArgument, CaseIterable {
    case linear, cosine, quadratic, sigmoid, exponential
    var kind: NoiseSchedule.Kind {
        switch self {
        case .linear: return .linear
        case .cosine: return .cosine
        case .quadratic: return .quadratic
        case .sigmoid: return .sigmoid
        case .exponential: return .exponential
        }
    }
}

enum LearningRateScheduleChoice: String, ExpressibleByArgument, CaseIterable {
    case constant, cosine
    var schedule: LearningRateSchedule { self == .cosine ? .cosine : .constant }
}

enum SampleWeightChoice: String, ExpressibleByArgument, CaseIterable { case snr, none }

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
              ddpm-cl train --class-conditional --cond-drop 0.1   labels of Fashion-MNIST; then sample --class all --guidance 2

            Data parallel over K processes (Open MPI; one device per rank, its local rank index unless
            --device is given; --batch is the global batch, split evenly; rank 0 writes the run):
              mpirun -np 2 ddpm-cl train --steps 1000 --batch 64
            """)

    @OptionGroup var device: DeviceOptions

    @Option(help: "Training images: `fashion-mnist` (Debian's dataset-fashion-mnist) or a folder of PNG files.")
    var data = "fashion-mnist"

    @Option(help: "Model: a preset (\(ModelPreset.allCases.map(\.rawValue).joined(separator: ", "))) or a diffusers UNet2DModel config.json.")
    var model = "small"

    @Option(parsing: .unconditional, help: "Train until this step (counting resumed steps).")
    var steps: Int?

    @Option(parsing: .unconditional, help: "Train for this many minutes of training time (default 10 when --steps is not given); --fid-every evaluations pause the clock.")
    var minutes: Double?

    @Option(parsing: .unconditional, help: "Images per step.")
    var batch = 64

    @Option(name: .customLong("accumulate"), parsing: .unconditional, help: "Average gradients over this many batches per optimizer step (effective batch = batch × accumulate).")
    var accumulate = 1

    @Option(parsing: .unconditional, help: "Peak learning rate of AdamW.")
    var lr: Float = 5e-4

    @Option(parsing: .unconditional, help: "Linear learning-rate warmup steps.")
    var warmup = 100

    @Option(name: .customLong("weight-decay"), parsing: .unconditional, help: "AdamW weight decay.")
    var weightDecay: Float = 0

    @Option(name: .customLong("grad-clip"), parsing: .unconditional, help: "Clip the global gradient norm to this (0: off).")
    var gradClip: Float = 1

    @Option(parsing: .unconditional, help: "Maximum EMA decay (the decay warms up as in diffusers' EMAModel, power 2/3).")
    var ema: Double = 0.9999

    @Option(help: "Noise schedule: linear, cosine (squaredcos_cap_v2), quadratic (scaled_linear), sigmoid, or exponential (β geometric from β_start to β_end; exported to diffusers as trained_betas).")
    var schedule: ScheduleChoice = .linear

    @Option(parsing: .unconditional, help: "Diffusion timesteps T.")
    var timesteps = 1000

    @Option(help: "What the network predicts: epsilon (the noise), sample (x₀) or v.")
    var prediction: PredictionChoice = .epsilon

    @Option(name: .customLong("sample-loss-weight"), help: "With --prediction sample: snr (default) weights the x₀-MSE by ᾱ/(1−ᾱ) as diffusers' train_unconditional does, which equals the ε-MSE of Ho et al.; none is the plain x₀-MSE, which puts more weight on the noisiest timesteps.")
    var sampleLossWeight: SampleWeightChoice = .snr

    @Flag(name: .customLong("zero-snr"), help: "Rescale β to zero terminal SNR (Lin et al. 2023, diffusers' rescale_betas_zero_snr); needs --prediction v.")
    var zeroSNR = false

    @Option(name: .customLong("lr-schedule"), help: "After the warmup: constant, or cosine (diffusers' get_cosine_schedule_with_warmup), which decays the rate to 0 at the end of the run: at --steps when given, otherwise at the end of --minutes, then driven by the training time spent (the rate of a step depends on the machine's speed; resuming continues the time stored in the checkpoint).")
    var lrSchedule: LearningRateScheduleChoice = .constant

    @Option(name: .customLong("snr-gamma"), parsing: .unconditional, help: "min-SNR-γ loss weighting (Hang et al. 2023; 5 is the paper's choice): each timestep's loss weighted as if its x₀-MSE had the weight min(SNR, γ), which is min(SNR, γ)/SNR on the ε target, min(SNR, γ)/(SNR + 1) on v, min(SNR, γ) on x₀. Tames the low-noise timesteps.")
    var snrGamma: Double?

    @Option(name: .customLong("p2-gamma"), parsing: .unconditional, help: "P2 loss weighting (Choi et al. 2022): the ε-MSE weighted by 1/(1 + SNR)^γ (γ = 1 in the paper), moving weight to the noisier, content-forming timesteps. Not with --snr-gamma.")
    var p2Gamma: Double?

    @Option(name: .customLong("offset-noise"), parsing: .unconditional, help: "Offset noise (diffusers' --noise_offset): add this times one N(0, 1) number per image and channel to the training noise, so the model can learn to change an image's mean brightness. 0.1 is common.")
    var offsetNoise: Float?

    @Flag(name: .customLong("learn-sigma"), help: "Improved DDPM (Nichol & Dhariwal 2021): the model also outputs its variance (out_channels doubled, diffusers' variance_type learned_range), trained with the hybrid loss L_simple + 0.001·L_vlb, the mean stopped in L_vlb. Samples well with fewer DDPM steps; `eval` uses the learned variance.")
    var learnSigma = false

    @Flag(help: "Flip training images horizontally at random.")
    var flip = false

    @Flag(name: .customLong("class-conditional"), help: "Train a class-conditional model (diffusers' num_class_embeds: a class embedding added to the time embedding). Labels come from Fashion-MNIST's label files or from the class subfolders of --data DIR (DIR/CLASS/*.png); num_class_embeds is the class count + 1, the last row being the null class.")
    var classConditional = false

    @Option(name: .customLong("cond-drop"), parsing: .unconditional, help: "With --class-conditional: replace each label by the null class with this probability, so one model learns both ε(x, y) and ε(x, ∅) for classifier-free guidance (`sample --guidance`); 0.1 is usual (Ho & Salimans 2022).")
    var condDrop: Float = 0

    @Option(help: "Run directory to write (default runs/<data>-<model>-<time>).")
    var out: String?

    @Option(help: "Continue the run in this directory from its checkpoint (other settings come from it).")
    var resume: String?

    @Option(parsing: .unconditional, help: "Seed for weights, data order, noise and dropout.")
    var seed: UInt64 = 0

    @Option(name: .customLong("sample-every"), parsing: .unconditional, help: "Write a sample grid every N steps (0: only at the end).")
    var sampleEvery = 200

    @Option(name: .customLong("checkpoint-every"), parsing: .unconditional, help: "Save checkpoint and pipeline every N steps.")
    var checkpointEvery = 500

    @Option(name: .customLong("log-every"), parsing: .unconditional, help: "Read the loss and log every N steps.")
    var logEvery = 10

    @Option(name: .customLong("fid-every"), help: "Measure FID/KID of EMA samples every N steps (0: never); writes fid.csv (with each evaluation's cost and the training seconds at it) and fid.png. Evaluations do not count against --minutes.")
    var fidEvery = 0

    @Option(name: .customLong("fid-samples"), help: "Samples per FID evaluation.")
    var fidSamples = 500

    @Option(name: .customLong("fid-steps"), help: "Solver steps per FID sample: DPM-Solver++(2M) with dynamic thresholding, as the training grids (DDIM η = 0 for a schedule it refuses).")
    var fidSteps = 10

    @Option(name: .customLong("fid-classifier"), help: "The classifier for --fid-every; default: the cached one of --data (`ddpm-cl classifier train`).")
    var fidClassifier: String?

    @Option(name: .customLong("fid-features"), help: "Feature network of --fid-every: classifier, or inception (pytorch-fid's InceptionV3, needs --inception; minutes per evaluation on a CPU).")
    var fidFeatures: FeatureChoice = .classifier

    @Option(help: "With --fid-features inception: pytorch-fid's Inception weights as safetensors (scripts/convert-inception).")
    var inception: String?

    @Option(name: .customLong("fid-reference"), help: "Reference images of --fid-every: the first N of --data (their features cached).")
    var fidReference = 10_000

    /// The session's flags (how long, what to write); the library checks them.
    var sessionSettings: SessionSettings {
        var settings = SessionSettings()
        settings.steps = steps
        settings.minutes = steps == nil ? (minutes ?? 10) : minutes
        settings.sampleEvery = sampleEvery
        settings.checkpointEvery = checkpointEvery
        settings.logEvery = logEvery
        return settings
    }

    /// The options of a new run from the flags (checked by TrainingOptions.validate).
    func newOptions() throws -> TrainingOptions {
        var options = TrainingOptions(model: try loadModelConfig(model))
        options.data = data
        options.horizontalFlip = flip
        options.batch = batch
        options.gradientAccumulation = accumulate == 1 ? nil : accumulate
        options.learningRate = lr
        options.warmupSteps = warmup
        options.weightDecay = weightDecay
        options.gradientClip = gradClip
        options.emaMaxDecay = ema
        options.schedule = schedule.kind
        options.timesteps = timesteps
        options.prediction = prediction.prediction
        options.sampleLossWeighting = sampleLossWeight.rawValue
        options.zeroTerminalSNR = zeroSNR ? true : nil
        options.seed = seed
        if classConditional {
            try options.conditionOnClasses(TrainingData.classNames(of: data), drop: condDrop)
        } else {
            options.conditionDrop = condDrop == 0 ? nil : condDrop   // refused by validate(): it needs --class-conditional
        }
        if learnSigma {
            options.learnSigma = true
            options.model.outChannels = 2 * options.model.inChannels
        }
        options.snrGamma = snrGamma
        options.p2Gamma = p2Gamma
        options.offsetNoise = offsetNoise
        if lrSchedule == .cosine {
            // Ends at --steps when given, else after --minutes (10 by default): see --help.
            options.learningRateSchedule = lrSchedule.schedule
            if let steps { options.cosineSteps = steps } else { options.cosineMinutes = minutes ?? 10 }
        }
        return options
    }

    func run() throws {
        try reportingErrors {
            // Under mpirun: one rank of K (nil otherwise, and nothing of MPI is loaded).
            let mpi = MPIReducer.launched() ? try MPIReducer() : nil
            let parallel = mpi.map { DataParallel(reducer: $0) }
            let isRoot = parallel?.isRoot ?? true
            let say: (String) -> Void = isRoot ? { print($0) } : { _ in }
            var device = self.device
            if let mpi, device.device == nil { device.device = String(mpi.localRank) }
            var settings = sessionSettings
            try settings.validate()
            if fidFeatures == .inception && inception == nil {
                throw UserError("--fid-features inception needs --inception FILE.safetensors: make it from pytorch-fid's "
                    + "pt_inception-2015-12-05-6726825d.pth with scripts/convert-inception.")
            }
            if fidReference < 2 { throw UserError("--fid-reference \(fidReference): the reference needs at least 2 images.") }
            if fidEvery < 0 || fidSamples < 2 || fidSteps < 1 {
                throw UserError("--fid-every \(fidEvery), --fid-samples \(fidSamples), --fid-steps \(fidSteps): they take ≥ 0 steps (0: never), ≥ 2 samples and ≥ 1 solver step.")
            }
            var checkpoint: Checkpoint?
            var options: TrainingOptions?
            let directory: RunDirectory
            if let resume {
                guard !resume.isEmpty else { throw UserError("--resume '': give the run directory to continue.") }
                directory = RunDirectory(URL(fileURLWithPath: resume))
            } else {
                let fresh = try newOptions()
                try fresh.validate(.flags)
                options = fresh
                let stamp = DateFormatter.runStamp.string(from: Date())
                let name = out ?? "runs/\(URL(fileURLWithPath: data).lastPathComponent)-\(URL(fileURLWithPath: model).deletingPathExtension().lastPathComponent)-\(stamp)"
                guard !name.isEmpty else { throw UserError("--out '': give the folder to write the run into (it is created).") }
                directory = RunDirectory(URL(fileURLWithPath: name))
            }
            // One trainer per folder; leftovers of killed writers go first.
            // Under MPI rank 0 alone holds the lock and writes, so only it clears leftovers.
            let lock = isRoot ? try RunLock(directory: directory.url) : nil
            defer { lock?.release() }
            if isRoot {
                for path in removeStaleTemporaryFiles(under: directory.url) { print("removed \(path), left by a process that was killed while writing it") }
            }
            if let resume {
                let resumed = try Checkpoint.read(directory.checkpoint)
                checkpoint = resumed
                options = resumed.options
                say("resuming \(resume) at step \(resumed.step)")
            } else {
                if FileManager.default.fileExists(atPath: directory.checkpoint.path) {
                    throw UserError("\(directory.url.path) already holds a run. Continue it with --resume \(directory.url.path), or choose another --out.")
                }
            }
            if let total = settings.steps, let done = checkpoint?.step, total <= done {
                throw UserError("the run is already at step \(done); give --steps larger than that to continue.")
            }
            guard let options else { preconditionFailure("options come from the flags or the checkpoint") }
            try parallel?.check(batch: options.batch)
            if parallel != nil && options.cosineMinutes != nil {
                // Each rank's clock differs a little: a time-driven rate would let the ranks' weights drift apart.
                throw UserError("--lr-schedule cosine under mpirun needs --steps (a step-driven decay): with --minutes each rank's clock would give it another learning rate.")
            }
            if let checkpoint {
                try options.checkCosineHorizon(resumingAt: checkpoint.step, trainingSeconds: checkpoint.trainingSeconds, targetStep: settings.steps)
            }
            let backend = try device.makeBackend()
            let need = try MemoryNeed.training(options)
            let advice = " (with --accumulate K to keep the effective batch)"
            // A rank holds its shard of the batch; the message then speaks of the batch per rank.
            let ranks = parallel?.size ?? 1
            let what = ranks > 1 ? "training (one of \(ranks) ranks, batch per rank)" : "training"
            let localBatch = options.batch / ranks
            try need.check(batch: localBatch, flag: "--batch", on: backend, what: what, advice: advice)
            let trainingData = try TrainingData.load(for: options)
            let trainer = try need.allocating(batch: localBatch, flag: "--batch", on: backend, what: what, advice: advice) {
                try Trainer(backend: backend, options: options, resumeFrom: checkpoint, parallel: parallel)
            }
            if fidEvery > 0 && isRoot {
                let reference = try ImageSource.parse(options.data)
                let fid: TrainingFID, ruler: String
                switch fidFeatures {
                case .classifier:
                    let file = fidClassifier.map { URL(fileURLWithPath: $0) } ?? TrainedClassifier.defaultURL(for: reference)
                    let classifier = try TrainedClassifier.read(file)
                    fid = try TrainingFID(backend: backend, classifier: classifier, reference: reference, referenceCount: fidReference,
                                          samples: fidSamples, steps: fidSteps)
                    ruler = String(format: "classifier %@ (held-out accuracy %.2f%%)", file.path, 100 * classifier.heldOutAccuracy)
                case .inception:
                    let size = options.model.sampleSize
                    let network = try InceptionFeatures(backend: backend, weights: try InceptionWeights.read(URL(fileURLWithPath: inception!)),
                                                        size: size)
                    fid = try TrainingFID(network: network, format: (size, 3), reference: reference, referenceCount: fidReference,
                                          samples: fidSamples, steps: fidSteps)
                    ruler = "InceptionV3 pool3 \(inception!)"
                }
                fid.restore(from: directory, upTo: trainer.step)
                settings.fidEvery = fidEvery
                settings.fid = fid
                print(String(format: "FID every %d steps: %d samples (%@) vs %@, %@", fidEvery, fidSamples,
                             fid.solverDescription(options.schedulerSettings), reference.description, ruler))
            }
            if let parallel {
                say("data parallel: \(parallel.size) ranks (Open MPI), \(localBatch) images of each batch of \(options.batch) per rank; rank 0 writes the run")
            }
            say("""
                training on \(backend.name): \(trainer.parameterCount) parameters, batch \(options.batch), \
                \(String(format: "%.1f", trainer.flopsPerStep / 1e9)) GFLOP per step, \
                \(trainer.plannedBytes / 1_048_576) MiB of activations and gradients
                data: \(trainingData.description); writing \(directory.url.path)
                """)
            Interruption.install()
            let session = TrainingSession(trainer: trainer, data: trainingData, directory: directory, settings: settings,
                                          terminal: isatty(STDERR_FILENO) == 1, say: { print($0) })
            let outcome = try session.run()
            try mpi?.finish()   // every rank got here: MPI_Finalize (a failed rank exits without it)
            switch outcome {
            case .finished(let step):
                say("finished at step \(step). Samples: \(directory.samples.path)  Loss plot: \(directory.lossPlot.path)")
                say("Pipeline (EMA weights) for diffusers: \(directory.pipeline.path)")
            case .interrupted(let step):
                say("interrupted at step \(step); checkpoint saved. Resume with:\n  ddpm-cl train --resume \(directory.url.path) --steps N")
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
