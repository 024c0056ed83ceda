import DDPMCore
import Foundation

/// A set of images with integer class labels. `pixels` holds `count` images of
/// `channels` × `height` × `width` bytes each (N×C×H×W, planar, row-major).
public struct LabeledImages {
    public var count: Int
    public var height: Int
    public var width: Int
    public var channels: Int
    public var pixels: [UInt8]
    public var labels: [Int]

    public init(count: Int, height: Int, width: Int, channels: Int, pixels: [UInt8], labels: [Int]) {
        precondition(pixels.count == count * channels * height * width, "LabeledImages pixel count mismatch")
        precondition(labels.count == count, "LabeledImages label count mismatch")
        self.count = count
        self.height = height
        self.width = width
        self.channels = channels
        self.pixels = pixels
        self.labels = labels
    }
}

/// Fashion-MNIST (28×28 gray clothing images, 10 classes), read from the gzip'd IDX files
/// that Debian's `dataset-fashion-mnist` package installs.
public enum FashionMNIST {
    /// The 60 000-image training split or the 10 000-image test split.
    public enum Split {
        case train, test

        /// The file name prefix of this split ("train" or "t10k").
        var prefix: String { self == .train ? "train" : "t10k" }
    }

    /// Where `dataset-fashion-mnist` installs the files.
    public static let defaultDirectory = URL(fileURLWithPath: "/usr/share/datasets/fashion-mnist")

    /// The names of labels 0…9.
    public static let classNames = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]

    /// Loads one split: `count` images of 1×28×28 bytes and their labels in 0…9.
    public static func load(split: Split, directory: URL = defaultDirectory) throws -> LabeledImages {
        let imagesURL = directory.appendingPathComponent("\(split.prefix)-images-idx3-ubyte.gz")
        let labelsURL = directory.appendingPathComponent("\(split.prefix)-labels-idx1-ubyte.gz")
        for url in [imagesURL, labelsURL] where !FileManager.default.fileExists(atPath: url.path) {
            throw UserError("Fashion-MNIST is not installed: \(url.path) is missing. Run `make deps` "
                + "or `sudo apt-get install dataset-fashion-mnist`, or pass the folder that holds "
                + "the *-idx3-ubyte.gz / *-idx1-ubyte.gz files.")
        }
        let images = [UInt8](try readGzip(imagesURL))
        let labels = [UInt8](try readGzip(labelsURL))
        func corrupt(_ url: URL, _ reason: String) -> UserError {
            UserError("cannot read \(url.path): not a valid Fashion-MNIST IDX file (\(reason)). "
                + "Reinstall it with `sudo apt-get install --reinstall dataset-fashion-mnist`.")
        }

        guard images.count >= 16, UInt32(bigEndianBytes: images, at: 0) == 0x0000_0803 else {
            throw corrupt(imagesURL, "bad magic number, expected 0x00000803")
        }
        let count = Int(UInt32(bigEndianBytes: images, at: 4))
        let height = Int(UInt32(bigEndianBytes: images, at: 8))
        let width = Int(UInt32(bigEndianBytes: images, at: 12))
        guard height > 0, width > 0, height <= 4096, width <= 4096,
              images.count == 16 + count * height * width else {
            throw corrupt(imagesURL, "the header says \(count) images of \(height)×\(width) "
                + "but the file holds \(images.count - 16) bytes of pixels")
        }
        guard labels.count >= 8, UInt32(bigEndianBytes: labels, at: 0) == 0x0000_0801 else {
            throw corrupt(labelsURL, "bad magic number, expected 0x00000801")
        }
        let labelCount = Int(UInt32(bigEndianBytes: labels, at: 4))
        guard labelCount == count, labels.count == 8 + count else {
            throw corrupt(labelsURL, "\(labelCount) labels in the header and \(labels.count - 8) in the file "
                + "for \(count) images")
        }
        let labelValues = labels[8...].map { Int($0) }
        if let bad = labelValues.first(where: { $0 >= classNames.count }) {
            throw corrupt(labelsURL, "label \(bad) is outside 0…9")
        }
        return LabeledImages(count: count, height: height, width: width, channels: 1,
                             pixels: Array(images[16...]), labels: labelValues)
    }
}

extension UInt32 {
    /// The big-endian integer stored in `bytes` at `offset` (the caller checks the bounds).
    init(bigEndianBytes bytes: [UInt8], at offset: Int) {
        self = UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16
            | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }
}
