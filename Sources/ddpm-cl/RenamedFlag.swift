import ArgumentParser
import DDPMCore

/// The names every command shares: --num-images (-n) is how many images, --batch how many images
/// go into one training step, --device-batch how many into one sampling model evaluation. Older
/// spellings (sample --batch, eval/fid/classifier eval --n, bench --sample-batch) still work,
/// hidden from --help, and print this one-line notice.
func renamedFlag<T>(_ value: T?, old: T?, from oldName: String, to newName: String) throws -> T? {
    guard let old else { return value }
    if value != nil { throw UserError("\(oldName) is the old spelling of \(newName); pass \(newName) alone.") }
    printError("note: \(oldName) is now \(newName) (same meaning); the old spelling will go.")
    return old
}

func renamedFlag<T>(_ value: T?, old: T?, from oldName: String, to newName: String, default fallback: T) throws -> T {
    try renamedFlag(value, old: old, from: oldName, to: newName) ?? fallback
}

extension ArgumentHelp {
    /// Help of a hidden old spelling (shown by --help-hidden only).
    static func renamed(to newName: String) -> ArgumentHelp {
        ArgumentHelp("Deprecated spelling of \(newName).", visibility: .hidden)
    }
}
