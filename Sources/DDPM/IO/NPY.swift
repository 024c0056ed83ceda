import DDPMCore
import Foundation

/// An array read from a `.npy` file: its shape (C order) and its values as `Float`.
public struct NPYArray: Equatable {
    public var shape: [Int]
    public var values: [Float]

    public init(shape: [Int], values: [Float]) {
        self.shape = shape
        self.values = values
    }
}

/// Writes `values` as a `.npy` (format 1.0) array of dtype uint8 with `shape` (atomically).
public func writeNPY(uint8 values: [UInt8], shape: [Int], to url: URL) throws {
    precondition(values.count == shape.reduce(1, *), "writeNPY: shape does not match the value count")
    var data = npyHeader(descr: "|u1", shape: shape)
    data.append(contentsOf: values)
    try writeAtomically(data, to: url)
}

/// Writes `values` as a `.npy` (format 1.0) array of dtype little-endian float32 with `shape`
/// (atomically).
public func writeNPY(float32 values: [Float], shape: [Int], to url: URL) throws {
    precondition(values.count == shape.reduce(1, *), "writeNPY: shape does not match the value count")
    var data = npyHeader(descr: "<f4", shape: shape)
    data.reserveCapacity(data.count + values.count * 4)
    for value in values {
        withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) }
    }
    try writeAtomically(data, to: url)
}

/// The magic, version 1.0 and the header dictionary, padded with spaces so the data
/// starts at a multiple of 64 bytes, as numpy writes it.
private func npyHeader(descr: String, shape: [Int]) -> Data {
    let shapeText: String
    if shape.count == 1 {
        shapeText = "(\(shape[0]),)"
    } else {
        shapeText = "(" + shape.map(String.init).joined(separator: ", ") + ")"
    }
    var dict = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
    let unpadded = 10 + dict.utf8.count + 1
    let padding = (64 - unpadded % 64) % 64
    dict += String(repeating: " ", count: padding) + "\n"
    var data = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])  // "\x93NUMPY" v1.0
    let length = UInt16(dict.utf8.count)
    data.append(UInt8(length & 0xFF))
    data.append(UInt8(length >> 8))
    data.append(contentsOf: Array(dict.utf8))
    return data
}

/// Reads a `.npy` file (format 1.x, 2.x or 3.x, C order) with dtype float32, float64, int64,
/// int32 or uint8, converting the values to `Float`. A name ending in `.gz` is gunzipped first.
public func readNPY(_ url: URL) throws -> NPYArray {
    guard let data = url.pathExtension == "gz" ? try readGzip(url) : FileManager.default.contents(atPath: url.path) else {
        throw UserError("cannot read \(url.path): the file does not exist or is not readable. "
            + "Check the path.")
    }
    let bytes = [UInt8](data)
    func corrupt(_ reason: String) -> UserError {
        UserError("cannot read \(url.path): not a valid .npy file (\(reason)). "
            + "Write it with numpy.save (float32, float64, int64, int32 or uint8, C order) "
            + "or check the path.")
    }
    let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
    guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw corrupt("bad magic") }
    let major = bytes[6]
    var headerLength: Int
    var headerStart: Int
    switch major {
    case 1:
        headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        headerStart = 10
    case 2, 3:
        guard bytes.count >= 12 else { throw corrupt("truncated header") }
        headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
        headerStart = 12
    default:
        throw corrupt("unknown format version \(major)")
    }
    guard headerStart + headerLength <= bytes.count else { throw corrupt("truncated header") }
    let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
    guard let descr = npyField(header, "descr"),
          let fortran = npyField(header, "fortran_order"),
          let shapeText = npyField(header, "shape") else {
        throw corrupt("the header lacks descr, fortran_order or shape")
    }
    guard fortran == "False" else { throw corrupt("Fortran order is not supported") }
    guard let shape = parseNPYShape(shapeText) else { throw corrupt("bad shape \(shapeText)") }
    let count = shape.reduce(1, *)
    let descrText = descr.trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
    guard let dtype = NPYType(descr: descrText) else { throw corrupt("unsupported dtype \(descrText)") }
    let dataStart = headerStart + headerLength
    guard bytes.count - dataStart >= count * dtype.itemSize else {
        throw corrupt("the file is truncated: shape \(shape) needs \(count * dtype.itemSize) bytes "
            + "of data, found \(bytes.count - dataStart)")
    }
    guard bytes.count - dataStart == count * dtype.itemSize else {
        throw corrupt("\(bytes.count - dataStart - count * dtype.itemSize) bytes follow the data of shape \(shape); "
            + "numpy.save writes none, so the file is damaged or not what it seems")
    }
    var values = [Float](repeating: 0, count: count)
    switch dtype {
    case .float32:
        for i in 0..<count {
            values[i] = Float(bitPattern: UInt32(littleEndianBytes: bytes, at: dataStart + 4 * i))
        }
    case .float64:
        for i in 0..<count {
            values[i] = Float(Double(bitPattern: UInt64(littleEndianBytes: bytes, at: dataStart + 8 * i)))
        }
    case .int32:
        for i in 0..<count {
            values[i] = Float(Int32(bitPattern: UInt32(littleEndianBytes: bytes, at: dataStart + 4 * i)))
        }
    case .int64:
        for i in 0..<count {
            values[i] = Float(Int64(bitPattern: UInt64(littleEndianBytes: bytes, at: dataStart + 8 * i)))
        }
    case .uint8:
        for i in 0..<count {
            values[i] = Float(bytes[dataStart + i])
        }
    }
    return NPYArray(shape: shape, values: values)
}

/// The element types `readNPY` understands (little-endian, or single bytes).
private enum NPYType {
    case float32, float64, int32, int64, uint8

    init?(descr: String) {
        switch descr {
        case "<f4": self = .float32
        case "<f8": self = .float64
        case "<i4": self = .int32
        case "<i8": self = .int64
        case "|u1", "<u1", "u1": self = .uint8
        default: return nil
        }
    }

    var itemSize: Int {
        switch self {
        case .float32, .int32: return 4
        case .float64, .int64: return 8
        case .uint8: return 1
        }
    }
}

/// The text of `key`'s value in a numpy header dictionary such as
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`, or nil.
private func npyField(_ header: String, _ key: String) -> String? {
    guard let keyRange = header.range(of: "'\(key)'") else { return nil }
    var rest = header[keyRange.upperBound...].drop { $0 == " " }
    guard rest.first == ":" else { return nil }
    rest = rest.dropFirst().drop { $0 == " " }
    if rest.first == "(" {
        guard let close = rest.firstIndex(of: ")") else { return nil }
        return String(rest[...close])
    }
    let end = rest.firstIndex { $0 == "," || $0 == "}" } ?? rest.endIndex
    return String(rest[..<end]).trimmingCharacters(in: .whitespaces)
}

/// Parses a Python shape tuple such as `()`, `(5,)` or `(2, 3)`.
private func parseNPYShape(_ text: String) -> [Int]? {
    let inner = text.trimmingCharacters(in: CharacterSet(charactersIn: "() "))
    var shape: [Int] = []
    for part in inner.split(separator: ",") {
        let trimmed = part.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "L"))
        if trimmed.isEmpty { continue }
        guard let dim = Int(trimmed), dim >= 0, dim < 1 << 32 else { return nil }
        shape.append(dim)
    }
    var total = 1
    for dim in shape {
        let (product, overflow) = total.multipliedReportingOverflow(by: dim)
        if overflow || product > 1 << 34 { return nil }
        total = product
    }
    return shape
}

extension FixedWidthInteger {
    /// The little-endian integer stored in `bytes` starting at `offset`
    /// (the caller checks that the bytes exist).
    init(littleEndianBytes bytes: [UInt8], at offset: Int) {
        var value = Self.zero
        for k in 0..<(Self.bitWidth / 8) {
            value |= Self(truncatingIfNeeded: bytes[offset + k]) << (8 * k)
        }
        self = value
    }
}

/// The dtype descriptor of a `.npy` file's header ("|u1", "<f4", …), or nil when the file is not
/// a readable .npy (readNPY then says why).
public func npyDescriptor(_ url: URL) -> String? {
    guard let handle = try? FileHandle(forReadingFrom: url) else { return nil }
    defer { try? handle.close() }
    guard let data = try? handle.read(upToCount: 4096) else { return nil }
    let bytes = [UInt8](data)
    guard bytes.count > 10 else { return nil }
    let header = String(decoding: bytes[10...], as: UTF8.self)
    return npyField(header, "descr")?.trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
}
