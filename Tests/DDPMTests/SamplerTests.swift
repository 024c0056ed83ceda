import DDPM
import DDPMCore
import DDPMCPU
import Foundation
import XCTest

/// Our DDPM/DDIM steps reproduce diffusers' DDPMScheduler and DDIMScheduler trajectories, and a
/// saved DDPMPipeline samples the same images as diffusers when fed the same noise.
final class SamplerTests: XCTestCase {
    /// The scheduler cases feed a fake model (0.5·tanh(x) + 0.001·t) so only the update is tested.
    /// Our coefficients are computed in double from the float32 ᾱ table; diffusers evaluates them in
    /// float32: over 50 steps the trajectories agree to ~1e-6 absolute, well inside 1e-4.
    func testSchedulerTrajectoriesMatchDiffusers() throws {
        let dir = try fixture("scheduler")
        let cases = ["ddpm-linear-fixed_small", "ddpm-linear-fixed_large", "ddpm-cosine-v", "ddpm-scaled_linear-sample",
                     "ddpm-leading25-offset1", "ddim-eta0-leading", "ddim-eta1-trailing", "ddim-linspace-v",
                     "ddpm-threshold", "ddim-threshold", "ddpm-learned_range", "ddpm-learned_range-respaced"]
        let initial = try readNPY(dir.appendingPathComponent("init_noise.npy"))
        for backend in try testBackends() {
            for name in cases {
                let configData = try Data(contentsOf: dir.appendingPathComponent("\(name)-config.json"))
                let json = try JSONSerialization.jsonObject(with: configData) as! [String: Any]
                let fixtureInfo = json["_fixture"] as! [String: Any]
                let settings = try SchedulerSettings(json: json, source: name)
                let steps = fixtureInfo["num_inference_steps"] as! Int
                let sampler: SamplerKind = name.hasPrefix("ddim") ? .ddim(eta: (fixtureInfo["eta"] as! NSNumber).floatValue) : .ddpm
                let expectedTimesteps = try readNPY(dir.appendingPathComponent("\(name)-timesteps.npy")).values.map { Int($0) }
                let plan = settings.reverseSteps(sampler, count: steps, seed: 0)
                XCTAssertEqual(plan.map(\.t), expectedTimesteps, name)
                let noise = try readNPY(dir.appendingPathComponent("\(name)-noise.npy")).values
                let trajectory = try readNPY(dir.appendingPathComponent("\(name)-trajectory.npy")).values
                let per = initial.values.count
                let shape = Shape(initial.shape)
                var x = initial.values
                for (i, step) in plan.enumerated() {
                    let model = x.map { 0.5 * tanhf($0) + 0.001 * Float(step.t) }
                    var op = step.op
                    let sigma = op.sigma
                    op.sigma = 0   // add the fixture's noise on the host instead of Philox's
                    // The learned-variance case's model also outputs v = 0.8·tanh(0.7x) (make-fixtures).
                    let variance = op.learnedVariance ? x.map { 0.8 * tanhf(0.7 * $0) } : nil
                    let next = try ancestralStep(op, sampler: sampler, settings: settings, backend: backend, x: x, model: model,
                                                 variance: variance, shape: shape, step: 0)
                    let v = x.map { 0.8 * tanhf(0.7 * $0) }
                    x = next
                    for j in 0..<per {
                        let f = (v[j] + 1) / 2
                        let learned = op.learnedVariance ? expf(0.5 * (f * op.maxLog + (1 - f) * op.minLog)) : 1
                        x[j] += sigma * learned * noise[i * per + j]
                    }
                    let expected = Array(trajectory[i * per..<(i + 1) * per])
                    let worst = zip(x, expected).map { abs($0 - $1) }.max()!
                    XCTAssertLessThan(worst, 1e-4, "\(name) on \(backend.name): step \(i) (t=\(step.t)) differs by \(worst)")
                    if worst >= 1e-4 { break }
                }
            }
        }
    }

    /// The sampler op's own noise path against diffusers: make-fixtures feeds diffusers the Philox
    /// normals (a Python port of Philox.swift) that the op draws for (seed, image, step = t), so here
    /// σ stays in the op and the CPU reference and the OpenCL kernel draw and scale the noise
    /// themselves, including the learned-variance σ and DDIM's η noise.
    func testSamplerOpNoiseMatchesDiffusers() throws {
        let dir = try fixture("scheduler-philox")
        let initial = try readNPY(dir.appendingPathComponent("init_noise.npy"))
        let shape = Shape(initial.shape)
        let per = initial.values.count, perImage = per / shape[0]
        for name in ["ddpm-linear-fixed_small", "ddpm-learned_range", "ddim-eta1-trailing"] {
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("\(name)-config.json"))) as! [String: Any]
            let info = json["_fixture"] as! [String: Any]
            let seed = (info["philox_seed"] as! NSNumber).uint64Value
            let settings = try SchedulerSettings(json: json, source: name)
            let sampler: SamplerKind = name.hasPrefix("ddim") ? .ddim(eta: (info["eta"] as! NSNumber).floatValue) : .ddpm
            let plan = settings.reverseSteps(sampler, count: info["num_inference_steps"] as! Int, seed: seed)
            let noise = try readNPY(dir.appendingPathComponent("\(name)-noise.npy")).values
            let trajectory = try readNPY(dir.appendingPathComponent("\(name)-trajectory.npy")).values
            // The Python port draws exactly our normals (else the comparison below means nothing).
            for (i, step) in plan.enumerated() {
                for j in 0..<per {
                    let z = Philox.normal(seed: seed, index: j % perImage, image: UInt32(j / perImage), step: UInt32(step.t), stream: RandomStream.samplerNoise)
                    XCTAssertEqual(z, noise[i * per + j], "\(name): Philox normal \(j) of step \(i)")
                }
            }
            for backend in try testBackends() {
                var x = initial.values
                for (i, step) in plan.enumerated() {
                    let model = x.map { 0.5 * tanhf($0) + 0.001 * Float(step.t) }
                    let variance = step.op.learnedVariance ? x.map { 0.8 * tanhf(0.7 * $0) } : nil
                    x = try ancestralStep(step.op, sampler: sampler, settings: settings, backend: backend, x: x, model: model,
                                          variance: variance, shape: shape, step: UInt32(step.t))
                    let worst = zip(x, trajectory[i * per..<(i + 1) * per]).map { abs($0 - $1) }.max()!
                    // As the DDIM fixtures: coefficients in double vs diffusers' float32.
                    XCTAssertLessThan(worst, 1e-4, "\(name) on \(backend.name): step \(i) (t=\(step.t)) differs by \(worst)")
                    if worst >= 1e-4 { break }
                }
            }
        }
    }

    /// DPM-Solver++ (1, 2M, 3M, 2M-SDE; Karras, exponential σ), UniPC (bh1/bh2, orders 1–3, predict_x0 or ε,
    /// corrector disabled on some steps, lower_order_final, Karras, exponential σ), Euler (Karras,
    /// exponential σ), Euler ancestral and Heun (Karras, exponential σ, clipping) against diffusers'
    /// schedulers, step by step, on every backend: every spacing; 3, 7, 12, 20 and 61 steps; ε, v and x₀
    /// prediction; thresholding. The timesteps exactly, x to 1e-4 (relative above 1; our coefficients in
    /// double, diffusers' in float32).
    func testSolverTrajectoriesMatchDiffusers() throws {
        let dir = try fixture("solvers")
        let initial = try readNPY(dir.appendingPathComponent("init_noise.npy"))
        let shape = Shape(initial.shape)
        let per = initial.values.count
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix("-config.json") }
            .map { String($0.dropLast("-config.json".count)) }.sorted()
        XCTAssertGreaterThanOrEqual(names.count, 79)
        var worstOverall: [String: Float] = [:]
        for name in names {
            // diffusers writes "lambda_min_clipped": -Infinity: Python's JSON.
            let json = try PythonJSON.object(Data(contentsOf: dir.appendingPathComponent("\(name)-config.json")), source: name)
            let info = json["_fixture"] as! [String: Any]
            let settings = try SchedulerSettings(json: json, source: name)
            let seed = (info["philox_seed"] as! NSNumber).uint64Value
            let steps = info["num_inference_steps"] as! Int
            let kind = try XCTUnwrap(SamplerKind.named(byScheduler: json, source: name), name)
            let plan = try XCTUnwrap(settings.solverSteps(kind, count: steps))
            // σ-space solvers: the σ of each step's input and output (see below); none for the multistep ones.
            let sigmaSpace: [Double]
            switch kind {
            case .euler(let euler): sigmaSpace = settings.eulerTimesteps(count: steps, euler: euler).sigmas
            case .heun(let heun): sigmaSpace = settings.heunSigmas(count: steps, heun: heun)
            default: sigmaSpace = []
            }
            var expectedTimesteps = try readNPY(dir.appendingPathComponent("\(name)-timesteps.npy")).values
            var compared = plan.count
            if expectedTimesteps.contains(-1) {
                // numpy's trailing arange adds t = −1 (see SpacingTests); diffusers then steps to σ(−1) = σ_0 and
                // once more to 0, where we step to 0 directly: the runs agree up to the last step.
                XCTAssertEqual(expectedTimesteps.last, -1, name)
                expectedTimesteps = Array(expectedTimesteps.prefix(plan.count - 1))
                compared -= 1
            }
            // Karras/exponential σ-space timesteps are fractional (_sigma_to_t over numpy's float32 log σ
            // table): a few differ from ours by up to 4 float32 ulps (12.006904 vs 12.006907: 3e-7 relative),
            // which moves the model's input timestep by that much; every other timestep matches exactly.
            let ours = plan.prefix(expectedTimesteps.count).map { Float($0.modelTimestep) }
            XCTAssertEqual(ours.count, expectedTimesteps.count, name)
            for (a, b) in zip(ours, expectedTimesteps) { XCTAssertLessThanOrEqual(abs(a - b), 5e-7 * max(1, abs(b)), "\(name): timestep \(a) vs \(b)") }
            let trajectory = try readNPY(dir.appendingPathComponent("\(name)-trajectory.npy")).values
            XCTAssertGreaterThanOrEqual(trajectory.count, compared * per, name)
            // diffusers starts linspace/trailing σ-space runs at σ_max·z, where our model input is z.
            let initScale = Float((info["init_scale"] as? NSNumber)?.doubleValue ?? 1)
            // Stepped by diffusers in float64 (heun-sample-cosine-7: its float32 run is 1.3% off the exact one,
            // see FLOAT64_CASES in make-fixtures): no float32 round-off of diffusers' to allow for, so the bound
            // is 1e-4 relative to the value alone.
            let exactReference = info["dtype"] as? String == "float64"
            for backend in try testBackends() {
                let steps = try MultistepSteps(plan: plan, settings: settings, backend: backend, shape: shape)
                var x = initial.values.map { $0 * initScale }
                var carried = 1.0
                for (i, step) in plan.prefix(compared).enumerated() {
                    // make-fixtures rounds the model's timestep half to even (torch.round), half up for euler_a.
                    let t = name.hasPrefix("euler_a") ? Float(step.t) : Float(step.modelTimestep.rounded(.toNearestOrEven))
                    let model = x.map { 0.5 * tanhf($0) + 0.001 * t }
                    let next = try steps.step(i, step, x: x, model: model, seed: seed)
                    // σ-space solvers: diffusers holds x_σ = √(σ²+1)·x in float32 (σ_max ≈ 157 for the linear
                    // schedule, ~10⁴ for cosine), so its round-off is relative to s·|x| of the step's input, seen
                    // in our x scale after dividing by the next step's s'. The bound is 1e-4 of that.
                    let scale = sigmaSpace.isEmpty ? 1 : (sigmaSpace[i] * sigmaSpace[i] + 1).squareRoot() * Double(x.map(abs).max()!)
                        / (sigmaSpace[i + 1] * sigmaSpace[i + 1] + 1).squareRoot()
                    if !exactReference { carried = max(carried, scale) }   // earlier steps' round-off is carried along
                    x = next
                    // 1e-4 absolute, relative above 1: with ε-prediction the fake model's x̂0 = x/√ᾱ grows to
                    // ~300 near t = T (DPM-Solver++ does not clip), where float32 round-off alone is 1e-4
                    // absolute (measured ≤ 1.6e-4 at |x| ≤ 640, i.e. 5e-7 relative).
                    let worst = zip(x, trajectory[i * per..<(i + 1) * per]).map { abs($0 - $1) / max(1, abs($1), Float(carried)) }.max()!
                    let family = String(name.prefix { $0 != "-" })
                    worstOverall[family] = max(worstOverall[family] ?? 0, worst)
                    XCTAssertLessThan(worst, 1e-4, "\(name) on \(backend.name): step \(i) (t=\(step.t)) differs by \(worst)")
                    if worst >= 1e-4 { break }
                }
            }
        }
        print("solver fixtures: largest per-step difference by family \(worstOverall.sorted { $0.key < $1.key })")
    }

    /// Unsupported DPMSolverMultistepScheduler options are refused with what to pass instead.
    func testUnsupportedDPMSolverOptionsAreRefused() {
        for (key, value, hint) in [("algorithm_type", "dpmsolver" as Any, "dpmsolver++"), ("solver_type", "heun", "midpoint"),
                                   ("use_lu_lambdas", true, "false"), ("final_sigmas_type", "denoise_to_zero", "sigma_min"),
                                   ("lambda_min_clipped", -5.1, "-Infinity")] {
            XCTAssertThrowsError(try DPMSolverSettings(json: [key: value], source: "cfg")) { XCTAssert("\($0)".contains(hint), "\($0)") }
        }
        XCTAssertThrowsError(try DPMSolverSettings(json: ["algorithm_type": "sde-dpmsolver++", "solver_order": 3], source: "cfg"))
    }

    /// The tiny DDPMPipeline saved by diffusers, sampled for 20 steps with diffusers' noise, gives
    /// diffusers' images (U-Net and scheduler together). Measured: at most 2e-6 apart; 1e-4 allows for
    /// other summation orders while any wrong coefficient or layer moves pixels by 1e-2 or more.
    func testPipelineMatchesDiffusers() throws {
        let dir = try fixture("pipeline-tiny")
        let pipeline = try LoadedPipeline.load(dir)
        let initial = try readNPY(dir.appendingPathComponent("init_noise.npy"))
        let stepNoise = try readNPY(dir.appendingPathComponent("step_noise.npy")).values
        let expected = try readNPY(dir.appendingPathComponent("images.npy")).values
        let batch = initial.shape[0], per = initial.values.count / batch
        for backend in try testBackends() {
            let net = UNet(config: pipeline.config, batch: batch)
            let executor = try Executor(graph: net.graph, outputs: [net.output], backend: backend)
            for (name, value) in net.graph.parameters { executor.bind(value, to: try backend.makeBuffer(pipeline.weights.values[name]!)) }
            var x = initial.values
            let shape = net.graph.shape(net.sample)
            for (i, step) in pipeline.settings.reverseSteps(.ddpm, count: 20, seed: 0).enumerated() {
                executor.bind(net.sample, to: try backend.makeBuffer(x))
                executor.bind(net.timesteps, to: try backend.makeBuffer([Float](repeating: Float(step.t), count: batch)))
                try executor.run(step: 0)
                var op = step.op
                let sigma = op.sigma
                op.sigma = 0
                let out = try backend.makeBuffer(count: x.count)
                try backend.run(.samplerStep(op), inputs: [TensorRef(try backend.makeBuffer(x), shape), executor.tensor(net.output)],
                                outputs: [TensorRef(out, shape)], step: 0)
                x = try backend.read(out, count: x.count)
                for j in 0..<x.count { x[j] += sigma * stepNoise[i * batch * per + j] }
            }
            let worst = zip(x, expected).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(worst, 1e-4, "pipeline-tiny on \(backend.name): max difference \(worst)")
        }
    }

    /// Image i depends only on (seed, i): sampling 3 images in batches of 2 gives the same images as
    /// one batch of 3, and the same on every backend.
    func testImagesDependOnlyOnSeedAndIndex() throws {
        let net = UNet(config: ModelPreset.tiny.config, batch: 1)
        var weights = Weights(graph: net.graph)
        weights.initialize(seed: 4)
        let settings = SchedulerSettings(schedule: NoiseSchedule(kind: .linear, timesteps: 30))
        var results: [[Float]] = []
        for backend in try testBackends() {
            for deviceBatch in [3, 2] {
                let sampler = try Sampler(backend: backend, config: ModelPreset.tiny.config, weights: weights, settings: settings, batch: deviceBatch)
                results.append(try sampler.sample(count: 3, seed: 11, sampler: .ddpm, steps: 30))
            }
        }
        XCTAssertEqual(results[0], results[1], "batch size changed the images")
        for r in results.dropFirst(2) { XCTAssertLessThan(nmse(r, results[0]), 1e-8, "the backends disagree") }
    }

    /// DPM-Solver++ through the Sampler: the SDE variant's image i depends only on (seed, i) across
    /// device batch sizes, the backends agree, and 2M and 3M differ (the history is used).
    func testDPMSolverSamplesDependOnlyOnSeedAndIndex() throws {
        let net = UNet(config: ModelPreset.tiny.config, batch: 1)
        var weights = Weights(graph: net.graph)
        weights.initialize(seed: 4)
        let settings = SchedulerSettings(schedule: NoiseSchedule(kind: .linear, timesteps: 100))
        var results: [[Float]] = []
        for backend in try testBackends() {
            for deviceBatch in [3, 2] {
                let sampler = try Sampler(backend: backend, config: ModelPreset.tiny.config, weights: weights, settings: settings, batch: deviceBatch)
                results.append(try sampler.sample(count: 3, seed: 11, sampler: .dpmSolver(DPMSolverSettings(algorithm: .sde, order: 2, karras: true)), steps: 7))
            }
        }
        XCTAssert(results[0].allSatisfy(\.isFinite))
        XCTAssertEqual(results[0], results[1], "batch size changed the images")
        for r in results.dropFirst(2) { XCTAssertLessThan(nmse(r, results[0]), 1e-8, "the backends disagree") }
        let cpu = try Sampler(backend: CPUBackend(), config: ModelPreset.tiny.config, weights: weights, settings: settings, batch: 3)
        let second = try cpu.sample(count: 3, seed: 11, sampler: .dpmSolver(DPMSolverSettings(order: 2)), steps: 12)
        let third = try cpu.sample(count: 3, seed: 11, sampler: .dpmSolver(DPMSolverSettings(order: 3)), steps: 12)
        XCTAssertNotEqual(second, third)
    }

    /// UniPC (whose corrector keeps the previous step's input in a rotating set of buffers, and whose
    /// order-3 corrector sums four predictions in two ops) and Heun through the Sampler: the same images
    /// as the step-by-step reference loop of the fixture test, whatever the device batch, on every backend.
    func testUniPCAndHeunThroughTheSamplerMatchTheStepLoop() throws {
        let config = ModelPreset.tiny.config
        let net = UNet(config: config, batch: 3)
        var weights = Weights(graph: net.graph)
        weights.initialize(seed: 4)
        let settings = SchedulerSettings(schedule: NoiseSchedule(kind: .linear, timesteps: 100))
        let cpu = CPUBackend()
        let executor = try Executor(graph: net.graph, outputs: [net.output], backend: cpu)
        for (name, value) in net.graph.parameters { executor.bind(value, to: try cpu.makeBuffer(weights.values[name]!)) }
        let shape = net.graph.shape(net.sample)
        var unipc3 = UniPCSettings(order: 3)
        unipc3.disableCorrector = [2]
        for kind in [SamplerKind.unipc(unipc3), .unipc(UniPCSettings(karras: true)), .heun(HeunSettings(ramp: .exponential))] {
            let plan = try XCTUnwrap(settings.solverSteps(kind, count: 7))
            let first = try Sampler(backend: cpu, config: config, weights: weights, settings: settings, batch: 3)
            var x = (0..<3).flatMap { first.initialNoise(image: $0, seed: 11) }
            let steps = try MultistepSteps(plan: plan, settings: settings, backend: cpu, shape: shape)
            for (i, step) in plan.enumerated() {
                executor.bind(net.sample, to: try cpu.makeBuffer(x))
                executor.bind(net.timesteps, to: try cpu.makeBuffer([Float](repeating: Float(step.modelTimestep), count: 3)))
                try executor.run(step: 0)
                x = try steps.step(i, step, x: x, model: try cpu.read(executor.buffer(net.output), count: shape.count), seed: 11)
            }
            for backend in try testBackends() {
                for deviceBatch in [3, 2] {
                    let sampler = try Sampler(backend: backend, config: config, weights: weights, settings: settings, batch: deviceBatch)
                    let images = try sampler.sample(count: 3, seed: 11, sampler: kind, steps: 7)
                    XCTAssertLessThan(nmse(images, x), 1e-10, "\(kind) on \(backend.name), device batch \(deviceBatch)")
                }
            }
        }
    }

    /// Unsupported UniPC, Heun and σ-ramp options are refused with what to pass instead.
    func testUnsupportedUniPCAndHeunOptionsAreRefused() {
        for (json, hint) in [(["solver_type": "bh1"] as [String: Any], "sigma_min"), (["predict_x0": false], "sigma_min"),
                             (["lower_order_final": false], "lower_order_final to true"), (["solver_order": 4], "1, 2 or 3"),
                             (["solver_type": "bh3"], "bh1 or bh2"), (["use_beta_sigmas": true], "use_exponential_sigmas"),
                             (["use_karras_sigmas": true, "use_exponential_sigmas": true], "one of them"),
                             (["sigma_min": 0.1], "null"), (["solver_p": ["_class_name": "DDIMScheduler"]], "null"),
                             (["disable_corrector": "all"], "list")] {
            XCTAssertThrowsError(try UniPCSettings(json: json, source: "cfg")) { XCTAssert("\($0)".contains(hint), "\(json): \($0)") }
        }
        XCTAssertNoThrow(try UniPCSettings(json: ["solver_type": "bh1", "final_sigmas_type": "sigma_min", "sigma_min": NSNull()], source: "cfg"))
        XCTAssertThrowsError(try HeunSettings(json: ["use_beta_sigmas": true], source: "cfg"))
        XCTAssertThrowsError(try SamplerKind.resolve(.eulerAncestral, sigmas: .karras, eta: 0, scheduler: nil)) {
            XCTAssert("\($0)".contains("--sampler euler"), "\($0)")
        }
        XCTAssertThrowsError(try SamplerKind.resolve(.ddim, sigmas: .exponential, eta: 0, scheduler: nil))
        // The scheduler config's options are kept when --sampler names its family.
        var unipc = UniPCSettings(order: 3)
        unipc.solverType = .bh1
        XCTAssertEqual(try SamplerKind.resolve(.unipc, sigmas: .karras, eta: 0, scheduler: .unipc(unipc)),
                       .unipc({ var u = unipc; u.ramp = .karras; return u }()))
    }

    /// A model with out_channels = 2·in_channels (ε and the variance weight) samples with learned
    /// variance, the same on every backend, and the variance half changes the result.
    func testLearnedVarianceModelSamples() throws {
        var config = ModelPreset.tiny.config
        config.outChannels = 2
        let net = UNet(config: config, batch: 1)
        var weights = Weights(graph: net.graph)
        weights.initialize(seed: 9)
        var learned = SchedulerSettings(schedule: NoiseSchedule(kind: .linear, timesteps: 20))
        learned.variance = .learnedRange
        var fixed = learned
        fixed.variance = .fixedSmall
        var results: [[Float]] = []
        for backend in try testBackends() {
            let sampler = try Sampler(backend: backend, config: config, weights: weights, settings: learned, batch: 2)
            results.append(try sampler.sample(count: 2, seed: 5, sampler: .ddpm, steps: 20))
        }
        XCTAssert(results[0].allSatisfy(\.isFinite))
        for r in results.dropFirst() { XCTAssertLessThan(nmse(r, results[0]), 1e-8) }
        let plain = try Sampler(backend: CPUBackend(), config: config, weights: weights, settings: fixed, batch: 2)
        XCTAssertNotEqual(try plain.sample(count: 2, seed: 5, sampler: .ddpm, steps: 20), results[0])
    }

    func testTimestepSpacingsMatchDiffusers() {
        var s = SchedulerSettings(schedule: NoiseSchedule(kind: .linear))
        s.spacing = .trailing
        XCTAssertEqual(s.timesteps(count: 4), [999, 749, 499, 249])
        s.spacing = .linspace
        XCTAssertEqual(s.timesteps(count: 4), [999, 666, 333, 0])
        s.spacing = .leading
        s.stepsOffset = 1
        XCTAssertEqual(s.timesteps(count: 4), [751, 501, 251, 1])
    }

    func testPickleWeightsAreRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pickle-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: try fixture("unet-tiny/config.json"), to: dir.appendingPathComponent("config.json"))
        try Data([0x80, 0x02]).write(to: dir.appendingPathComponent("diffusion_pytorch_model.bin"))
        XCTAssertThrowsError(try LoadedPipeline.load(dir)) { XCTAssert("\($0)".contains("pickle"), "\($0)") }
    }
}
