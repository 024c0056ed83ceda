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

    /// Kernel variants and work sizes (DeviceProfile.swift); the GEMM tiles in it may change while
    /// a tuner searches (`profile` reads the current choice).
    public var profile: DeviceProfile {
        var p = baseProfile
        p.gemm = gemm.profile.gemm
        p.conv3x3 = conv3x3Tiles
        p.conv3x3Layers = conv3x3LayerPlans
        return p
    }
    /// The direct 3×3 convolution's blocking now (nil: im2col + GEMM); a Conv3x3Tuner may change it.
    var conv3x3Tiles: Conv3x3Tiles?
    var conv3x3Tuner: Conv3x3Tuner?
    /// Per-layer plans (OpenCLBackend+Conv3x3Layers.swift), from the profile and a Conv3x3LayerTuner.
    var conv3x3LayerPlans: [String: Conv3x3LayerPlan]
    var conv3x3LayerTuner: Conv3x3LayerTuner?
    /// The path every 3×3 pass takes while a layer's plan is timed.
    var forcedConv3x3Method: Conv3x3LayerPlan.Method?
    /// Pixels (images × height × width) per partial sum of the 3×3 weight gradient: a chunk's dy and
    /// x stay in a core's L2 while every work-item of the chunk reads them. Measured on a 2-core
    /// AVX-512 Xeon (`small`, batch 64): one chunk for the whole batch left the channels-last kernel
    /// at 0.7× its chunked speed at 32×32 and 16×16; chunks of 512 pixels on the 8×8 layers were
    /// slower than one. The row-vectorised kernel trained as fast with these chunks as with its
    /// former 8 images per chunk (0.804 / 0.776 against 0.803 / 0.777 s per step, alternated); an
    /// earlier measurement of it found 8192 or 32768 pixels 10–30 % slower. Tests set it small to
    /// run many chunks on small shapes.
    public var conv3x3GradientChunkPixels = 4096
    /// Transformed floats (V or M) per chunk of images of a Winograd convolution
    /// (OpenCLBackend+Winograd.swift); at least one image per chunk.
    public var winogradChunkFloats = 1 << 22
    /// Smallest plane side whose weight gradient goes through Winograd. Measured on a 2-core Zen 4
    /// EPYC (batch 16, float16 blocking): Winograd took 17–21 ms against the direct kernel's 25–28 at
    /// 128→128 on 32×32 and 256→256 on 16×16, but 8.6–9.3 ms against 6.2–6.3 at 256→256 on 8×8,
    /// where a chunk's GEMMs sum over only 4 tiles per image. Tests set it to 8 to cover partial tiles.
    public var winogradGradWeightMinPlane = 16
    /// Fewest input and output channels for Winograd: its GEMMs shrink with the channels while its
    /// transforms do not. Measured on a 2-core Zen 4 EPYC (batch 64, float16 blocking), Winograd
    /// against the direct kernel: 32→32 at 32×32 forward 10.3–12.4 against 7.1–7.3 ms, 96→32 at 32×32
    /// 25.0–25.6 against 19.9–20.2, 64→64 at 16×16 6.7–6.8 against 6.5, 128→64 at 16×16 11.9–13.8
    /// against 12.0–12.5; at batch 16, 128→128 at 32×32 15.8–16.4 against 23.9–25.6. Tests set it to 1.
    public var winogradMinChannels = 128
    /// Most bytes kept derived from constant buffers (OpenCLBackend+Constants.swift; Winograd's
    /// packed transformed weights are about 4× the weights: `cifar10`'s bench peaked ~280 MiB
    /// higher); past it, calls derive again each time as for other buffers. 1 GiB, or an eighth of
    /// a smaller device.
    public var constantCacheBudgetBytes: Int
    /// Bytes derived from constant buffers now held (they are freed with their buffers).
    let constantCacheHeld = DerivedBytes()
    public var constantCacheBytes: Int { constantCacheHeld.bytes }
    let baseProfile: DeviceProfile
    /// Work-group size for one-item-per-element kernels, and for kernels that loop per item.
    let elementLocal = 64
    var loopLocal: Int { baseProfile.loopLocal }
    /// Elements per work-item for the span kernels (elementwise.cl, silu.cl): CPUs move a few
    /// thousand in float8 pieces per work-item, GPUs one.
    var spanElements: Int { baseProfile.spanElements }
    private var programs: [String: CLProgram] = [:]
    private var kernels: [String: CLKernel] = [:]
    private var scratchBuffers: [String: CLBuffer] = [:]
    let gemm: GEMM
    /// Sub-buffer origins, in floats (CL_DEVICE_MEM_BASE_ADDR_ALIGN).
    let subBufferAlignment: Int

    private var profiling = false
    private var pendingEvents: [(String, CLEvent)] = []
    private var times: [String: (calls: Int, seconds: Double)] = [:]

    /// `profile` defaults to what the device's facts suggest (`DeviceProfile.defaults(for:)`); any
    /// profile works on any device (the parity suite runs the GPU profile on PoCL), only speed differs.
    public init(device: CLDeviceInfo, profile: DeviceProfile? = nil) throws {
        context = try CLContext(device: device)
        baseProfile = profile ?? .defaults(for: device)
        conv3x3Tiles = baseProfile.conv3x3
        conv3x3LayerPlans = baseProfile.conv3x3Layers
        constantCacheBudgetBytes = Int(min(1 << 30, device.globalMemoryBytes / 8))
        subBufferAlignment = max(context.subBufferAlignmentBytes / 4, 1)
        // Build the GEMM now so that a broken driver shows up here, not in the middle of a step.
        gemm = try GEMM(context: context, source: KernelSources.withPrelude("gemm.cl"), profile: baseProfile)
    }

    /// Attaches a GEMM timing search (GEMM+Tuning.swift): each shape class in `tuner.pending` is
    /// timed on its first large call. Nil detaches it.
    public func setGEMMTuner(_ tuner: GEMMTuner?) { gemm.tuner = tuner }

    /// Attaches the 3×3 convolution search (OpenCLBackend+Conv3x3Tuning.swift): it runs on the first
    /// large stride-1 3×3 convolution of each class of layers it has not searched. Nil detaches it.
    public func setConv3x3Tuner(_ tuner: Conv3x3Tuner?) { conv3x3Tuner = tuner }

    /// Attaches the per-layer 3×3 search (OpenCLBackend+Conv3x3Layers.swift): each large stride-1
    /// 3×3 layer without a plan gets one on its first forward pass. Nil detaches it.
    public func setConv3x3LayerTuner(_ tuner: Conv3x3LayerTuner?) { conv3x3LayerTuner = tuner }

    // MARK: Backend

    public func makeBuffer(count: Int) throws -> DeviceBuffer {
        CLFloatBuffer(storage: try allocate(bytes: max(count, 1) * 4), count: count)
    }

    public func makeView(of buffer: DeviceBuffer, offset: Int, count: Int) throws -> DeviceBuffer {
        let b = buffer as! CLFloatBuffer
        precondition(offset % viewAlignment == 0 && count >= 0 && offset + count <= b.count, "view \(offset)+\(count) of \(b.count) floats")
        return CLFloatBuffer(storage: try context.makeSubBuffer(of: b.storage, offset: offset * 4, bytes: max(count, 1) * 4), count: count)
    }

    public var viewAlignment: Int { subBufferAlignment }

    public func write(_ values: [Float], to buffer: DeviceBuffer) throws {
        let b = buffer as! CLFloatBuffer
        precondition(values.count <= b.count)
        forgetDerived(from: b.storage)
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
        gemm.profiling = enabled
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
        // GEMM calls are counted under "gemm" (timedGEMM); their kernels' time goes under
        // "gemm: <kernel>", so a profile shows packing apart from the micro-kernel.
        for part in gemm.takeProfile() {
            let name = "gemm: " + part.kernel
            let old = times[name] ?? (0, 0)
            times[name] = (old.calls + part.launches, old.seconds + part.seconds)
        }
    }

    // MARK: Programs, kernels, launches

    /// Files whose kernels draw random numbers get philox.cl in front of them; every file gets
    /// prelude.cl (shared helpers) first.
    private static let needsPhilox: Set<String> = ["diffusion.cl"]

    /// Kernel `name` of `file` built with `options` (build constants such as tile sizes); each
    /// distinct (file, options) is one program.
    func kernel(_ name: String, in file: String, options: String = "") throws -> CLKernel {
        let programKey = options.isEmpty ? file : file + " " + options
        let kernelKey = name + " " + options
        if let k = kernels[kernelKey] { return k }
        let program: CLProgram
        if let p = programs[programKey] {
            program = p
        } else {
            let source = try KernelSources.withPrelude(file, after: Self.needsPhilox.contains(file) ? ["philox.cl"] : [])
            program = try buildProgram(source, file: file, options: options)
            programs[programKey] = program
        }
        let k = try program.kernel(name)
        kernels[kernelKey] = k
        return k
    }

    /// Correctly rounded division and sqrt where the device offers it (so Adam's arithmetic matches
    /// the CPU reference); some drivers reject the option, then the default applies.
    private func buildProgram(_ source: String, file: String, options: String) throws -> CLProgram {
        let base = "-cl-std=CL1.2 " + options
        if let p = try? context.buildProgram(source: source, options: base + " -cl-fp32-correctly-rounded-divide-sqrt", file: file) {
            return p
        }
        return try context.buildProgram(source: source, options: base, file: file)
    }

    /// Launches `name` over `count` items (rounded up to the work-group size; kernels bounds-check).
    func launch(_ name: String, _ file: String, options: String = "", count: Int, loops: Bool = false,
                _ arguments: [CLArgument]) throws {
        guard count > 0 else { return }
        let local = loops ? loopLocal : elementLocal
        try launchGrid(name, file, options: options, global: [(count + local - 1) / local * local], local: [local], arguments)
    }

    /// Launches `name` over an exact grid; `local` defaults to work-groups of one item (the
    /// register-blocked CPU kernels: never let PoCL choose, see DESIGN.md).
    func launchGrid(_ name: String, _ file: String, options: String = "", global: [Int], local: [Int]? = nil,
                    _ arguments: [CLArgument]) throws {
        guard !global.contains(0) else { return }
        let k = try kernel(name, in: file, options: options)
        try k.setArguments(arguments)
        if let event = try context.launch(k, global: global, local: local ?? global.map { _ in 1 }, profile: profiling) {
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
    /// the queue is in order; two scratch buffers used by one op need different names. A failed
    /// allocation is a DeviceMemoryError, as for tensors.
    func scratch(_ name: String, floats: Int) throws -> CLBuffer {
        if let b = scratchBuffers[name], b.bytes >= floats * 4 { return b }
        scratchBuffers[name] = nil  // freed before the larger one is allocated
        let b = try allocate(bytes: max(floats, 1) * 4)
        scratchBuffers[name] = b
        return b
    }

    /// Counts a GEMM call under "gemm calls" when profiling; its kernels' own profiling events
    /// (collected with the others, no extra host sync) go under "gemm: <kernel>".
    func timedGEMM(_ body: () throws -> Void) throws {
        try body()
        if profiling {
            let old = times["gemm calls"] ?? (0, 0)
            times["gemm calls"] = (old.calls + 1, 0)
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
