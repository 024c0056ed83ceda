import Foundation

/// How much memory a backend can hand out: all of it together and the largest single buffer
/// (OpenCL's CL_DEVICE_GLOBAL_MEM_SIZE and CL_DEVICE_MAX_MEM_ALLOC_SIZE; the host's RAM for the CPU).
public struct MemoryLimits: Equatable, Sendable {
    public var totalBytes: Int
    public var largestBufferBytes: Int
    public init(totalBytes: Int, largestBufferBytes: Int) {
        self.totalBytes = totalBytes
        self.largestBufferBytes = largestBufferBytes
    }

    /// The host's physical memory, for backends that allocate there.
    public static var host: MemoryLimits {
        let bytes = Int(clamping: ProcessInfo.processInfo.physicalMemory)
        return MemoryLimits(totalBytes: bytes, largestBufferBytes: bytes)
    }
}

/// A buffer the device could not allocate (out of memory, or larger than its largest buffer).
/// Thrown by `Backend.makeBuffer`; the callers that know which flag set the size turn it into a
/// UserError naming that flag.
public struct DeviceMemoryError: Error, CustomStringConvertible {
    public let requestedBytes: Int
    public let reason: String
    public init(requestedBytes: Int, reason: String) { self.requestedBytes = requestedBytes; self.reason = reason }
    public var description: String { "could not allocate \(formatBytes(requestedBytes)) on the device (\(reason))" }
}

/// A backend that allocates nothing: it records the sizes an object asks for, so the memory a
/// Trainer or Sampler will need is known before a real buffer is made. Runs and reads do nothing.
public final class MeasuringBackend: Backend {
    final class Buffer: DeviceBuffer {
        let count: Int
        init(count: Int) { self.count = count }
    }
    public let name = "measuring"
    public private(set) var totalBytes = 0
    public private(set) var largestBufferBytes = 0

    public init() {}

    public func makeBuffer(count: Int) throws -> DeviceBuffer {
        let bytes = max(count, 1) * 4
        totalBytes += bytes
        largestBufferBytes = max(largestBufferBytes, bytes)
        return Buffer(count: count)
    }
    /// Views share their buffer's memory: they cost nothing.
    public func makeView(of buffer: DeviceBuffer, offset: Int, count: Int) throws -> DeviceBuffer { Buffer(count: count) }
    public var viewAlignment: Int { 1 }
    public func write(_ values: [Float], to buffer: DeviceBuffer) throws {}
    public func read(_ buffer: DeviceBuffer, count: Int) throws -> [Float] { [Float](repeating: 0, count: count) }
    public func run(_ op: Op, inputs: [TensorRef], outputs: [TensorRef], step: UInt32) throws {}
    public func synchronize() throws {}
}

/// "1.5 GiB", "300 MiB", "12 KiB", "100 bytes".
public func formatBytes(_ bytes: Int) -> String {
    let units: [(Double, String)] = [(0x1p40, "TiB"), (0x1p30, "GiB"), (0x1p20, "MiB"), (0x1p10, "KiB")]
    for (size, name) in units where Double(bytes) >= size { return String(format: "%.1f %@", Double(bytes) / size, name) }
    return "\(bytes) bytes"
}
