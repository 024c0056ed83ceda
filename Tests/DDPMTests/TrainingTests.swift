import DDPM
import DDPMCore
import DDPMCPU
import Foundation
import XCTest

/// End-to-end training on the `tiny` U-Net: backends agree on a whole step, runs resume exactly,
/// and the loss falls when overfitting a few images.
final class TrainingTests: XCTestCase {
    /// One full step (noising, forward, loss, backward, clip, AdamW, EMA) on the CPU reference and on
    /// OpenCL: the loss, every gradient and every updated weight agree.
    func testOneStepAgreesAcrossBackends() throws {
        let backends = try testBackends()
        guard backends.count == 2 else { throw XCTSkip("needs an OpenCL device") }
        let data = syntheticData()
        let options = tinyOptions(dropout: 0.1)
        var results: [(loss: Float, grads: [String: [Float]], checkpoint: Checkpoint)] = []
        for backend in backends {
            let trainer = try Trainer(backend: backend, options: options)
            try trainer.trainStep(batch: data.batch(step: 1, size: options.batch))
            results.append((try trainer.readLossAndGradientNorm().loss, try trainer.gradientValues(), try trainer.checkpoint()))
        }
        let (cpu, cl) = (results[0], results[1])
        XCTAssertEqual(cpu.loss, cl.loss, accuracy: 1e-5 * max(1, abs(cpu.loss)))
        for (name, g) in cpu.grads {
            if name.hasSuffix("to_k.bias") {
                // Adding a constant to every key shifts each query's scores by a constant, which softmax
                // ignores: this gradient is exactly zero, both backends hold only round-off (~1e-9), and
                // Adam turns that noise into ±lr steps. Check it is negligible instead of comparing.
                XCTAssertLessThan(g.map(abs).max()!, 1e-5, "\(name) should have a zero gradient")
                XCTAssertLessThan(cl.grads[name]!.map(abs).max()!, 1e-5, "\(name) should have a zero gradient")
                continue
            }
            // Summation order differs (GEMM blocking vs plain loops); 1e-8 is well above float32
            // round-off through this small net and far below any wrong rule.
            XCTAssertLessThan(nmse(cl.grads[name]!, g), 1e-8, "gradient of \(name)")
            XCTAssertLessThan(nmse(cl.checkpoint.model.values[name]!, cpu.checkpoint.model.values[name]!), 1e-10, "weight \(name)")
            XCTAssertLessThan(nmse(cl.checkpoint.ema.values[name]!, cpu.checkpoint.ema.values[name]!), 1e-10, "EMA \(name)")
        }
    }

    /// `--prediction sample` trains by default with diffusers' SNR-weighted x₀-MSE: qSample hands each
    /// image's SNR_t = ᾱ_t/(1−ᾱ_t) to a weighted MSE. Runs saved before the option keep the plain MSE.
    func testSamplePredictionLossIsSNRWeighted() throws {
        let schedule = NoiseSchedule(kind: .linear, timesteps: 50)
        let table = schedule.qSampleTable
        for backend in try testBackends() {
            let x0 = try backend.makeBuffer([Float](repeating: 0.5, count: 4 * 16))
            let tableBuffer = try backend.makeBuffer(table)
            let outs = try (0..<4).map { i in try backend.makeBuffer(count: i < 2 ? 64 : 4) }
            let shape = Shape(4, 1, 4, 4)
            try backend.run(.qSample(QSample(seed: 3, timesteps: 50, prediction: .sample)),
                            inputs: [TensorRef(x0, shape), TensorRef(tableBuffer, Shape(3, 50))],
                            outputs: [TensorRef(outs[0], shape), TensorRef(outs[1], shape), TensorRef(outs[2], Shape(4)), TensorRef(outs[3], Shape(4))],
                            step: 1)
            let ts = try backend.read(outs[2], count: 4).map { Int($0) }
            let snr = try backend.read(outs[3], count: 4)
            for (t, w) in zip(ts, snr) {
                let a = schedule.alphasCumprod[t]
                XCTAssertEqual(w, a / (1 - a), "\(backend.name) t=\(t)")
            }
        }
        var options = tinyOptions()
        options.prediction = .sample
        XCTAssertTrue(options.weightsLossBySNR, "new runs default to the SNR weighting")
        let data = syntheticData()
        var losses: [Float] = []
        for weighting in ["snr", "none"] {
            options.sampleLossWeighting = weighting
            let trainer = try Trainer(backend: CPUBackend(), options: options)
            try trainer.trainStep(batch: data.batch(step: 1, size: options.batch))
            losses.append(try trainer.readLossAndGradientNorm().loss)
        }
        XCTAssertNotEqual(losses[0], losses[1])
        // A checkpoint written before the option has no key: it keeps the plain x₀-MSE it trained with.
        var encoded = try JSONSerialization.jsonObject(with: JSONEncoder().encode(options)) as! [String: Any]
        encoded.removeValue(forKey: "sampleLossWeighting")
        let old = try JSONDecoder().decode(TrainingOptions.self, from: JSONSerialization.data(withJSONObject: encoded))
        XCTAssertFalse(old.weightsLossBySNR)
    }

    /// `train --zero-snr` (with v-prediction): ᾱ_T = 0, a step gives a finite loss, and the exported
    /// scheduler config says rescale_betas_zero_snr so diffusers rebuilds the same schedule.
    func testZeroTerminalSNRTraining() throws {
        var options = tinyOptions()
        options.prediction = .v
        options.zeroTerminalSNR = true
        options.timesteps = 50
        XCTAssertEqual(options.noiseSchedule.alphasCumprod.last, 0)
        let trainer = try Trainer(backend: CPUBackend(), options: options)
        try trainer.trainStep(batch: syntheticData().batch(step: 1, size: options.batch))
        XCTAssertTrue(try trainer.readLossAndGradientNorm().loss.isFinite)
        let json = options.schedulerSettings.json
        XCTAssertEqual(json["rescale_betas_zero_snr"] as? Bool, true)
        let back = try SchedulerSettings(json: json, source: "exported")
        XCTAssertEqual(back.schedule.alphasCumprod, options.noiseSchedule.alphasCumprod)
    }

    /// Warmup as diffusers' LambdaLR: step k (from 1) uses λ(k − 1) = min(1, (k − 1)/warmup).
    func testWarmupFollowsDiffusersLambdaLR() {
        var o = tinyOptions()
        o.learningRate = 1e-3
        o.warmupSteps = 100
        XCTAssertEqual(o.learningRate(step: 1), 0)
        // The base rate is a Float (1e-3 ≈ 1.00000005e-3): compare to float32 round-off.
        XCTAssertEqual(o.learningRate(step: 2), 1e-5, accuracy: 1e-12)
        XCTAssertEqual(o.learningRate(step: 51), 5e-4, accuracy: 1e-9)
        XCTAssertEqual(o.learningRate(step: 100), 9.9e-4, accuracy: 1e-9)
        XCTAssertEqual(o.learningRate(step: 101), 1e-3)
        XCTAssertEqual(o.learningRate(step: 5000), 1e-3)
        o.warmupSteps = 0
        XCTAssertEqual(o.learningRate(step: 1), 1e-3)
    }

    /// Ten steps on both backends track each other.
    func testTenStepsTrack() throws {
        let backends = try testBackends()
        guard backends.count == 2 else { throw XCTSkip("needs an OpenCL device") }
        let data = syntheticData()
        let options = tinyOptions()
        var losses: [[Float]] = []
        for backend in backends {
            let trainer = try Trainer(backend: backend, options: options)
            var l: [Float] = []
            for step in 1...10 {
                try trainer.trainStep(batch: data.batch(step: step, size: options.batch))
                l.append(try trainer.readLossAndGradientNorm().loss)
            }
            losses.append(l)
        }
        for (a, b) in zip(losses[0], losses[1]) { XCTAssertEqual(a, b, accuracy: 1e-3 * max(1, abs(a)), "\(losses)") }
    }

    /// N steps, checkpoint to disk, resume for N more == 2N straight steps, to the bit.
    func testResumeIsBitIdentical() throws {
        let data = syntheticData()
        let options = tinyOptions(dropout: 0.1)
        for backend in try testBackends() {
            let straight = try Trainer(backend: backend, options: options)
            for step in 1...4 { try straight.trainStep(batch: data.batch(step: step, size: options.batch)) }
            let expected = try straight.checkpoint()

            let first = try Trainer(backend: backend, options: options)
            for step in 1...2 { try first.trainStep(batch: data.batch(step: step, size: options.batch)) }
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("resume-\(getpid())-\(backend.name.hashValue).safetensors")
            try first.checkpoint().write(to: url)
            let loaded = try Checkpoint.read(url)
            XCTAssertEqual(loaded.step, 2)
            let second = try Trainer(backend: backend, options: loaded.options, resumeFrom: loaded)
            for step in 3...4 { try second.trainStep(batch: data.batch(step: step, size: options.batch)) }
            let resumed = try second.checkpoint()
            XCTAssertEqual(resumed.step, 4)
            for name in expected.model.names {
                XCTAssertEqual(resumed.model.values[name]!, expected.model.values[name]!, "\(backend.name): weight \(name)")
                XCTAssertEqual(resumed.ema.values[name]!, expected.ema.values[name]!, "\(backend.name): EMA \(name)")
                XCTAssertEqual(resumed.adamV.values[name]!, expected.adamV.values[name]!, "\(backend.name): Adam v \(name)")
            }
        }
    }

    /// Overfitting four images: the loss falls clearly.
    func testLossFallsOnATinySet() throws {
        let backend = try testBackends().last!
        var images = syntheticData().images
        images = Array(images.prefix(4 * 64))
        let data = TrainingData(images: images, count: 4, channels: 1, size: 8, description: "four", seed: 1)
        var options = tinyOptions()
        options.learningRate = 2e-3
        let trainer = try Trainer(backend: backend, options: options)
        var losses: [Float] = []
        for step in 1...120 {
            try trainer.trainStep(batch: data.batch(step: step, size: options.batch))
            losses.append(try trainer.readLossAndGradientNorm().loss)
        }
        let early = losses.prefix(10).reduce(0, +) / 10, late = losses.suffix(20).reduce(0, +) / 20
        XCTAssertLessThan(late, 0.6 * early, "loss did not fall: first \(losses.prefix(10)), last \(losses.suffix(20))")
    }

    /// The checkpoint refuses a file that is not one.
    func testCorruptCheckpointIsAClearError() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("not-a-checkpoint-\(getpid()).safetensors")
        try Data("garbage garbage garbage".utf8).write(to: url)
        XCTAssertThrowsError(try Checkpoint.read(url)) { XCTAssert($0 is UserError, "\($0)") }
        XCTAssertThrowsError(try Checkpoint.read(URL(fileURLWithPath: "/nonexistent/checkpoint.safetensors"))) {
            XCTAssert("\($0)".contains("no checkpoint"), "\($0)")
        }
    }

    /// The data order is a pure function of (seed, step).
    func testDataOrderIsReproducible() {
        let a = syntheticData(), b = syntheticData()
        XCTAssertEqual(a.batch(step: 5, size: 4), b.batch(step: 5, size: 4))
        XCTAssertNotEqual(a.batch(step: 5, size: 4), a.batch(step: 6, size: 4))
    }
}

/// Gradient accumulation: k micro-batches average their gradients before one optimizer step.
final class GradientAccumulationTests: XCTestCase {
    /// The gradient used for the step is the mean of the micro-batches' gradients, each evaluated at
    /// the same weights with its own Philox step ((s−1)·k + i + 1).
    func testAccumulatedGradientIsTheMean() throws {
        let data = syntheticData()
        let backend = CPUBackend()
        let plain = tinyOptions()
        let (b1, b2) = (data.batch(step: 1, size: plain.batch), data.batch(step: 2, size: plain.batch))

        let first = try Trainer(backend: backend, options: plain)
        var initial = try first.checkpoint()
        try first.trainStep(batch: b1)                       // Philox step 1
        let g1 = try first.gradientValues()
        initial.step = 1                                     // same weights, next step draws Philox step 2
        let second = try Trainer(backend: backend, options: plain, resumeFrom: initial)
        try second.trainStep(batch: b2)
        let g2 = try second.gradientValues()

        var options = plain
        options.gradientAccumulation = 2
        let accumulated = try Trainer(backend: backend, options: options)
        try accumulated.trainStep(microBatches: [b1, b2])
        let got = try accumulated.accumulatedGradientValues()
        for (name, a) in g1 {
            let mean = zip(a, g2[name]!).map { ($0 + $1) / 2 }
            // (a/2 + b/2) against (a + b)/2: one rounding apart.
            XCTAssertLessThan(nmse(got[name]!, mean), 1e-12, name)
        }
    }

    /// A run with accumulation resumes exactly too.
    func testResumeWithAccumulation() throws {
        let data = syntheticData()
        var options = tinyOptions()
        options.gradientAccumulation = 2
        let backend = CPUBackend()
        func micro(_ step: Int) -> [[Float]] { (0..<2).map { data.batch(step: (step - 1) * 2 + $0 + 1, size: options.batch) } }
        let straight = try Trainer(backend: backend, options: options)
        for s in 1...2 { try straight.trainStep(microBatches: micro(s)) }
        let first = try Trainer(backend: backend, options: options)
        try first.trainStep(microBatches: micro(1))
        let resumed = try Trainer(backend: backend, options: options, resumeFrom: try first.checkpoint())
        try resumed.trainStep(microBatches: micro(2))
        XCTAssertEqual(try resumed.checkpoint().model.values, try straight.checkpoint().model.values)
    }
}
