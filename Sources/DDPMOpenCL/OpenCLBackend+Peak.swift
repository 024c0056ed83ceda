import DDPMCore
import Foundation

/// What the device's arithmetic can do, measured, so that `bench` can say how close the kernels come:
/// the multiply-add peak (Kernels/fma_peak.cl) and the GEMM on 1024×1024×1024.
public struct DevicePeak: Sendable {
    /// The faster of float8 and float16 FMA code, GFLOP/s (a multiply-add counts 2).
    public var fmaGFLOPS: Double
    /// Floats per vector of the faster FMA code.
    public var fmaVectorWidth: Int
    /// One 1024³ GEMM with the general shape class's current tiles, GFLOP/s.
    public var gemmGFLOPS: Double
    public var gemmShareOfPeak: Double { gemmGFLOPS / fmaGFLOPS }
}

extension OpenCLBackend {
    /// Times the FMA kernel at vector widths 8 and 16 and a 1024³ GEMM, each the best of a few runs
    /// of at least 50 ms (shared machines are noisy; the best run is the nearest to the hardware).
    /// Any GEMM search is held back meanwhile, so that this shape does not become a tuning sample.
    public func measurePeak() throws -> DevicePeak {
        var best = (gflops: 0.0, width: 0)
        for width in [8, 16] {
            let gflops = try fmaPeakGFLOPS(vectorWidth: width)
            if gflops > best.gflops { best = (gflops, width) }
        }
        let tuner = gemm.tuner
        gemm.tuner = nil
        defer { gemm.tuner = tuner }
        return DevicePeak(fmaGFLOPS: best.gflops, fmaVectorWidth: best.width, gemmGFLOPS: try gemm1024GFLOPS())
    }

    /// Work-items of the FMA kernel: 64 per core on a CPU, in work-groups of one as the
    /// register-blocked kernels (measured on a 2-core Zen 4 under PoCL 3.1: 4 per core reached
    /// 26–43 GFLOP/s, 64 per core 229–234), and enough per compute unit to fill a GPU.
    private var fmaPeakItems: (global: Int, local: Int) {
        baseProfile.defaultGEMM.variant == .cpu ? (max(device.computeUnits, 1) * 64, 1) : (max(device.computeUnits, 1) * 2048, 64)
    }

    private func fmaPeakGFLOPS(vectorWidth: Int) throws -> Double {
        let items = fmaPeakItems.global
        var iterations = 1 << 10
        var seconds = try runFMAPeak(vectorWidth: vectorWidth, items: items, iterations: iterations).seconds
        while seconds < 0.05 && iterations < 1 << 26 {
            iterations *= 2
            seconds = try runFMAPeak(vectorWidth: vectorWidth, items: items, iterations: iterations).seconds
        }
        for _ in 0..<3 { seconds = min(seconds, try runFMAPeak(vectorWidth: vectorWidth, items: items, iterations: iterations).seconds) }
        let flops = 2.0 * Double(items) * Double(iterations) * Double(Self.fmaPeakChains * vectorWidth)
        return flops / seconds / 1e9
    }

    /// Independent recurrences per work-item (PEAK_CHAINS in fma_peak.cl).
    static let fmaPeakChains = 12
    static let fmaPeakA: Float = 0.9999, fmaPeakB: Float = 1e-4

    /// One run of the FMA kernel over `items` work-items (a multiple of the GPU profile's work-group
    /// of 64 there); throws if the first or last work-item's sum differs from `fmaPeakExpected` (the
    /// kernel must really have done the work it is timed for). Public for the tests.
    public func runFMAPeak(vectorWidth: Int, items: Int, iterations: Int) throws -> (seconds: Double, sums: [Float]) {
        precondition(items % fmaPeakItems.local == 0, "fma_peak: \(items) work-items in groups of \(fmaPeakItems.local)")
        let out = try scratch("fma_peak", floats: items * vectorWidth)
        try synchronize()
        let start = DispatchTime.now().uptimeNanoseconds
        try launchGrid("fma_peak", "fma_peak.cl", options: "-DVW=\(vectorWidth)", global: [items], local: [fmaPeakItems.local],
                       [.buffer(out), .float(Self.fmaPeakA), .float(Self.fmaPeakB), .int(iterations)])
        try context.finish()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        var sums = [Float](repeating: 0, count: items * vectorWidth)
        try sums.withUnsafeMutableBytes { try context.read(out, into: $0.baseAddress!, bytes: $0.count) }
        for id in [0, items - 1] {
            let expected = Self.fmaPeakExpected(id: id, iterations: iterations)
            for lane in 0..<vectorWidth where sums[id * vectorWidth + lane] != expected {
                throw CLError(call: "fma_peak (float\(vectorWidth))", code: -1,
                              log: "work-item \(id) lane \(lane) summed to \(sums[id * vectorWidth + lane]), expected \(expected)")
            }
        }
        return (seconds, sums)
    }

    /// Work-item `id`'s sum as fma_peak.cl computes it: the same fused multiply-adds in the same order.
    public static func fmaPeakExpected(id: Int, iterations: Int) -> Float {
        var x = (0..<fmaPeakChains).map { Float(id % 1024) * 0x1p-10 + Float($0) * 0x1p-7 }
        for _ in 0..<iterations { for c in x.indices { x[c] = fmaPeakB.addingProduct(x[c], fmaPeakA) } }
        return x.dropFirst().reduce(x[0], +)
    }

    private func gemm1024GFLOPS() throws -> Double {
        let n = 1024
        let a = try allocate(bytes: n * n * 4), b = try allocate(bytes: n * n * 4), c = try allocate(bytes: n * n * 4)
        let values = (0..<n * n).map { Float($0 % 1000) / 1000 - 0.5 }
        try values.withUnsafeBytes { bytes in
            try context.write(a, from: bytes.baseAddress!, bytes: bytes.count)
            try context.write(b, from: bytes.baseAddress!, bytes: bytes.count)
        }
        func operand(_ buffer: CLBuffer) -> GEMMOperand { GEMMOperand(buffer: buffer, batchStride: 0, rowStride: n, columnStride: 1) }
        let call = { try self.gemm.run(m: n, n: n, k: n, batch: 1, a: operand(a), b: operand(b), c: operand(c), sumOverBatch: false) }
        try call()
        try context.finish()
        var best = Double.infinity
        for _ in 0..<5 {
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<4 { try call() }
            try context.finish()
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 4e9)
        }
        return 2.0 * Double(n * n * n) / best / 1e9
    }
}
