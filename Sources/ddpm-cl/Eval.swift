import ArgumentParser
import DDPM
import DDPMCore
import Foundation

enum SplitChoice: String, ExpressibleByArgument, CaseIterable { case train, test }

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Negative log-likelihood in bits/dim through the variational bound (Ho et al.; Improved DDPM).",
        discussion: """
            L = L_T (prior) + Σ L_{t−1} (KL between Gaussian posteriors) + L_0 (discretised Gaussian
            decoder), with the scheduler's variance (β̃, β, or the model's own with learned_range). The exact
            bound evaluates the model at all T timesteps for --num-images images (-n; all in one model evaluation). --stride S estimates it from about
            K + T/S evaluations: the first K terms (--exact-terms, the largest ones) exactly, the rest in
            strata of 2S timesteps with two timesteps drawn per stratum; the estimate is unbiased and is
            printed with its standard error.

            A class-conditional model is evaluated on log p(x | y) with the data's labels, or with
            --null-class on its unconditional mode (the null class that --cond-drop trained).

            Examples:
              ddpm-cl eval runs/NAME                       exact bound, 64 test images
              ddpm-cl eval runs/NAME --stride 20 -n 256     ≈ 60 evaluations, ± standard error
            """)

    @Argument(help: "Run, pipeline or UNet directory.")
    var model: String

    @OptionGroup var device: DeviceOptions

    @Option(help: "Evaluation images: fashion-mnist or a folder of PNG files.")
    var data = "fashion-mnist"

    @Option(help: "Fashion-MNIST split.")
    var split: SplitChoice = .test

    @Option(name: [.customLong("num-images"), .customShort("n")], parsing: .unconditional, help: "How many images to evaluate (default 64; at most the data's).")
    var numImages: Int?

    @Option(name: .customLong("n"), parsing: .unconditional, help: .renamed(to: "--num-images"))
    var oldN: Int?

    @Option(parsing: .unconditional, help: "Estimate the bound from strata of 2S timesteps, two drawn per stratum (1 = the exact bound).")
    var stride = 1

    @Option(name: .customLong("exact-terms"), parsing: .unconditional, help: "With --stride: the first K terms (t = 0…K−1) are evaluated exactly.")
    var exactTerms = 10

    @Flag(name: .customLong("null-class"), help: "Class-conditional models: evaluate the unconditional mode (the null class of --cond-drop) instead of log p(x | y) with the data's labels.")
    var nullClass = false

    @Option(parsing: .unconditional, help: "Seed of the q(x_t|x_0) noise.")
    var seed: UInt64 = 0

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        if let n = numImages ?? oldN, n < 1 { throw ValidationError("--num-images must be at least 1") }
        if stride < 1 { throw ValidationError("--stride must be at least 1") }
        if exactTerms < 1 { throw ValidationError("--exact-terms must be at least 1 (t = 0 is the decoder term)") }
    }

    func run() throws {
        try reportingErrors {
            let n = try renamedFlag(numImages, old: oldN, from: "eval --n", to: "--num-images", default: 64)
            let pipeline = try LoadedPipeline.load(URL(fileURLWithPath: model))
            let c = pipeline.config
            let bound = VariationalBound(settings: pipeline.settings)
            try bound.checkStride(stride)
            let data = try TrainingData.load(self.data, size: c.sampleSize, channels: c.inChannels, seed: 0, horizontalFlip: false,
                                             split: split == .train ? .train : .test,
                                             labelled: c.isClassConditional && !nullClass && TrainingData.hasClassLabels(self.data))
            let count = min(n, data.count)
            let labels = try UNetNoisePredictor.evaluationLabels(classes: pipeline.classes, data: data, count: count, nullClass: nullClass)
            let per = c.inChannels * c.sampleSize * c.sampleSize
            let images = Array(data.images.prefix(count * per))
            let backend = try device.makeBackend()
            let need = try MemoryNeed.evaluation(c, weights: pipeline.weights, settings: pipeline.settings)
            try need.check(batch: count, flag: "--num-images", on: backend, what: "evaluating")
            let predictor = try need.allocating(batch: count, flag: "--num-images", on: backend, what: "evaluating") {
                try UNetNoisePredictor(backend: backend, config: c, weights: pipeline.weights, settings: pipeline.settings, batch: count,
                                       labels: labels)
            }
            let bar = isatty(STDERR_FILENO) == 1 && !json ? ProgressBar() : nil
            let start = Date()
            let r = try bound.evaluate(images: images, count: count, model: predictor, seed: seed, stride: stride,
                                    exactTerms: exactTerms) { done, all in
                let elapsed = Date().timeIntervalSince(start)
                bar?.show(step: done, total: all, loss: nil, imagesPerSecond: Double(done * count) / elapsed,
                          eta: elapsed / Double(done) * Double(all - done))
            }
            bar?.finish()
            let conditioning = labels == nil ? "none" : nullClass ? "null class" : "data labels"
            if json {
                let object: [String: Any] = ["bits_per_dim": r.bitsPerDim, "prior_bits_per_dim": r.priorBitsPerDim,
                                             "decoder_bits_per_dim": r.decoderBitsPerDim, "diffusion_bits_per_dim": r.diffusionBitsPerDim,
                                             "standard_error": r.standardError, "evaluated_terms": r.evaluatedTerms,
                                             "images": count, "stride": stride, "exact": r.exact, "conditioning": conditioning]
                print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self))
            } else {
                print(String(format: "%@: %.4f bits/dim%@%@ over %d %@ images (prior %.4f, diffusion KL %.4f, decoder %.4f)",
                             pipeline.description, r.bitsPerDim,
                             labels == nil ? "" : nullClass ? " (unconditional: the null class)" : " (−log p(x | y), y the data's labels)",
                             r.exact ? "" : String(format: " ± %.4f (standard error; %d of %d terms evaluated)", r.standardError, r.evaluatedTerms,
                                                   pipeline.settings.schedule.timesteps),
                             count, data.description, r.priorBitsPerDim, r.diffusionBitsPerDim, r.decoderBitsPerDim))
            }
        }
    }
}
