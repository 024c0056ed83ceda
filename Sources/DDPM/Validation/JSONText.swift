import DDPMCore
import Foundation

/// Reading JSON that comes from outside (config.json, scheduler_config.json, model_index.json,
/// checkpoint metadata, safetensors headers): syntax errors, duplicate keys and wrong types become
/// user errors that name the file, the key, the value and what is allowed. Python's bare NaN and
/// ±Infinity (diffusers' writer) are read as numbers (PythonJSON).
public enum JSONText {
    /// Parses `data` as a JSON object. `source` names the file (or file and field) in errors.
    public static func object(_ data: Data, source: String) throws -> [String: Any] {
        let parsed: Any
        do {
            parsed = PythonJSON.restore(try JSONSerialization.jsonObject(with: PythonJSON.quoteNonFiniteTokens(data),
                                                                         options: [.fragmentsAllowed]))
        } catch {
            throw UserError("\(source) is not valid JSON (\(syntaxReason(error))). Fix the file or re-create it.")
        }
        guard let object = parsed as? [String: Any] else {
            throw UserError("\(source) must hold a JSON object ({\"key\": value, …}), not \(typeName(parsed)).")
        }
        if let key = firstDuplicateKey(data) {
            throw UserError("\(source) has the key \"\(key)\" twice in one object; JSON readers disagree on which one wins, so ddpm-cl refuses it. Keep one.")
        }
        return object
    }

    /// Decodes a Codable value; a type mismatch names the key path and the expected type.
    /// `wholeNumbers` lists the keys (dotted paths into nested objects) that take whole numbers:
    /// they are checked first, because Foundation's decoder reports 2.5 for an Int only as
    /// "not valid JSON" on Linux.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data, source: String, wholeNumbers: [String] = []) throws -> T {
        let top = try object(data, source: source)   // syntax, duplicate keys, not an object
        for path in wholeNumbers { try checkWholeNumber(top, path: path, source: source) }
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: PythonJSON.marker("Infinity"), negativeInfinity: PythonJSON.marker("-Infinity"), nan: PythonJSON.marker("NaN"))
        do { return try decoder.decode(T.self, from: PythonJSON.quoteNonFiniteTokens(data)) } catch let error as DecodingError {
            throw UserError("\(source): \(describe(error))")
        } catch let error as UserError {
            throw UserError("\(source): \(error.message)")
        }
    }

    static func checkWholeNumber(_ object: [String: Any], path: String, source: String) throws {
        let parts = path.split(separator: ".", maxSplits: 1).map(String.init)
        guard let value = object[parts[0]] else { return }
        if parts.count == 2 {
            if let inner = value as? [String: Any] { try checkWholeNumber(inner, path: parts[1], source: source) }
            return
        }
        func whole(_ item: Any) -> Bool {
            guard let n = item as? NSNumber, !JSONFields.isBool(n) else { return true }   // other types: the decoder says
            let d = n.doubleValue
            return d.isFinite && d.rounded() == d && abs(d) < 9.2e18
        }
        let items = value as? [Any] ?? [value]
        if let bad = items.first(where: { !whole($0) }) {
            throw UserError("\(source): key \"\(path)\" takes a whole number, found \(bad).")
        }
    }

    /// "key \"layers_per_block\": expected a whole number, found 2.5" and similar.
    public static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return keys.isEmpty ? "the top level" : "key \"\(keys.joined(separator: ".").replacingOccurrences(of: ".[", with: "["))\""
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "\(path(context)) must be \(expected(type)). \(context.debugDescription)"
        case .valueNotFound(let type, let context):
            return "\(path(context)) must be \(expected(type)), not null."
        case .keyNotFound(let key, let context):
            let parent = path(context)
            return "the key \"\(key.stringValue)\" is missing\(parent == "the top level" ? "" : " in \(parent)")."
        case .dataCorrupted(let context):
            let text = context.debugDescription
            if text.contains("does not fit") {
                return "\(path(context)) must be a whole number in range: \(text.replacingOccurrences(of: "Parsed JSON number", with: "the number"))"
            }
            if let range = text.range(of: "invalid String value ") {
                return "\(path(context)) is \"\(text[range.upperBound...])\", which is not one of the values ddpm-cl knows."
            }
            return "\(path(context)): \(text)"
        @unknown default:
            return "\(error)"
        }
    }

    static func expected(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is UInt64.Type, is Int32.Type, is UInt32.Type: return "a whole number"
        case is Float.Type, is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is String.Type: return "a string"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "a list" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "a \(name)"
        }
    }

    /// The JSON type of a parsed value, for messages.
    public static func typeName(_ value: Any) -> String {
        switch value {
        case is NSNull: return "null"
        case let n as NSNumber where JSONFields.isBool(n): return "a boolean"
        case is NSNumber: return "a number"
        case is String: return "a string"
        case is [Any]: return "a list"
        case is [String: Any]: return "an object"
        default: return "\(type(of: value))"
        }
    }

    private static func syntaxReason(_ error: Error) -> String {
        let text = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? error.localizedDescription
        return text.isEmpty ? "a syntax error" : text
    }

    /// The first key that appears twice in one JSON object of `data`, or nil. Assumes valid JSON
    /// (call after a successful parse). A small scanner: strings, objects, arrays, scalars.
    public static func firstDuplicateKey(_ data: Data) -> String? {
        let bytes = [UInt8](data)
        var i = 0
        // Each open container: nil for an array, the keys seen so far for an object.
        var stack: [Set<String>?] = []
        var expectKey = false
        while i < bytes.count {
            let c = bytes[i]
            switch c {
            case UInt8(ascii: "{"): stack.append([]); expectKey = true; i += 1
            case UInt8(ascii: "["): stack.append(nil); expectKey = false; i += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"): _ = stack.popLast(); expectKey = false; i += 1
            case UInt8(ascii: ","): expectKey = stack.last.map { $0 != nil } ?? false; i += 1
            case UInt8(ascii: "\""):
                var j = i + 1
                var raw: [UInt8] = []
                while j < bytes.count && bytes[j] != UInt8(ascii: "\"") {
                    if bytes[j] == UInt8(ascii: "\\") && j + 1 < bytes.count { raw.append(bytes[j]); j += 1 }
                    raw.append(bytes[j]); j += 1
                }
                if expectKey, var keys = stack.last ?? nil {
                    // Decode escapes through JSONSerialization so "a" and "\u0061" compare equal.
                    let literal = Data([UInt8(ascii: "\"")] + raw + [UInt8(ascii: "\"")])
                    let key = (try? JSONSerialization.jsonObject(with: literal, options: [.fragmentsAllowed]) as? String)
                        ?? String(decoding: raw, as: UTF8.self)
                    if keys.contains(key) { return key }
                    keys.insert(key)
                    stack[stack.count - 1] = keys
                    expectKey = false
                }
                i = j + 1
            default: i += 1
            }
        }
        return nil
    }
}
