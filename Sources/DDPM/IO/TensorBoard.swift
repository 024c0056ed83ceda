import Foundation

/// TensorBoard event files (`events.out.tfevents.<time>.<host>`): a TFRecord stream of `Event`
/// protocol buffers, written by hand for the few messages needed (tensorflow/core/util/event.proto,
/// framework/summary.proto):
///
///     Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
///     Summary { repeated Value value = 1; }
///     Value   { string tag = 1; float simple_value = 2; Image image = 4; }
///     Image   { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
///
/// Each record is: length (uint64 LE), masked CRC32C of the length, data, masked CRC32C of the data.
/// A test compares the bytes with TensorBoard's own writer.
public enum TensorBoard {
    /// One summary value: a scalar or a PNG image.
    public enum Value {
        case scalar(tag: String, value: Float)
        case image(tag: String, png: Data, height: Int, width: Int, channels: Int)
    }

    /// The first record of every file.
    public static func fileVersionEvent(wallTime: Double) -> Data {
        var m = Protobuf()
        m.double(1, wallTime)
        m.string(3, "brain.Event:2")
        return m.bytes
    }

    /// An Event holding a Summary of `values` at `step`.
    public static func summaryEvent(wallTime: Double, step: Int, values: [Value]) -> Data {
        var summary = Protobuf()
        for value in values {
            var v = Protobuf()
            switch value {
            case .scalar(let tag, let x):
                v.string(1, tag)
                v.float(2, x)
            case .image(let tag, let png, let height, let width, let channels):
                var image = Protobuf()
                image.varint(1, UInt64(height))
                image.varint(2, UInt64(width))
                image.varint(3, UInt64(channels))      // colorspace: 1 gray, 3 RGB, 4 RGBA
                image.bytes(4, png)
                v.string(1, tag)
                v.bytes(4, image.bytes)
            }
            summary.bytes(1, v.bytes)
        }
        var m = Protobuf()
        m.double(1, wallTime)
        m.varint(2, UInt64(bitPattern: Int64(step)))
        m.bytes(5, summary.bytes)
        return m.bytes
    }

    /// One TFRecord: length, masked CRC of the length, data, masked CRC of the data.
    public static func record(_ data: Data) -> Data {
        var length = UInt64(data.count).littleEndian
        let header = withUnsafeBytes(of: &length) { Data($0) }
        var out = header
        out.append(littleEndian: maskedCRC32C(header))
        out.append(data)
        out.append(littleEndian: maskedCRC32C(data))
        return out
    }

    /// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord and leveldb use it.
    public static func crc32c(_ data: Data) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data {
            crc = crc32cTable[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
        }
        return ~crc
    }

    /// TFRecord's mask: rotate right by 15 and add a constant.
    public static func maskedCRC32C(_ data: Data) -> UInt32 {
        let crc = crc32c(data)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    static let crc32cTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 == 1 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
        return c
    }
}

/// The protocol-buffer wire format for the field kinds the event messages use.
struct Protobuf {
    private(set) var bytes = Data()

    private mutating func key(_ field: Int, _ wireType: UInt64) { appendVarint(UInt64(field) << 3 | wireType) }
    private mutating func appendVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }

    mutating func varint(_ field: Int, _ value: UInt64) { key(field, 0); appendVarint(value) }
    mutating func double(_ field: Int, _ value: Double) { key(field, 1); bytes.append(littleEndian: value.bitPattern) }
    mutating func float(_ field: Int, _ value: Float) { key(field, 5); bytes.append(littleEndian: value.bitPattern) }
    mutating func bytes(_ field: Int, _ value: Data) { key(field, 2); appendVarint(UInt64(value.count)); bytes.append(value) }
    mutating func string(_ field: Int, _ value: String) { bytes(field, Data(value.utf8)) }
}

extension Data {
    mutating func append<T: FixedWidthInteger>(littleEndian value: T) {
        var v = value.littleEndian
        Swift.withUnsafeBytes(of: &v) { append(contentsOf: $0) }
    }
}

/// The event file of one training session in the run folder. Records are kept and the file is
/// rewritten (temporary name, then rename) at each `flush()`, so it is never half written; a resumed
/// run starts a new file, which TensorBoard reads alongside the old ones.
public final class TensorBoardWriter {
    public let url: URL
    private var contents: Data

    public init(directory: URL, now: Date = Date()) {
        let host = ProcessInfo.processInfo.hostName
        url = directory.appendingPathComponent("events.out.tfevents.\(Int(now.timeIntervalSince1970)).\(host).\(getpid())")
        contents = TensorBoard.record(TensorBoard.fileVersionEvent(wallTime: now.timeIntervalSince1970))
    }

    public func add(step: Int, _ values: [TensorBoard.Value], at time: Date = Date()) {
        contents.append(TensorBoard.record(TensorBoard.summaryEvent(wallTime: time.timeIntervalSince1970, step: step, values: values)))
    }

    public func flush() throws { try writeAtomically(contents, to: url) }
}
