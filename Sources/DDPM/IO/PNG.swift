import CPNG
import DDPMCore
import Foundation

/// An 8-bit image: `channels` is 1 (gray), 3 (RGB) or 4 (RGBA); `pixels` holds
/// `height` rows of `width` pixels, each pixel's channels interleaved.
public struct Image8: Equatable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [UInt8]

    /// An image with the given pixels; `pixels.count` must be `width * height * channels`.
    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition([1, 3, 4].contains(channels), "Image8 has 1, 3 or 4 channels")
        precondition(pixels.count == width * height * channels, "Image8 pixel count mismatch")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// A blank (all zero) image.
    public init(width: Int, height: Int, channels: Int) {
        self.init(width: width, height: height, channels: channels,
                  pixels: [UInt8](repeating: 0, count: width * height * channels))
    }
}

/// The libpng format code for 1, 3 or 4 interleaved 8-bit channels.
private func pngFormat(channels: Int) -> UInt32 {
    switch channels {
    case 1: return UInt32(PNG_FORMAT_GRAY)
    case 3: return UInt32(PNG_FORMAT_FLAG_COLOR)
    default: return UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA)
    }
}

/// The text libpng left in `image.message` after a failure.
private func pngMessage(_ image: inout png_image) -> String {
    withUnsafeBytes(of: &image.message) { raw in
        let bytes = raw.prefix { $0 != 0 }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Writes `image` as an 8-bit PNG at `url` (atomically; parent folders are created).
public func writePNG(_ image: Image8, to url: URL) throws {
    try writeAtomically(to: url) { tempURL in
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        png.width = UInt32(image.width)
        png.height = UInt32(image.height)
        png.format = pngFormat(channels: image.channels)
        let stride = Int32(image.width * image.channels)
        let ok = image.pixels.withUnsafeBytes { raw in
            png_image_write_to_file(&png, tempURL.path, 0, raw.baseAddress, stride, nil)
        }
        if ok == 0 {
            let reason = pngMessage(&png)
            png_image_free(&png)
            throw UserError("cannot write the PNG \(url.path): \(reason); nothing was overwritten. "
                + "Check that the folder is writable and the disk is not full.")
        }
    }
}

/// Reads any PNG (gray, gray+alpha, RGB, RGBA, palette, 1…16 bits per sample) as 8-bit
/// gray (1 channel), RGB (3) or RGBA (4): gray+alpha and palettes with transparency become RGBA.
public func readPNG(_ url: URL) throws -> Image8 {
    guard let data = FileManager.default.contents(atPath: url.path) else {
        throw UserError("cannot read \(url.path): the file does not exist or is not readable. "
            + "Check the path.")
    }
    let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    guard data.count >= 8, Array(data.prefix(8)) == signature else {
        throw UserError("cannot read \(url.path): not a PNG file (bad signature). "
            + "Check the path or remove the file from the data folder.")
    }
    // libpng reads from `data`'s bytes until the end, so both calls share one closure.
    return try data.withUnsafeBytes { raw in
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_memory(&png, raw.baseAddress, raw.count) != 0 else {
            throw corruptPNG(url, pngMessage(&png))
        }
        let isColor = png.format & UInt32(PNG_FORMAT_FLAG_COLOR) != 0
        let hasAlpha = png.format & UInt32(PNG_FORMAT_FLAG_ALPHA) != 0
        let channels = hasAlpha ? 4 : (isColor ? 3 : 1)
        png.format = pngFormat(channels: channels)
        // Treat 16-bit samples as sRGB-encoded like 8-bit ones (libpng's default is linear),
        // so 16-bit files are simply scaled down instead of gamma-converted.
        png.flags |= UInt32(PNG_IMAGE_FLAG_16BIT_sRGB)
        let width = Int(png.width), height = Int(png.height)
        // deflate expands at most ~1032:1 and a 1-bit pixel takes 1/8 byte, so a file of n bytes
        // cannot hold more than about 8256·n pixels: a header that claims more is refused before
        // the pixel buffer is allocated.
        guard width > 0, height > 0, width * height <= 1 << 28, width * height <= 8300 * raw.count else {
            png_image_free(&png)
            throw corruptPNG(url, "unsupported size \(width)×\(height)")
        }
        var pixels = [UInt8](repeating: 0, count: width * height * channels)
        let finished = pixels.withUnsafeMutableBytes { out in
            png_image_finish_read(&png, nil, out.baseAddress, Int32(width * channels), nil)
        }
        guard finished != 0 else {
            let reason = pngMessage(&png)
            png_image_free(&png)
            throw corruptPNG(url, reason)
        }
        return Image8(width: width, height: height, channels: channels, pixels: pixels)
    }
}

/// The error for a PNG file that libpng could not decode.
private func corruptPNG(_ url: URL, _ reason: String) -> UserError {
    UserError("cannot read \(url.path): the PNG is damaged or unsupported (libpng: \(reason)). "
        + "Re-export the image or remove it from the data folder.")
}
