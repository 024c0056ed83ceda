import CZlib
import DDPMCore
import Foundation

/// Reads and decompresses the whole gzip file at `url` with zlib.
/// A missing, unreadable, truncated or non-gzip file throws a `UserError` naming it.
/// Decompressed bytes accepted by default: far above the datasets ddpm-cl reads (Fashion-MNIST's
/// training images are 47 MB), so that a decompression bomb ends in an error, not in swap.
public let gzipMaxBytes = 4 << 30

public func readGzip(_ url: URL, maxBytes: Int = gzipMaxBytes) throws -> Data {
    guard FileManager.default.isReadableFile(atPath: url.path) else {
        throw UserError("cannot read \(url.path): the file does not exist or is not readable. "
            + "Check the path.")
    }
    guard let file = gzopen(url.path, "rb") else {
        throw UserError("cannot open \(url.path) for reading: \(String(cString: strerror(errno))). "
            + "Check the path and its permissions.")
    }
    defer { gzclose(file) }
    var result = Data()
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = buffer.withUnsafeMutableBytes { raw in
            gzread(file, raw.baseAddress, UInt32(raw.count))
        }
        if n <= 0 { break }
        guard result.count + Int(n) <= maxBytes else {
            throw UserError("cannot read \(url.path): it decompresses to more than \(maxBytes) bytes, far more than any dataset ddpm-cl reads. "
                + "The file is damaged or not what it seems; check it with `gzip -l`.")
        }
        result.append(contentsOf: buffer[0..<Int(n)])
    }
    // gzread reports a truncated stream only through gzerror (Z_BUF_ERROR), so always ask.
    var code: Int32 = Z_OK
    let message = gzerror(file, &code).map { String(cString: $0) } ?? "unknown zlib error"
    if code != Z_OK {
        throw UserError("cannot read \(url.path): the gzip data is corrupt or truncated (zlib: \(message)). "
            + "Re-download or reinstall the file.")
    }
    if gzdirect(file) != 0 && !result.isEmpty {
        throw UserError("cannot read \(url.path): not a gzip file (bad signature). "
            + "Check the path, or decompress the file yourself and point to the right one.")
    }
    return result
}
