import DDPMCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One trainer per run directory: `RUN/.lock` holds the owner's pid. A second trainer on the same
/// folder is refused with the first one's pid; a lock left by a process that no longer exists
/// (killed, machine rebooted) is taken over. `release()` (or deinit) removes it.
public final class RunLock {
    public static let fileName = ".lock"
    public let url: URL
    /// False until the lock file is ours: a refused init must not remove the owner's lock.
    private var held = false

    /// Set when this lock created the run folder: it is removed again on release if still empty.
    private let createdFolder: URL?

    public init(directory: URL) throws {
        url = directory.appendingPathComponent(Self.fileName)
        createdFolder = FileManager.default.fileExists(atPath: directory.path) ? nil : directory
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw UserError("cannot create the run folder \(directory.path): \(error.localizedDescription). Check the path and its permissions.")
        }
        for _ in 0..<3 {
            let fd = open(url.path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
            if fd >= 0 {
                let text = "\(getpid())\n"
                _ = text.withCString { write(fd, $0, strlen($0)) }
                close(fd)
                held = true
                return
            }
            guard errno == EEXIST else {
                throw UserError("cannot create the lock file \(url.path): \(String(cString: strerror(errno))). Check that the run folder is writable.")
            }
            let owner = (try? String(contentsOf: url, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            if let owner, owner != getpid(), processExists(owner) {
                throw UserError("""
                    another ddpm-cl (pid \(owner)) is training in \(directory.path); two trainers on one folder \
                    would overwrite each other's checkpoints. Wait for it to finish, stop it (kill \(owner)), or \
                    choose another --out.
                    """)
            }
            // Stale: its owner is gone (or the file is empty/garbled from a crash while writing it).
            unlink(url.path)
        }
        throw UserError("cannot take the lock \(url.path): another process keeps re-creating it. Choose another --out.")
    }

    public func release() {
        guard held else { return }
        held = false
        unlink(url.path)
        if let folder = createdFolder { rmdir(folder.path) }   // fails (and keeps it) unless empty
    }

    deinit { release() }
}

/// Whether a process with this pid exists (kill with signal 0; EPERM means it exists but is not ours).
public func processExists(_ pid: Int32) -> Bool {
    guard pid > 0 else { return false }
    return kill(pid, 0) == 0 || errno == EPERM
}

/// Removes `.NAME.tmp-PID` files (left by writeAtomically when its process was killed mid-write)
/// whose process no longer exists, in `directory` and its subfolders. Returns the removed paths.
@discardableResult
public func removeStaleTemporaryFiles(under directory: URL) -> [String] {
    guard let walker = FileManager.default.enumerator(atPath: directory.path) else { return [] }
    var removed: [String] = []
    for case let relative as String in walker {
        let name = (relative as NSString).lastPathComponent
        guard name.hasPrefix("."), let range = name.range(of: ".tmp-", options: .backwards),
              let pid = Int32(name[range.upperBound...]), !processExists(pid) else { continue }
        let path = directory.appendingPathComponent(relative).path
        if unlink(path) == 0 { removed.append(path) }
    }
    return removed
}
