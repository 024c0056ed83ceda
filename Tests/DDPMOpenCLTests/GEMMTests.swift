import DDPMOpenCL
import Foundation
import XCTest

/// The kernel source: prelude.cl and gemm.cl, as the backend builds it.
func gemmSource() throws -> String { try KernelSources.withPrelude("gemm.cl") }

final class GEMMTests: XCTestCase {
    static let sentinel: Float = 12345
    /// Normalized MSE Σ(got−want)²/Σwant² allowed. Float32 sums of ≤ a few thousand terms land near 1e-13;
    /// a wrong element or a missed term lands far above.
    static let tolerance = 1e-10

    // MARK: - Setup

    private func makeContext() throws -> CLContext {
        let require = ProcessInfo.processInfo.environment["DDPM_REQUIRE_CL"] == "1"
        let devices: [CLDeviceInfo]
        do {
            devices = try CLDevices.all()
        } catch {
            if require { XCTFail("DDPM_REQUIRE_CL=1 but no OpenCL platform: \(error)"); throw error }
            throw XCTSkip("no OpenCL platform (\(error)); set DDPM_REQUIRE_CL=1 to make this a failure")
        }
        guard let device = devices.first else {
            if require { XCTFail("DDPM_REQUIRE_CL=1 but no OpenCL device") }
            throw XCTSkip("no OpenCL device; set DDPM_REQUIRE_CL=1 to make this a failure")
        }
        return try CLContext(device: device)
    }

    /// A GEMM object that serves every shape class with `tiles`.
    private func makeGEMM(_ context: CLContext, _ tiles: GEMMTiles) throws -> GEMM {
        var profile = tiles.variant == .gpu ? DeviceProfile.gpu() : DeviceProfile.cpu(vectorWidth: tiles.vw)
        profile.defaultGEMM = tiles
        let gemm = try GEMM(context: context, source: try gemmSource(), profile: profile)
        XCTAssertEqual(gemm.variant, tiles.variant)
        return gemm
    }

    /// Every tile shape the tuner may pick, CPU and GPU, whatever this device is.
    private var allCandidates: [GEMMTiles] {
        var list: [GEMMTiles] = []
        for tiles in DeviceProfile.gemmCandidates(kind: .cpu, vectorWidth: 16) + DeviceProfile.gemmCandidates(kind: .gpu, vectorWidth: 1) where !list.contains(tiles) {
            list.append(tiles)
        }
        return list
    }

    // MARK: - One checked case

    struct Case: CustomStringConvertible {
        var m: Int, n: Int, k: Int, batch = 1
        var transA = false, transB = false, transC = false
        var sharedA = false, sharedB = false
        var sum = false, accumulate = false
        var alpha: Float = 1
        var description: String {
            "m=\(m) n=\(n) k=\(k) batch=\(batch) tA=\(transA) tB=\(transB) tC=\(transC) sharedA=\(sharedA) "
                + "sharedB=\(sharedB) sum=\(sum) acc=\(accumulate) alpha=\(alpha)"
        }
    }

    /// A logically rows×cols strided layout with padding between rows/cols and items, behind an offset.
    struct Layout {
        var offset: Int, batchStride: Int, rowStride: Int, columnStride: Int, floats: Int
        init(rows: Int, cols: Int, items: Int, transposed: Bool, shared: Bool, offset: Int, pad: Int) {
            self.offset = offset
            if transposed { rowStride = 1; columnStride = rows + pad } else { rowStride = cols + pad; columnStride = 1 }
            let item = transposed ? columnStride * max(cols, 1) : rowStride * max(rows, 1)
            batchStride = shared ? 0 : item + 5
            floats = offset + (shared ? 0 : batchStride * max(items - 1, 0)) + item + 7
        }
        func index(_ b: Int, _ r: Int, _ c: Int) -> Int { offset + b * batchStride + r * rowStride + c * columnStride }
    }

    private var rng: UInt64 = 0x9E37_79B9_7F4A_7C15
    private func random() -> Float {
        rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Float(Int(rng >> 40) - (1 << 23)) / Float(1 << 23)
    }

    /// Runs one case and checks C (tolerance, NaN, guards); returns what the GEMM wrote.
    @discardableResult
    private func check(_ gemm: GEMM, _ context: CLContext, _ t: Case, file: StaticString = #filePath, line: UInt = #line) throws -> [Float] {
        let la = Layout(rows: t.m, cols: t.k, items: t.batch, transposed: t.transA, shared: t.sharedA, offset: 3, pad: 2)
        let lb = Layout(rows: t.k, cols: t.n, items: t.batch, transposed: t.transB, shared: t.sharedB, offset: 11, pad: 1)
        let cItems = t.sum ? 1 : t.batch
        let lc = Layout(rows: t.m, cols: t.n, items: cItems, transposed: t.transC, shared: false, offset: 6, pad: 3)
        let hostA = (0..<la.floats).map { _ in random() }
        let hostB = (0..<lb.floats).map { _ in random() }
        var hostC = [Float](repeating: Self.sentinel, count: lc.floats)
        var touched = [Bool](repeating: false, count: lc.floats)
        for b in 0..<cItems { for i in 0..<t.m { for j in 0..<t.n {
            let x = lc.index(b, i, j)
            touched[x] = true
            if t.accumulate { hostC[x] = random() }
        } } }

        // Reference: Double accumulation.
        var want = hostC
        for b in 0..<cItems { for i in 0..<t.m { for j in 0..<t.n {
            var s = 0.0
            for item in (t.sum ? 0..<t.batch : b..<b + 1) {
                for p in 0..<t.k { s += Double(hostA[la.index(item, i, p)]) * Double(hostB[lb.index(item, p, j)]) }
            }
            let x = lc.index(b, i, j)
            want[x] = Float(Double(t.alpha) * s + (t.accumulate ? Double(hostC[x]) : 0))
        } } }

        let bufA = try context.makeBuffer(bytes: la.floats * 4)
        let bufB = try context.makeBuffer(bytes: lb.floats * 4)
        let bufC = try context.makeBuffer(bytes: lc.floats * 4)
        try context.write(bufA, from: hostA, bytes: la.floats * 4)
        try context.write(bufB, from: hostB, bytes: lb.floats * 4)
        try context.write(bufC, from: hostC, bytes: lc.floats * 4)
        func operand(_ buf: CLBuffer, _ l: Layout) -> GEMMOperand {
            GEMMOperand(buffer: buf, offset: l.offset, batchStride: l.batchStride, rowStride: l.rowStride, columnStride: l.columnStride)
        }
        try gemm.run(m: t.m, n: t.n, k: t.k, batch: t.batch, a: operand(bufA, la), b: operand(bufB, lb),
                     c: operand(bufC, lc), alpha: t.alpha, accumulate: t.accumulate, sumOverBatch: t.sum)
        var got = [Float](repeating: 0, count: lc.floats)
        try context.read(bufC, into: &got, bytes: lc.floats * 4)

        var err = 0.0, ref = 0.0, guardsHit = 0, nans = 0
        for x in 0..<lc.floats {
            if touched[x] {
                if got[x].isNaN { nans += 1 }
                err += Double(got[x] - want[x]) * Double(got[x] - want[x])
                ref += Double(want[x]) * Double(want[x])
            } else if got[x] != Self.sentinel {
                guardsHit += 1
            }
        }
        let nmse = ref > 0 ? err / ref : err
        XCTAssertEqual(nans, 0, "\(gemm.variant) \(t): NaN in C", file: file, line: line)
        XCTAssertEqual(guardsHit, 0, "\(gemm.variant) \(t): wrote outside C", file: file, line: line)
        XCTAssertLessThanOrEqual(nmse, Self.tolerance, "\(gemm.variant) \(t): normalized MSE \(nmse)", file: file, line: line)
        return got
    }

    // MARK: - Cases

    private func cases() -> [Case] {
        var all: [Case] = []
        for (m, n, k) in [(1, 1, 1), (3, 7, 5), (7, 3, 33), (33, 65, 7), (65, 33, 65), (5, 100, 17),
                          (130, 70, 129), (1, 65, 300), (65, 1, 3), (8, 24, 4), (64, 64, 64)] {
            all.append(Case(m: m, n: n, k: k))
        }
        for tA in [false, true] { for tB in [false, true] {
            all.append(Case(m: 33, n: 65, k: 37, batch: 3, transA: tA, transB: tB))
            all.append(Case(m: 19, n: 41, k: 10, batch: 3, transA: tA, transB: tB, sum: true, accumulate: tA, alpha: 0.5))
        } }
        all += [
            Case(m: 17, n: 29, k: 13, batch: 3, transC: true, accumulate: true, alpha: -0.75),
            Case(m: 17, n: 29, k: 13, batch: 3, transC: true, sum: true, alpha: 1.5),
            Case(m: 32, n: 100, k: 27, batch: 3, sharedA: true),                          // conv forward
            Case(m: 27, n: 100, k: 32, batch: 3, transA: true, sharedA: true, accumulate: true), // conv grad input
            Case(m: 32, n: 27, k: 100, batch: 3, transB: true, sum: true),                // conv grad weight
            Case(m: 20, n: 30, k: 9, batch: 3, transA: true, sharedB: true, alpha: 2),
            Case(m: 9, n: 9, k: 0, batch: 2, alpha: 3),                                   // k = 0: zeros
            Case(m: 9, n: 9, k: 0, batch: 2, accumulate: true),                           // k = 0: C unchanged
            Case(m: 9, n: 9, k: 5, batch: 0, sum: true, accumulate: true),                // no items: C unchanged
            Case(m: 9, n: 9, k: 5, batch: 0, sum: true),                                  // no items: zeros
            Case(m: 96, n: 96, k: 8, batch: 5, transA: true),                             // attention QᵀK
            Case(m: 250, n: 650, k: 3, batch: 7, transB: true, sum: true, accumulate: true), // GPU: 2 items per slice
            Case(m: 21, n: 192, k: 37, batch: 3, accumulate: true),                       // CPU: B read in place (192: whole panels of every NR)
            Case(m: 21, n: 192, k: 37, batch: 3, sharedB: true, alpha: 0.5),
        ]
        return all
    }

    /// Every candidate tile shape of both paths (the GPU ones run on PoCL too).
    func testEveryCandidateTileShape() throws {
        let context = try makeContext()
        for tiles in allCandidates {
            let gemm = try makeGEMM(context, tiles)
            for t in cases() { try check(gemm, context, t) }
        }
    }

    /// Every CPU tile shape sums each output over k in the same order with fma, and the batch chunks
    /// do not depend on the tiles: the results are bit-identical, so a re-tuned profile cannot change
    /// a training run.
    func testCPUTileShapesAreBitIdentical() throws {
        let context = try makeContext()
        let cpuTiles = allCandidates.filter { $0.variant == .cpu }
        let probes = [Case(m: 37, n: 75, k: 130, batch: 3, sharedA: true, accumulate: true),
                      Case(m: 32, n: 27, k: 100, batch: 5, transB: true, sum: true),
                      Case(m: 9, n: 200, k: 40, batch: 2, transA: true, alpha: 0.5)]
        for probe in probes {
            var first: [Float]?
            for tiles in cpuTiles {
                rng = 0x9E37_79B9_7F4A_7C15  // the same inputs for every tile shape
                let got = try check(try makeGEMM(context, tiles), context, probe)
                if let first {
                    XCTAssertEqual(got.map(\.bitPattern), first.map(\.bitPattern), "\(tiles) differs from \(cpuTiles[0]) on \(probe)")
                } else {
                    first = got
                }
            }
        }
    }

    /// Reading B in place gives the same bits as packing it (the same loads in the same order), with
    /// or without a partial last panel.
    func testBInPlaceEqualsPackedBitForBit() throws {
        let context = try makeContext()
        for tiles in allCandidates.filter({ $0.variant == .cpu }) {
            // n = 192: whole panels of every candidate; 200 and 75: a partial last panel (packed alone).
            for probe in [Case(m: 21, n: 192, k: 37, batch: 3, accumulate: true), Case(m: 13, n: 192, k: 70, batch: 2, sharedB: true),
                          Case(m: 21, n: 200, k: 37, batch: 3, accumulate: true), Case(m: 13, n: 75, k: 70, batch: 2, sharedB: true)] {
                var results: [[UInt32]] = []
                for inPlace in [true, false] {
                    let gemm = try makeGEMM(context, tiles)
                    gemm.readsBInPlaceWherePossible = inPlace
                    rng = 0x9E37_79B9_7F4A_7C15
                    results.append(try check(gemm, context, probe).map(\.bitPattern))
                }
                XCTAssertEqual(results[0], results[1], "\(tiles) \(probe): B in place differs from packed")
            }
        }
    }

    /// The tuner times every candidate on the first large call of a class, keeps one, leaves the
    /// call's own output correct, and does not search a class twice.
    func testTunerChoosesOncePerShapeClass() throws {
        let context = try makeContext()
        let gemm = try makeGEMM(context, .cpu(mr: 4, nr: 24, vw: 8))
        let candidates: [GEMMTiles] = [.cpu(mr: 4, nr: 24, vw: 8), .cpu(mr: 8, nr: 32, vw: 16)]
        let tuner = GEMMTuner(candidates: candidates, pending: [.general, .reduction])
        var reported: [GEMMShapeClass] = []
        tuner.onChoice = { profile, search in
            reported.append(search.shape)
            XCTAssertEqual(profile.tiles(for: search.shape), search.winner)
        }
        gemm.tuner = tuner
        try check(gemm, context, Case(m: 8, n: 8, k: 8))  // too small to time: no search
        XCTAssertEqual(reported, [])
        try check(gemm, context, Case(m: 128, n: 300, k: 200, batch: 2, accumulate: true))
        try check(gemm, context, Case(m: 128, n: 300, k: 200, batch: 2))
        try check(gemm, context, Case(m: 64, n: 90, k: 400, batch: 8, transB: true, sum: true))
        XCTAssertEqual(reported, [.general, .reduction])
        XCTAssertEqual(tuner.pending, [])
        for search in tuner.searches {
            XCTAssert(candidates.contains(search.winner))
            XCTAssertEqual(search.seconds.count, 2, "\(search)")
            XCTAssertGreaterThanOrEqual(search.speedup, 1)
        }
    }

    /// Small chunk budgets split the batch (and, with sumOverBatch, the summed k) into many chunks.
    func testChunking() throws {
        let context = try makeContext()
        let gemm = try makeGEMM(context, DeviceProfile.cpu(vectorWidth: 8).defaultGEMM)
        for budget in [1, 3000, 10000] {
            gemm.chunkBudgetFloats = budget
            try check(gemm, context, Case(m: 20, n: 50, k: 30, batch: 7, transB: true))
            try check(gemm, context, Case(m: 20, n: 50, k: 30, batch: 7, sharedA: true, accumulate: true))
            try check(gemm, context, Case(m: 20, n: 50, k: 30, batch: 7, transB: true, sum: true, accumulate: true, alpha: 0.25))
            try check(gemm, context, Case(m: 20, n: 50, k: 30, batch: 7, sum: true))
        }
    }

    func testRejectsOutOfRangeOperand() throws {
        let context = try makeContext()
        let gemm = try makeGEMM(context, DeviceProfile.cpu(vectorWidth: 8).defaultGEMM)
        let small = try context.makeBuffer(bytes: 4 * 15)
        let op = GEMMOperand(buffer: small, batchStride: 0, rowStride: 4, columnStride: 1)
        XCTAssertThrowsError(try gemm.run(m: 4, n: 4, k: 4, batch: 1, a: op, b: op, c: op))
    }

    /// reusePackedA reuses the panels of the A packed last only when that was the same A: a different
    /// A, or a summed call in between, is packed again (a convolution's chunks rely on this).
    func testReusePackedAOnlyReusesTheSameA() throws {
        let context = try makeContext()
        let (m, n, k) = (37, 64, 29)
        func matrix(_ count: Int) -> [Float] { (0..<count).map { _ in random() } }
        let a1 = matrix(m * k), a2 = matrix(m * k), b1 = matrix(k * n), b2 = matrix(k * n)
        func buffer(_ v: [Float]) throws -> CLBuffer {
            let buf = try context.makeBuffer(bytes: v.count * 4)
            try context.write(buf, from: v, bytes: v.count * 4)
            return buf
        }
        let (bufA1, bufA2, bufB1, bufB2) = (try buffer(a1), try buffer(a2), try buffer(b1), try buffer(b2))
        let bufC = try context.makeBuffer(bytes: m * n * 4), bufSum = try context.makeBuffer(bytes: m * n * 4)
        for tiles in [GEMMTiles.cpu(mr: 8, nr: 32, vw: 16), .cpu(mr: 4, nr: 24, vw: 8)] {
            let gemm = try makeGEMM(context, tiles)
            func product(_ a: CLBuffer, _ b: CLBuffer, reuse: Bool, want: (a: [Float], b: [Float]), _ label: String) throws {
                try gemm.run(m: m, n: n, k: k, batch: 1,
                             a: GEMMOperand(buffer: a, batchStride: 0, rowStride: k, columnStride: 1),
                             b: GEMMOperand(buffer: b, batchStride: 0, rowStride: n, columnStride: 1),
                             c: GEMMOperand(buffer: bufC, batchStride: 0, rowStride: n, columnStride: 1), reusePackedA: reuse)
                var got = [Float](repeating: 0, count: m * n)
                try context.read(bufC, into: &got, bytes: m * n * 4)
                var worst: Float = 0
                for i in 0..<m {
                    for j in 0..<n {
                        var s: Float = 0
                        for p in 0..<k { s += want.a[i * k + p] * want.b[p * n + j] }
                        worst = max(worst, abs(got[i * n + j] - s))
                    }
                }
                XCTAssertLessThan(worst, 1e-4, "\(tiles) \(label)")
            }
            try product(bufA1, bufB1, reuse: false, want: (a1, b1), "A1·B1")
            try product(bufA1, bufB2, reuse: true, want: (a1, b2), "A1·B2 reusing A1")
            try product(bufA2, bufB1, reuse: true, want: (a2, b1), "A2·B1 after A1")
            // A summed call packs A2 as two items end to end: what scratch holds is no longer one A.
            try gemm.run(m: m, n: n, k: k / 2, batch: 2,
                         a: GEMMOperand(buffer: bufA1, batchStride: k / 2, rowStride: k, columnStride: 1),
                         b: GEMMOperand(buffer: bufB1, batchStride: k / 2 * n, rowStride: n, columnStride: 1),
                         c: GEMMOperand(buffer: bufSum, batchStride: 0, rowStride: n, columnStride: 1), sumOverBatch: true)
            try product(bufA2, bufB2, reuse: true, want: (a2, b2), "A2·B2 after a summed call")
        }
    }

    // MARK: - Benchmark (DDPM_BENCH_GEMM=1)

    func testBenchmark() throws {
        guard ProcessInfo.processInfo.environment["DDPM_BENCH_GEMM"] == "1" else {
            throw XCTSkip("benchmark: set DDPM_BENCH_GEMM=1")
        }
        let context = try makeContext()
        let tiles = ProcessInfo.processInfo.environment["DDPM_BENCH_GEMM_TILES"].flatMap(GEMMTiles.init(parsing:))
        let gemm = try GEMM(context: context, source: try gemmSource(),
                            profile: tiles.map { t in var p = DeviceProfile.defaults(for: context.device); p.defaultGEMM = t; return p }
                                ?? .defaults(for: context.device))
        if let budget = Int(ProcessInfo.processInfo.environment["DDPM_BENCH_GEMM_BUDGET"] ?? "") { gemm.chunkBudgetFloats = budget }
        print("GEMM benchmark on \(context.device.name) (\(context.device.driverVersion)), variant \(gemm.variant), "
              + "\(gemm.profile.defaultGEMM), chunk budget \(gemm.chunkBudgetFloats) floats")
        struct Shape { var name: String; var m, n, k, batch: Int; var a, b: (Int, Int, Int); var shareA = false; var sum = false }
        // Operand strides (batch, row, column) per shape.
        let shapes = [
            Shape(name: "1024^3", m: 1024, n: 1024, k: 1024, batch: 1, a: (0, 1024, 1), b: (0, 1024, 1)),
            Shape(name: "conv fwd 64x1024x576 b64", m: 64, n: 1024, k: 576, batch: 64,
                  a: (0, 576, 1), b: (576 * 1024, 1024, 1)),
            Shape(name: "conv dW 64x576x1024 b64 sum Bt", m: 64, n: 576, k: 1024, batch: 64,
                  a: (64 * 1024, 1024, 1), b: (576 * 1024, 1, 1024), sum: true),
            Shape(name: "conv dX 576x1024x64 b64 At", m: 576, n: 1024, k: 64, batch: 64,
                  a: (0, 1, 576), b: (64 * 1024, 1024, 1)),
            Shape(name: "attn QtK 256x256x8 b512", m: 256, n: 256, k: 8, batch: 512,
                  a: (8 * 256, 1, 256), b: (8 * 256, 256, 1)),
            Shape(name: "attn QtK 256x256x64 b64", m: 256, n: 256, k: 64, batch: 64,
                  a: (64 * 256, 1, 256), b: (64 * 256, 256, 1)),
            Shape(name: "attn VPt 8x256x256 b512", m: 8, n: 256, k: 256, batch: 512,
                  a: (8 * 256, 256, 1), b: (256 * 256, 1, 256)),
            Shape(name: "linear 64x512x128", m: 64, n: 512, k: 128, batch: 1, a: (0, 128, 1), b: (0, 512, 1)),
            Shape(name: "tiny 16x16x16 b1", m: 16, n: 16, k: 16, batch: 1, a: (0, 16, 1), b: (0, 16, 1)),
        ]
        let filter = ProcessInfo.processInfo.environment["DDPM_BENCH_GEMM_FILTER"] ?? ""
        for s in shapes where filter.isEmpty || s.name.contains(filter) {
            func span(_ st: (Int, Int, Int), _ rows: Int, _ cols: Int) -> Int {
                st.0 * (s.batch - 1) + st.1 * (rows - 1) + st.2 * (cols - 1) + 1
            }
            let aFloats = span(s.a, s.m, s.k), bFloats = span(s.b, s.k, s.n)
            let cItems = s.sum ? 1 : s.batch
            let cFloats = s.m * s.n * cItems
            let bufA = try context.makeBuffer(bytes: aFloats * 4)
            let bufB = try context.makeBuffer(bytes: bFloats * 4)
            let bufC = try context.makeBuffer(bytes: cFloats * 4)
            let fillA = (0..<aFloats).map { _ in random() }, fillB = (0..<bFloats).map { _ in random() }
            try context.write(bufA, from: fillA, bytes: aFloats * 4)
            try context.write(bufB, from: fillB, bytes: bFloats * 4)
            let a = GEMMOperand(buffer: bufA, batchStride: s.a.0, rowStride: s.a.1, columnStride: s.a.2)
            let b = GEMMOperand(buffer: bufB, batchStride: s.b.0, rowStride: s.b.1, columnStride: s.b.2)
            let c = GEMMOperand(buffer: bufC, batchStride: s.m * s.n, rowStride: s.n, columnStride: 1)
            let call = { try gemm.run(m: s.m, n: s.n, k: s.k, batch: s.batch, a: a, b: b, c: c, sumOverBatch: s.sum) }
            try call(); try context.finish()
            let flops = 2.0 * Double(s.m * s.n * s.k * s.batch)
            // Short trials, best of many: the 2 cores are shared with other work.
            let reps = max(1, min(100, Int(2e8 / flops)))
            var times: [Double] = []
            for _ in 0..<15 {
                let t0 = Date()
                for _ in 0..<reps { try call() }
                try context.finish()
                times.append(Date().timeIntervalSince(t0) / Double(reps))
            }
            times.sort()
            // Per-kernel device time, best of 5 calls.
            var kernelBest: [String: Double] = [:]
            gemm.profiling = true
            for _ in 0..<5 {
                try call(); try context.finish()
                for p in gemm.takeProfile() { kernelBest[p.kernel] = min(kernelBest[p.kernel] ?? .infinity, p.seconds) }
            }
            gemm.profiling = false
            let parts = kernelBest.sorted { $0.key < $1.key }.map { String(format: "%@ %.2f ms", $0.key, $0.value * 1e3) }
            let name = s.name.padding(toLength: 34, withPad: " ", startingAt: 0)
            print(name + String(format: " %8.3f ms %7.1f GFLOP/s (best of 15 x %d; median %.1f)", times[0] * 1e3,
                                flops / times[0] / 1e9, reps, flops / times[7] / 1e9) + " [" + parts.joined(separator: ", ") + "]")
        }
    }
}
