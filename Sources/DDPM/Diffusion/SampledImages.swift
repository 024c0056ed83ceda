import Foundation

/// Drawn images (N×C×S×S floats in about [-1, 1]) and what `sample` writes of them: grid.png (one
/// labelled row per class with --class all), images/NNNN.png, samples.npy (uint8), optionally
/// samples-float32.npy, and trajectory.png when snapshots were kept. Every file via temp + rename.
public struct SampledImages {
    public var values: [Float]
    public var count: Int
    public var channels: Int
    public var size: Int
    /// Images per grid row (default ⌈√N⌉) and the rows' labels.
    public var columns: Int?
    public var rowLabels: [String]?
    /// Snapshots from x_T to x_0, each holding the first `trajectoryImages` images.
    public var trajectory: [[Float]]
    public var trajectoryImages: Int

    public init(values: [Float], count: Int, channels: Int, size: Int, columns: Int? = nil, rowLabels: [String]? = nil,
                trajectory: [[Float]] = [], trajectoryImages: Int = 0) {
        precondition(values.count == count * channels * size * size, "SampledImages: value count mismatch")
        self.values = values; self.count = count; self.channels = channels; self.size = size
        self.columns = columns; self.rowLabels = rowLabels; self.trajectory = trajectory; self.trajectoryImages = trajectoryImages
    }

    var perImage: Int { channels * size * size }

    /// All images tiled, rows labelled when there are labels.
    public func grid() -> Image8 {
        let grid = makeGrid(values, count: count, channels: channels, height: size, width: size, columns: columns)
        return rowLabels.map { labellingRows(grid, labels: $0, rowHeight: size) } ?? grid
    }

    /// One row per image, the snapshots from x_T to x_0 left to right; nil without snapshots.
    public func trajectoryStrip() -> Image8? {
        guard !trajectory.isEmpty, trajectoryImages > 0 else { return nil }
        var strip: [Float] = []
        for i in 0..<trajectoryImages { for s in trajectory { strip += s[i * perImage..<(i + 1) * perImage] } }
        return makeGrid(strip, count: trajectoryImages * trajectory.count, channels: channels, height: size, width: size,
                        columns: trajectory.count)
    }

    /// Writes the files into `directory` (made if missing); returns grid.png's URL.
    @discardableResult
    public func write(to directory: URL, saveFloat: Bool = false) throws -> URL {
        if let strip = trajectoryStrip() { try writePNG(strip, to: directory.appendingPathComponent("trajectory.png")) }
        let gridURL = directory.appendingPathComponent("grid.png")
        try writePNG(grid(), to: gridURL)
        let shape = [count, channels, size, size]
        try writeNPY(uint8: toUInt8(values), shape: shape, to: directory.appendingPathComponent("samples.npy"))
        if saveFloat { try writeNPY(float32: values, shape: shape, to: directory.appendingPathComponent("samples-float32.npy")) }
        for i in 0..<count {
            let image = Array(values[i * perImage..<(i + 1) * perImage])
            try writePNG(makeGrid(image, count: 1, channels: channels, height: size, width: size, columns: 1, padding: 0),
                         to: directory.appendingPathComponent(String(format: "images/%04d.png", i)))
        }
        return gridURL
    }
}
