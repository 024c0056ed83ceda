import DDPM
import DDPMCore
import Foundation
import XCTest

/// Loss weighting (min-SNR-γ, P2), offset noise and the learning-rate schedule.
final class TrainingObjectiveTests: XCTestCase {
    /// min-SNR-γ weights for ε, v and x₀ targets equal those of diffusers' train_text_to_image
    /// (compute_snr in float32; scripts/make-training-loss-fixtures).
    func testMinSNRWeightsMatchDiffusers() throws {
        let cases = try JSONSerialization.jsonObject(with: Data(contentsOf: try fixture("training-loss/weights.json"))) as! [[String: Any]]
        XCTAssertEqual(cases.count, 6)
        for c in cases {
            var o = TrainingOptions(model: ModelPreset.tiny.config)
            o.timesteps = c["timesteps"] as! Int
            o.schedule = c["schedule"] as! String == "linear" ? .linear : .cosine
            o.snrGamma = (c["gamma"] as! NSNumber).doubleValue
            let ts = c["t"] as! [Int]
            for prediction in Prediction.allCases {
                o.prediction = prediction
                let weights = try XCTUnwrap(o.lossWeights(o.noiseSchedule))
                let expected = (c[prediction.rawValue] as! [NSNumber]).map(\.doubleValue)
                for (t, e) in zip(ts, expected) {
                    // diffusers forms SNR = (√ᾱ/√(1−ᾱ))² in float32; ddpm-cl ᾱ/(1−ᾱ) in double: a few ulp.
                    XCTAssertEqual(Double(weights[t]), e, accuracy: 1e-5 * max(1, e), "\(c["schedule"]!) γ=\(o.snrGamma!) \(prediction) t=\(t)")
                }
            }
        }
    }

    /// P2 (k = 1): the ε-MSE weighted by (1 + SNR)^−γ; x₀ and v targets carry the same weight on
    /// the ε scale. Without a weighting the plain MSE stays (nil), and x₀ keeps its SNR weighting.
    func testP2AndDefaultWeights() throws {
        var o = TrainingOptions(model: ModelPreset.tiny.config)
        o.timesteps = 50
        XCTAssertNil(o.lossWeights(o.noiseSchedule), "ε without weighting: the plain MSE")
        o.prediction = .v
        XCTAssertNil(o.lossWeights(o.noiseSchedule))
        o.prediction = .sample
        XCTAssertEqual(o.lossWeights(o.noiseSchedule)!, o.noiseSchedule.qSampleTable.suffix(50).map { $0 })
        o.p2Gamma = 1
        let acp = o.noiseSchedule.alphasCumprod.map(Double.init)
        for prediction in Prediction.allCases {
            o.prediction = prediction
            let w = o.lossWeights(o.noiseSchedule)!
            for t in [0, 17, 49] {
                let snr = acp[t] / (1 - acp[t]), p2 = 1 / (1 + snr)
                let onTarget = prediction == .epsilon ? p2 : prediction == .sample ? snr * p2 : snr * p2 / (snr + 1)
                XCTAssertEqual(Double(w[t]), onTarget, accuracy: 1e-6 * max(1, onTarget), "\(prediction) t=\(t)")
            }
        }
    }

    /// Offset noise: ε differs from the plain draw by o·z_c, one number per (image, channel), the
    /// same on both backends; x_t and the target use the shifted ε.
    func testOffsetNoiseIsOneNumberPerImageChannel() throws {
        let shape = Shape(2, 3, 4, 4), plane = 16
        let schedule = NoiseSchedule(kind: .linear, timesteps: 50)
        for backend in try testBackends() {
            func draw(_ offset: Float) throws -> [Float] {
                let x0 = try backend.makeBuffer([Float](repeating: 0.25, count: shape.count))
                let table = try backend.makeBuffer(schedule.qSampleTable)
                let outs = try (0..<4).map { i in try backend.makeBuffer(count: i < 2 ? shape.count : 2) }
                try backend.run(.qSample(QSample(seed: 9, timesteps: 50, prediction: .epsilon, offsetNoise: offset)),
                                inputs: [TensorRef(x0, shape), TensorRef(table, Shape(3, 50))],
                                outputs: [TensorRef(outs[0], shape), TensorRef(outs[1], shape), TensorRef(outs[2], Shape(2)), TensorRef(outs[3], Shape(2))],
                                step: 4)
                return try backend.read(outs[1], count: shape.count)
            }
            let plain = try draw(0), offset = try draw(0.1)
            for image in 0..<2 {
                for c in 0..<3 {
                    let z = Philox.normal(seed: 9, index: c, image: UInt32(image), step: 4, stream: RandomStream.trainingOffsetNoise)
                    for i in 0..<plane {
                        let j = (image * 3 + c) * plane + i
                        XCTAssertEqual(offset[j], plain[j] + 0.1 * z, "\(backend.name) image \(image) channel \(c)")
                    }
                }
            }
        }
    }

    /// Cosine by steps is diffusers' get_cosine_schedule_with_warmup, step for step (fixture).
    func testCosineScheduleMatchesDiffusers() throws {
        let cases = try JSONSerialization.jsonObject(with: Data(contentsOf: try fixture("training-loss/lr.json"))) as! [[String: Any]]
        for c in cases {
            var o = TrainingOptions(model: ModelPreset.tiny.config)
            o.learningRate = (c["lr"] as! NSNumber).floatValue
            o.warmupSteps = c["warmup"] as! Int
            o.learningRateSchedule = .cosine
            o.cosineSteps = (c["steps"] as! Int)
            try o.validate(.flags)
            let rates = (c["rates"] as! [NSNumber]).map(\.doubleValue)
            for (k, rate) in rates.enumerated() {
                // Python multiplies the double 1e-3; ddpm-cl the float32 --lr widened to double: 1 ulp.
                XCTAssertEqual(o.learningRate(step: k + 1, trainingSeconds: 1e9), Float(rate), accuracy: Float(rate) * 3e-7,
                               "warmup \(o.warmupSteps) step \(k + 1)")
            }
        }
    }

    /// Cosine by time: λ_warmup · ½(1 + cos(π·τ/budget)), 0 once the budget is spent.
    func testTimeDrivenCosine() throws {
        var o = TrainingOptions(model: ModelPreset.tiny.config)
        o.learningRate = 1e-3
        o.warmupSteps = 10
        o.learningRateSchedule = .cosine
        o.cosineMinutes = 2
        try o.validate(.flags)
        XCTAssertTrue(o.learningRateFollowsTime)
        XCTAssertEqual(o.learningRate(step: 1, trainingSeconds: 0), 0)
        XCTAssertEqual(o.learningRate(step: 6, trainingSeconds: 0), 5e-4, accuracy: 1e-10)
        XCTAssertEqual(o.learningRate(step: 500, trainingSeconds: 60), 5e-4, accuracy: 1e-10)
        XCTAssertEqual(o.learningRate(step: 500, trainingSeconds: 30), Float(1e-3 * 0.5 * (1 + cos(Double.pi / 4))), accuracy: 1e-10)
        XCTAssertEqual(o.learningRate(step: 500, trainingSeconds: 500), 0)
        XCTAssertThrowsError(try o.checkCosineHorizon(resumingAt: 900, trainingSeconds: 121, targetStep: nil))
        XCTAssertNoThrow(try o.checkCosineHorizon(resumingAt: 900, trainingSeconds: 100, targetStep: nil))
        o.cosineSteps = 100
        XCTAssertThrowsError(try o.validate(.flags), "a cosine ends at steps or at a time, not both")
    }

    /// A step-driven cosine run resumes to the bit, and a time-driven one keeps its training time
    /// in the checkpoint (an old checkpoint has none: 0).
    func testCosineResumeAndTrainingSeconds() throws {
        let data = syntheticData()
        var options = tinyOptions()
        options.learningRateSchedule = .cosine
        options.cosineSteps = 4
        options.warmupSteps = 1
        options.snrGamma = 5
        options.offsetNoise = 0.1
        try options.validate(.flags)
        let backend = try testBackends().last!
        let straight = try Trainer(backend: backend, options: options)
        for step in 1...4 { try straight.trainStep(batch: data.batch(step: step, size: options.batch)) }
        let expected = try straight.checkpoint()
        let first = try Trainer(backend: backend, options: options)
        for step in 1...2 { try first.trainStep(batch: data.batch(step: step, size: options.batch)) }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("cosine-\(getpid()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try first.checkpoint().write(to: url)
        let loaded = try Checkpoint.read(url)
        XCTAssertEqual(loaded.options, options)
        let second = try Trainer(backend: backend, options: loaded.options, resumeFrom: loaded)
        for step in 3...4 { try second.trainStep(batch: data.batch(step: step, size: options.batch)) }
        XCTAssertEqual(second.lastLearningRate, options.learningRate(step: 4, trainingSeconds: 0))
        let resumed = try second.checkpoint()
        for name in expected.model.names { XCTAssertEqual(resumed.model.values[name]!, expected.model.values[name]!, name) }
        XCTAssertThrowsError(try options.checkCosineHorizon(resumingAt: 2, trainingSeconds: 0, targetStep: 5))

        var timed = tinyOptions()
        timed.learningRateSchedule = .cosine
        timed.cosineMinutes = 10
        let trainer = try Trainer(backend: backend, options: timed)
        trainer.trainingSeconds = 123.5
        try trainer.trainStep(batch: data.batch(step: 1, size: timed.batch))
        try trainer.checkpoint().write(to: url)
        XCTAssertEqual(try Checkpoint.read(url).trainingSeconds, 123.5)
        try Trainer(backend: backend, options: tinyOptions()).checkpoint().write(to: url)
        XCTAssertEqual(try Checkpoint.read(url).trainingSeconds, 0, "only a time-driven run stores its clock")
    }

    /// Bad values and combinations name the flag.
    func testValidation() throws {
        func refusal(_ edit: (inout TrainingOptions) -> Void) -> String {
            var o = TrainingOptions(model: ModelPreset.tiny.config)
            edit(&o)
            do { try o.validate(.flags); return "" } catch { return "\(error)" }
        }
        XCTAssertTrue(refusal { $0.snrGamma = 0 }.contains("--snr-gamma"))
        XCTAssertTrue(refusal { $0.snrGamma = .nan }.contains("--snr-gamma"))
        XCTAssertTrue(refusal { $0.p2Gamma = -1 }.contains("--p2-gamma"))
        XCTAssertTrue(refusal { $0.p2Gamma = 1; $0.snrGamma = 5 }.contains("--p2-gamma"))
        XCTAssertTrue(refusal { $0.offsetNoise = 2 }.contains("--offset-noise"))
        XCTAssertTrue(refusal { $0.prediction = .sample; $0.sampleLossWeighting = "none"; $0.snrGamma = 5 }.contains("--sample-loss-weight"))
        XCTAssertTrue(refusal { $0.learningRateSchedule = .cosine }.contains("--lr-schedule"))
        XCTAssertTrue(refusal { $0.cosineSteps = 10 }.contains("--lr-schedule"))
        XCTAssertEqual(refusal { $0.snrGamma = 5; $0.offsetNoise = 0.1; $0.learningRateSchedule = .cosine; $0.cosineSteps = 9 }, "")
    }
}
