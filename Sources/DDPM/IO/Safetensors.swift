import DDPMCore
import Foundation

/// The contents of a safetensors file: named tensors (values converted to `Float`)
/// and the free-form string metadata stored under `__metadata__`.
public struct SafeTensors {
    /// One tensor: its shape (C order) and its values.
    public struct Entry: Equatable {
        public var shape: [Int]
        public var values: [Float]

        public init(shape: [Int], values: [Float]) {
            precondition(values.count == shape.reduce(1, *), "SafeTensors.Entry: shape does not match the value count")
            self.shape = shape
            self.values = values
        }
    }

    public var tensors: [String: Entry]
    public var metadata: [String: String]

    public init(tensors: [String: Entry] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }
}

/// Writes `tensors` as F32 safetensors at `url` (atomically): keys sorted, data laid out in
/// key order, header padded with spaces to a multiple of 8 bytes, `metadata` under `__metadata__`.
public func writeSafetensors(_ tensors: [String: SafeTensors.Entry], metadata: [String: String] = [:],
                             to url: URL) throws {
    var header = "{"
    var entries: [String] = []
    if !metadata.isEmpty {
        let pairs = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0] ?? ""))" }
        entries.append("\"__metadata__\":{" + pairs.joined(separator: ",") + "}")
    }
    var offset = 0
    let names = tensors.keys.sorted()
    for name in names {
        guard let tensor = tensors[name] else { continue }
        let end = offset + tensor.values.count * 4
        let shape = tensor.shape.map(String.init).joined(separator: ",")
        entries.append("\(jsonString(name)):{\"dtype\":\"F32\",\"shape\":[\(shape)],"
            + "\"data_offsets\":[\(offset),\(end)]}")
        offset = end
    }
    header += entries.joined(separator: ",") + "}"
    let padding = (8 - header.utf8.count % 8) % 8
    header += String(repeating: " ", count: padding)

    var data = Data()
    data.reserveCapacity(8 + header.utf8.count + offset)
    withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
    data.append(contentsOf: Array(header.utf8))
    for name in names {
        guard let tensor = tensors[name] else { continue }
        tensor.values.withUnsafeBufferPointer { buffer in
            for value in buffer {
                withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) }
            }
        }
    }
    try writeAtomically(data, to: url)
}

/// `text` as a JSON string literal (quotes, backslashes and control characters escaped).
private func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 {
                out += String(format: "\\u%04x", scalar.value)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

/// Reads a safetensors file with F32, F16, BF16 or F64 tensors, converting the values to `Float`.
/// Checks the header length, the dtypes, and that the tensors' byte ranges match their shapes
/// and tile the data buffer exactly; anything else is reported as a corrupt file.
public func readSafetensors(_ url: URL) throws -> SafeTensors {
    guard let data = FileManager.default.contents(atPath: url.path) else {
        throw UserError("cannot read \(url.path): the file does not exist or is not readable. "
            + "Check the path.")
    }
    func corrupt(_ reason: String) -> UserError {
        UserError("corrupt safetensors file \(url.path): \(reason). The file may be truncated or "
            + "not a safetensors file; re-create it (for example re-run the training that wrote it) "
            + "or check the path.")
    }
    let bytes = [UInt8](data)
    guard bytes.count >= 8 else { throw corrupt("the file is shorter than its 8-byte header length") }
    let headerLength = UInt64(littleEndianBytes: bytes, at: 0)
    guard headerLength >= 2, headerLength <= 100_000_000, headerLength <= UInt64(bytes.count - 8) else {
        throw corrupt("the header length \(headerLength) does not fit the file size \(bytes.count)")
    }
    let bufferStart = 8 + Int(headerLength)
    let bufferSize = bytes.count - bufferStart
    let headerData = Data(bytes[8..<bufferStart])
    guard let json = try? JSONSerialization.jsonObject(with: headerData),
          let header = json as? [String: Any] else {
        throw corrupt("the header is not a JSON object")
    }
    if let key = JSONText.firstDuplicateKey(headerData) {
        throw corrupt("the header names \"\(key)\" twice (readers disagree on which one counts)")
    }

    var result = SafeTensors()
    var ranges: [(begin: Int, end: Int, name: String)] = []
    for (name, value) in header {
        if name == "__metadata__" {
            guard let metadata = value as? [String: Any] else { throw corrupt("__metadata__ is not an object") }
            for (key, item) in metadata {
                guard let text = item as? String else { throw corrupt("metadata \(key) is not a string") }
                result.metadata[key] = text
            }
            continue
        }
        guard let info = value as? [String: Any],
              let dtypeName = info["dtype"] as? String,
              let shape = jsonInts(info["shape"]),
              let offsets = jsonInts(info["data_offsets"]), offsets.count == 2 else {
            throw corrupt("tensor \(name) lacks a dtype, shape or data_offsets")
        }
        guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
            throw corrupt("tensor \(name) has dtype \(dtypeName); only F32, F16, BF16 and F64 are supported")
        }
        guard shape.allSatisfy({ $0 >= 0 && $0 < 1 << 32 }) else { throw corrupt("tensor \(name) has shape \(shape)") }
        let begin = offsets[0], end = offsets[1]
        guard begin >= 0, begin <= end, end <= bufferSize else {
            throw corrupt("tensor \(name)'s data_offsets point past the end of the file")
        }
        var count = 1
        for dim in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dim)
            guard !overflow, product <= bufferSize else {
                throw corrupt("tensor \(name)'s shape \(shape) needs more bytes than the file has")
            }
            count = product
        }
        guard end - begin == count * dtype.itemSize else {
            throw corrupt("tensor \(name) has shape \(shape) (\(count * dtype.itemSize) bytes of \(dtypeName)) "
                + "but data_offsets cover \(end - begin) bytes")
        }
        let start = bufferStart + begin
        var values = [Float](repeating: 0, count: count)
        for i in 0..<count {
            values[i] = dtype.decode(bytes, at: start + i * dtype.itemSize)
        }
        result.tensors[name] = SafeTensors.Entry(shape: shape, values: values)
        ranges.append((begin, end, name))
    }

    var expected = 0
    for range in ranges.sorted(by: { ($0.begin, $0.end) < ($1.begin, $1.end) }) {
        guard range.begin == expected else {
            throw corrupt("tensor \(range.name)'s data_offsets overlap another tensor or leave a gap")
        }
        expected = range.end
    }
    guard expected == bufferSize else {
        throw corrupt("the data buffer has \(bufferSize) bytes but the tensors cover \(expected)")
    }
    return result
}

/// An array of JSON integers as `[Int]`, or nil when it is something else.
private func jsonInts(_ value: Any?) -> [Int]? {
    guard let array = value as? [Any] else { return nil }
    var ints: [Int] = []
    for item in array {
        if let int = item as? Int {
            ints.append(int)
        } else if let number = item as? NSNumber, Double(number.int64Value) == number.doubleValue {
            ints.append(Int(number.int64Value))
        } else {
            return nil
        }
    }
    return ints
}

/// The safetensors element types `readSafetensors` converts to `Float`.
private enum SafetensorsDType: String {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"

    var itemSize: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .f64: return 8
        }
    }

    /// The little-endian element at `offset` as a `Float`.
    func decode(_ bytes: [UInt8], at offset: Int) -> Float {
        switch self {
        case .f32: return Float(bitPattern: UInt32(littleEndianBytes: bytes, at: offset))
        case .f64: return Float(Double(bitPattern: UInt64(littleEndianBytes: bytes, at: offset)))
        case .bf16: return Float(bitPattern: UInt32(UInt16(littleEndianBytes: bytes, at: offset)) << 16)
        case .f16: return halfToFloat(UInt16(littleEndianBytes: bytes, at: offset))
        }
    }
}

/// Converts IEEE 754 half-precision bits to a `Float` (normals, subnormals, infinities, NaN).
func halfToFloat(_ bits: UInt16) -> Float {
    let sign: Float = bits & 0x8000 != 0 ? -1 : 1
    let exponent = Int((bits >> 10) & 0x1F)
    let mantissa = Float(bits & 0x3FF)
    switch exponent {
    case 0: return sign * mantissa / 1024 * pow(2, -14)
    case 31: return mantissa == 0 ? sign * .infinity : .nan
    default: return sign * (1 + mantissa / 1024) * pow(2, Float(exponent - 15))
    }
}
