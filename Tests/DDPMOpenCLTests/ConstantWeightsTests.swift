import DDPMCore
import DDPMCPU
import DDPMOpenCL
import XCTest

/// Weights marked constant (Backend.markConstant, as the sampler's are) get Winograd's transformed,
/// packed weights once and then reuse them; any write to the weights drops them. The results must
/// stay the reference's throughout, and the transform must really be skipped.
final class ConstantWeightsTests: XCTestCase {
    private func values(_ count: Int, seed: Int) -> [Float] {
        (0..<count).map { Float((($0 + seed) * 7919) % 1000) / 1000 - 0.5 }
    }

    /// A prepacked A serves the call in place of A (here zeroed after packing), across chunks of the
    /// batch; once the class's tiles change, `uses` says no and the call packs A itself.
    func testPrepackedAServesEveryChunkAndStepsAsideWhenTheTilesChange() throws {
        let device = try requireOpenCLDevice()
        let context = try CLContext(device: device)
        let gemm = try GEMM(context: context, source: try KernelSources.withPrelude("gemm.cl"), profile: .cpu(vectorWidth: 16))
        gemm.chunkBudgetFloats = 2000  // several chunks of the 6 items: the packed A is read at each chunk's offset
        let (m, n, k, batch) = (20, 48, 70, 6)
        let aValues = values(m * k * batch, seed: 1), bValues = values(k * n * batch, seed: 2)
        func buffer(_ v: [Float]) throws -> CLBuffer {
            let b = try context.makeBuffer(bytes: v.count * 4)
            try v.withUnsafeBytes { try context.write(b, from: $0.baseAddress!, bytes: $0.count) }
            return b
        }
        func read(_ b: CLBuffer, _ count: Int) throws -> [Float] {
            var out = [Float](repeating: 0, count: count)
            try out.withUnsafeMutableBytes { try context.read(b, into: $0.baseAddress!, bytes: $0.count) }
            return out
        }
        let a = GEMMOperand(buffer: try buffer(aValues), batchStride: m * k, rowStride: k, columnStride: 1)
        let b = GEMMOperand(buffer: try buffer(bValues), batchStride: k * n, rowStride: n, columnStride: 1)
        let c = GEMMOperand(buffer: try buffer([Float](repeating: 0, count: m * n * batch)), batchStride: m * n, rowStride: n, columnStride: 1)
        try gemm.run(m: m, n: n, k: k, batch: batch, a: a, b: b, c: c)
        let expected = try read(c.buffer, m * n * batch)
        XCTAssertNotEqual(expected.max(), 0)

        let packed = try XCTUnwrap(try gemm.pack(m: m, k: k, batch: batch, a: a))
        XCTAssert(gemm.uses(packed, m: m, k: k, batch: batch))
        XCTAssertFalse(gemm.uses(packed, m: m, k: k, batch: batch - 1))
        try context.write(a.buffer, from: [Float](repeating: 0, count: aValues.count), bytes: aValues.count * 4)
        try gemm.run(m: m, n: n, k: k, batch: batch, a: a, b: b, c: c, packedA: packed)
        XCTAssertEqual(try read(c.buffer, m * n * batch), expected, "the packed panels, not the zeroed A, must have been read")

        try gemm.choose(.cpu(mr: 4, nr: 64, vw: 16), for: GEMMShapeClass(m: m, n: n, k: k, sumOverBatch: false))
        XCTAssertFalse(gemm.uses(packed, m: m, k: k, batch: batch), "packed in other tiles")
        try gemm.run(m: m, n: n, k: k, batch: batch, a: a, b: b, c: c, packedA: packed)
        XCTAssertEqual(try read(c.buffer, m * n * batch), [Float](repeating: 0, count: m * n * batch), "A (zeros) must be packed again")
    }

    func testWinogradTransformsConstantWeightsOnceAndAgainAfterAWrite() throws {
        let device = try requireOpenCLDevice()
        var profile = DeviceProfile.cpu(vectorWidth: 16)
        profile.conv3x3?.winograd = true
        let cl = try OpenCLBackend(device: device, profile: profile)
        cl.winogradMinChannels = 1
        let cpu = CPUBackend()
        let c = Conv2D(kernel: 3, padding: 1)
        let (n, ci, co, s) = (2, 4, 5, 9)
        let xs = Shape(n, ci, s, s), ws = Shape(co, ci, 3, 3), ys = Shape(n, co, s, s)
        let x = values(xs.count, seed: 3), bias = values(co, seed: 4)
        var w = values(ws.count, seed: 5)

        func reference(_ op: Op, _ inputs: [([Float], Shape)], _ out: Shape) throws -> [Float] {
            let refs = try inputs.map { TensorRef(try cpu.makeBuffer($0.0), $0.1) }
            let y = TensorRef(try cpu.makeBuffer(count: out.count), out)
            try cpu.run(op, inputs: refs, outputs: [y], step: 0)
            return try cpu.read(y.buffer, count: out.count)
        }
        func assertClose(_ got: [Float], _ want: [Float], _ what: String) {
            let err = zip(got, want).map { abs($0 - $1) }.max() ?? .infinity
            let scale = want.map(abs).max() ?? 1
            XCTAssertLessThan(err, 1e-5 * max(scale, 1), what)  // Winograd's rounding differs from the direct sum by ~1e-6
        }
        let wBuffer = try cl.makeConstantBuffer(w)
        let xRef = TensorRef(try cl.makeBuffer(x), xs), bRef = TensorRef(try cl.makeBuffer(bias), Shape(co))
        let yRef = TensorRef(try cl.makeBuffer(count: ys.count), ys)
        let dyRef = TensorRef(try cl.makeBuffer(values(ys.count, seed: 6)), ys)
        let dxRef = TensorRef(try cl.makeBuffer(count: xs.count), xs)
        func transforms() -> Int { cl.kernelTimes()["winograd_weights"]?.calls ?? 0 }

        cl.setProfiling(true)
        for round in 0..<3 {
            try cl.run(.conv2d(c), inputs: [xRef, TensorRef(wBuffer, ws), bRef], outputs: [yRef], step: 0)
            assertClose(try cl.read(yRef.buffer, count: ys.count), try reference(.conv2d(c), [(x, xs), (w, ws), (bias, Shape(co))], ys),
                        "forward, round \(round)")
            try cl.run(.conv2dBackwardInput(c, height: s, width: s), inputs: [dyRef, TensorRef(wBuffer, ws)], outputs: [dxRef], step: 0)
            assertClose(try cl.read(dxRef.buffer, count: xs.count),
                        try reference(.conv2dBackwardInput(c, height: s, width: s), [(values(ys.count, seed: 6), ys), (w, ws)], xs),
                        "input gradient, round \(round)")
        }
        XCTAssertEqual(transforms(), 2, "one transform for the forward pass and one for the flipped weights, then reuse")

        w = values(ws.count, seed: 7)
        try cl.write(w, to: wBuffer)
        try cl.run(.conv2d(c), inputs: [xRef, TensorRef(wBuffer, ws), bRef], outputs: [yRef], step: 0)
        assertClose(try cl.read(yRef.buffer, count: ys.count), try reference(.conv2d(c), [(x, xs), (w, ws), (bias, Shape(co))], ys),
                    "forward after write")
        XCTAssertEqual(transforms(), 3, "a write drops the transformed weights")

        // An op writing the weights drops them too.
        try cl.run(.scale(2), inputs: [TensorRef(try cl.makeBuffer(w), ws)], outputs: [TensorRef(wBuffer, ws)], step: 0)
        try cl.run(.conv2d(c), inputs: [xRef, TensorRef(wBuffer, ws), bRef], outputs: [yRef], step: 0)
        assertClose(try cl.read(yRef.buffer, count: ys.count),
                    try reference(.conv2d(c), [(x, xs), (w.map { 2 * $0 }, ws), (bias, Shape(co))], ys), "forward after an op wrote the weights")
        XCTAssertEqual(transforms(), 4)

        // Weights not marked constant are transformed at every call.
        let plain = TensorRef(try cl.makeBuffer(w), ws)
        for _ in 0..<2 { try cl.run(.conv2d(c), inputs: [xRef, plain, bRef], outputs: [yRef], step: 0) }
        XCTAssertEqual(transforms(), 6)

        // What was derived is freed with the weights.
        XCTAssertGreaterThan(cl.constantCacheBytes, 0)
        do {
            let shortLived = TensorRef(try cl.makeConstantBuffer(w), ws)
            try cl.run(.conv2d(c), inputs: [xRef, shortLived, bRef], outputs: [yRef], step: 0)
        }
        let held = cl.constantCacheBytes
        try cl.write(w, to: wBuffer)
        XCTAssertLessThan(cl.constantCacheBytes, held, "a write frees what was derived")
        XCTAssertEqual(cl.constantCacheBytes, 0, "the short-lived weights took theirs with them")

        // Past the budget, constant weights are transformed at every call as well.
        cl.constantCacheBudgetBytes = 0
        let overBudget = TensorRef(try cl.makeConstantBuffer(w), ws)
        for _ in 0..<2 { try cl.run(.conv2d(c), inputs: [xRef, overBudget, bRef], outputs: [yRef], step: 0) }
        XCTAssertEqual(transforms(), 9)
        XCTAssertEqual(cl.constantCacheBytes, 0)
        assertClose(try cl.read(yRef.buffer, count: ys.count), try reference(.conv2d(c), [(x, xs), (w, ws), (bias, Shape(co))], ys),
                    "forward over the budget")
        cl.setProfiling(false)
    }
}
