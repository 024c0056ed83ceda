import DDPM
import DDPMCore
import DDPMCPU
import Foundation
import XCTest

/// A CPU backend that pretends to have little memory: allocations beyond `limit` bytes in all
/// fail as a device out of memory does.
final class SmallDeviceBackend: Backend {
    let inner = CPUBackend()
    let limit: Int
    private(set) var allocated = 0
    init(limit: Int) { self.limit = limit }
    var name: String { "small-device" }
    var memoryLimits: MemoryLimits? { MemoryLimits(totalBytes: limit, largestBufferBytes: limit / 4) }
    func makeBuffer(count: Int) throws -> DeviceBuffer {
        let bytes = max(count, 1) * 4
        guard allocated + bytes <= limit, bytes <= limit / 4 else { throw DeviceMemoryError(requestedBytes: bytes, reason: "CL_MEM_OBJECT_ALLOCATION_FAILURE (simulated)") }
        allocated += bytes
        return try inner.makeBuffer(count: count)
    }
    /// Views share their buffer's memory: they allocate nothing.
    func makeView(of buffer: DeviceBuffer, offset: Int, count: Int) throws -> DeviceBuffer { try inner.makeView(of: buffer, offset: offset, count: count) }
    var viewAlignment: Int { inner.viewAlignment }
    func write(_ values: [Float], to buffer: DeviceBuffer) throws { try inner.write(values, to: buffer) }
    func read(_ buffer: DeviceBuffer, count: Int) throws -> [Float] { try inner.read(buffer, count: count) }
    func run(_ op: Op, inputs: [TensorRef], outputs: [TensorRef], step: UInt32) throws { try inner.run(op, inputs: inputs, outputs: outputs, step: step) }
    func synchronize() throws {}
}

/// Device out of memory and NaN gradients: refused up front with a batch that fits, or stopped
/// before a bad checkpoint is written.
final class FaultTests: XCTestCase {
    func testDeviceOutOfMemoryNamesTheBatchAndOneThatFits() throws {
        var options = tinyOptions()
        options.batch = 512
        let need = try MemoryNeed.training(options)
        let device = SmallDeviceBackend(limit: try need.measured(batch: 64).total)
        XCTAssertThrowsError(try need.check(batch: 512, flag: "--batch", on: device, what: "training")) { error in
            let message = (error as? UserError)?.message ?? "\(error)"
            XCTAssert(message.contains("--batch 512") && message.contains("needs about") && message.contains("fits"), message)
        }
        // The suggested batch really fits: the Trainer allocates on the small device without failing.
        let fitting = try need.fittingBatch(device.memoryLimits!)
        XCTAssertGreaterThanOrEqual(fitting, 48)
        XCTAssertLessThan(fitting, 512)
        options.batch = fitting
        XCTAssertNoThrow(try need.check(batch: fitting, flag: "--batch", on: device, what: "training"))
        XCTAssertNoThrow(try Trainer(backend: device, options: options))
        // Past the check (a driver that reports more than it gives), the failure is still a clear error.
        let tight = SmallDeviceBackend(limit: try need.measured(batch: 8).total)
        options.batch = 64
        XCTAssertThrowsError(try need.allocating(batch: 64, flag: "--batch", on: tight, what: "training") {
            try Trainer(backend: tight, options: options)
        }) { error in
            let message = (error as? UserError)?.message ?? "\(error)"
            XCTAssert(message.contains("--batch 64") && message.contains("refused") && message.contains("Try --batch"), message)
        }
    }

    func testMeasuredNeedMatchesWhatTheTrainerAllocates() throws {
        var options = tinyOptions()
        let need = try MemoryNeed.training(options)
        for batch in [1, 3, 16] {
            options.batch = batch
            let counting = SmallDeviceBackend(limit: Int.max / 8)
            _ = try Trainer(backend: counting, options: options)
            XCTAssertEqual(try need.measured(batch: batch).total, counting.allocated, "batch \(batch)")
        }
    }

    /// NaN weights between two loss reads: the checkpoint is not overwritten with them.
    func testNonFiniteStepIsNeverCheckpointed() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fault-\(getpid())-nan-checkpoint")
        try? FileManager.default.removeItem(at: dir)
        var options = tinyOptions()
        options.learningRate = 1e30
        options.warmupSteps = 0
        options.gradientClip = 0
        let trainer = try Trainer(backend: CPUBackend(), options: options)
        var settings = SessionSettings()
        settings.steps = 20
        settings.logEvery = 1000      // the loss is not read at log time: only the checkpoint's check can catch it
        settings.sampleEvery = 0
        settings.checkpointEvery = 1
        let session = TrainingSession(trainer: trainer, data: syntheticData(), directory: RunDirectory(dir), settings: settings,
                                      terminal: false, say: { _ in })
        XCTAssertThrowsError(try session.run()) { error in
            let message = (error as? UserError)?.message ?? "\(error)"
            XCTAssert(message.contains("last good checkpoint"), message)
        }
        let kept = try Checkpoint.read(dir.appendingPathComponent(Checkpoint.fileName))   // refuses NaN weights itself
        XCTAssertLessThan(kept.step, trainer.step)
        XCTAssertGreaterThanOrEqual(kept.step, 1)
    }
}
