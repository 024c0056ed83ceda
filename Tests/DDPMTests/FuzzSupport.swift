import DDPM
import DDPMCore
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Seeded mutations of reader inputs, and the one assertion every fuzz case makes: the reader
/// returns, or throws a UserError whose message names the input, within a time bound.
struct Mutator {
    var random: SplitMix64
    init(seed: UInt64) { random = SplitMix64(seed: seed) }

    mutating func int(_ n: Int) -> Int { Int(random.next() % UInt64(max(n, 1))) }
    mutating func chance(_ p: Double) -> Bool { random.uniform() < p }
    mutating func pick<T>(_ items: [T]) -> T { items[int(items.count)] }

    /// Numbers that break readers: zero, negatives, off-by-one, fractions, huge, overflowing.
    static let nastyNumbers: [Any] = [0, -1, 1, 2, -4, 3, 5, 7, 2.5, 0.5, -0.5, 1e-30, 1e9, -1e9, 1e18, 9.3e18, 1e30, -1e30,
                                      1e308, Int.max, Int.min, 4_294_967_296, 65536, 100000, 0.999, 1.0, 5000]
    /// Values of the wrong type (JSON can hold no NaN: it appears as a string, and as raw text below).
    static let wrongTypes: [Any] = ["", "bogus", "NaN", "Infinity", "1", true, false, NSNull(), [Any](), [1, -1], [0.5],
                                    ["a"], [String: Any](), ["x": 1], Array(repeating: 1, count: 300)]

    mutating func nastyValue() -> Any { chance(0.6) ? pick(Self.nastyNumbers) : pick(Self.wrongTypes) }

    /// Flips 1…8 random bits.
    mutating func flipBits(_ data: Data, in range: Range<Int>? = nil) -> Data {
        var bytes = [UInt8](data)
        guard !bytes.isEmpty else { return data }
        let r = range ?? 0..<bytes.count
        for _ in 0...int(8) { let i = r.lowerBound + int(r.count); bytes[i] ^= UInt8(1 << int(8)) }
        return Data(bytes)
    }

    mutating func truncate(_ data: Data) -> Data { data.prefix(int(data.count)) }

    /// One of: bit flips, truncation, appended garbage, a byte run overwritten with 0x00/0xFF.
    mutating func bytes(_ data: Data) -> Data {
        switch int(4) {
        case 0: return flipBits(data)
        case 1: return truncate(data)
        case 2: return data + Data((0..<(1 + int(64))).map { _ in UInt8(int(256)) })
        default:
            var b = [UInt8](data)
            guard !b.isEmpty else { return data }
            let start = int(b.count), length = min(b.count - start, 1 + int(16)), fill: UInt8 = chance(0.5) ? 0 : 0xFF
            for i in start..<(start + length) { b[i] = fill }
            return Data(b)
        }
    }

    /// A JSON object with one of its keys (or a nested key) changed, removed, duplicated, or the
    /// text broken. `keys` are the keys the reader knows (mutated most often).
    mutating func json(_ object: [String: Any], keys: [String]) -> Data {
        var o = object
        let key = chance(0.9) ? pick(keys) : "unknown_\(int(5))"
        switch int(10) {
        case 0: o.removeValue(forKey: key)
        case 1:
            // A duplicate key, as text: JSONSerialization cannot write one.
            let text = String(decoding: try! JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self)
            let extra = "\"\(key)\": " + String(decoding: try! JSONSerialization.data(withJSONObject: [nastyValue()]), as: UTF8.self).dropFirst().dropLast()
            return Data(("{" + extra + "," + text.dropFirst()).utf8)
        case 2:
            let text = String(decoding: try! JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self)
            return Data(text.replacingOccurrences(of: "\"\(key)\":", with: "\"\(key)\": \(pick(["NaN", "Infinity", "-Infinity", "1e400", "01", "+1", "tru"])), \"_\":").utf8)
        case 3: return bytes(try! JSONSerialization.data(withJSONObject: o))
        default: o[key] = nastyValue()
        }
        return try! JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .fragmentsAllowed])
    }
}

/// Counts and bounds of one fuzz run.
struct FuzzTally {
    var cases = 0, accepted = 0, refused = 0
    var slowest = 0.0
    var messages: [String: Int] = [:]

    /// Runs one case. `body` returns the number of values it produced (for the allocation bound);
    /// it must return or throw a UserError with a non-empty message containing `mention`.
    /// A bound that catches a reader hanging or doing absurd work on a small input, not a speed check
    /// (tests never assert on speed): cases take milliseconds, but 2 s flaked on a loaded 2-core machine
    /// (2.0–4.8 s while a training ran beside the suite), so the bound is a minute.
    static let hangSeconds = 60.0

    mutating func run(_ label: String, mention: String?, maxValues: Int, seconds: Double = FuzzTally.hangSeconds,
                      file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Int) {
        cases += 1
        let start = Date()
        do {
            let produced = try body()
            accepted += 1
            XCTAssertLessThanOrEqual(produced, maxValues, "\(label): produced \(produced) values from a small input", file: file, line: line)
        } catch let error as UserError {
            refused += 1
            XCTAssertFalse(error.message.isEmpty, label, file: file, line: line)
            if let mention {
                XCTAssert(error.message.contains(mention), "\(label): the message does not name \(mention): \(error.message)", file: file, line: line)
            }
            messages[String(error.message.prefix(60)), default: 0] += 1
        } catch {
            XCTFail("\(label): threw \(type(of: error)), not a UserError: \(error)", file: file, line: line)
        }
        let elapsed = Date().timeIntervalSince(start)
        slowest = max(slowest, elapsed)
        XCTAssertLessThan(elapsed, seconds, "\(label) took \(elapsed) s", file: file, line: line)
    }
}

/// The process's peak resident memory in bytes (Linux ru_maxrss is in KiB).
func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return usage.ru_maxrss * 1024
}

/// CRC-32 (IEEE), as PNG chunks and gzip trailers use it.
func crc32(_ bytes: some Sequence<UInt8>) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}

/// `data` as a gzip file with stored (uncompressed) deflate blocks.
func gzipStored(_ data: Data) -> Data {
    var out = Data([0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 255])
    let bytes = [UInt8](data)
    var offset = 0
    repeat {
        let n = min(65535, bytes.count - offset)
        let final: UInt8 = offset + n == bytes.count ? 1 : 0
        out.append(contentsOf: [final, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)])
        out.append(contentsOf: bytes[offset..<(offset + n)])
        offset += n
    } while offset < bytes.count
    for v in [crc32(bytes), UInt32(truncatingIfNeeded: bytes.count)] { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
    return out
}

/// A folder for fuzz inputs: in memory (/dev/shm) when there is one, so thousands of small writes
/// (and the atomic writers' fsync) cost nothing.
func fuzzFolder(_ name: String) -> URL {
    let shm = URL(fileURLWithPath: "/dev/shm")
    let root = FileManager.default.isWritableFile(atPath: shm.path) ? shm : FileManager.default.temporaryDirectory
    return root.appendingPathComponent("ddpm-fuzz-\(getpid())-\(name)")
}
