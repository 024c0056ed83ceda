import Foundation

/// Draws the training loss against the step as an RGB image: white background, axes, a light
/// grid, the raw loss as a light line and its exponential moving average (α ≈ 8/points, between 0.02 and 0.3,
/// bias-corrected) as a dark line. The y axis is logarithmic when max/min > 20. The first and
/// last step and the min and max loss are written at the ends of the axes.
public func renderLossPlot(steps: [Int], losses: [Float], width: Int = 640, height: Int = 360, title name: String = "loss") -> Image8 {
    let width = max(width, 64), height = max(height, 48)
    var image = Image8(width: width, height: height, channels: 3,
                       pixels: [UInt8](repeating: 255, count: width * height * 3))
    let black: (UInt8, UInt8, UInt8) = (0, 0, 0)
    let gridColor: (UInt8, UInt8, UInt8) = (230, 230, 230)
    let rawColor: (UInt8, UInt8, UInt8) = (170, 195, 235)
    let smoothColor: (UInt8, UInt8, UInt8) = (20, 50, 150)
    let scale = height >= 200 ? 2 : 1
    let lineHeight = BitmapFont.glyphHeight * scale

    // The points worth drawing: finite losses (and positive ones on a log scale).
    var points: [(step: Int, loss: Float)] = []
    for (step, loss) in zip(steps, losses) where loss.isFinite {
        points.append((step, loss))
    }
    let minLoss = points.map(\.loss).min() ?? 0
    let maxLoss = points.map(\.loss).max() ?? 1
    let logScale = minLoss > 0 && maxLoss / minLoss > 20
    let minLabel = formatLoss(minLoss), maxLabel = formatLoss(maxLoss)

    // The plot area, leaving room for the labels.
    let left = max(BitmapFont.width(of: minLabel, scale: scale), BitmapFont.width(of: maxLabel, scale: scale)) + 4 * scale + 4
    let right = width - 6 * scale - 4
    let top = lineHeight + 6 * scale
    let bottom = height - 2 * lineHeight - 6 * scale
    guard right > left + 1, bottom > top + 1 else { return image }

    for i in 1...4 {
        let gx = left + (right - left) * i / 5
        let gy = top + (bottom - top) * i / 5
        drawLine(&image, gx, top, gx, bottom, gridColor)
        drawLine(&image, left, gy, right, gy, gridColor)
    }

    if !points.isEmpty {
        let firstStep = points.map(\.step).min() ?? 0
        let lastStep = points.map(\.step).max() ?? 0
        func yValue(_ loss: Float) -> Double { logScale ? log(Double(loss)) : Double(loss) }
        let yLow = yValue(minLoss), yHigh = yValue(maxLoss)
        func pixelX(_ step: Int) -> Int {
            guard lastStep > firstStep else { return (left + right) / 2 }
            return left + Int((Double(step - firstStep) / Double(lastStep - firstStep) * Double(right - left)).rounded())
        }
        func pixelY(_ loss: Float) -> Int {
            guard yHigh > yLow else { return (top + bottom) / 2 }
            let fraction = (yValue(loss) - yLow) / (yHigh - yLow)
            return bottom - Int((fraction * Double(bottom - top)).rounded())
        }
        drawPolyline(&image, points.map { (pixelX($0.step), pixelY($0.loss)) }, rawColor)
        // About an eighth of the points in the window: a short run still shows the trend, a long one is smooth.
        let alpha = min(0.3, max(0.02, 8 / Float(points.count)))
        let smoothed = exponentialMovingAverage(points.map(\.loss), alpha: alpha)
        let smoothPoints = zip(points, smoothed).map { (pixelX($0.0.step), pixelY($0.1)) }
        drawPolyline(&image, smoothPoints, smoothColor)
        // Thicken the smoothed line by one pixel so it stands out over the raw one.
        drawPolyline(&image, smoothPoints.map { ($0.0, $0.1 - 1) }, smoothColor)

        let labelY = bottom + 4 * scale
        BitmapFont.draw(String(firstStep), x: left, y: labelY, scale: scale, color: black, into: &image)
        let lastLabel = String(lastStep)
        BitmapFont.draw(lastLabel, x: right - BitmapFont.width(of: lastLabel, scale: scale), y: labelY,
                        scale: scale, color: black, into: &image)
        let rightOf = left - 3 * scale - 2
        BitmapFont.draw(maxLabel, x: rightOf - BitmapFont.width(of: maxLabel, scale: scale), y: top,
                        scale: scale, color: black, into: &image)
        BitmapFont.draw(minLabel, x: rightOf - BitmapFont.width(of: minLabel, scale: scale),
                        y: bottom - lineHeight, scale: scale, color: black, into: &image)
    }

    drawLine(&image, left, top, left, bottom, black)
    drawLine(&image, left, bottom, right, bottom, black)
    let title = logScale ? "\(name) (log)" : name
    BitmapFont.draw(title, x: left, y: 2 * scale, scale: scale, color: black, into: &image)
    let stepLabel = "step"
    BitmapFont.draw(stepLabel, x: (left + right - BitmapFont.width(of: stepLabel, scale: scale)) / 2,
                    y: height - lineHeight - 2 * scale, scale: scale, color: black, into: &image)
    return image
}

/// The exponential moving average of `values` with weight `alpha` on the newest value,
/// divided by 1 − (1 − α)^t so the first values are not pulled toward zero.
func exponentialMovingAverage(_ values: [Float], alpha: Float) -> [Float] {
    var average: Float = 0
    var decay: Float = 1
    var result: [Float] = []
    result.reserveCapacity(values.count)
    for value in values {
        average = (1 - alpha) * average + alpha * value
        decay *= 1 - alpha
        result.append(average / (1 - decay))
    }
    return result
}

/// A short label for a loss value: 4 significant digits, or scientific notation when tiny or huge.
func formatLoss(_ value: Float) -> String {
    let magnitude = abs(value)
    if magnitude == 0 || (magnitude >= 0.001 && magnitude < 1000) {
        return String(format: "%.4g", Double(value))
    }
    return String(format: "%.2e", Double(value))
}

/// Draws straight segments between consecutive points.
func drawPolyline(_ image: inout Image8, _ points: [(Int, Int)], _ color: (UInt8, UInt8, UInt8)) {
    guard let first = points.first else { return }
    if points.count == 1 {
        setPixel(&image, first.0, first.1, color)
        return
    }
    for i in 1..<points.count {
        drawLine(&image, points[i - 1].0, points[i - 1].1, points[i].0, points[i].1, color)
    }
}

/// Draws a one-pixel line from (x0, y0) to (x1, y1) with Bresenham's algorithm.
func drawLine(_ image: inout Image8, _ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int,
              _ color: (UInt8, UInt8, UInt8)) {
    var x = x0, y = y0
    let dx = abs(x1 - x0), dy = -abs(y1 - y0)
    let sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
    var error = dx + dy
    while true {
        setPixel(&image, x, y, color)
        if x == x1 && y == y1 { break }
        let doubled = 2 * error
        if doubled >= dy { error += dy; x += sx }
        if doubled <= dx { error += dx; y += sy }
    }
}

/// A tiny 5×7 pixel font with just the characters the loss plot needs:
/// digits, '.', 'e', '-', '+', '(', ')', ' ' and the letters of "step", "loss", "log" and "fid".
/// 'g' and 'p' use two more rows below the baseline, so a line of text is 9 pixels tall.
enum BitmapFont {
    static let glyphWidth = 5
    static let glyphHeight = 9

    /// Each glyph as 7 rows (9 with a descender) of 5 columns; '#' is ink.
    static let glyphs: [Character: [String]] = [
        "0": [".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."],
        "1": ["..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."],
        "2": [".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"],
        "3": ["#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."],
        "4": ["...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."],
        "5": ["#####", "#....", "####.", "....#", "....#", "#...#", ".###."],
        "6": ["..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."],
        "7": ["#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."],
        "8": [".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."],
        "9": [".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."],
        ".": [".....", ".....", ".....", ".....", ".....", ".##..", ".##.."],
        "-": [".....", ".....", ".....", ".###.", ".....", ".....", "....."],
        "+": [".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."],
        "(": ["...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."],
        ")": [".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."],
        " ": [".....", ".....", ".....", ".....", ".....", ".....", "....."],
        "e": [".....", ".....", ".###.", "#...#", "#####", "#....", ".###."],
        "s": [".....", ".....", ".####", "#....", ".###.", "....#", "####."],
        "t": [".#...", ".#...", "###..", ".#...", ".#...", ".#..#", "..##."],
        "p": [".....", ".....", "####.", "#...#", "#...#", "#...#", "####.", "#....", "#...."],
        "l": [".##..", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."],
        "o": [".....", ".....", ".###.", "#...#", "#...#", "#...#", ".###."],
        "g": [".....", ".....", ".####", "#...#", "#...#", "#...#", ".####", "....#", ".###."],
        "f": ["..##.", ".#...", ".#...", "###..", ".#...", ".#...", ".#..."],
        "i": ["..#..", ".....", ".##..", "..#..", "..#..", "..#..", ".###."],
        "d": ["....#", "....#", ".####", "#...#", "#...#", "#...#", ".####"],
    ]

    /// The width in pixels of `text` drawn at `scale` (one blank column between glyphs).
    static func width(of text: String, scale: Int) -> Int {
        text.isEmpty ? 0 : (text.count * (glyphWidth + 1) - 1) * scale
    }

    /// Draws `text` with its top-left corner at (`x`, `y`) into an RGB image, `scale` pixels
    /// per font pixel. Unknown characters are drawn as blanks; pixels outside are skipped.
    static func draw(_ text: String, x: Int, y: Int, scale: Int, color: (UInt8, UInt8, UInt8),
                     into image: inout Image8) {
        var left = x
        for character in text {
            let rows = glyphs[character] ?? glyphs[" "] ?? []
            for (row, pattern) in rows.enumerated() {
                for (column, mark) in pattern.enumerated() where mark == "#" {
                    for dy in 0..<scale {
                        for dx in 0..<scale {
                            setPixel(&image, left + column * scale + dx, y + row * scale + dy, color)
                        }
                    }
                }
            }
            left += (glyphWidth + 1) * scale
        }
    }
}

/// Sets one pixel of an RGB image, ignoring coordinates outside it.
func setPixel(_ image: inout Image8, _ x: Int, _ y: Int, _ color: (UInt8, UInt8, UInt8)) {
    guard x >= 0, y >= 0, x < image.width, y < image.height else { return }
    let at = (y * image.width + x) * 3
    image.pixels[at] = color.0
    image.pixels[at + 1] = color.1
    image.pixels[at + 2] = color.2
}
