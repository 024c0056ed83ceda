import CLShim
import COpenCL
import Foundation

/// An OpenCL failure: which call failed, the CL error's name, and for program builds the driver's log.
public struct CLError: Error, CustomStringConvertible {
    public let call: String
    public let code: Int32
    public let log: String

    public var name: String { String(cString: clshim_error_name(code)) }
    public var description: String {
        log.isEmpty ? "\(call) failed: \(name) (\(code))" : "\(call) failed: \(name) (\(code))\n\(log)"
    }
}

@inline(__always)
func check(_ status: cl_int, _ call: @autoclosure () -> String) throws {
    if status != CL_SUCCESS { throw CLError(call: call(), code: status, log: "") }
}

/// One OpenCL device as the driver describes it.
public struct CLDeviceInfo: @unchecked Sendable {
    public enum Kind: String, Sendable { case gpu = "GPU", cpu = "CPU", accelerator = "accelerator", other = "other" }
    public let kind: Kind
    public let name: String
    public let vendor: String
    public let platform: String
    public let version: String
    public let driverVersion: String
    public let computeUnits: Int
    public let clockMHz: Int
    public let globalMemoryBytes: UInt64
    public let localMemoryBytes: UInt64
    public let maxWorkGroupSize: Int
    public let maxAllocationBytes: UInt64
    /// Float lanes of one SIMD register (CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT): 8 with AVX2, 16 with AVX-512.
    public let nativeVectorWidthFloat: Int
    // Opaque handles; they never leave this module.
    let platformID: cl_platform_id?
    let deviceID: cl_device_id?
}

public enum CLDevices {
    /// Every device on every platform, GPUs first (then accelerators, then CPUs), so that index 0
    /// is the fastest device present. Throws when no OpenCL platform can be found at all.
    public static func all() throws -> [CLDeviceInfo] {
        var status: cl_int = 0
        let total = Int(clshim_list_devices(nil, 0, &status))
        if status != CL_SUCCESS { throw CLError(call: "clGetPlatformIDs", code: status, log: "") }
        var raw = [clshim_device_info](repeating: clshim_device_info(), count: max(total, 1))
        let count = Int(clshim_list_devices(&raw, Int32(raw.count), &status))
        if status != CL_SUCCESS { throw CLError(call: "clGetPlatformIDs", code: status, log: "") }
        let devices = raw.prefix(min(count, raw.count)).map { info -> CLDeviceInfo in
            var info = info
            let kind: CLDeviceInfo.Kind
            if info.type & cl_device_type(CL_DEVICE_TYPE_GPU) != 0 { kind = .gpu }
            else if info.type & cl_device_type(CL_DEVICE_TYPE_ACCELERATOR) != 0 { kind = .accelerator }
            else if info.type & cl_device_type(CL_DEVICE_TYPE_CPU) != 0 { kind = .cpu }
            else { kind = .other }
            return CLDeviceInfo(
                kind: kind,
                name: cString(&info.name), vendor: cString(&info.vendor),
                platform: cString(&info.platform_name), version: cString(&info.version),
                driverVersion: cString(&info.driver_version),
                computeUnits: Int(info.compute_units), clockMHz: Int(info.clock_mhz),
                globalMemoryBytes: UInt64(info.global_mem_bytes), localMemoryBytes: UInt64(info.local_mem_bytes),
                maxWorkGroupSize: Int(info.max_work_group_size),
                maxAllocationBytes: UInt64(info.max_alloc_bytes),
                nativeVectorWidthFloat: Int(info.native_vector_width_float),
                platformID: info.platform, deviceID: info.device)
        }
        let rank: [CLDeviceInfo.Kind: Int] = [.gpu: 0, .accelerator: 1, .other: 2, .cpu: 3]
        // Stable sort: keeps platform order within a kind.
        return devices.enumerated().sorted { a, b in
            (rank[a.element.kind]!, a.offset) < (rank[b.element.kind]!, b.offset)
        }.map(\.element)
    }

    private static func cString<T>(_ tuple: inout T) -> String {
        withUnsafeBytes(of: &tuple) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }
}

/// A context and an in-order, profiling-enabled queue on one device.
public final class CLContext {
    public let device: CLDeviceInfo
    let context: cl_context
    let queue: cl_command_queue
    let deviceID: cl_device_id

    public init(device: CLDeviceInfo) throws {
        self.device = device
        guard let deviceID = device.deviceID else { throw CLError(call: "clCreateContext", code: CL_INVALID_DEVICE, log: "") }
        self.deviceID = deviceID
        var status: cl_int = 0
        var id: cl_device_id? = deviceID
        guard let context = clCreateContext(nil, 1, &id, nil, nil, &status), status == CL_SUCCESS else {
            throw CLError(call: "clCreateContext", code: status, log: "")
        }
        self.context = context
        guard let queue = clCreateCommandQueue(context, deviceID, cl_command_queue_properties(CL_QUEUE_PROFILING_ENABLE), &status),
              status == CL_SUCCESS else {
            clReleaseContext(context)
            throw CLError(call: "clCreateCommandQueue", code: status, log: "")
        }
        self.queue = queue
    }

    deinit {
        clReleaseCommandQueue(queue)
        clReleaseContext(context)
    }

    /// Builds a program; `file` names the source in the error so a failed build says where.
    public func buildProgram(source: String, options: String, file: String) throws -> CLProgram {
        var status: cl_int = 0
        var log: UnsafeMutablePointer<CChar>? = nil
        let program = clshim_build_program(context, deviceID, source, options, &log, &status)
        let logText = log.map { String(cString: $0) } ?? ""
        clshim_free(log)
        guard let program, status == CL_SUCCESS else {
            throw CLError(call: "clBuildProgram(\(file), options: \"\(options)\")", code: status, log: logText)
        }
        return CLProgram(program: program)
    }

    public func makeBuffer(bytes: Int) throws -> CLBuffer {
        var status: cl_int = 0
        guard let mem = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), max(bytes, 4), nil, &status),
              status == CL_SUCCESS else {
            throw CLError(call: "clCreateBuffer(\(bytes) bytes)", code: status, log: "")
        }
        return CLBuffer(mem: mem, bytes: bytes)
    }

    /// `bytes` of `parent` from `offset` as a buffer of their own (clCreateSubBuffer; `offset` a
    /// multiple of CL_DEVICE_MEM_BASE_ADDR_ALIGN).
    public func makeSubBuffer(of parent: CLBuffer, offset: Int, bytes: Int) throws -> CLBuffer {
        precondition(offset >= 0 && bytes > 0 && offset + bytes <= max(parent.bytes, 4), "sub-buffer outside its parent")
        var region = cl_buffer_region(origin: offset, size: bytes)
        var status: cl_int = 0
        guard let mem = clCreateSubBuffer(parent.mem, cl_mem_flags(CL_MEM_READ_WRITE), cl_buffer_create_type(CL_BUFFER_CREATE_TYPE_REGION),
                                          &region, &status), status == CL_SUCCESS else {
            throw CLError(call: "clCreateSubBuffer(offset \(offset), \(bytes) bytes)", code: status, log: "")
        }
        return CLBuffer(mem: mem, bytes: bytes, parent: parent)
    }

    /// CL_DEVICE_MEM_BASE_ADDR_ALIGN in bytes: where a sub-buffer may start.
    public var subBufferAlignmentBytes: Int {
        var bits: cl_uint = 0
        guard clGetDeviceInfo(deviceID, cl_device_info(CL_DEVICE_MEM_BASE_ADDR_ALIGN), 4, &bits, nil) == CL_SUCCESS, bits >= 32 else { return 4096 }
        return Int(bits) / 8
    }

    public func write(_ buffer: CLBuffer, from pointer: UnsafeRawPointer, bytes: Int, offset: Int = 0) throws {
        precondition(offset + bytes <= buffer.bytes, "write past the end of a buffer")
        if bytes == 0 { return }
        try check(clEnqueueWriteBuffer(queue, buffer.mem, cl_bool(CL_TRUE), offset, bytes, pointer, 0, nil, nil),
                  "clEnqueueWriteBuffer")
    }

    public func read(_ buffer: CLBuffer, into pointer: UnsafeMutableRawPointer, bytes: Int, offset: Int = 0) throws {
        precondition(offset + bytes <= buffer.bytes, "read past the end of a buffer")
        if bytes == 0 { return }
        try check(clEnqueueReadBuffer(queue, buffer.mem, cl_bool(CL_TRUE), offset, bytes, pointer, 0, nil, nil),
                  "clEnqueueReadBuffer")
    }

    public func copy(from source: CLBuffer, to destination: CLBuffer, bytes: Int) throws {
        if bytes == 0 { return }
        try check(clEnqueueCopyBuffer(queue, source.mem, destination.mem, 0, 0, bytes, 0, nil, nil), "clEnqueueCopyBuffer")
    }

    /// Enqueues a kernel. `local` is always given explicitly (see DESIGN.md: PoCL must not choose).
    /// With `profile`, returns an event whose duration can be read after the queue finishes.
    @discardableResult
    public func launch(_ kernel: CLKernel, global: [Int], local: [Int], profile: Bool = false) throws -> CLEvent? {
        precondition(global.count == local.count && (1...3).contains(global.count))
        if global.contains(0) { return nil }
        var g = global, l = local
        var event: cl_event? = nil
        let status = profile
            ? clEnqueueNDRangeKernel(queue, kernel.kernel, cl_uint(g.count), nil, &g, &l, 0, nil, &event)
            : clEnqueueNDRangeKernel(queue, kernel.kernel, cl_uint(g.count), nil, &g, &l, 0, nil, nil)
        try check(status, "clEnqueueNDRangeKernel(\(kernel.name), global: \(global), local: \(local))")
        return event.map(CLEvent.init)
    }

    public func finish() throws { try check(clFinish(queue), "clFinish") }
    public func flush() throws { try check(clFlush(queue), "clFlush") }
}

public final class CLBuffer {
    let mem: cl_mem
    public let bytes: Int
    /// The buffer a sub-buffer shares memory with (kept alive by it; its bytes are counted there).
    let parent: CLBuffer?
    /// Marked constant (Backend.markConstant), with what calls derived from it, freed with it
    /// (OpenCLBackend+Constants.swift).
    var constant: ConstantBuffer?
    init(mem: cl_mem, bytes: Int, parent: CLBuffer? = nil) {
        self.mem = mem; self.bytes = bytes; self.parent = parent
        if parent == nil { LiveBuffers.shared.add(bytes) }
    }
    deinit {
        clReleaseMemObject(mem)
        if parent == nil { LiveBuffers.shared.remove(bytes) }
    }
}

public final class CLProgram {
    let program: cl_program
    init(program: cl_program) { self.program = program }
    deinit { clReleaseProgram(program) }

    public func kernel(_ name: String) throws -> CLKernel {
        var status: cl_int = 0
        guard let kernel = clCreateKernel(program, name, &status), status == CL_SUCCESS else {
            throw CLError(call: "clCreateKernel(\(name))", code: status, log: "")
        }
        return CLKernel(kernel: kernel, name: name)
    }
}

/// A kernel with typed argument setters. Arguments are set in order with `set(_:)`.
public final class CLKernel {
    let kernel: cl_kernel
    public let name: String
    init(kernel: cl_kernel, name: String) { self.kernel = kernel; self.name = name }
    deinit { clReleaseKernel(kernel) }

    public func set(_ index: Int, _ buffer: CLBuffer) throws {
        var mem: cl_mem? = buffer.mem
        try check(clSetKernelArg(kernel, cl_uint(index), MemoryLayout<cl_mem>.size, &mem), "clSetKernelArg(\(name), \(index))")
    }
    public func set(_ index: Int, _ value: Int32) throws {
        var v = value
        try check(clSetKernelArg(kernel, cl_uint(index), 4, &v), "clSetKernelArg(\(name), \(index))")
    }
    public func set(_ index: Int, _ value: UInt32) throws {
        var v = value
        try check(clSetKernelArg(kernel, cl_uint(index), 4, &v), "clSetKernelArg(\(name), \(index))")
    }
    public func set(_ index: Int, _ value: Float) throws {
        var v = value
        try check(clSetKernelArg(kernel, cl_uint(index), 4, &v), "clSetKernelArg(\(name), \(index))")
    }
    /// Local memory of `bytes` bytes.
    public func setLocal(_ index: Int, bytes: Int) throws {
        try check(clSetKernelArg(kernel, cl_uint(index), bytes, nil), "clSetKernelArg(\(name), \(index))")
    }

    /// Sets all arguments in order: CLBuffer, Int (as int32), Int32, UInt32, Float.
    public func setArguments(_ arguments: [CLArgument]) throws {
        for (i, argument) in arguments.enumerated() {
            switch argument {
            case .buffer(let b): try set(i, b)
            case .int(let v): try set(i, Int32(v))
            case .uint(let v): try set(i, v)
            case .float(let v): try set(i, v)
            }
        }
    }
}

public enum CLArgument {
    case buffer(CLBuffer)
    case int(Int)
    case uint(UInt32)
    case float(Float)
}

/// A profiling event; `seconds` is valid once the queue has finished.
public final class CLEvent {
    let event: cl_event
    init(_ event: cl_event) { self.event = event }
    deinit { clReleaseEvent(event) }

    public var seconds: Double {
        var start: cl_ulong = 0, end: cl_ulong = 0
        clGetEventProfilingInfo(event, cl_profiling_info(CL_PROFILING_COMMAND_START), 8, &start, nil)
        clGetEventProfilingInfo(event, cl_profiling_info(CL_PROFILING_COMMAND_END), 8, &end, nil)
        return Double(end &- start) * 1e-9
    }
}
