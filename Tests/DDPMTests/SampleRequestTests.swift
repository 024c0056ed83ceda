import DDPM
import DDPMCore
import DDPMCPU
import Foundation
import XCTest

/// What `sample` asks for, checked and resolved in the library (SampleRequest → SamplePlan), the
/// device batching of SamplePlan, and the files of SampledImages.
final class SampleRequestTests: XCTestCase {
    func tinyPipeline() throws -> LoadedPipeline { try LoadedPipeline.load(try fixture("pipeline-tiny")) }

    func expectRefusal(_ change: (inout SampleRequest) -> Void, mentioning words: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        var request = SampleRequest()
        request.count = 2
        change(&request)
        let pipeline = try tinyPipeline()
        XCTAssertThrowsError(try request.plan(pipeline), file: file, line: line) { error in
            let message = (error as? UserError)?.message ?? "not a UserError: \(error)"
            for w in words { XCTAssert(message.contains(w), "'\(w)' not in: \(message)", file: file, line: line) }
        }
    }

    func testModelSchedulerAndSolverThatDoNotFitAreRefusedNamingTheFlag() throws {
        try expectRefusal({ $0.count = 0 }, mentioning: ["--num-images 0"])
        try expectRefusal({ $0.deviceBatch = 0 }, mentioning: ["--device-batch 0"])
        try expectRefusal({ $0.sampler = .ddim; $0.eta = 1.5 }, mentioning: ["--eta 1.5"])
        try expectRefusal({ $0.sampler = .ddim; $0.eta = .nan }, mentioning: ["--eta"])
        try expectRefusal({ $0.karras = true; $0.sigmas = .exponential }, mentioning: ["--karras", "--sigmas exponential", "disagree"])
        try expectRefusal({ $0.classifierScale = -1 }, mentioning: ["--classifier-scale -1"])
        try expectRefusal({ $0.variance = .learnedRange }, mentioning: ["learned variance", "out_channels"])
        try expectRefusal({ $0.dynamicThreshold = 1.5 }, mentioning: ["--dynamic-threshold 1.5"])
        try expectRefusal({ $0.sampleMaxValue = 0.5 }, mentioning: ["--sample-max-value 0.5"])
        try expectRefusal({ $0.steps = 21 }, mentioning: ["--steps 21", "20 training timesteps"])
        try expectRefusal({ $0.count = 1_000_000_000_000 }, mentioning: ["--num-images 1000000000000", "host memory", "fits"])
        try expectRefusal({ $0.classChoice = "3" }, mentioning: ["--class", "class-conditional"])
        try expectRefusal({ $0.guidance = 2 }, mentioning: ["--guidance", "class-conditional"])
        try expectRefusal({ $0.classifier = URL(fileURLWithPath: "/nonexistent/noisy.safetensors") }, mentioning: ["/nonexistent/noisy.safetensors"])
        let noise = FileManager.default.temporaryDirectory.appendingPathComponent("sample-request-\(getpid())-noise.npy")
        defer { try? FileManager.default.removeItem(at: noise) }
        try writeNPY(float32: [Float](repeating: 0, count: 3 * 64), shape: [3, 1, 8, 8], to: noise)
        try expectRefusal({ $0.initialNoise = noise }, mentioning: ["--init-noise", "[3, 1, 8, 8]", "[2, 1, 8, 8]"])
    }

    func testPlanResolvesDefaultsAndOverrides() throws {
        let pipeline = try tinyPipeline()
        var request = SampleRequest()
        request.count = 3
        let plain = try request.plan(pipeline)
        // DDPMScheduler names no fast solver: DDPM over all 20 training timesteps, one evaluation of 3 images.
        XCTAssertEqual(plain.sampler, .ddpm)
        XCTAssertEqual(plain.steps, 20)
        XCTAssertEqual(plain.deviceBatch, 3)
        XCTAssertEqual(plain.outputName, "ddpm-20-seed0")
        XCTAssertEqual(plain.pipeline.settings, pipeline.settings)
        request.sampler = .dpm2m; request.karras = true; request.steps = 5; request.seed = 7; request.deviceBatch = 2
        request.spacing = .trailing; request.clipSample = false; request.dynamicThreshold = 0.9; request.variance = .fixedLarge
        let fast = try request.plan(pipeline)
        guard case .dpmSolver(let dpm) = fast.sampler else { return XCTFail("\(fast.sampler)") }
        XCTAssertTrue(dpm.karras)
        XCTAssertEqual(fast.steps, 5)
        XCTAssertEqual(fast.deviceBatch, 2)
        XCTAssertEqual(fast.outputName, "dpm++2m-5-seed7")
        XCTAssertEqual(fast.pipeline.settings.spacing, .trailing)
        XCTAssertEqual(fast.pipeline.settings.clipSample, false)
        XCTAssertEqual(fast.pipeline.settings.thresholding, true)
        XCTAssertEqual(fast.pipeline.settings.dynamicThresholdingRatio, 0.9)
        XCTAssertEqual(fast.pipeline.settings.variance, .fixedLarge)
    }

    /// Device batching: 5 images in evaluations of 2 are the images of one evaluation of 5, and the
    /// trajectory keeps the first min(count, 8, device batch) images.
    func testDeviceBatchingDoesNotChangeTheImages() throws {
        let pipeline = try tinyPipeline()
        var request = SampleRequest()
        request.count = 5
        request.steps = 3
        request.snapshots = 4
        var results: [SampledImages] = []
        for deviceBatch in [5, 2] {
            request.deviceBatch = deviceBatch
            let plan = try request.plan(pipeline)
            var calls = 0
            results.append(try plan.run(try plan.makeSampler(on: CPUBackend())) { _, _ in calls += 1 })
            XCTAssertGreaterThan(calls, 0)
        }
        XCTAssertEqual(results[0].values, results[1].values)
        XCTAssertEqual(results[0].trajectoryImages, 5)
        XCTAssertEqual(results[1].trajectoryImages, 2)
        XCTAssertEqual(results[1].trajectory.count, 4)
        XCTAssertEqual(results[1].trajectory[0].count, 2 * 64)
        XCTAssert(results[0].values.allSatisfy { $0.isFinite })
    }

    func testSampledImagesWriteEveryFile() throws {
        let values = (0..<(3 * 2 * 2)).map { Float($0) / 6 - 1 }
        let images = SampledImages(values: values, count: 3, channels: 1, size: 2, trajectory: [values.prefix(4).map { $0 }, values.prefix(4).map { -$0 }],
                                   trajectoryImages: 1)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sampled-images-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        defer { try? FileManager.default.removeItem(at: dir) }
        let grid = try images.write(to: dir, saveFloat: true)
        XCTAssertEqual(grid.lastPathComponent, "grid.png")
        XCTAssertEqual(try readPNG(grid), makeGrid(values, count: 3, channels: 1, height: 2, width: 2))
        XCTAssertEqual(try readNPY(dir.appendingPathComponent("samples.npy")), NPYArray(shape: [3, 1, 2, 2], values: toUInt8(values).map(Float.init)))
        XCTAssertEqual(try readNPY(dir.appendingPathComponent("samples-float32.npy")).values, values)
        for i in 0..<3 {
            let png = try readPNG(dir.appendingPathComponent(String(format: "images/%04d.png", i)))
            XCTAssertEqual(png.pixels, toUInt8(Array(values[i * 4..<(i + 1) * 4])))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("images/0003.png").path))
        // One row (one image), the two snapshots side by side.
        let strip = try readPNG(dir.appendingPathComponent("trajectory.png"))
        XCTAssertEqual(strip, makeGrid(values.prefix(4) + values.prefix(4).map { -$0 }, count: 2, channels: 1, height: 2, width: 2, columns: 2))
        // Without snapshots there is no trajectory.png; with labels the grid is wider (the names).
        let plain = SampledImages(values: values, count: 3, channels: 1, size: 2)
        XCTAssertNil(plain.trajectoryStrip())
        let labelled = SampledImages(values: values, count: 3, channels: 1, size: 2, columns: 1, rowLabels: ["a", "b", "c"])
        XCTAssertGreaterThan(labelled.grid().width, makeGrid(values, count: 3, channels: 1, height: 2, width: 2, columns: 1).width)
    }

    /// Sampler.fitting (sample --device-batch, bench --device-batch) refuses a batch the device cannot
    /// hold before allocating, naming the flag and a batch that fits.
    func testSamplerThatCannotFitIsRefusedNamingTheFlag() throws {
        let pipeline = try tinyPipeline()
        let need = try MemoryNeed.sampling(pipeline.config, weights: pipeline.weights, settings: pipeline.settings)
        let device = SmallDeviceBackend(limit: try need.measured(batch: 4).total)
        XCTAssertThrowsError(try Sampler.fitting(backend: device, config: pipeline.config, weights: pipeline.weights,
                                                 settings: pipeline.settings, batch: 4096, flag: "--device-batch")) { error in
            let message = (error as? UserError)?.message ?? "\(error)"
            XCTAssert(message.contains("--device-batch 4096") && message.contains("fits"), message)
        }
        XCTAssertNoThrow(try Sampler.fitting(backend: device, config: pipeline.config, weights: pipeline.weights,
                                             settings: pipeline.settings, batch: 4, flag: "--device-batch"))
    }
}
