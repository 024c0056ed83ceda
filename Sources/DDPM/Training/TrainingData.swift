import DDPMCore
import Foundation

/// Training images as floats in [-1, 1], N×C×S×S, and the order in which batches visit them.
/// The order is a pure function of (seed, step): batch s holds positions [(s−1)·B, s·B) of the
/// endless sequence of per-epoch shuffles, so a resumed run sees exactly the same batches.
public final class TrainingData {
    public let images: [Float]
    public let count: Int
    public let channels: Int
    public let size: Int
    public let description: String
    public let horizontalFlip: Bool
    /// Class labels for class-conditional training (nil: unconditional), and their names.
    public let labels: [Int]?
    public let classNames: [String]?
    /// The probability that a batch's label becomes the null class (index classNames.count):
    /// classifier-free guidance training (Ho & Salimans 2022).
    public var conditionDrop: Float = 0
    private let seed: UInt64
    private var epochOrder: (epoch: Int, order: [Int])?

    public init(images: [Float], count: Int, channels: Int, size: Int, description: String, seed: UInt64,
                horizontalFlip: Bool = false, labels: [Int]? = nil, classNames: [String]? = nil) {
        precondition(images.count == count * channels * size * size)
        precondition(labels == nil || (labels!.count == count && classNames != nil))
        self.images = images; self.count = count; self.channels = channels; self.size = size
        self.description = description; self.seed = seed; self.horizontalFlip = horizontalFlip
        self.labels = labels; self.classNames = classNames
    }

    /// Fashion-MNIST from Debian's dataset-fashion-mnist: 28×28 padded to `size` with the
    /// background value (−1 after scaling), or shrunk to `size` (area average, as image folders are)
    /// when the model is smaller; or `--data DIR`: every PNG under DIR.
    /// `labelled` keeps the class labels (Fashion-MNIST's IDX label file, or DIR's class subfolders).
    public static func load(_ source: String, size: Int, channels: Int, seed: UInt64, horizontalFlip: Bool,
                            split: FashionMNIST.Split = .train, labelled: Bool = false) throws -> TrainingData {
        var labeled: LabeledImages
        let name: String
        let classNames = labelled ? try Self.classNames(of: source) : nil
        if source == "fashion-mnist" {
            guard channels == 1 else {
                throw UserError("Fashion-MNIST is grayscale but the model has in_channels \(channels); use a 1-channel model or --data DIR with RGB images.")
            }
            labeled = try FashionMNIST.load(split: split)
            name = "Fashion-MNIST \(split == .train ? "train" : "test") (\(labeled.count) images)"
        } else {
            let url = URL(fileURLWithPath: source)
            labeled = labelled ? try ImageFolder.loadClasses(directory: url, size: size, channels: channels)
                               : try ImageFolder.load(directory: url, size: size, channels: channels)
            name = "\(url.path) (\(labeled.count) images)"
        }
        if labeled.height > size || labeled.width > size {
            labeled = resized(labeled, to: size)
        }
        guard labeled.height <= size && labeled.width <= size else {
            throw UserError("the data's images are \(labeled.width)×\(labeled.height) but the model's sample_size is \(size).")
        }
        let (h, w) = (labeled.height, labeled.width)
        let (top, left) = ((size - h) / 2, (size - w) / 2)
        var images = [Float](repeating: -1, count: labeled.count * channels * size * size)
        for n in 0..<labeled.count {
            for c in 0..<channels {
                for y in 0..<h {
                    for x in 0..<w {
                        let p = labeled.pixels[((n * channels + c) * h + y) * w + x]
                        images[((n * channels + c) * size + y + top) * size + x + left] = Float(p) / 127.5 - 1
                    }
                }
            }
        }
        return TrainingData(images: images, count: labeled.count, channels: channels, size: size,
                            description: name, seed: seed, horizontalFlip: horizontalFlip,
                            labels: labelled ? labeled.labels : nil, classNames: classNames)
    }

    /// The training images of a run, with its labels and --cond-drop when it is class-conditional.
    public static func load(for options: TrainingOptions) throws -> TrainingData {
        let data = try load(options.data, size: options.model.sampleSize, channels: options.model.inChannels, seed: options.seed,
                            horizontalFlip: options.horizontalFlip, labelled: options.classNames != nil)
        if let names = options.classNames, data.classNames != names {
            throw UserError("the run was trained on the classes \(names.joined(separator: ", ")), but \(options.data) now has \(data.classNames?.joined(separator: ", ") ?? "none"); restore the data's class subfolders or start a new run.")
        }
        data.conditionDrop = options.conditionDrop ?? 0
        return data
    }

    /// Whether `source` can be loaded `labelled` (what classNames(of:) accepts).
    public static func hasClassLabels(_ source: String) -> Bool { (try? classNames(of: source)) != nil }

    /// The class names of a training source, in label order: Fashion-MNIST's ten, or the class
    /// subfolders of DIR (sorted; at least 2).
    public static func classNames(of source: String) throws -> [String] {
        if source == "fashion-mnist" { return FashionMNIST.classNames }
        let url = URL(fileURLWithPath: source)
        let names = ImageFolder.classNames(in: url)
        guard names.count >= ImageFolder.minimumClasses else {
            throw UserError("--class-conditional: \(url.path) has \(names.count) class subfolder(s); class-conditional training needs at least 2. Put each class's PNGs in a subfolder named after it (DIR/CLASS/*.png), or train without --class-conditional.")
        }
        return names
    }

    /// Every image resized (short side to `size`) and center-cropped to `size`×`size`.
    static func resized(_ images: LabeledImages, to size: Int) -> LabeledImages {
        let per = images.channels * images.height * images.width
        var pixels: [UInt8] = []
        pixels.reserveCapacity(images.count * images.channels * size * size)
        for n in 0..<images.count {
            let planes = images.pixels[n * per..<(n + 1) * per].map(Float.init)
            pixels += ImageFolder.resizeAndCrop(planes, width: images.width, height: images.height, channels: images.channels, size: size)
        }
        return LabeledImages(count: images.count, height: size, width: size, channels: images.channels, pixels: pixels, labels: images.labels)
    }

    /// The image index at `position` of the endless shuffled sequence.
    func index(at position: Int) -> Int {
        let epoch = position / count
        if epochOrder?.epoch != epoch {
            var random = SplitMix64(seed: seed &+ 0x5DEE_CE66_D1CE_4E5B &* UInt64(epoch + 1))
            epochOrder = (epoch, random.permutation(count))
        }
        return epochOrder!.order[position % count]
    }

    /// The labels of batch `step` (1-based), as the U-Net reads them (floats), or nil without labels.
    /// With `conditionDrop` p each is replaced by the null class with probability p, decided by
    /// (seed, position in the endless sequence) alone, so a resumed run draws the same.
    /// `images` picks a data-parallel rank's shard of the batch.
    public func batchLabels(step: Int, size batch: Int, images shard: Range<Int>? = nil) -> [Float]? {
        guard let labels, let classNames else { return nil }
        return (shard ?? 0..<batch).map { b in
            let position = (step - 1) * batch + b
            if conditionDrop > 0 {
                var r = SplitMix64(seed: (seed ^ 0xC1A5_5D40_9E37_79B9) &+ UInt64(position) &* 0x9E37_79B9_7F4A_7C15)
                if r.uniform() < Double(conditionDrop) { return Float(classNames.count) }
            }
            return Float(labels[index(at: position)])
        }
    }

    /// Batch `step` (1-based) of size `batch`, N×C×S×S.
    public func batch(step: Int, size batch: Int) -> [Float] { self.batch(step: step, size: batch, images: 0..<batch) }

    /// Images `images` of batch `step` of size `batch` (a data-parallel rank's shard), N×C×S×S.
    public func batch(step: Int, size batch: Int, images shard: Range<Int>) -> [Float] {
        let per = channels * size * size
        var out = [Float](repeating: 0, count: shard.count * per)
        for (b, image) in shard.enumerated() {
            let position = (step - 1) * batch + image
            let source = index(at: position) * per
            var flip = false
            if horizontalFlip {
                var r = SplitMix64(seed: seed ^ UInt64(position) &* 0x9E37_79B9_7F4A_7C15)
                flip = r.next() & 1 == 1
            }
            for row in 0..<(channels * size) {
                for x in 0..<size {
                    out[b * per + row * size + x] = images[source + row * size + (flip ? size - 1 - x : x)]
                }
            }
        }
        return out
    }
}

/// Prepares the next batches on a background thread while the device computes.
public final class BatchPrefetcher {
    private let data: TrainingData
    private let batch: Int
    private let images: Range<Int>
    private let lock = NSCondition()
    private var ready: [Int: (images: [Float], labels: [Float]?)] = [:]
    private var nextToMake: Int
    private var stopped = false
    private let depth = 2

    /// Prepares images `images` (default: all) of each batch of `batch`, from batch `firstStep` on.
    public init(data: TrainingData, batch: Int, images: Range<Int>? = nil, firstStep: Int) {
        self.data = data; self.batch = batch; self.images = images ?? 0..<batch; nextToMake = firstStep
        let thread = Thread { [weak self] in self?.produce() }
        thread.name = "batch-prefetch"
        thread.start()
    }

    private func produce() {
        while true {
            lock.lock()
            while !stopped && ready.count >= depth { lock.wait() }
            if stopped { lock.unlock(); return }
            let step = nextToMake
            nextToMake += 1
            lock.unlock()
            let values = (data.batch(step: step, size: batch, images: images), data.batchLabels(step: step, size: batch, images: images))
            lock.lock()
            ready[step] = values
            lock.broadcast()
            lock.unlock()
        }
    }

    /// The batch for `step` and its labels (steps are taken in order).
    public func take(step: Int) -> (images: [Float], labels: [Float]?) {
        lock.lock()
        defer { lock.unlock() }
        while ready[step] == nil { lock.wait() }
        let values = ready.removeValue(forKey: step)!
        lock.broadcast()
        return values
    }

    public func stop() {
        lock.lock()
        stopped = true
        lock.broadcast()
        lock.unlock()
    }
}
