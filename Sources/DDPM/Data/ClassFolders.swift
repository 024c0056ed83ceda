import DDPMCore
import Foundation

extension ImageFolder {
    /// A labelled image folder: each immediate subfolder of `directory` is a class (sorted by name,
    /// labels 0, 1, …), holding PNGs at any depth below it. Images are converted and resized as
    /// `load` does.
    public static func loadClasses(directory: URL, size: Int, channels: Int) throws -> LabeledImages {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw UserError("the image folder \(directory.path) does not exist or is not a folder. Check the path.")
        }
        let classes = classNames(in: directory)
        guard classes.count >= minimumClasses else {
            throw UserError("""
                \(directory.path) has \(classes.count) class subfolder(s); a classifier needs at least 2. \
                Put each class's PNGs in a subfolder named after the class (e.g. DIR/cat/*.png, DIR/dog/*.png).
                """)
        }
        var pixels: [UInt8] = [], labels: [Int] = []
        for (label, name) in classes.enumerated() {
            let part = try load(directory: directory.appendingPathComponent(name), size: size, channels: channels)
            pixels += part.pixels
            labels += [Int](repeating: label, count: part.count)
        }
        return LabeledImages(count: labels.count, height: size, width: size, channels: channels, pixels: pixels, labels: labels)
    }

    /// A folder is labelled (its subfolders are classes) when it has at least this many subfolders.
    public static let minimumClasses = 2

    /// Whether `directory`'s subfolders are classes (`loadClasses` can read it).
    public static func hasClasses(in directory: URL) -> Bool { classNames(in: directory).count >= minimumClasses }

    /// The class names `loadClasses` uses for `directory` (its subfolders, sorted).
    public static func classNames(in directory: URL) -> [String] {
        let fm = FileManager.default
        return ((try? fm.contentsOfDirectory(atPath: directory.path)) ?? []).filter { name in
            var isDirectory: ObjCBool = false
            return !name.hasPrefix(".") && fm.fileExists(atPath: directory.appendingPathComponent(name).path, isDirectory: &isDirectory)
                && isDirectory.boolValue
        }.sorted()
    }
}
