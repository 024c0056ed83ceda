import DDPMCore
import Foundation

/// Images as a model reads them: floats in [-1, 1], N×C×S×S, with class labels when the source
/// has them (Fashion-MNIST's IDX labels, or the class subfolders of an image folder).
public struct ImageSet {
    public var images: [Float]
    public var count: Int
    public var channels: Int
    public var size: Int
    public var labels: [Int]?
    public var classNames: [String]?
    public var description: String

    public init(images: [Float], count: Int, channels: Int, size: Int, labels: [Int]? = nil, classNames: [String]? = nil,
                description: String) {
        precondition(images.count == count * channels * size * size, "ImageSet: \(images.count) floats for \(count)×\(channels)×\(size)²")
        precondition(labels == nil || labels!.count == count)
        self.images = images; self.count = count; self.channels = channels; self.size = size
        self.labels = labels; self.classNames = classNames; self.description = description
    }

    var floatsPerImage: Int { channels * size * size }

    /// The images at `indices`, in that order.
    public func selecting(_ indices: [Int], description: String? = nil) -> ImageSet {
        let per = floatsPerImage
        var out: [Float] = []
        out.reserveCapacity(indices.count * per)
        for i in indices { out += images[(i * per)..<((i + 1) * per)] }
        return ImageSet(images: out, count: indices.count, channels: channels, size: size,
                        labels: labels.map { l in indices.map { l[$0] } }, classNames: classNames,
                        description: description ?? self.description)
    }

    /// The first `n` images (all when there are fewer).
    public func prefix(_ n: Int) -> ImageSet {
        n >= count ? self : selecting(Array(0..<n), description: "\(description), first \(n)")
    }

    /// Converts 8-bit images (N×C×H×W) to model input: gray ↔ RGB (luma 0.299/0.587/0.114, or gray
    /// repeated), images smaller than `size` padded centred with the background (0 → −1, as training
    /// pads Fashion-MNIST's 28×28 to 32×32), larger ones resized and centre-cropped (ImageFolder's filter).
    public static func fromBytes(_ pixels: [UInt8], count: Int, channels: Int, height: Int, width: Int,
                                 size: Int, targetChannels: Int, labels: [Int]? = nil, classNames: [String]? = nil,
                                 description: String) throws -> ImageSet {
        guard channels == 1 || channels == 3 else {
            throw UserError("\(description): images with \(channels) channels are not supported; use 1 (gray) or 3 (RGB).")
        }
        guard targetChannels == 1 || targetChannels == 3 else {
            throw UserError("a model with \(targetChannels) input channels cannot read images; it needs 1 or 3.")
        }
        let per = targetChannels * size * size
        var out = [Float](repeating: -1, count: count * per)
        let area = height * width
        for n in 0..<count {
            let source = Array(pixels[(n * channels * area)..<((n + 1) * channels * area)])
            var planes = [Float](repeating: 0, count: targetChannels * area)
            for i in 0..<area {
                if targetChannels == channels {
                    for c in 0..<channels { planes[c * area + i] = Float(source[c * area + i]) }
                } else if targetChannels == 1 {
                    let (r, g, b) = (Float(source[i]), Float(source[area + i]), Float(source[2 * area + i]))
                    planes[i] = (0.299 * r + 0.587 * g + 0.114 * b).rounded()
                } else {
                    for c in 0..<3 { planes[c * area + i] = Float(source[i]) }
                }
            }
            if height <= size && width <= size {
                let (top, left) = ((size - height) / 2, (size - width) / 2)
                for c in 0..<targetChannels {
                    for y in 0..<height {
                        for x in 0..<width {
                            out[n * per + (c * size + y + top) * size + x + left] = planes[(c * height + y) * width + x] / 127.5 - 1
                        }
                    }
                }
            } else {
                let resized = ImageFolder.resizeAndCrop(planes, width: width, height: height, channels: targetChannels, size: size)
                for i in 0..<per { out[n * per + i] = Float(resized[i]) / 127.5 - 1 }
            }
        }
        return ImageSet(images: out, count: count, channels: targetChannels, size: size, labels: labels,
                        classNames: classNames, description: description)
    }
}
