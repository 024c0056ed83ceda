import DDPM
import DDPMCore
import DDPMCPU
import Foundation
import XCTest

/// The training loop's files, Ctrl-C and NaN handling, on the CPU reference with the tiny U-Net.
final class TrainingSessionTests: XCTestCase {
    func makeSession(_ options: TrainingOptions, steps: Int, directory: URL) throws -> TrainingSession {
        let data = syntheticData()
        let trainer = try Trainer(backend: CPUBackend(), options: options)
        var settings = SessionSettings()
        settings.steps = steps
        settings.logEvery = 1
        settings.sampleEvery = 2
        settings.checkpointEvery = 2
        settings.sampleCount = 4
        settings.sampleSteps = 3
        return TrainingSession(trainer: trainer, data: data, directory: RunDirectory(directory), settings: settings,
                               terminal: false, say: { _ in })
    }

    func temporaryDirectory(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("session-\(getpid())-\(name)")
    }

    func testRunWritesEverything() throws {
        let dir = temporaryDirectory("files")
        let outcome = try makeSession(tinyOptions(), steps: 4, directory: dir).run()
        XCTAssertEqual(outcome, .finished(step: 4))
        for file in ["checkpoint.safetensors", "log.csv", "loss.png", "samples/step-2.png", "samples/step-4.png",
                     "pipeline/model_index.json", "pipeline/unet/config.json",
                     "pipeline/unet/diffusion_pytorch_model.safetensors", "pipeline/scheduler/scheduler_config.json"] {
            XCTAssert(FileManager.default.fileExists(atPath: dir.appendingPathComponent(file).path), "missing \(file)")
        }
        let log = try String(contentsOf: dir.appendingPathComponent("log.csv"), encoding: .utf8)
        XCTAssertEqual(log.split(separator: "\n").count, 5, log)   // header + 4 steps
        XCTAssert(log.hasPrefix("step,loss,lr,grad_norm,images_per_second,fid,kid\n"), log)
        // The TensorBoard event file: the file version, then the scalars and the sample grids.
        let events = try XCTUnwrap(FileManager.default.contentsOfDirectory(atPath: dir.path).first { $0.hasPrefix("events.out.tfevents.") })
        let bytes = try Data(contentsOf: dir.appendingPathComponent(events))
        var offset = 0, records = 0
        while offset + 12 <= bytes.count {
            let length = Int(bytes[offset..<offset + 8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
            let data = Data(bytes[offset + 12..<offset + 12 + length])
            let crc = bytes[offset + 12 + length..<offset + 16 + length].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            XCTAssertEqual(crc, TensorBoard.maskedCRC32C(data))
            offset += 16 + length
            records += 1
        }
        XCTAssertEqual(offset, bytes.count)
        XCTAssertGreaterThanOrEqual(records, 1 + 4 + 2, "file version, 4 log steps, 2 sample grids")
        for tag in ["loss", "grad_norm", "images_per_second", "samples", "IHDR"] {
            XCTAssertNotNil(bytes.range(of: Data(tag.utf8)), "no \(tag) in the event file")
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".tmp") }
        XCTAssertEqual(leftovers, [], "temporary files left behind")
    }

    /// Ctrl-C: the step finishes, a checkpoint is written, the outcome says interrupted.
    func testInterruptSavesACheckpoint() throws {
        let dir = temporaryDirectory("interrupt")
        Interruption.install()
        raise(SIGINT)
        defer { Interruption.reset() }
        let outcome = try makeSession(tinyOptions(), steps: 10, directory: dir).run()
        XCTAssertEqual(outcome, .interrupted(step: 1))
        XCTAssertEqual(try Checkpoint.read(dir.appendingPathComponent("checkpoint.safetensors")).step, 1)
    }

    /// A diverging run stops with a clear message and keeps the last good checkpoint.
    func testNaNLossStopsAndKeepsTheCheckpoint() throws {
        let dir = temporaryDirectory("nan")
        var options = tinyOptions()
        options.learningRate = 1e30
        options.warmupSteps = 0
        options.gradientClip = 0
        XCTAssertThrowsError(try makeSession(options, steps: 40, directory: dir).run()) { error in
            XCTAssert("\(error)".contains("the loss became"), "\(error)")
        }
        if let checkpoint = try? Checkpoint.read(dir.appendingPathComponent("checkpoint.safetensors")) {
            for (_, values) in checkpoint.model.values { XCTAssert(values.allSatisfy(\.isFinite), "a non-finite checkpoint was written") }
        }
    }
}
