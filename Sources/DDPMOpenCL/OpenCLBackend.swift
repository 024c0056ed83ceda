import DDPMCore
import Foundation

/// Device memory for the OpenCL backend.
public final class CLFloatBuffer: DeviceBuffer {
    public let count: Int
    let storage: CLBuffer
    init(storage: CLBuffer, count: Int) { self.storage = storage; self.count = count }
}

/// The OpenCL backend: one launcher per op (OpenCLBackend+Ops.swift), kernels from Kernels/*.cl.
/// Everything is enqueued on one in-order queue; only `read` and `synchronize` wait.
public final class OpenCLBackend: Backend {
    public let context: CLContext
    public var name: String { context.device.name }
    public var device: CLDeviceInfo { context.device }

    /// Work-group size for one-item-per-element kernels, and for kernels that loop per item.
    let elementLocal: Int
    let loopLocal: Int
    /// Elements per work-item for the span kernels (elementwise.cl, silu.cl): CPUs move a few
    /// thousand in float8 pieces per work-item, GPUs one. `DDPM_CL_SPAN=<n>` overrides (testing).
    let spanElements: Int
    private var programs: [String: CLProgram] = [:]
    private var kernels: [String: CLKernel] = [:]
    private var scratchBuffers: [String: CLBuffer] = [:]
    let gemm: GEMM

    private var profiling = false
    private var pendingEvents: [(String, CLEvent)] = []
    private var times: [String: (calls: Int, seconds: Double)] = [:]

    public init(device: CLDeviceInfo) throws {
        context = try CLContext(device: device)
        let isGPU = device.kind == .gpu
        elementLocal = 64
        loopLocal = isGPU ? 64 : 4
        let span = Int(ProcessInfo.processInfo.environment["DDPM_CL_SPAN"] ?? "") ?? 0
        spanElements = span > 0 ? span : (isGPU ? 1 : 4096)
        // Build the GEMM now so that a broken driver shows up here, not in the middle of a step.
        gemm = try GEMM(context: context, source: KernelSources.source("gemm.cl"))
    }

    // MARK: Backend

    public func makeBuffer(count: Int) throws -> DeviceBuffer {
        CLFloatBuffer(storage: try allocate(bytes: max(count, 1) * 4), count: count)
    }

    public func write(_ values: [Float], to buffer: DeviceBuffer) throws {
        let b = buffer as! CLFloatBuffer
        precondition(values.count <= b.count)
        try values.withUnsafeBytes { try context.write(b.storage, from: $0.baseAddress!, bytes: $0.count) }
    }

    public func read(_ buffer: DeviceBuffer, count: Int) throws -> [Float] {
        let b = buffer as! CLFloatBuffer
        precondition(count <= b.count)
        var out = [Float](repeating: 0, count: count)
        try out.withUnsafeMutableBytes { try context.read(b.storage, into: $0.baseAddress!, bytes: $0.count) }
        return out
    }

    public func synchronize() throws {
        try context.finish()
        collectEvents()
    }

    public func setProfiling(_ enabled: Bool) {
        profiling = enabled
        times = [:]
        pendingEvents = []
        gemm.profile = enabled
        _ = gemm.takeProfile()
    }

    public func kernelTimes() -> [String: (calls: Int, seconds: Double)] {
        try? context.finish()
        collectEvents()
        return times
    }

    private func collectEvents() {
        for (name, event) in pendingEvents {
            let old = times[name] ?? (0, 0)
            times[name] = (old.calls + 1, old.seconds + event.seconds)
        }
        pendingEvents = []
        let gemmSeconds = gemm.takeProfile().reduce(0) { $0 + $1.seconds }
        if gemmSeconds > 0 {
            let old = times["gemm"] ?? (0, 0)
            times["gemm"] = (old.calls, old.seconds + gemmSeconds)
        }
    }

    // MARK: Programs, kernels, launches

    /// Files whose kernels draw random numbers get philox.cl in front of them.
    private static let needsPhilox: Set<String> = ["diffusion.cl"]

    func kernel(_ name: String, in file: String) throws -> CLKernel {
        if let k = kernels[name] { return k }
        let program: CLProgram
        if let p = programs[file] {
            program = p
        } else {
            var source = try KernelSources.source(file)
            if Self.needsPhilox.contains(file) {
                source = try KernelSources.source("philox.cl") + "\n#line 1 \"\(file)\"\n" + source
            } else {
                source = "#line 1 \"\(file)\"\n" + source
            }
            program = try buildProgram(source, file: file)
            programs[file] = program
        }
        let k = try program.kernel(name)
        kernels[name] = k
        return k
    }

    /// Correctly rounded division and sqrt where the device offers it (so Adam's arithmetic matches
    /// the CPU reference); some drivers reject the option, then the default applies.
    private func buildProgram(_ source: String, file: String) throws -> CLProgram {
        let base = "-cl-std=CL1.2"
        if let p = try? context.buildProgram(source: source, options: base + " -cl-fp32-correctly-rounded-divide-sqrt", file: file) {
            return p
        }
        return try context.buildProgram(source: source, options: base, file: file)
    }

    /// Launches `name` over `count` items (rounded up to the work-group size; kernels bounds-check).
    func launch(_ name: String, _ file: String, count: Int, loops: Bool = false, _ arguments: [CLArgument]) throws {
        guard count > 0 else { return }
        let k = try kernel(name, in: file)
        try k.setArguments(arguments)
        let local = loops ? loopLocal : elementLocal
        let global = (count + local - 1) / local * local
        if let event = try context.launch(k, global: [global], local: [local], profile: profiling) {
            pendingEvents.append((name, event))
        }
    }

    /// Launches a span kernel over `elements` units of work (output elements; input rows for the
    /// upsample kernels, each `unit` output floats): work-item g handles units [g·per, (g+1)·per),
    /// per = max(1, spanElements / unit), passed as the kernel's last argument.
    func launchSpans(_ name: String, _ file: String, elements: Int, unit: Int = 1, _ arguments: [CLArgument]) throws {
        let per = max(1, spanElements / max(unit, 1))
        try launch(name, file, count: (elements + per - 1) / per, loops: true, arguments + [.int(per)])
    }

    /// A scratch buffer owned by the backend, grown on demand. Safe to reuse across ops because
    /// the queue is in order; two scratch buffers used by one op need different names.
    func scratch(_ name: String, floats: Int) throws -> CLBuffer {
        if let b = scratchBuffers[name], b.bytes >= floats * 4 { return b }
        let b = try context.makeBuffer(bytes: max(floats, 1) * 4)
        scratchBuffers[name] = b
        return b
    }

    /// Records a GEMM call under one name when profiling: its kernels' own profiling events
    /// (collected with the others, no extra host sync) are summed under "gemm".
    func timedGEMM(_ body: () throws -> Void) throws {
        try body()
        if profiling {
            let old = times["gemm"] ?? (0, 0)
            times["gemm"] = (old.calls + 1, old.seconds)
        }
    }
}

extension OpenCLBackend {
    /// Raw Philox normals from philox.cl, for checking them against the Swift generator.
    public func philoxNormals(count: Int, seed: UInt64, image: UInt32, step: UInt32, stream: UInt32) throws -> [Float] {
        let out = try makeBuffer(count: count) as! CLFloatBuffer
        try launch("philox_normals", "diffusion.cl", count: count,
                   [.buffer(out.storage), .uint(UInt32(count)), .uint(UInt32(truncatingIfNeeded: seed)),
                    .uint(UInt32(truncatingIfNeeded: seed >> 32)), .uint(image), .uint(step), .uint(stream)])
        return try read(out, count: count)
    }
}
