import Foundation

/// Maps values in [-1, 1] to bytes: clamp, then round((x + 1) × 127.5). NaN becomes 0.
public func toUInt8(_ values: [Float]) -> [UInt8] {
    values.map { value in
        guard !value.isNaN else { return 0 }
        let clamped = min(1, max(-1, value))
        return UInt8(((clamped + 1) * 127.5).rounded())
    }
}

/// Tiles `count` images (N×C×H×W floats in [-1, 1], C = 1 or 3) into one image:
/// `columns` per row (default ⌈√N⌉), `padding` black pixels around and between them.
public func makeGrid(_ values: [Float], count: Int, channels: Int, height: Int, width: Int,
                     columns: Int? = nil, padding: Int = 2) -> Image8 {
    precondition(channels == 1 || channels == 3, "makeGrid: channels must be 1 or 3")
    precondition(values.count == count * channels * height * width, "makeGrid: value count mismatch")
    let cols = max(1, min(columns ?? Int(Double(count).squareRoot().rounded(.up)), max(count, 1)))
    let rows = max(1, (count + cols - 1) / cols)
    let gridWidth = cols * (width + padding) + padding
    let gridHeight = rows * (height + padding) + padding
    let bytes = toUInt8(values)
    var grid = Image8(width: gridWidth, height: gridHeight, channels: channels)
    for n in 0..<count {
        let left = padding + (n % cols) * (width + padding)
        let top = padding + (n / cols) * (height + padding)
        for c in 0..<channels {
            for y in 0..<height {
                for x in 0..<width {
                    let source = ((n * channels + c) * height + y) * width + x
                    let target = ((top + y) * gridWidth + left + x) * channels + c
                    grid.pixels[target] = bytes[source]
                }
            }
        }
    }
    return grid
}
