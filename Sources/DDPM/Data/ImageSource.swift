import DDPMCore
import Foundation

/// Where a set of images comes from, as `ddpm-cl fid` and `ddpm-cl classifier` name it:
///   fashion-mnist, fashion-mnist:train, fashion-mnist:test   Debian's dataset-fashion-mnist (labelled)
///   FILE.npy                                                 uint8 N×C×H×W (or N×H×W), or float in [-1, 1]
///   RUN or SAMPLES directory                                 a run's newest samples/*/samples.npy, or a samples.npy inside
///   DIR                                                      every PNG below DIR (labelled when DIR has class subfolders)
public enum ImageSource: Equatable, CustomStringConvertible {
    case fashionMNIST(FashionMNIST.Split)
    case npy(URL)
    case folder(URL)

    public static func parse(_ text: String) throws -> ImageSource {
        switch text {
        case "fashion-mnist", "fashion-mnist:train": return .fashionMNIST(.train)
        case "fashion-mnist:test": return .fashionMNIST(.test)
        default: break
        }
        if text.hasPrefix("fashion-mnist:") {
            throw UserError("unknown Fashion-MNIST split in \"\(text)\": use fashion-mnist:train or fashion-mnist:test.")
        }
        let url = URL(fileURLWithPath: text)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw UserError("\(text) does not exist. Give fashion-mnist[:train|:test], a .npy file, a run or samples directory, or a folder of PNGs.")
        }
        if !isDirectory.boolValue {
            guard url.pathExtension.lowercased() == "npy" else {
                throw UserError("\(text) is a file but not a .npy: give a .npy array (uint8 N×C×H×W or float in [-1, 1]) or a folder of PNGs.")
            }
            return .npy(url)
        }
        let inside = url.appendingPathComponent("samples.npy")
        if FileManager.default.fileExists(atPath: inside.path) { return .npy(inside) }
        if FileManager.default.fileExists(atPath: url.appendingPathComponent(Checkpoint.fileName).path) {
            guard let newest = newestSamples(in: url.appendingPathComponent("samples")) else {
                throw UserError("the run \(text) has no samples yet: run `ddpm-cl sample \(text) --num-images 500` first, or give a samples directory.")
            }
            return .npy(newest)
        }
        return .folder(url)
    }

    public var description: String {
        switch self {
        case .fashionMNIST(let split): return "Fashion-MNIST \(split == .train ? "train" : "test")"
        case .npy(let url): return url.path
        case .folder(let url): return url.path
        }
    }

    /// A stable name for caches.
    public var cacheKey: String {
        switch self {
        case .fashionMNIST(let split): return "fashion-mnist-\(split == .train ? "train" : "test")"
        case .npy(let url), .folder(let url): return url.standardizedFileURL.path
        }
    }

    /// The side of the source's images as stored (the larger of height and width): Fashion-MNIST
    /// 28, a .npy's H×W, a folder's first PNG. Inception reads both sets of `fid` at the larger of theirs.
    public func nativeSize() throws -> Int {
        switch self {
        case .fashionMNIST: return 28
        case .npy(let url):
            let shape = try readNPY(url).shape
            guard shape.count >= 3 else { throw UserError("\(url.path) has shape \(shape); images must be N×C×H×W (or N×H×W for gray).") }
            return max(shape[shape.count - 2], shape[shape.count - 1])
        case .folder(let url):
            let image = try readPNG(try ImageFolder.pngFiles(in: url)[0])
            return max(image.width, image.height)
        }
    }

    /// Whether `load` gives labels: Fashion-MNIST, or a folder with class subfolders (never a .npy).
    public var hasLabels: Bool {
        switch self {
        case .fashionMNIST: return true
        case .npy: return false
        case .folder(let url): return ImageFolder.hasClasses(in: url)
        }
    }

    /// The images converted to a model's `size` and `channels`, at most `limit` of them (the first ones).
    public func load(size: Int, channels: Int, limit: Int? = nil) throws -> ImageSet {
        var set: ImageSet
        switch self {
        case .fashionMNIST(let split):
            let l = try FashionMNIST.load(split: split)
            let n = min(limit ?? l.count, l.count)
            set = try ImageSet.fromBytes(Array(l.pixels.prefix(n * 28 * 28)), count: n, channels: 1, height: l.height, width: l.width,
                                         size: size, targetChannels: channels, labels: Array(l.labels.prefix(n)),
                                         classNames: FashionMNIST.classNames, description: "\(description) (\(n) images)")
        case .npy(let url):
            set = try Self.loadNPY(url, size: size, channels: channels, limit: limit)
        case .folder(let url):
            let names = ImageFolder.classNames(in: url)
            let hasClasses = names.count >= ImageFolder.minimumClasses
            let l = hasClasses ? try ImageFolder.loadClasses(directory: url, size: size, channels: channels)
                               : try ImageFolder.load(directory: url, size: size, channels: channels)
            let n = min(limit ?? l.count, l.count)
            set = try ImageSet.fromBytes(Array(l.pixels.prefix(n * channels * size * size)), count: n, channels: channels,
                                         height: size, width: size, size: size, targetChannels: channels,
                                         labels: hasClasses ? Array(l.labels.prefix(n)) : nil, classNames: hasClasses ? names : nil,
                                         description: "\(url.path) (\(n) images)")
        }
        return set
    }

    static func loadNPY(_ url: URL, size: Int, channels: Int, limit: Int?) throws -> ImageSet {
        let array = try readNPY(url)
        var shape = array.shape
        if shape.count == 3 { shape.insert(1, at: 1) }
        guard shape.count == 4 else {
            throw UserError("\(url.path) has shape \(array.shape); images must be N×C×H×W (or N×H×W for gray).")
        }
        if ![1, 3].contains(shape[1]) && [1, 3].contains(shape[3]) {
            throw UserError("\(url.path) has shape \(array.shape), which looks like N×H×W×C; ddpm-cl reads N×C×H×W. "
                + "Transpose it with np.transpose(x, (0, 3, 1, 2)).")
        }
        let n = min(limit ?? shape[0], shape[0])
        let count = n * shape[1] * shape[2] * shape[3]
        let bytes: [UInt8]
        if npyDescriptor(url) == "|u1" {
            bytes = array.values.prefix(count).map { UInt8($0) }
        } else {
            let values = array.values.prefix(count)
            if let bad = values.first(where: { !($0 >= -1.001 && $0 <= 1.001) }) {
                throw UserError("\(url.path) holds floats outside [-1, 1] (e.g. \(bad)); float images must be scaled to [-1, 1] "
                    + "(or save uint8 0…255).")
            }
            // Quantised like a PNG of the sample would be, so float and uint8 inputs of one image agree.
            bytes = toUInt8(Array(values))
        }
        return try ImageSet.fromBytes(bytes, count: n, channels: shape[1], height: shape[2], width: shape[3], size: size,
                                      targetChannels: channels, description: "\(url.path) (\(n) images)")
    }

    /// The newest samples.npy one level below `directory` (by modification time).
    static func newestSamples(in directory: URL) -> URL? {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: directory.path) else { return nil }
        return names.compactMap { name -> (URL, Date)? in
            let file = directory.appendingPathComponent(name).appendingPathComponent("samples.npy")
            guard let date = (try? fm.attributesOfItem(atPath: file.path))?[.modificationDate] as? Date else { return nil }
            return (file, date)
        }.max { $0.1 < $1.1 }?.0
    }
}
