import ArgumentParser
import DDPM
import DDPMCore
import Foundation

extension SamplerName: ExpressibleByArgument {}
extension SigmaRamp: ExpressibleByArgument {}
enum VarianceChoice: String, ExpressibleByArgument, CaseIterable {
    case beta, betaTilde = "beta-tilde", learned
}
enum SpacingChoice: String, ExpressibleByArgument, CaseIterable { case leading, trailing, linspace }

struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw images from a trained model (DDPM, DDIM, DPM-Solver++, UniPC, Euler or Heun).",
        discussion: """
            MODEL is a ddpm-cl run directory, a diffusers DDPMPipeline directory or a UNet2DModel directory;
            without it the newest run under runs/ is used. Writes grid.png, one PNG per image and
            samples.npy (uint8, N×C×H×W). Image i depends only on (--seed, i): the same seed gives the same
            images whatever --batch or device.

            Examples:
              ddpm-cl sample --batch 64                              newest run, DDPM with the trained schedule
              ddpm-cl sample runs/fashion-mnist --sampler ddim --steps 50
              ddpm-cl sample runs/fashion-mnist --sampler dpm++2m --steps 20   DPM-Solver++(2M), 20 model calls
              ddpm-cl sample runs/fashion-mnist --sampler unipc --steps 10         UniPC (bh2, order 2), 10 model calls
              ddpm-cl sample runs/fashion-mnist --sampler dpm++2m-sde --karras --steps 30
              ddpm-cl sample runs/fashion-mnist --sampler heun --sigmas karras --steps 10   19 model calls
              ddpm-cl sample path/to/ddpm-cifar10-32 --batch 16 --variance beta
              ddpm-cl sample runs/cond --class all --batch 8 --guidance 2     class-conditional: a labelled row per class

            Classifier-free guidance (--guidance w, models trained with --class-conditional --cond-drop):
            ε̃ = (1+w)·ε(x, y) − w·ε(x, ∅), ∅ the null class. w = 0 is the plain conditional model;
            diffusers' guidance_scale is 1 + w. Both predictions come from one network call on 2N images.
            """)

    @Argument(help: "Run, pipeline or UNet directory (default: the newest run under runs/).")
    var model: String?

    @OptionGroup var device: DeviceOptions

    @Option(parsing: .unconditional, help: "Number of images.")
    var batch = 64

    @Option(name: .customLong("device-batch"), parsing: .unconditional, help: "Images per model evaluation (large requests are split).")
    var deviceBatch = 64

    @Option(help: "ddpm (ancestral, Ho et al. Algorithm 2), ddim (Song et al.), dpm++2m / dpm++3m (DPM-Solver++ of order 2 / 3, deterministic; diffusers' DPMSolverMultistepScheduler), dpm++2m-sde (its stochastic variant), unipc (UniPC predictor-corrector, diffusers' UniPCMultistepScheduler), euler (diffusers' EulerDiscreteScheduler), euler-a (Euler ancestral, stochastic) or heun (diffusers' HeunDiscreteScheduler: two model calls per step but the last). Default: the solver the pipeline's scheduler_config.json names, else ddpm.")
    var sampler: SamplerName?

    @Option(parsing: .unconditional, help: "Denoising steps (default: all training timesteps for ddpm, 50 for ddim, 20 for the others). Model evaluations = steps, except heun: 2·steps − 1.")
    var steps: Int?

    @Option(help: "σ-based solvers (dpm++, unipc, euler, heun): karras (Karras et al.'s ρ = 7 ramp) or exponential (equal steps in log σ) instead of the spacing's timesteps; diffusers' use_karras_sigmas / use_exponential_sigmas. Default: the scheduler's.")
    var sigmas: SigmaRamp?

    @Flag(help: "Same as --sigmas karras.")
    var karras = false

    @Option(parsing: .unconditional, help: "DDIM η: 0 is deterministic, 1 matches DDPM's noise level.")
    var eta: Float = 0

    @Option(help: "DDPM variance: beta-tilde (σ²=β̃, diffusers fixed_small), beta (σ²=β, fixed_large) or learned (the model's second half of channels, Improved DDPM's learned_range). Default: the scheduler's.")
    var variance: VarianceChoice?

    @Option(help: "Timestep spacing for fewer steps than training: leading, trailing, linspace. Default: the scheduler's.")
    var spacing: SpacingChoice?

    @Flag(inversion: .prefixedNo, help: "Clip the predicted x₀ to [-1, 1]. Default: the scheduler's setting.")
    var clipSample: Bool?

    @Option(name: .customLong("dynamic-threshold"), parsing: .unconditional, help: "Dynamic thresholding of x₀ (Imagen) at this quantile, e.g. 0.995; replaces clipping. Default: the scheduler's setting.")
    var dynamicThreshold: Float?

    @Option(name: .customLong("sample-max-value"), parsing: .unconditional, help: "Largest threshold with --dynamic-threshold.")
    var sampleMaxValue: Float?

    @Option(parsing: .unconditional, help: "Seed of the initial and per-step noise.")
    var seed: UInt64 = 0

    @Option(name: .customLong("init-noise"), help: "A .npy file (float32 N×C×H×W) with the initial noise x_T.")
    var initNoise: String?

    @Flag(help: "Also write trajectory.png: x_t of up to 8 images at 8 points of the run, from noise to image.")
    var trajectory = false

    @Option(name: .customLong("class"), help: "Class-conditional models: the class of every image (an index or a name such as Trouser), or `all` for one row per class of --batch images each, labelled with the class names. Default: the classes in turn (image i gets class i mod K).")
    var classChoice: String?

    @Option(parsing: .unconditional, help: "Classifier-free guidance weight w ≥ 0: ε̃ = (1+w)·ε(x, y) − w·ε(x, ∅) (diffusers' guidance_scale = 1 + w). 0: the plain conditional model, one network call per step; otherwise the conditional and null-class predictions share one call of 2N images. Needs a model trained with --cond-drop.")
    var guidance: Float = 0

    @Option(help: "Classifier guidance (Dhariwal & Nichol 2021): a noisy classifier from `ddpm-cl classifier train --noisy`, trained on the model's noise schedule. Each step moves toward --class by its gradient ∇ log p(y | x_t), computed on the device: DDPM (fixed variance) shifts the mean by s·σ²·∇, every other solver shifts ε by −√(1−ᾱ)·s·∇.")
    var classifier: String?

    @Option(name: .customLong("classifier-scale"), parsing: .unconditional, help: "The scale s of classifier guidance (with --classifier; guided-diffusion uses 1–10).")
    var classifierScale: Float = 1

    @Flag(name: .customLong("save-float"), help: "Also write samples-float32.npy: the images as float32 N×C×H×W in about [-1, 1], before rounding to 8 bits (to compare solvers).")
    var saveFloat = false

    @Option(help: "Output directory (default MODEL/samples/<sampler>-<steps>-seed<seed>).")
    var out: String?

    /// "-class3-w2", "-classall", "-cg4" in the default output folder's name when classes are asked for.
    var classSuffix: String {
        var suffix = classChoice.map { "-class\($0.replacingOccurrences(of: "/", with: "_"))" } ?? ""
        if guidance != 0 { suffix += String(format: "-w%g", guidance) }
        if classifier != nil { suffix += String(format: "-cg%g", classifierScale) }
        return suffix
    }

    func run() throws {
        try reportingErrors {
            let source: URL
            if let model {
                source = URL(fileURLWithPath: model)
            } else {
                guard let newest = RunDirectory.newest(under: URL(fileURLWithPath: "runs")) else {
                    throw UserError("no model given and no run under runs/. Train one with `ddpm-cl train` or pass a directory.")
                }
                source = newest
                print("using the newest run: \(newest.path)")
            }
            var pipeline = try LoadedPipeline.load(source)
            if let variance {
                switch variance {
                case .beta: pipeline.settings.variance = .fixedLarge
                case .betaTilde: pipeline.settings.variance = .fixedSmall
                case .learned: pipeline.settings.variance = .learnedRange
                }
            }
            if let spacing { pipeline.settings.spacing = SchedulerSettings.Spacing(rawValue: spacing.rawValue)! }
            if let clipSample { pipeline.settings.clipSample = clipSample }
            if let dynamicThreshold {
                pipeline.settings.thresholding = true
                pipeline.settings.dynamicThresholdingRatio = dynamicThreshold
            }
            if let sampleMaxValue { pipeline.settings.sampleMaxValue = sampleMaxValue }
            if karras, let sigmas, sigmas != .karras {
                throw UserError("--karras and --sigmas \(sigmas.rawValue) disagree; pass one of them.")
            }
            guard classifierScale.isFinite && classifierScale >= 0 else {
                throw UserError("--classifier-scale \(classifierScale): it takes a finite scale ≥ 0 (guided-diffusion uses 1–10).")
            }
            let guideFile = try classifier.map { path -> (URL, TrainedClassifier) in
                let url = URL(fileURLWithPath: path)
                let trained = try TrainedClassifier.read(url)
                try ClassifierGuide.check(trained, source: path, model: pipeline.config, settings: pipeline.settings)
                return (url, trained)
            }
            let classes = try ClassRequest(choice: classChoice, guidance: guidance).plan(pipeline, batch: batch, classifier: guideFile?.1)
            let batch = classes?.count ?? batch
            // Default: the solver the pipeline's scheduler names, else DDPM; the scheduler's options are kept.
            let kind = try SamplerKind.resolve(self.sampler, sigmas: karras ? .karras : sigmas, eta: eta, scheduler: pipeline.scheduler)
            let sampler = kind.name
            let stepCount = steps ?? kind.defaultSteps(timesteps: pipeline.settings.schedule.timesteps)
            let request = SampleRequest(count: batch, deviceBatch: deviceBatch, sampler: kind, steps: stepCount,
                                        initialNoise: initNoise.map { URL(fileURLWithPath: $0) })
            try request.validate(pipeline)
            let c = pipeline.config
            let given = try request.loadInitialNoise(c)
            let backend = try device.makeBackend()
            let perCall = min(deviceBatch, batch)
            let need = try MemoryNeed.sampling(c, weights: pipeline.weights, settings: pipeline.settings, conditioning: classes?.modelConditioning)
            try need.check(batch: perCall, flag: "--device-batch", on: backend, what: "sampling")
            let engine = try need.allocating(batch: perCall, flag: "--device-batch", on: backend, what: "sampling") {
                try Sampler(backend: backend, config: c, weights: pipeline.weights, settings: pipeline.settings, batch: perCall,
                            conditioning: classes?.modelConditioning)
            }
            if let guideFile, let classes {
                let (url, trained) = guideFile
                engine.classifierGuide = try ClassifierGuide(backend: backend, classifier: trained, scale: classifierScale, batch: perCall,
                                                             labels: classes.conditioning)
                print(String(format: "classifier guidance: %@ (held-out accuracy %.2f%% at t = 0), scale %g", url.path,
                             100 * trained.heldOutAccuracy, classifierScale))
            }
            let outDir = URL(fileURLWithPath: out ?? source.appendingPathComponent("samples/\(sampler.rawValue)-\(stepCount)-seed\(seed)\(classSuffix)").path)
            print("sampling \(batch) images with \(sampler.rawValue) (\(stepCount) steps) on \(backend.name) from \(pipeline.description)")
            if let classes { print("classes: \(classes.description)") }
            let bar = isatty(STDERR_FILENO) == 1 ? ProgressBar() : nil
            let start = Date()
            var snapshots: [[Float]] = []
            let shown = min(batch, 8, min(deviceBatch, batch))
            let per = c.inChannels * c.sampleSize * c.sampleSize
            let images = try engine.sample(count: batch, seed: seed, sampler: kind, steps: stepCount, initialNoise: given,
                                           snapshots: trajectory ? 8 : 0,
                                           trajectory: { _, x in snapshots.append(Array(x.prefix(shown * per))) }) { done, all in
                guard let bar, done % 5 == 0 || done == all else { return }
                let elapsed = Date().timeIntervalSince(start)
                bar.show(step: done, total: all, loss: nil, imagesPerSecond: Double(done * min(deviceBatch, batch)) / elapsed,
                         eta: elapsed / Double(done) * Double(all - done))
            }
            bar?.finish()
            let seconds = Date().timeIntervalSince(start)
            let pixels = toUInt8(images)
            if trajectory && !snapshots.isEmpty {
                // Rows are images, columns the snapshots from x_T to x_0.
                var strip: [Float] = []
                for i in 0..<shown { for s in snapshots { strip += s[i * per..<(i + 1) * per] } }
                try writePNG(makeGrid(strip, count: shown * snapshots.count, channels: c.inChannels, height: c.sampleSize,
                                      width: c.sampleSize, columns: snapshots.count),
                             to: outDir.appendingPathComponent("trajectory.png"))
            }
            var grid = makeGrid(images, count: batch, channels: c.inChannels, height: c.sampleSize, width: c.sampleSize,
                                columns: classes?.columns)
            if let labels = classes?.rowLabels { grid = labellingRows(grid, labels: labels, rowHeight: c.sampleSize) }
            try writePNG(grid, to: outDir.appendingPathComponent("grid.png"))
            try writeNPY(uint8: pixels, shape: [batch, c.inChannels, c.sampleSize, c.sampleSize], to: outDir.appendingPathComponent("samples.npy"))
            if saveFloat {
                try writeNPY(float32: images, shape: [batch, c.inChannels, c.sampleSize, c.sampleSize], to: outDir.appendingPathComponent("samples-float32.npy"))
            }
            for i in 0..<batch {
                let image = Array(images[i * per..<(i + 1) * per])
                try writePNG(makeGrid(image, count: 1, channels: c.inChannels, height: c.sampleSize, width: c.sampleSize, columns: 1, padding: 0),
                             to: outDir.appendingPathComponent(String(format: "images/%04d.png", i)))
            }
            print(String(format: "%d images in %.1f s (%.2f img/s). Grid: %@", batch, seconds, Double(batch) / seconds,
                         outDir.appendingPathComponent("grid.png").path))
        }
    }
}
