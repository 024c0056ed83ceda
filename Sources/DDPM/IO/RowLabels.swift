import Foundation

/// A 3×5 pixel font (upper case, digits, / - . _ and space; other characters draw as ?), each glyph
/// five rows of three pixels, enough to name the rows of a sample grid without a font library.
private let glyphs: [Character: String] = [
    "A": ".#.#.#####.##.#", "B": "##.#.###.#.###.", "C": ".###..#..#...##", "D": "##.#.##.##.###.",
    "E": "####..##.#..###", "F": "####..##.#..#..", "G": ".###..#.##.#.##", "H": "#.##.#####.##.#",
    "I": "###.#..#..#.###", "J": "..#..#..##.#.#.", "K": "#.##.###.#.##.#", "L": "#..#..#..#..###",
    "M": "#.########.##.#", "N": "##.#.##.##.##.#", "O": ".#.#.##.##.#.#.", "P": "##.#.###.#..#..",
    "Q": ".#.#.##.###..##", "R": "##.#.###.#.##.#", "S": ".###...#...###.", "T": "###.#..#..#..#.",
    "U": "#.##.##.##.####", "V": "#.##.##.##.#.#.", "W": "#.##.########.#", "X": "#.##.#.#.#.##.#",
    "Y": "#.##.#.#..#..#.", "Z": "###..#.#.#..###", "0": "####.##.##.####", "1": ".#.##..#..#.###",
    "2": "##...#.#.#..###", "3": "##...#.#...###.", "4": "#.##.####..#..#", "5": "####..##...###.",
    "6": ".###..####.####", "7": "###..#.#..#..#.", "8": "####.#####.####", "9": "####.####..###.",
    "/": "..#..#.#.#..#..", "-": "......###......", ".": ".............#.", "_": "............###",
    "?": "###..#.#.....#.", " ": "...............",
]

/// The glyph's 15 pixels, row-major.
private func pixels(_ c: Character) -> [Bool] {
    (glyphs[Character(c.uppercased())] ?? glyphs["?"]!).map { $0 == "#" }
}

/// `grid` with a margin on the left holding `labels[r]` beside row r (rows of `rowHeight` pixels
/// after `padding`, as makeGrid lays them out), in white on black, scaled to fit the row.
public func labellingRows(_ grid: Image8, labels: [String], rowHeight: Int, padding: Int = 2) -> Image8 {
    let scale = max(1, min(3, rowHeight / 7))
    let advance = 4 * scale
    let margin = (labels.map(\.count).max() ?? 0) * advance + 2 * padding
    var out = Image8(width: grid.width + margin, height: grid.height, channels: grid.channels)
    for y in 0..<grid.height {
        for x in 0..<grid.width {
            for c in 0..<grid.channels {
                out.pixels[(y * out.width + margin + x) * grid.channels + c] = grid.pixels[(y * grid.width + x) * grid.channels + c]
            }
        }
    }
    for (row, text) in labels.enumerated() {
        let top = padding + row * (rowHeight + padding) + max(0, (rowHeight - 5 * scale) / 2)
        for (i, character) in text.enumerated() {
            let bits = pixels(character)
            for gy in 0..<5 {
                for gx in 0..<3 where bits[gy * 3 + gx] {
                    for dy in 0..<scale {
                        for dx in 0..<scale {
                            let (x, y) = (padding + i * advance + gx * scale + dx, top + gy * scale + dy)
                            guard y < out.height else { continue }
                            for c in 0..<out.channels { out.pixels[(y * out.width + x) * out.channels + c] = 255 }
                        }
                    }
                }
            }
        }
    }
    return out
}
