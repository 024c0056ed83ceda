import ArgumentParser
import DDPM
import DDPMCore
import Foundation

enum FeatureChoice: String, ExpressibleByArgument, CaseIterable { case classifier }

struct FID: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fid",
        abstract: "FID and KID between two sets of images, with the class histogram of each.",
        discussion: """
            A and B are each: fashion-mnist[:train|:test], a .npy (uint8 N×C×H×W, or float in [-1, 1]), a run
            directory (its newest samples/*/samples.npy), a samples directory, or a folder of PNGs.
            B may be given as --data instead. Features: the domain classifier's penultimate layer
            (`ddpm-cl classifier train` makes it; its held-out accuracy is printed with every FID).
            FID: Fréchet distance of the feature Gaussians (double precision, LAPACK). KID: unbiased MMD²
            with the cubic polynomial kernel over random subsets (as torch-fidelity / clean-fid).
            Features of datasets are cached per classifier, so the reference side is computed once.

            Examples:
              ddpm-cl fid runs/NAME --data fashion-mnist:test
              ddpm-cl fid fashion-mnist:train fashion-mnist:test -n 1000
            """)

    @Argument(help: "The first set (e.g. generated samples).")
    var a: String

    @Argument(help: "The second set (the reference); or use --data.")
    var b: String?

    @Option(help: "The reference set, as B.")
    var data: String?

    @Option(help: "Feature network.")
    var features: FeatureChoice = .classifier

    @Option(help: "The classifier (.safetensors); default: the cached one trained on B's dataset.")
    var classifier: String?

    @Option(name: [.customLong("num-images"), .customShort("n")], help: "Use at most the first N images of each set.")
    var numImages: Int?

    @Option(name: .customLong("n"), help: .renamed(to: "--num-images"))
    var oldN: Int?

    @Option(name: .customLong("kid-subsets"), help: "KID: number of random subsets.")
    var kidSubsets = 100

    @Option(name: .customLong("kid-subset-size"), help: "KID: images per subset (capped at the smaller set).")
    var kidSubsetSize = 1000

    @Option(help: "Seed of the KID subsets.")
    var seed: UInt64 = 0

    @Flag(name: .customLong("no-cache"), help: "Recompute the reference features instead of reading the cache.")
    var noCache = false

    @Flag(help: "Print the result as JSON.")
    var json = false

    @OptionGroup var device: DeviceOptions

    func validate() throws {
        if b == nil && data == nil { throw ValidationError("give the reference set as a second argument or as --data") }
        if b != nil && data != nil { throw ValidationError("give the reference set once: as the second argument or as --data") }
        if let n = numImages ?? oldN, n < 2 { throw ValidationError("--num-images must be at least 2") }
        if kidSubsets < 1 || kidSubsetSize < 2 { throw ValidationError("--kid-subsets must be ≥ 1 and --kid-subset-size ≥ 2") }
    }

    func run() throws {
        try reportingErrors {
            let n = try renamedFlag(numImages, old: oldN, from: "fid --n", to: "--num-images")
            let sourceA = try ImageSource.parse(a), sourceB = try ImageSource.parse(b ?? data!)
            let url = classifier.map { URL(fileURLWithPath: $0) } ?? TrainedClassifier.defaultURL(for: sourceB)
            let trained = try TrainedClassifier.read(url)
            var settings = FIDSettings()
            settings.limit = n; settings.kidSubsets = kidSubsets; settings.kidSubsetSize = kidSubsetSize
            settings.seed = seed; settings.cache = !noCache
            let r = try FIDEvaluation.evaluate(sourceA, sourceB, classifier: trained, backend: try device.makeBackend(), settings: settings)
            if json { print(try r.jsonText()) } else { print(r.text(classifierFile: url.path)) }
        }
    }
}
