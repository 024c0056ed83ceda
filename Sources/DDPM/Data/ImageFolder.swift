import DDPMCore
import Foundation

/// A folder of PNG images used as an unlabeled training set.
public enum ImageFolder {
    /// Loads every `.png` under `directory` (recursively, sorted by path; hidden files skipped),
    /// converts it to `channels` (1: gray by luma, 3: RGB; alpha is dropped), resizes it so its
    /// short side is `size` (box filter when shrinking, bilinear when growing) and center-crops
    /// it to `size`×`size`. All labels are 0.
    public static func load(directory: URL, size: Int, channels: Int) throws -> LabeledImages {
        guard channels == 1 || channels == 3 else {
            throw UserError("cannot load images with \(channels) channels: use 1 (gray) or 3 (RGB).")
        }
        guard size > 0 else {
            throw UserError("cannot resize images to \(size)×\(size): the image size must be positive.")
        }
        let files = try pngFiles(in: directory)
        var pixels: [UInt8] = []
        pixels.reserveCapacity(files.count * channels * size * size)
        for file in files {
            let image = try readPNG(file)
            let planes = convertChannels(image, to: channels)
            pixels += resizeAndCrop(planes, width: image.width, height: image.height,
                                    channels: channels, size: size)
        }
        return LabeledImages(count: files.count, height: size, width: size, channels: channels,
                             pixels: pixels, labels: [Int](repeating: 0, count: files.count))
    }

    /// The `.png` files under `directory`, sorted by path.
    static func pngFiles(in directory: URL) throws -> [URL] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory),
              isDirectory.boolValue else {
            throw UserError("the image folder \(directory.path) does not exist or is not a folder. "
                + "Check the path.")
        }
        guard let enumerator = FileManager.default.enumerator(
            at: directory, includingPropertiesForKeys: nil, options: [.skipsHiddenFiles]) else {
            throw UserError("cannot list the image folder \(directory.path). Check its permissions.")
        }
        var files: [URL] = []
        for case let url as URL in enumerator where url.pathExtension.lowercased() == "png" {
            files.append(url)
        }
        guard !files.isEmpty else {
            throw UserError("the image folder \(directory.path) has no .png files. "
                + "Put the training images there as PNG, or choose another folder.")
        }
        return files.sorted { $0.path < $1.path }
    }

    /// The image's pixels as `channels` planes of Floats in 0…255 (C×H×W): gray is the rounded
    /// luma 0.299 R + 0.587 G + 0.114 B; gray images are repeated for RGB; alpha is dropped.
    static func convertChannels(_ image: Image8, to channels: Int) -> [Float] {
        let area = image.width * image.height
        var planes = [Float](repeating: 0, count: channels * area)
        for i in 0..<area {
            let base = i * image.channels
            let r = Float(image.pixels[base])
            let g = image.channels >= 3 ? Float(image.pixels[base + 1]) : r
            let b = image.channels >= 3 ? Float(image.pixels[base + 2]) : r
            if channels == 1 {
                planes[i] = image.channels >= 3 ? (0.299 * r + 0.587 * g + 0.114 * b).rounded() : r
            } else {
                planes[i] = r
                planes[area + i] = g
                planes[2 * area + i] = b
            }
        }
        return planes
    }

    /// Resizes C×H×W planes so the short side is `size`, center-crops to `size`×`size`
    /// and rounds to bytes.
    static func resizeAndCrop(_ planes: [Float], width: Int, height: Int, channels: Int,
                              size: Int) -> [UInt8] {
        let scale = Double(size) / Double(min(width, height))
        let newWidth = width <= height ? size : max(size, Int((Double(width) * scale).rounded()))
        let newHeight = height < width ? size : max(size, Int((Double(height) * scale).rounded()))
        let left = (newWidth - size) / 2
        let top = (newHeight - size) / 2
        let xTaps = resampleTaps(from: width, to: newWidth)
        let yTaps = resampleTaps(from: height, to: newHeight)
        var out: [UInt8] = []
        out.reserveCapacity(channels * size * size)
        for c in 0..<channels {
            let plane = Array(planes[(c * width * height)..<((c + 1) * width * height)])
            // Rows first (width changes), then columns (height changes), only for the kept window.
            var rows = [Float](repeating: 0, count: height * size)
            for y in 0..<height {
                for x in 0..<size {
                    var sum: Float = 0
                    for tap in xTaps[left + x] { sum += tap.weight * plane[y * width + tap.index] }
                    rows[y * size + x] = sum
                }
            }
            for y in 0..<size {
                for x in 0..<size {
                    var sum: Float = 0
                    for tap in yTaps[top + y] { sum += tap.weight * rows[tap.index * size + x] }
                    out.append(UInt8(min(255, max(0, sum.rounded()))))
                }
            }
        }
        return out
    }

    /// For each of the `to` output positions, the source positions and weights that make it:
    /// the area average of the covered source span when shrinking, bilinear interpolation
    /// (pixel centers aligned) when growing, the pixel itself when the length is unchanged.
    static func resampleTaps(from source: Int, to target: Int) -> [[(index: Int, weight: Float)]] {
        var taps: [[(index: Int, weight: Float)]] = []
        let ratio = Double(source) / Double(target)
        for i in 0..<target {
            if source == target {
                taps.append([(i, 1)])
            } else if source > target {
                let start = Double(i) * ratio, end = Double(i + 1) * ratio
                var row: [(index: Int, weight: Float)] = []
                var j = Int(start)
                while j < source && Double(j) < end {
                    let overlap = min(end, Double(j + 1)) - max(start, Double(j))
                    if overlap > 0 { row.append((j, Float(overlap / ratio))) }
                    j += 1
                }
                taps.append(row)
            } else {
                let position = max(0, min(Double(source - 1), (Double(i) + 0.5) * ratio - 0.5))
                let j = min(Int(position), source - 1)
                let fraction = position - Double(j)
                if j + 1 < source && fraction > 0 {
                    taps.append([(j, Float(1 - fraction)), (j + 1, Float(fraction))])
                } else {
                    taps.append([(j, 1)])
                }
            }
        }
        return taps
    }
}
