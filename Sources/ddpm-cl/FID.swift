import ArgumentParser
import DDPM
import DDPMCore
import Foundation

enum FeatureChoice: String, ExpressibleByArgument, CaseIterable { case classifier, inception }

struct FID: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fid",
        abstract: "FID and KID between two sets of images, with the class histogram of each.",
        discussion: """
            A and B are each: fashion-mnist[:train|:test], a .npy (uint8 N×C×H×W, or float in [-1, 1]), a run
            directory (its newest samples/*/samples.npy), a samples directory, or a folder of PNGs.
            B may be given as --data instead. Features (--features): the domain classifier's penultimate
            layer (`classifier`, the default: `ddpm-cl classifier train` makes it; its held-out accuracy is
            printed with every FID), or pytorch-fid's FID InceptionV3 pool3 (`inception`, 2048-d, weights from
            --inception FILE, which scripts/convert-inception makes from pytorch-fid's
            pt_inception-2015-12-05-6726825d.pth; both sets are read at the larger of their sizes, as RGB,
            and resized bilinearly to 299×299 as pytorch-fid does).
            FID: Fréchet distance of the feature Gaussians (double precision, LAPACK). KID: unbiased MMD²
            with the cubic polynomial kernel over random subsets (as torch-fidelity / clean-fid).
            Features of datasets are cached per feature network (weights file), so the reference side is computed once.

            Examples:
              ddpm-cl fid runs/NAME --data fashion-mnist:test
              ddpm-cl fid fashion-mnist:train fashion-mnist:test -n 1000
              ddpm-cl fid runs/NAME/dress --data fashion-mnist:test --class Dress     per-class FID (samples of sample --class Dress)
              ddpm-cl fid fashion-mnist:train --data fashion-mnist:test --class Dress -n 500    its real-data floor
              ddpm-cl fid runs/NAME --data fashion-mnist:test --features inception --inception pt_inception.safetensors
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

    @Option(help: "With --features inception: pytorch-fid's Inception weights as safetensors (scripts/convert-inception).")
    var inception: String?

    @Option(name: [.customLong("num-images"), .customShort("n")], help: "Use at most the first N images of each set.")
    var numImages: Int?

    @Option(name: .customLong("n"), help: .renamed(to: "--num-images"))
    var oldN: Int?

    @Option(name: .customLong("kid-subsets"), help: "KID: number of random subsets.")
    var kidSubsets = 100

    @Option(name: .customLong("kid-subset-size"), help: "KID: images per subset (capped at the smaller set).")
    var kidSubsetSize = 1000

    @Option(name: .customLong("class"), help: ArgumentHelp("Per-class FID: only the images of this class (a name or an index of the labels) in each set that has labels; the reference must have them, samples of `sample --class K` are taken whole.", valueName: "K|NAME"))
    var onlyClass: String?

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
        if features == .inception && inception == nil {
            throw ValidationError("--features inception needs --inception FILE.safetensors: make it from pytorch-fid's "
                + "pt_inception-2015-12-05-6726825d.pth with scripts/convert-inception")
        }
        if features == .classifier && inception != nil { throw ValidationError("--inception is for --features inception") }
        if features == .inception && classifier != nil { throw ValidationError("--classifier is for --features classifier") }
        if kidSubsets < 1 || kidSubsetSize < 2 { throw ValidationError("--kid-subsets must be ≥ 1 and --kid-subset-size ≥ 2") }
    }

    func run() throws {
        try reportingErrors {
            let n = try renamedFlag(numImages, old: oldN, from: "fid --n", to: "--num-images")
            let sourceA = try ImageSource.parse(a), sourceB = try ImageSource.parse(b ?? data!)
            var settings = FIDSettings()
            settings.limit = n; settings.kidSubsets = kidSubsets; settings.kidSubsetSize = kidSubsetSize
            settings.seed = seed; settings.cache = !noCache; settings.onlyClass = onlyClass
            let start = Date()
            let network: FeatureNetwork, url: URL
            switch features {
            case .classifier:
                url = classifier.map { URL(fileURLWithPath: $0) } ?? TrainedClassifier.defaultURL(for: sourceB)
                network = try ClassifierFeatures(backend: try device.makeBackend(), classifier: try TrainedClassifier.read(url))
            case .inception:
                url = URL(fileURLWithPath: inception!)
                let weights = try InceptionWeights.read(url)
                network = try InceptionFeatures(backend: try device.makeBackend(), weights: weights,
                                                size: try InceptionFeatures.commonSize(sourceA, sourceB))
            }
            let r = try FIDEvaluation.evaluate(sourceA, sourceB, network: network, settings: settings, start: start)
            if json { print(try r.jsonText()) } else { print(r.text(featureFile: url.path)) }
        }
    }
}
