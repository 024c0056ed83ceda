import DDPMCore
import Foundation

/// Typed, range-checked reads of one JSON object's keys. Every refusal names the file, the key,
/// the value found and what is allowed. A missing key (or null) gives nil: the caller's default.
public struct JSONFields {
    public let object: [String: Any]
    public let source: String

    public init(_ object: [String: Any], source: String) { self.object = object; self.source = source }

    public func refuse(_ key: String, _ value: Any, allowed: String) -> UserError {
        UserError("\(source): \"\(key)\" is \(Self.show(value)); \(allowed).")
    }

    func present(_ key: String) -> Any? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        return value
    }

    static func isBool(_ value: Any) -> Bool {
        // JSONSerialization gives booleans as a Boolean subclass of NSNumber (__NSCFBoolean).
        guard let n = value as? NSNumber else { return false }
        return "\(type(of: n))".contains("Boolean")
    }

    static func show(_ value: Any) -> String {
        switch value {
        case let s as String: return "\"\(s)\" (a string)"
        case let n as NSNumber where isBool(n): return n.boolValue ? "true" : "false"
        case let n as NSNumber: return "\(n)"
        case is NSNull: return "null"
        default: return JSONText.typeName(value)
        }
    }

    public func bool(_ key: String) throws -> Bool? {
        guard let value = present(key) else { return nil }
        guard Self.isBool(value), let n = value as? NSNumber else { throw refuse(key, value, allowed: "it takes true or false") }
        return n.boolValue
    }

    public func string(_ key: String) throws -> String? {
        guard let value = present(key) else { return nil }
        guard let s = value as? String else { throw refuse(key, value, allowed: "it takes a string") }
        return s
    }

    /// A string that must be one of `E`'s raw values.
    public func choice<E: RawRepresentable & CaseIterable>(_ key: String, _ type: E.Type) throws -> E? where E.RawValue == String {
        let allowed = "it takes one of " + E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        guard let value = present(key) else { return nil }
        guard let s = value as? String else { throw refuse(key, value, allowed: allowed) }
        guard let e = E(rawValue: s) else { throw refuse(key, value, allowed: allowed) }
        return e
    }

    /// A string that must be one of `allowed`.
    public func oneOf(_ key: String, _ allowed: [String]) throws -> String? {
        guard let value = present(key) else { return nil }
        guard let s = value as? String, allowed.contains(s) else {
            throw refuse(key, value, allowed: "it takes one of " + allowed.map { "\"\($0)\"" }.joined(separator: ", "))
        }
        return s
    }

    /// A whole number in `range`.
    public func int(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let value = present(key) else { return nil }
        let allowed = "it takes a whole number in \(range.lowerBound)…\(range.upperBound)"
        guard !Self.isBool(value), let n = value as? NSNumber else { throw refuse(key, value, allowed: allowed) }
        let d = n.doubleValue
        guard d.isFinite, d.rounded() == d, d >= Double(range.lowerBound), d <= Double(range.upperBound) else {
            throw refuse(key, value, allowed: allowed)
        }
        return Int(d)
    }

    /// A finite number for which `check` holds (`allowed` says which).
    public func number(_ key: String, allowed: String, _ check: (Double) -> Bool) throws -> Double? {
        guard let value = present(key) else { return nil }
        guard !Self.isBool(value), let n = value as? NSNumber, n.doubleValue.isFinite, check(n.doubleValue) else {
            throw refuse(key, value, allowed: "it takes \(allowed)")
        }
        return n.doubleValue
    }
}
