import DDPM
import DDPMCore
import Foundation
import XCTest

/// The committed diffusers/torch fixtures that no trajectory test reads: the schedulers' ᾱ tables,
/// add_noise/get_velocity, torch's AdamW, EMAModel's decay, the unet-tiny gradients and the
/// pipeline's uint8 images.
final class DiffusersFixtureTests: XCTestCase {
    /// ᾱ of every scheduler case equals diffusers' float32 table to the bit: torch's cumprod
    /// accumulates in double and rounds each partial product once.
    func testAlphasCumprodMatchBitForBit() throws {
        let dir = try fixture("scheduler")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix("-alphas_cumprod.npy") }
        XCTAssertGreaterThanOrEqual(names.count, 12)
        for file in names.sorted() {
            let name = String(file.dropLast("-alphas_cumprod.npy".count))
            let expected = try readNPY(dir.appendingPathComponent(file)).values
            let schedule: NoiseSchedule
            if name == "default-linear-1000" {
                schedule = NoiseSchedule(kind: .linear)
            } else {
                let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("\(name)-config.json"))) as! [String: Any]
                schedule = try NoiseSchedule(schedulerConfig: json, source: name)
            }
            let differing = zip(schedule.alphasCumprod, expected).filter { $0 != $1 }.count
            XCTAssertEqual(schedule.alphasCumprod.count, expected.count, name)
            XCTAssertEqual(differing, 0, "\(name): \(differing) of \(expected.count) ᾱ values differ from diffusers'")
        }
    }

    /// rescale_betas_zero_snr, sigmoid and trained_betas schedules read from diffusers' configs give
    /// diffusers' β and ᾱ (Fixtures/schedules).
    func testSchedulesFromConfigsMatchDiffusers() throws {
        let dir = try fixture("schedules")
        for name in ["linear-zero_snr", "scaled_linear-zero_snr", "cosine-zero_snr", "sigmoid", "exponential-trained"] {
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("\(name)-config.json"))) as! [String: Any]
            let schedule = try NoiseSchedule(schedulerConfig: json, source: name)
            let betas = try readNPY(dir.appendingPathComponent("\(name)-betas.npy")).values
            let acp = try readNPY(dir.appendingPathComponent("\(name)-alphas_cumprod.npy")).values
            XCTAssertEqual(schedule.betas.count, betas.count, name)
            if name == "sigmoid" || name.hasSuffix("zero_snr") {
                // Not bit for bit: torch.sigmoid and 1/(1 + expf(−x)) may differ by an ulp, and torch's
                // float sqrt (MKL's vsSqrt in the CPU wheels) is not correctly rounded (1 ulp off at 6 of
                // 1000 entries of the linear case), so the rescaled β inherit a few ulp. Measured:
                // ≤ 3e-7 absolute; a wrong formula moves them by 1e-3 or more.
                let worstBeta = zip(schedule.betas, betas).map { abs($0 - $1) }.max()!
                let worstAlpha = zip(schedule.alphasCumprod, acp).map { abs($0 - $1) }.max()!
                XCTAssertLessThan(worstBeta, 1e-6, "\(name): β")
                XCTAssertLessThan(worstAlpha, 1e-6, "\(name): ᾱ")
                XCTAssertEqual(schedule.alphasCumprod.last == 0, acp.last == 0, "\(name): terminal ᾱ")
                continue
            }
            XCTAssertEqual(zip(schedule.betas, betas).filter { $0 != $1 }.count, 0, "\(name): β differ from diffusers'")
            XCTAssertEqual(zip(schedule.alphasCumprod, acp).filter { $0 != $1 }.count, 0, "\(name): ᾱ differ from diffusers'")
        }
        XCTAssertEqual(try NoiseSchedule(schedulerConfig: ["beta_schedule": "linear", "rescale_betas_zero_snr": true], source: "t").alphasCumprod.last, 0)
    }

    /// The exponential schedule is the fixture's trained_betas, and a pipeline config written from it
    /// (as trained_betas, for diffusers) reads back to the same schedule.
    func testExponentialScheduleExportsAsTrainedBetas() throws {
        let expected = try readNPY(try fixture("schedules/exponential-trained-betas.npy")).values
        let schedule = NoiseSchedule(kind: .exponential, timesteps: 100, betaStart: 1e-4, betaEnd: 0.02)
        XCTAssertEqual(schedule.betas, expected)
        var settings = SchedulerSettings(schedule: schedule)
        settings.prediction = .v
        let json = try JSONSerialization.jsonObject(with: JSONSerialization.data(withJSONObject: settings.json)) as! [String: Any]
        XCTAssertEqual((json["trained_betas"] as? [NSNumber])?.count, 100)
        let back = try SchedulerSettings(json: json, source: "exported")
        XCTAssertEqual(back.schedule.alphasCumprod, schedule.alphasCumprod)
    }

    /// add_noise and get_velocity at t = 0, 1, 500, 999 from the q_sample table (what the qSample op
    /// reads): √ᾱ and √(1−ᾱ) in float32 as torch's `** 0.5`, then a·x0 + b·z and a·z − b·x0.
    func testAddNoiseAndVelocity() throws {
        let dir = try fixture("scheduler")
        let x0 = try readNPY(dir.appendingPathComponent("add_noise-x0.npy")).values
        let z = try readNPY(dir.appendingPathComponent("add_noise-noise.npy")).values
        let ts = try readNPY(dir.appendingPathComponent("add_noise-timesteps.npy")).values.map { Int($0) }
        let noisy = try readNPY(dir.appendingPathComponent("add_noise-noisy.npy")).values
        let velocity = try readNPY(dir.appendingPathComponent("add_noise-velocity.npy")).values
        let schedule = NoiseSchedule(kind: .linear)
        let table = schedule.qSampleTable
        let per = x0.count / ts.count
        for (n, t) in ts.enumerated() {
            let a = table[t], b = table[schedule.timesteps + t]
            for i in n * per..<(n + 1) * per {
                // One float32 multiply-add apart at most (torch may fuse): 1e-6 absolute on |values| ≤ 4.
                XCTAssertEqual(a * x0[i] + b * z[i], noisy[i], accuracy: 1e-6, "add_noise t=\(t)")
                XCTAssertEqual(a * z[i] - b * x0[i], velocity[i], accuracy: 1e-6, "get_velocity t=\(t)")
            }
        }
    }

    /// The adamStep op on every backend follows torch.optim.AdamW for 5 steps (lr 1e-3, wd 1e-2).
    func testAdamStepMatchesTorchAdamW() throws {
        let dir = try fixture("training")
        let p0 = try readNPY(dir.appendingPathComponent("adamw-param0.npy")).values
        let grads = try readNPY(dir.appendingPathComponent("adamw-grads.npy")).values
        let expected = try readNPY(dir.appendingPathComponent("adamw-params.npy")).values
        let n = p0.count, shape = Shape(n)
        for backend in try testBackends() {
            let (p, m, v) = (try backend.makeBuffer(p0), try backend.makeBuffer(count: n), try backend.makeBuffer(count: n))
            try backend.write([Float](repeating: 0, count: n), to: m)
            try backend.write([Float](repeating: 0, count: n), to: v)
            let stats = try backend.makeBuffer([0, 1])   // clip factor 1
            for step in 1...5 {
                let g = try backend.makeBuffer(Array(grads[(step - 1) * n..<step * n]))
                let adam = Adam(learningRate: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2, step: step)
                try backend.run(.adamStep(adam), inputs: [TensorRef(g, shape), TensorRef(stats, Shape(2)),
                                                          TensorRef(p, shape), TensorRef(m, shape), TensorRef(v, shape)],
                                outputs: [TensorRef(p, shape), TensorRef(m, shape), TensorRef(v, shape)], step: 0)
                let ours = try backend.read(p, count: n), torch = Array(expected[(step - 1) * n..<step * n])
                for i in 0..<n {
                    // float32 round-off of a few operations on |p| ≤ 3: 2 ulp-scale, far below one lr step (1e-3).
                    XCTAssertEqual(ours[i], torch[i], accuracy: 1e-6 * max(1, abs(torch[i])), "\(backend.name) step \(step) element \(i)")
                }
            }
        }
    }

    /// TrainingOptions.emaDecay is EMAModel.get_decay with use_ema_warmup, and the rate 1 − decay
    /// given to the emaUpdate op is formed in double as torch does (Python float), then rounded once.
    func testEMADecayMatchesDiffusers() throws {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: try fixture("training/ema-decay.json"))) as! [String: Any]
        let steps = (json["steps"] as! [Int])
        let cases = json["cases"] as! [String: Any]
        let unconditional = cases["train_unconditional"] as! [String: Any]
        let decays = (unconditional["decay"] as! [NSNumber]).map(\.doubleValue)
        var options = TrainingOptions(model: ModelPreset.tiny.config)
        options.emaMaxDecay = 0.9999
        options.emaPower = 0.75
        options.emaInvGamma = 1
        for (step, expected) in zip(steps, decays) {
            XCTAssertEqual(options.emaDecay(step: step), expected, accuracy: 1e-15, "step \(step)")
            XCTAssertEqual(options.emaRate(step: step), Float(1 - expected), "1 − decay at step \(step)")
        }
        // Far enough that the warmup decay exceeds the cap 0.9999.
        XCTAssertEqual(options.emaDecay(step: 10_000_000), 0.9999)
        XCTAssertEqual(options.emaRate(step: 10_000_000), Float(1e-4), "1 − 0.9999 must be 1e-4, not 1.000166e-4")
    }

    /// d(MSE)/d(parameter) of unet-tiny, for every parameter, equals torch's gradients.
    func testUNetTinyGradientsMatchTorch() throws {
        let dir = try fixture("unet-tiny")
        let config = try UNetConfig.load(dir.appendingPathComponent("config.json"))
        let input = try readNPY(dir.appendingPathComponent("input.npy"))
        let timesteps = try readNPY(dir.appendingPathComponent("timesteps.npy")).values
        let target = try readNPY(dir.appendingPathComponent("grad-target.npy")).values
        let expectedLoss = try readNPY(dir.appendingPathComponent("grad-loss.npy")).values[0]
        let expected = try readSafetensors(dir.appendingPathComponent("grads.safetensors")).tensors
        let net = UNet(config: config, batch: input.shape[0])
        let graph = net.graph
        let targetValue = graph.input("target", graph.shape(net.output))
        let loss = graph(.mse(weighted: false), net.output, targetValue)
        let parameters = graph.parameters.map { ($0.name, $0.value) }
        let gradients = graph.gradients(of: loss, wrt: parameters.map(\.1))
        var weights = Weights(graph: graph)
        try weights.load(readSafetensors(dir.appendingPathComponent("diffusion_pytorch_model.safetensors")), source: "unet-tiny")
        for backend in try testBackends() {
            let executor = try Executor(graph: graph, outputs: [loss] + gradients, backend: backend)
            for (name, value) in graph.parameters { executor.bind(value, to: try backend.makeBuffer(weights.values[name]!)) }
            executor.bind(net.sample, to: try backend.makeBuffer(input.values))
            executor.bind(net.timesteps, to: try backend.makeBuffer(timesteps))
            executor.bind(targetValue, to: try backend.makeBuffer(target))
            try executor.run(step: 0)
            let l = try backend.read(executor.buffer(loss), count: 1)[0]
            XCTAssertEqual(l, expectedLoss, accuracy: 1e-6 * max(1, abs(expectedLoss)), backend.name)
            XCTAssertEqual(Set(expected.keys), Set(parameters.map(\.0)))
            for ((name, _), g) in zip(parameters, gradients) {
                let ours = try backend.read(executor.buffer(g), count: graph.shape(g).count)
                let torch = expected[name]!.values
                if name.hasSuffix("to_k.bias") {
                    // Exactly zero in exact arithmetic (softmax ignores a per-query constant); both sides
                    // hold only round-off, so check that it is negligible instead of comparing noise.
                    XCTAssertLessThan(ours.map(abs).max()!, 1e-6, "\(backend.name): \(name) should be ~0")
                    XCTAssertLessThan(torch.map(abs).max()!, 1e-6, "torch: \(name) should be ~0")
                    continue
                }
                // Other summation orders through ~20 layers; measured far below this, a wrong rule ≥ 1e-3.
                XCTAssertLessThan(nmse(ours, torch), 1e-8, "\(backend.name): gradient of \(name)")
            }
        }
    }

    /// diffusers' uint8 images of the tiny pipeline equal our conversion of its float images.
    func testPipelineUInt8Images() throws {
        let dir = try fixture("pipeline-tiny")
        let images = try readNPY(dir.appendingPathComponent("images.npy")).values
        let expected = try readNPY(dir.appendingPathComponent("images_uint8.npy")).values.map { UInt8($0) }
        XCTAssertEqual(toUInt8(images), expected)
    }
}
