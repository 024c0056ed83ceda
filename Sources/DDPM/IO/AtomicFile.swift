import DDPMCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Writes `data` to `url` so that readers see either the old file or the complete new one:
/// the bytes go to `.NAME.tmp-<pid>` in the same directory, are fsync'ed, then renamed over
/// the target. Parent directories are created. On failure the temporary file is removed and
/// a `UserError` names the file and the system's reason; the target is left untouched.
public func writeAtomically(_ data: Data, to url: URL) throws {
    try writeAtomically(to: url) { tempURL in
        let fd = open(tempURL.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { throw atomicWriteError(url, errno) }
        defer { close(fd) }
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var written = 0
            while written < raw.count {
                let n = write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw atomicWriteError(url, errno)
                }
                written += n
            }
        }
    }
}

/// Like `writeAtomically(_:to:)`, for writers that need a path (libpng, for instance):
/// `body` receives the temporary file's URL and must write the complete file there.
/// The temporary file is then fsync'ed and renamed over `url`; if `body` throws or any
/// step fails, the temporary file is removed and `url` is left as it was.
public func writeAtomically(to url: URL, _ body: (URL) throws -> Void) throws {
    let directory = url.deletingLastPathComponent()
    do {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    } catch {
        throw UserError("cannot create the folder \(directory.path) to write \(url.path): "
            + "\(error.localizedDescription). Check the path and its permissions.")
    }
    let tempURL = directory.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
    do {
        try body(tempURL)
        try syncFile(tempURL, target: url)
        if rename(tempURL.path, url.path) != 0 { throw atomicWriteError(url, errno) }
    } catch {
        unlink(tempURL.path)
        if error is UserError { throw error }
        throw UserError("cannot write \(url.path): \(error). Nothing was overwritten.")
    }
}

/// Flushes the file at `path` to the disk so a crash right after the rename cannot leave
/// an empty file behind.
private func syncFile(_ path: URL, target: URL) throws {
    let fd = open(path.path, O_RDONLY)
    if fd < 0 { throw atomicWriteError(target, errno) }
    defer { close(fd) }
    if fsync(fd) != 0 { throw atomicWriteError(target, errno) }
}

/// The error for a failed system call while writing `url`.
func atomicWriteError(_ url: URL, _ code: Int32) -> UserError {
    let reason = String(cString: strerror(code))
    return UserError("cannot write \(url.path): \(reason); nothing was overwritten. "
        + "Free some space or choose another output path, then try again.")
}
