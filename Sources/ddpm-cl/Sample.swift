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
            samples.npy (uint8, N×C×H×W). --num-images (-n) is how many images; --device-batch how many
            of them go through the model at once (as `bench --device-batch`; `train --batch` is images
            per training step). Image i depends only on (--seed, i): the same seed gives the same
            images whatever --device-batch or device.

            Examples:
              ddpm-cl sample -n 64                                    newest run, DDPM with the trained schedule
              ddpm-cl sample runs/fashion-mnist --sampler ddim --steps 50
              ddpm-cl sample runs/fashion-mnist --sampler dpm++2m --steps 20   DPM-Solver++(2M), 20 model calls
              ddpm-cl sample runs/fashion-mnist --sampler unipc --steps 10         UniPC (bh2, order 2), 10 model calls
              ddpm-cl sample runs/fashion-mnist --sampler dpm++2m-sde --karras --steps 30
              ddpm-cl sample runs/fashion-mnist --sampler heun --sigmas karras --steps 10   19 model calls
              ddpm-cl sample path/to/ddpm-cifar10-32 -n 16 --variance beta
              ddpm-cl sample runs/cond --class all -n 8 --guidance 2         class-conditional: a labelled row per class

            Classifier-free guidance (--guidance w, models trained with --class-conditional --cond-drop):
            ε̃ = (1+w)·ε(x, y) − w·ε(x, ∅), ∅ the null class. w = 0 is the plain conditional model;
            diffusers' guidance_scale is 1 + w. Both predictions come from one network call on 2N images.
            """)

    @Argument(help: "Run, pipeline or UNet directory (default: the newest run under runs/).")
    var model: String?

    @OptionGroup var device: DeviceOptions

    @Option(name: [.customLong("num-images"), .customShort("n")], parsing: .unconditional,
            help: "How many images to draw (default 64; with --class all, per class).")
    var numImages: Int?

    @Option(name: .customLong("batch"), parsing: .unconditional, help: .renamed(to: "--num-images"))
    var oldBatch: Int?

    @Option(name: .customLong("device-batch"), parsing: .unconditional, help: "Images per model evaluation; more images are drawn in several evaluations of this many (less device memory, same images).")
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

    @Option(name: .customLong("class"), help: "Class-conditional models: the class of every image (an index or a name such as Trouser), or `all` for one row per class of --num-images images each, labelled with the class names. Default: the classes in turn (image i gets class i mod K).")
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

    /// The flags as a library request (the old spelling of --num-images resolved).
    func request() throws -> SampleRequest {
        var r = SampleRequest()
        r.count = try renamedFlag(numImages, old: oldBatch, from: "sample --batch", to: "--num-images", default: r.count)
        r.deviceBatch = deviceBatch
        r.sampler = sampler
        r.steps = steps
        r.sigmas = sigmas
        r.karras = karras
        r.eta = eta
        r.variance = variance.map {
            switch $0 {
            case .beta: return .fixedLarge
            case .betaTilde: return .fixedSmall
            case .learned: return .learnedRange
            }
        }
        r.spacing = spacing.map { SchedulerSettings.Spacing(rawValue: $0.rawValue)! }
        r.clipSample = clipSample
        r.dynamicThreshold = dynamicThreshold
        r.sampleMaxValue = sampleMaxValue
        r.seed = seed
        r.initialNoise = initNoise.map { URL(fileURLWithPath: $0) }
        r.snapshots = trajectory ? 8 : 0
        r.classChoice = classChoice
        r.guidance = guidance
        r.classifier = classifier.map { URL(fileURLWithPath: $0) }
        r.classifierScale = classifierScale
        return r
    }

    func run() throws {
        try reportingErrors {
            let request = try request()
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
            let plan = try request.plan(try LoadedPipeline.load(source))
            let backend = try device.makeBackend()
            let engine = try plan.makeSampler(on: backend)
            if let guide = plan.guide {
                print(String(format: "classifier guidance: %@ (held-out accuracy %.2f%% at t = 0), scale %g", guide.url.path,
                             100 * guide.classifier.heldOutAccuracy, guide.scale))
            }
            let outDir = URL(fileURLWithPath: out ?? source.appendingPathComponent("samples/\(plan.outputName)").path)
            print("sampling \(plan.count) images with \(plan.sampler.name.rawValue) (\(plan.steps) steps) on \(backend.name) from \(plan.pipeline.description)")
            if let classes = plan.classes { print("classes: \(classes.description)") }
            let bar = isatty(STDERR_FILENO) == 1 ? ProgressBar() : nil
            let start = Date()
            let images = try plan.run(engine) { done, all in
                guard let bar, done % 5 == 0 || done == all else { return }
                let elapsed = Date().timeIntervalSince(start)
                bar.show(step: done, total: all, loss: nil, imagesPerSecond: Double(done * plan.deviceBatch) / elapsed,
                         eta: elapsed / Double(done) * Double(all - done))
            }
            bar?.finish()
            let seconds = Date().timeIntervalSince(start)
            let grid = try images.write(to: outDir, saveFloat: saveFloat)
            print(String(format: "%d images in %.1f s (%.2f img/s). Grid: %@", plan.count, seconds, Double(plan.count) / seconds, grid.path))
        }
    }
}
