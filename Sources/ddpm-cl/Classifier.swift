import ArgumentParser
import DDPM
import DDPMCore
import Foundation

/// `ddpm-cl classifier train|eval`: the domain classifier whose features `ddpm-cl fid` uses.
struct Classifier: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train or evaluate the domain classifier behind `ddpm-cl fid --features classifier`.",
        subcommands: [ClassifierTrain.self, ClassifierEval.self])
}

struct ClassifierTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train the classifier (a U-Net encoder with a pooled head) on labelled images and cache it.",
        discussion: """
            Labels come from Fashion-MNIST's IDX label files (--data fashion-mnist; held out: its test split)
            or from the class subfolders of an image folder (--data DIR with DIR/CLASS/*.png; held out: every
            10th image). The result, with its held-out accuracy, goes to --out (default: the cache that
            `ddpm-cl fid` reads, ~/.cache/ddpm-cl/classifier-<data>.safetensors).

            --noisy trains the noisy classifier of classifier guidance instead (Dhariwal & Nichol 2021):
            each batch is noised on the device to x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε with t ~ U{0…T−1} of
            --schedule/--timesteps (those of the model it will guide), and the classifier sees t through its
            timestep embedding. Default --out: ~/.cache/ddpm-cl/classifier-noisy-<data>.safetensors. Use it with
            `ddpm-cl sample --classifier FILE --classifier-scale s --class K`.
            """)

    @OptionGroup var device: DeviceOptions

    @Option(help: "Labelled images: fashion-mnist or a folder with one subfolder of PNGs per class.")
    var data = "fashion-mnist"

    @Option(help: "Image size the classifier reads (Fashion-MNIST is padded to 32, as for training the U-Net).")
    var size = 32

    @Option(help: "Channels the classifier reads: 1 (gray) or 3 (RGB).")
    var channels = 1

    @Option(help: "Train for this many minutes (default 3 when --steps is not given).")
    var minutes: Double?

    @Option(help: "Train for this many steps.")
    var steps: Int?

    @Option(help: "Images per step.")
    var batch = 64

    @Option(help: "AdamW learning rate.")
    var lr: Float = 2e-3

    @Flag(help: "Random horizontal flips.")
    var flip = false

    @Option(help: "Seed of the initial weights and the data order.")
    var seed: UInt64 = 0

    @Option(help: "Where to write the classifier (.safetensors).")
    var out: String?

    @Flag(help: "Train on noisy images x_t with their timestep (the classifier of `sample --classifier`).")
    var noisy = false

    @Option(help: "With --noisy: the noise schedule of the model to guide (linear, cosine, quadratic, sigmoid, exponential).")
    var schedule: ScheduleChoice = .linear

    @Option(parsing: .unconditional, help: "With --noisy: the model's diffusion timesteps T.")
    var timesteps = 1000

    func validate() throws {
        if batch < 2 { throw ValidationError("--batch must be at least 2") }
        if let s = steps, s < 1 { throw ValidationError("--steps must be at least 1") }
        if let m = minutes, m <= 0 { throw ValidationError("--minutes must be positive") }
        if channels != 1 && channels != 3 { throw ValidationError("--channels must be 1 or 3") }
        if !(2...TrainingOptions.maxTimesteps).contains(timesteps) { throw ValidationError("--timesteps must be in 2…\(TrainingOptions.maxTimesteps)") }
    }

    func run() throws {
        try reportingErrors {
            let source = try ImageSource.parse(data)
            let (train, heldOut) = try ClassifierTraining.split(source, size: size, channels: channels)
            let backend = try device.makeBackend()
            var options = ClassifierTrainingOptions()
            options.batch = batch; options.learningRate = lr; options.seed = seed
            options.steps = steps; options.minutes = steps == nil ? (minutes ?? 3) : nil
            if noisy { options.noise = ClassifierNoise(schedule: schedule.kind, timesteps: timesteps) }
            print("training the classifier on \(train.description) with \(backend.name)")
            let trained = try ClassifierTraining.run(backend: backend, train: train, heldOut: heldOut, options: options, flip: flip) { step, loss, seconds in
                if step % 100 == 0 {
                    print(String(format: "step %5d  loss %.4f  %.0f img/s", step, loss, Double(step * batch) / max(seconds, 1e-9)))
                }
            }
            let url = out.map { URL(fileURLWithPath: $0) } ?? TrainedClassifier.defaultURL(for: source, noisy: noisy)
            try trained.write(to: url)
            print(String(format: "held-out accuracy %.2f%% on %@ after %d steps; written to %@",
                         100 * trained.heldOutAccuracy, heldOut.description, trained.steps, url.path))
        }
    }
}

struct ClassifierEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Accuracy of a trained classifier on labelled images (a noisy one's at several noise levels).")

    @OptionGroup var device: DeviceOptions

    @Option(help: "Labelled images: fashion-mnist[:train|:test] or a folder with one subfolder per class.")
    var data = "fashion-mnist:test"

    @Option(help: "The classifier (.safetensors); default: the cached one for --data's dataset.")
    var classifier: String?

    @Option(name: [.customLong("num-images"), .customShort("n")], help: "At most this many images.")
    var numImages: Int?

    @Option(name: .customLong("n"), help: .renamed(to: "--num-images"))
    var oldN: Int?

    @Option(name: .customLong("timesteps"), parsing: .unconditional,
            help: ArgumentHelp("Noisy classifiers: the timesteps to measure accuracy at, comma-separated (default: 0, T/10, T/4, T/2, 3T/4, T−1).", valueName: "t,t,…"),
            transform: { text in
                let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
                guard !values.isEmpty, values.allSatisfy({ ($0 ?? -1) >= 0 }) else {
                    throw ValidationError("--timesteps \(text): expected whole numbers ≥ 0 separated by commas, e.g. 0,100,500,999")
                }
                return values.map { $0! }
            })
    var timesteps: [Int]?

    func run() throws {
        try reportingErrors {
            let n = try renamedFlag(numImages, old: oldN, from: "classifier eval --n", to: "--num-images")
            let source = try ImageSource.parse(data)
            let url = classifier.map { URL(fileURLWithPath: $0) } ?? TrainedClassifier.defaultURL(for: source)
            let trained = try TrainedClassifier.read(url)
            let set = try source.load(size: trained.config.sampleSize, channels: trained.config.inChannels, limit: n)
            let features = try ClassifierFeatures(backend: try device.makeBackend(), classifier: trained)
            if let noise = trained.config.noise {
                // A noisy classifier: accuracy from clean (t = 0) to pure noise (t = T − 1).
                let total = noise.timesteps
                let ts = timesteps ?? Array(Set([0, total / 10, total / 4, total / 2, 3 * total / 4, total - 1])).sorted()
                print("noisy classifier (\(noise.schedule.rawValue) schedule, T = \(total)) on \(set.description); recorded at training: \(String(format: "%.2f%%", 100 * trained.heldOutAccuracy)) on \(trained.heldOutDescription)")
                for (t, accuracy) in try features.accuracyByNoiseLevel(set, timesteps: ts) {
                    print(String(format: "  t = %4d  accuracy %6.2f%%", t, 100 * accuracy))
                }
                return
            }
            if timesteps != nil {
                throw UserError("--timesteps is for noisy classifiers (classifier train --noisy); \(url.path) was trained on clean images.")
            }
            let accuracy = try features.accuracy(set)
            print(String(format: "accuracy %.2f%% on %@ (recorded at training: %.2f%% on %@)", 100 * accuracy, set.description,
                         100 * trained.heldOutAccuracy, trained.heldOutDescription))
        }
    }
}
