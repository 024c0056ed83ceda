import DDPMCore
import DDPMCPU
import DDPMOpenCL
import DDPMParity
import XCTest

/// Every parity case: CPU reference vs OpenCL, forward and backward ops, with guard regions.
final class ParityTests: XCTestCase {
    func testEveryOpMatchesTheReference() throws {
        let cl = try requireOpenCLBackend()
        let cpu = CPUBackend()
        var failures: [String] = []
        for c in ParityCases.all {
            let r = try ParityRunner.run(c, reference: cpu, candidate: cl)
            if !r.passed { failures.append("\(c.details): \(r.problems.joined(separator: "; ")) (max abs \(r.maxAbsError))") }
        }
        XCTAssertEqual(failures, [], "\(failures.count) of \(ParityCases.all.count) parity cases failed")
    }

    /// Every kernel file is exercised by parity cases of the ops it implements (gemm.cl has GEMMTests,
    /// philox.cl the bit-identity test below). A new .cl file must be added here with its ops.
    func testEveryKernelFileHasParityCases() {
        let families: [String: [OpKind]] = [
            "conv2d.cl": [.conv2d, .conv2dBackwardInput, .conv2dBackwardWeight],
            "elementwise.cl": [.add, .mul, .scale, .addChannels, .sumToChannels, .concatChannels, .sliceChannels,
                               .sliceChannelsBackward, .upsampleNearest2x, .upsampleNearest2xBackward, .reshape, .linear],
            "group_norm.cl": [.groupNorm, .groupNormBackward],
            "silu.cl": [.silu, .siluBackward],
            "softmax.cl": [.softmax, .softmaxBackward],
            "diffusion.cl": [.timestepEmbedding, .dropout, .mse, .mseBackward, .qSample, .samplerStep, .dynamicThreshold],
            "optimizer.cl": [.gradNorm, .adamStep, .emaUpdate],
            "gemm.cl": [.matmul, .linear, .conv2d],
            "philox.cl": [.qSample, .dropout],
            "classifier.cl": [.globalAveragePool, .globalAveragePoolBackward, .crossEntropy, .crossEntropyBackward],
        ]
        XCTAssertEqual(Set(KernelSources.embeddedFileNames), Set(families.keys), "kernel files without a parity family")
        let covered = Set(ParityCases.all.map(\.op.kind))
        for (file, ops) in families {
            for op in ops { XCTAssert(covered.contains(op), "\(file): \(op) has no parity case") }
        }
    }

    /// The Philox normals of philox.cl are bit-identical to the Swift ones.
    func testPhiloxNormalsAreBitIdentical() throws {
        let cl = try requireOpenCLBackend()
        let count = 10_001
        let out = try cl.philoxNormals(count: count, seed: 0xDEAD_BEEF_1234, image: 5, step: 17, stream: 3)
        let expected = (0..<count).map { Philox.normal(seed: 0xDEAD_BEEF_1234, index: $0, image: 5, step: 17, stream: 3) }
        let mismatches = zip(out, expected).filter { $0.0.bitPattern != $0.1.bitPattern }.count
        XCTAssertEqual(mismatches, 0, "first: \(out.prefix(4)) vs \(expected.prefix(4))")
    }

    /// The parity check itself fails when a backend is wrong (the suite can fail).
    func testParityCatchesAWrongKernel() throws {
        let cpu = CPUBackend()
        let c = ParityCase(.silu, [(Shape(3, 5), .normal(scale: 1))])
        let r = try ParityRunner.run(c, reference: cpu, candidate: WrongSiluBackend())
        XCTAssertFalse(r.passed)
        let overrun = try ParityRunner.run(c, reference: cpu, candidate: OverrunBackend())
        XCTAssert(overrun.problems.contains { $0.contains("past its end") }, "\(overrun.problems)")
    }
}

/// silu computed as x·sigmoid(2x): close, but wrong.
private final class WrongSiluBackend: ForwardingBackend {
    override func run(_ op: Op, inputs: [TensorRef], outputs: [TensorRef], step: UInt32) throws {
        let x = try read(inputs[0].buffer, count: inputs[0].shape.count)
        try write(x.map { $0 / (1 + exp(-2 * $0)) }, to: outputs[0].buffer)
    }
}

/// Writes one element past the end of its output.
private final class OverrunBackend: ForwardingBackend {
    override func run(_ op: Op, inputs: [TensorRef], outputs: [TensorRef], step: UInt32) throws {
        try reference.run(op, inputs: inputs, outputs: outputs, step: step)
        var y = try read(outputs[0].buffer, count: outputs[0].shape.count + 1)
        y[y.count - 1] = 0
        try write(y, to: outputs[0].buffer)
    }
}
