import COpenCL
import DDPMCore
import Foundation

/// Device memory limits, allocation failures as DeviceMemoryError, and a count of live buffers.
extension OpenCLBackend {
    /// CL_DEVICE_GLOBAL_MEM_SIZE and CL_DEVICE_MAX_MEM_ALLOC_SIZE of this backend's device.
    public var memoryLimits: MemoryLimits? {
        var total: cl_ulong = 0, largest: cl_ulong = 0
        guard clGetDeviceInfo(context.deviceID, cl_device_info(CL_DEVICE_GLOBAL_MEM_SIZE), 8, &total, nil) == CL_SUCCESS,
              clGetDeviceInfo(context.deviceID, cl_device_info(CL_DEVICE_MAX_MEM_ALLOC_SIZE), 8, &largest, nil) == CL_SUCCESS
        else { return nil }
        return MemoryLimits(totalBytes: Int(clamping: total), largestBufferBytes: Int(clamping: largest))
    }

    /// A device buffer; a request over the device's largest buffer, or one the driver cannot
    /// satisfy, is a DeviceMemoryError (the caller names the flag that set the size).
    func allocate(bytes: Int) throws -> CLBuffer {
        if let limits = memoryLimits, bytes > limits.largestBufferBytes {
            throw DeviceMemoryError(requestedBytes: bytes, reason: "\(name) allows buffers of at most \(formatBytes(limits.largestBufferBytes))")
        }
        do { return try context.makeBuffer(bytes: bytes) } catch let error as CLError
            where [CL_MEM_OBJECT_ALLOCATION_FAILURE, CL_OUT_OF_RESOURCES, CL_OUT_OF_HOST_MEMORY, CL_INVALID_BUFFER_SIZE].contains(error.code) {
            throw DeviceMemoryError(requestedBytes: bytes, reason: "\(error.name) from \(name)")
        }
    }

    /// Buffers alive in this process across all OpenCL backends (for leak checks).
    public static var liveBuffers: (count: Int, bytes: Int) { LiveBuffers.shared.snapshot }
}

/// A thread-safe count of live CLBuffers and their bytes.
final class LiveBuffers: @unchecked Sendable {
    static let shared = LiveBuffers()
    private let lock = NSLock()
    private var count = 0, bytes = 0
    func add(_ b: Int) { lock.lock(); count += 1; bytes += b; lock.unlock() }
    func remove(_ b: Int) { lock.lock(); count -= 1; bytes -= b; lock.unlock() }
    var snapshot: (count: Int, bytes: Int) { lock.lock(); defer { lock.unlock() }; return (count, bytes) }
}
