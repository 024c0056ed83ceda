import DDPMCore
import Foundation

/// JSON as Python's json module writes it: strict JSON plus the bare tokens `NaN`, `Infinity` and
/// `-Infinity` (diffusers saves e.g. `"lambda_min_clipped": -Infinity`). Those tokens become
/// Double values; everything else is parsed by JSONSerialization.
public enum PythonJSON {
    static let sentinels: [(token: String, marker: String, value: Double)] = [
        ("-Infinity", "@@python-json:-Infinity", -.infinity),
        ("Infinity", "@@python-json:Infinity", .infinity),
        ("NaN", "@@python-json:NaN", .nan),
    ]

    /// The marker string a bare token is quoted as (for JSONDecoder's non-conforming float strategy).
    public static func marker(_ token: String) -> String { sentinels.first { $0.token == token }!.marker }

    /// The parsed object; `source` names the file in the error.
    public static func parse(_ data: Data, source: String) throws -> Any {
        let strict = quoteNonFiniteTokens(data)
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: strict) } catch {
            throw UserError("\(source) is not valid JSON (Python's NaN and ±Infinity are accepted): \(error.localizedDescription)")
        }
        return restore(object)
    }

    /// A JSON object at the top level, or a UserError.
    public static func object(_ data: Data, source: String) throws -> [String: Any] {
        guard let dictionary = try parse(data, source: source) as? [String: Any] else {
            throw UserError("\(source) must hold a JSON object ({ … }).")
        }
        return dictionary
    }

    /// Strict JSON bytes: each bare NaN/Infinity/-Infinity outside strings replaced by a marker string.
    static func quoteNonFiniteTokens(_ data: Data) -> Data {
        let bytes = [UInt8](data)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0, inString = false
        func isWordByte(_ b: UInt8) -> Bool { (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F }
        scan: while i < bytes.count {
            let b = bytes[i]
            if inString {
                out.append(b)
                if b == 0x5C, i + 1 < bytes.count { out.append(bytes[i + 1]); i += 2; continue }   // backslash escape
                if b == 0x22 { inString = false }
                i += 1
                continue
            }
            if b == 0x22 { inString = true; out.append(b); i += 1; continue }
            let previousIsWord = i > 0 && isWordByte(bytes[i - 1])
            if !previousIsWord {
                for s in sentinels {
                    let token = Array(s.token.utf8)
                    if i + token.count <= bytes.count, Array(bytes[i..<i + token.count]) == token,
                       i + token.count == bytes.count || !isWordByte(bytes[i + token.count]) {
                        out += Array("\"\(s.marker)\"".utf8)
                        i += token.count
                        continue scan
                    }
                }
            }
            out.append(b)
            i += 1
        }
        return Data(out)
    }

    static func restore(_ value: Any) -> Any {
        switch value {
        case let s as String:
            if let match = sentinels.first(where: { $0.marker == s }) { return NSNumber(value: match.value) }
            return s
        case let array as [Any]:
            return array.map(restore)
        case let dictionary as [String: Any]:
            return dictionary.mapValues(restore)
        default:
            return value
        }
    }
}
