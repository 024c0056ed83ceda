import DDPM
import DDPMCore
import DDPMCPU
import Foundation
import XCTest

/// Class-conditional U-Nets (diffusers' num_class_embeds) and classifier-free guidance, against the
/// diffusers fixture unet-conditional (scripts/make-conditioning-fixtures).
final class ConditioningTests: XCTestCase {
    struct Fixture {
        let config: UNetConfig
        let weights: Weights
        let input: [Float], timesteps: [Float], labels: [Float]
        let batch: Int
    }

    func load() throws -> Fixture {
        let dir = try fixture("unet-conditional")
        let config = try UNetConfig.load(dir.appendingPathComponent("config.json"))
        var weights = Weights(graph: UNet(config: config, batch: 1).graph)
        try weights.load(readSafetensors(dir.appendingPathComponent("diffusion_pytorch_model.safetensors")), source: "unet-conditional")
        let input = try readNPY(dir.appendingPathComponent("input.npy"))
        return Fixture(config: config, weights: weights, input: input.values,
                       timesteps: try readNPY(dir.appendingPathComponent("timesteps.npy")).values,
                       labels: try readNPY(dir.appendingPathComponent("class_labels.npy")).values, batch: input.shape[0])
    }

    /// Runs `net` once with the fixture's weights, input and timesteps (labels given separately).
    func evaluate(_ graph: Graph, sample: Value, timesteps: Value, labels: Value?, output: Value, labelValues: [Float],
                  _ f: Fixture, on backend: Backend) throws -> [Float] {
        let executor = try Executor(graph: graph, outputs: [output], backend: backend)
        for (name, value) in graph.parameters { executor.bind(value, to: try backend.makeBuffer(f.weights.values[name]!)) }
        executor.bind(sample, to: try backend.makeBuffer(f.input))
        executor.bind(timesteps, to: try backend.makeBuffer(f.timesteps))
        if let labels { executor.bind(labels, to: try backend.makeBuffer(labelValues)) }
        try executor.run(step: 0)
        return try backend.read(executor.buffer(output), count: graph.shape(output).count)
    }

    func testConfigAndParameterNamesMatchDiffusers() throws {
        let f = try load()
        XCTAssertEqual(f.config.numClassEmbeds, 11)
        XCTAssert(f.config.isClassConditional)
        let listed = try String(contentsOf: try fixture("unet-conditional/param_names.txt"), encoding: .utf8)
            .split(separator: "\n").map { String($0.split(separator: " ")[0]) }
        XCTAssertEqual(Set(UNet(config: f.config, batch: 1).graph.parameters.map(\.name)), Set(listed))
        // The exported config.json reads back the same (num_class_embeds survives).
        XCTAssertEqual(try JSONDecoder().decode(UNetConfig.self, from: f.config.jsonData()), f.config)
    }

    /// Our conditional U-Net reproduces model(x, t, class_labels=y).sample of diffusers.
    func testOutputMatchesDiffusers() throws {
        let f = try load()
        let expected = try readNPY(try fixture("unet-conditional/output.npy")).values
        let net = UNet(config: f.config, batch: f.batch)
        for backend in try testBackends() {
            let out = try evaluate(net.graph, sample: net.sample, timesteps: net.timesteps, labels: net.classLabels,
                                   output: net.output, labelValues: f.labels, f, on: backend)
            // As UNetFixtureTests: other summation orders stay far below 1e-9; a wrong layer gives ≥ 1e-3.
            XCTAssertLessThan(nmse(out, expected), 1e-9, backend.name)
            // The labels matter: other classes give another output.
            let other = try evaluate(net.graph, sample: net.sample, timesteps: net.timesteps, labels: net.classLabels,
                                     output: net.output, labelValues: [4, 0, 7], f, on: backend)
            XCTAssertGreaterThan(nmse(other, expected), 1e-4, backend.name)
        }
    }

    /// d(MSE)/d(parameter), class_embedding.weight included, equals torch's gradients.
    func testGradientsMatchTorch() throws {
        let f = try load()
        let dir = try fixture("unet-conditional")
        let target = try readNPY(dir.appendingPathComponent("grad-target.npy")).values
        let expectedLoss = try readNPY(dir.appendingPathComponent("grad-loss.npy")).values[0]
        let expected = try readSafetensors(dir.appendingPathComponent("grads.safetensors")).tensors
        let net = UNet(config: f.config, batch: f.batch)
        let graph = net.graph
        let targetValue = graph.input("target", graph.shape(net.output))
        let loss = graph(.mse(weighted: false), net.output, targetValue)
        let parameters = graph.parameters
        let gradients = graph.gradients(of: loss, wrt: parameters.map(\.value))
        for backend in try testBackends() {
            let executor = try Executor(graph: graph, outputs: [loss] + gradients, backend: backend)
            for (name, value) in parameters { executor.bind(value, to: try backend.makeBuffer(f.weights.values[name]!)) }
            executor.bind(net.sample, to: try backend.makeBuffer(f.input))
            executor.bind(net.timesteps, to: try backend.makeBuffer(f.timesteps))
            executor.bind(net.classLabels!, to: try backend.makeBuffer(f.labels))
            executor.bind(targetValue, to: try backend.makeBuffer(target))
            try executor.run(step: 0)
            XCTAssertEqual(try backend.read(executor.buffer(loss), count: 1)[0], expectedLoss, accuracy: 1e-6 * max(1, abs(expectedLoss)))
            XCTAssertEqual(Set(expected.keys), Set(parameters.map(\.name)))
            for ((name, _), g) in zip(parameters, gradients) where !name.hasSuffix("to_k.bias") {
                // to_k.bias is exactly zero in exact arithmetic (see DiffusersFixtureTests); others as there.
                let ours = try backend.read(executor.buffer(g), count: graph.shape(g).count)
                XCTAssertLessThan(nmse(ours, expected[name]!.values), 1e-8, "\(backend.name): gradient of \(name)")
            }
        }
    }

    /// One batched call with guidance w = 2 equals diffusers' guidance_scale 3 (ε_u + 3·(ε_c − ε_u)).
    func testGuidedOutputMatchesDiffusersGuidanceScale() throws {
        let f = try load()
        let expected = try readNPY(try fixture("unet-conditional/guided-w2.npy")).values
        let guided = GuidedUNet(config: f.config, batch: f.batch, conditioning: ClassConditioning(labels: [0], guidance: 2, nullClass: 10))
        // One U-Net: a single class-embedding lookup over 2N labels.
        XCTAssertEqual(guided.graph.nodes.filter { $0.op == .embedding }.count, 1)
        XCTAssertEqual(guided.graph.shape(guided.output), Shape(3, 1, 8, 8))
        for backend in try testBackends() {
            let out = try evaluate(guided.graph, sample: guided.sample, timesteps: guided.timesteps, labels: guided.classLabels,
                                   output: guided.output, labelValues: f.labels, f, on: backend)
            // ε_u + 3(ε_c − ε_u) and 3ε_c − 2ε_u round differently: 1e-9 as the U-Net itself.
            XCTAssertLessThan(nmse(out, expected), 1e-9, backend.name)
        }
    }

    /// w = 0 through the batched 2N call equals the plain conditional model (the first half is the
    /// conditional one), and a learned-variance model keeps the conditional variance half.
    func testGuidanceZeroEqualsThePlainConditionalModel() throws {
        let f = try load()
        let plain = UNet(config: f.config, batch: f.batch)
        let batched = GuidedUNet(config: f.config, batch: f.batch, conditioning: ClassConditioning(labels: [0], guidance: 0, nullClass: 10),
                                 batched: true)
        XCTAssertEqual(batched.graph.shape(batched.output), Shape(3, 1, 8, 8))
        let backend = CPUBackend()
        let a = try evaluate(plain.graph, sample: plain.sample, timesteps: plain.timesteps, labels: plain.classLabels,
                             output: plain.output, labelValues: f.labels, f, on: backend)
        let b = try evaluate(batched.graph, sample: batched.sample, timesteps: batched.timesteps, labels: batched.classLabels,
                             output: batched.output, labelValues: f.labels, f, on: backend)
        // The reference backend computes each image on its own: the 2N call gives the same bits.
        XCTAssertEqual(a, b)

        var config = f.config
        config.outChannels = 2
        var weights = Weights(graph: UNet(config: config, batch: 1).graph)
        weights.initialize(seed: 3)
        let g = Fixture(config: config, weights: weights, input: f.input, timesteps: f.timesteps, labels: f.labels, batch: f.batch)
        let plain2 = UNet(config: config, batch: f.batch)
        let nullLabels = [Float](repeating: 10, count: f.batch)
        let cond = try evaluate(plain2.graph, sample: plain2.sample, timesteps: plain2.timesteps, labels: plain2.classLabels,
                                output: plain2.output, labelValues: f.labels, g, on: backend)
        let uncond = try evaluate(plain2.graph, sample: plain2.sample, timesteps: plain2.timesteps, labels: plain2.classLabels,
                                  output: plain2.output, labelValues: nullLabels, g, on: backend)
        let guided = GuidedUNet(config: config, batch: f.batch, conditioning: ClassConditioning(labels: [0], guidance: 1.5, nullClass: 10))
        let mixed = try evaluate(guided.graph, sample: guided.sample, timesteps: guided.timesteps, labels: guided.classLabels,
                                 output: guided.output, labelValues: f.labels, g, on: backend)
        for n in 0..<f.batch {
            for i in 0..<64 {
                let e = n * 128 + i, v = n * 128 + 64 + i
                XCTAssertEqual(mixed[e], 2.5 * cond[e] + -1.5 * uncond[e], accuracy: 1e-5, "prediction half, image \(n)")
                XCTAssertEqual(mixed[v], cond[v], "variance half, image \(n): the conditional one")
            }
        }
    }

    /// A tiny conditional model with a null class, initialised from a seed.
    func tinyConditional() -> (UNetConfig, Weights) {
        var config = ModelPreset.tiny.config
        config.numClassEmbeds = 4
        var weights = Weights(graph: UNet(config: config, batch: 1).graph)
        weights.initialize(seed: 12)
        return (config, weights)
    }

    /// With guidance, image i depends only on (seed, i) — and its class — across device batches and
    /// backends, with every solver; w = 0 equals the unguided sampler, and w changes the images.
    func testGuidedSamplingWithEverySolver() throws {
        let (config, weights) = tinyConditional()
        let settings = SchedulerSettings(schedule: NoiseSchedule(kind: .linear, timesteps: 40))
        let kinds: [(SamplerKind, Int)] = [(.ddpm, 40), (.ddim(eta: 0.5), 6), (.dpmSolver(DPMSolverSettings(order: 2)), 5),
                                           (.dpmSolver(DPMSolverSettings(algorithm: .sde, order: 2)), 5),
                                           (.euler(EulerSettings()), 5), (.euler(EulerSettings(ancestral: true)), 5)]
        let guided = ClassConditioning(labels: [2, 0, 1], guidance: 3, nullClass: 3)
        for (kind, steps) in kinds {
            var results: [[Float]] = []
            for backend in try testBackends() {
                for deviceBatch in [3, 2] {
                    let sampler = try Sampler(backend: backend, config: config, weights: weights, settings: settings, batch: deviceBatch,
                                              conditioning: guided)
                    results.append(try sampler.sample(count: 3, seed: 5, sampler: kind, steps: steps))
                }
            }
            XCTAssert(results[0].allSatisfy(\.isFinite), "\(kind)")
            XCTAssertEqual(results[0], results[1], "\(kind): the device batch changed the images")
            for r in results.dropFirst(2) { XCTAssertLessThan(nmse(r, results[0]), 1e-8, "\(kind): the backends disagree") }

            let cpu = CPUBackend()
            var zero = guided
            zero.guidance = 0
            let unguided = try Sampler(backend: cpu, config: config, weights: weights, settings: settings, batch: 3,
                                       conditioning: ClassConditioning(labels: [2, 0, 1]))
                .sample(count: 3, seed: 5, sampler: kind, steps: steps)
            let zeroGuided = try Sampler(backend: cpu, config: config, weights: weights, settings: settings, batch: 3, conditioning: zero)
                .sample(count: 3, seed: 5, sampler: kind, steps: steps)
            XCTAssertEqual(zeroGuided, unguided, "\(kind): w = 0 must be the plain conditional model")
            XCTAssertGreaterThan(nmse(results[0], unguided), 1e-6, "\(kind): guidance had no effect")
        }
    }

    /// The class of image i is labels[i mod count]: image 2 of [1, 2, 1] is image 0 of [1].
    func testLabelsFollowTheImageIndex() throws {
        let (config, weights) = tinyConditional()
        let settings = SchedulerSettings(schedule: NoiseSchedule(kind: .linear, timesteps: 10))
        let cpu = CPUBackend()
        let mixed = try Sampler(backend: cpu, config: config, weights: weights, settings: settings, batch: 2,
                                conditioning: ClassConditioning(labels: [1, 2, 1])).sample(count: 3, seed: 9, sampler: .ddim(eta: 0), steps: 4)
        let ones = try Sampler(backend: cpu, config: config, weights: weights, settings: settings, batch: 3,
                               conditioning: ClassConditioning(labels: [1])).sample(count: 3, seed: 9, sampler: .ddim(eta: 0), steps: 4)
        XCTAssertEqual(Array(mixed[0..<64]), Array(ones[0..<64]))
        XCTAssertEqual(Array(mixed[128..<192]), Array(ones[128..<192]))
        XCTAssertNotEqual(Array(mixed[64..<128]), Array(ones[64..<128]))
    }
}

/// Class-conditional training: labels from the data, --cond-drop, exact resume.
final class ConditionalTrainingTests: XCTestCase {
    /// syntheticData() with labels: class = the square's column (0, 1, 2).
    func labelledData(drop: Float) -> TrainingData {
        let plain = syntheticData()
        let data = TrainingData(images: plain.images, count: plain.count, channels: 1, size: 8, description: "synthetic labelled",
                                seed: 3, labels: (0..<plain.count).map { $0 / 4 }, classNames: ["left", "middle", "right"])
        data.conditionDrop = drop
        return data
    }

    func conditionalOptions() throws -> TrainingOptions {
        var o = tinyOptions()
        try o.conditionOnClasses(["left", "middle", "right"], drop: 0.25)
        try o.validate(.flags)
        return o
    }

    /// Labels follow the data order; the dropped ones (null class 3) are a function of (seed, position):
    /// about a quarter, the same on every call.
    func testConditionDropIsDeterministic() {
        let data = labelledData(drop: 0.25)
        var dropped = 0, total = 0
        for step in 1...50 {
            let labels = data.batchLabels(step: step, size: 8)!
            XCTAssertEqual(labels, data.batchLabels(step: step, size: 8)!)
            XCTAssertEqual(labelledData(drop: 0.25).batchLabels(step: step, size: 8)!, labels, "a fresh loader must draw the same")
            for (b, label) in labels.enumerated() {
                total += 1
                if label == 3 { dropped += 1; continue }
                // A kept label is the image's own class.
                let index = (0..<12).first { data.batch(step: step, size: 8)[b * 64..<(b + 1) * 64].elementsEqual(data.images[$0 * 64..<($0 + 1) * 64]) }!
                XCTAssertEqual(Int(label), index / 4)
            }
        }
        XCTAssertEqual(Double(dropped) / Double(total), 0.25, accuracy: 0.07)
        XCTAssertFalse(labelledData(drop: 0).batchLabels(step: 1, size: 12)!.contains(3))
    }

    /// The model gets num_class_embeds = classes + 1; a flag combination that cannot work is refused.
    func testOptionsAreChecked() throws {
        let o = try conditionalOptions()
        XCTAssertEqual(o.model.numClassEmbeds, 4)
        XCTAssertEqual(o.classLabels, ClassLabels(names: ["left", "middle", "right"], nullClass: 3))
        var bad = tinyOptions()
        bad.conditionDrop = 0.1
        XCTAssertThrowsError(try bad.validate(.flags)) { XCTAssert("\($0)".contains("--class-conditional"), "\($0)") }
        var high = o
        high.conditionDrop = 1
        XCTAssertThrowsError(try high.validate(.flags)) { XCTAssert("\($0)".contains("--cond-drop"), "\($0)") }
        var mismatch = tinyOptions()
        mismatch.model.numClassEmbeds = 7
        XCTAssertThrowsError(try mismatch.conditionOnClasses(["a", "b"], drop: 0)) { XCTAssert("\($0)".contains("num_class_embeds 7"), "\($0)") }
    }

    /// N steps, checkpoint, resume for N more == 2N straight steps, to the bit, with labels and
    /// --cond-drop; the class embedding learns (its gradient reaches it) and the backends agree.
    func testResumeIsBitIdenticalWithLabels() throws {
        let data = labelledData(drop: 0.25)
        let options = try conditionalOptions()
        func batch(_ step: Int) -> ([Float], [Float]) { (data.batch(step: step, size: options.batch), data.batchLabels(step: step, size: options.batch)!) }
        var finals: [Weights] = []
        for backend in try testBackends() {
            let straight = try Trainer(backend: backend, options: options)
            for step in 1...4 { let (x, y) = batch(step); try straight.trainStep(batch: x, labels: y) }
            let expected = try straight.checkpoint()
            let first = try Trainer(backend: backend, options: options)
            for step in 1...2 { let (x, y) = batch(step); try first.trainStep(batch: x, labels: y) }
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("resume-cond-\(getpid())-\(backend.name.hashValue).safetensors")
            try first.checkpoint().write(to: url)
            let loaded = try Checkpoint.read(url)
            XCTAssertEqual(loaded.options.classNames, options.classNames)
            let second = try Trainer(backend: backend, options: loaded.options, resumeFrom: loaded)
            for step in 3...4 { let (x, y) = batch(step); try second.trainStep(batch: x, labels: y) }
            let resumed = try second.checkpoint()
            for name in expected.model.names {
                XCTAssertEqual(resumed.model.values[name]!, expected.model.values[name]!, "\(backend.name): weight \(name)")
            }
            let initial = try Trainer(backend: backend, options: options).checkpoint().model.values["class_embedding.weight"]!
            XCTAssertNotEqual(expected.model.values["class_embedding.weight"]!, initial, "the class embedding did not train")
            finals.append(expected.model)
        }
        for w in finals.dropFirst() {
            for name in w.names { XCTAssertLessThan(nmse(w.values[name]!, finals[0].values[name]!), 1e-8, name) }
        }
    }

    /// A training session of a conditional model writes class_labels.json beside the pipeline, and the
    /// pipeline loads with its classes and null class (what `sample --class` reads).
    func testSessionWritesThePipelineClasses() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("session-cond-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        let trainer = try Trainer(backend: CPUBackend(), options: try conditionalOptions())
        var settings = SessionSettings()
        settings.steps = 2
        settings.sampleEvery = 2
        settings.sampleCount = 6
        settings.sampleSteps = 2
        let session = TrainingSession(trainer: trainer, data: labelledData(drop: 0.25), directory: RunDirectory(dir), settings: settings,
                                      terminal: false, say: { _ in })
        XCTAssertEqual(try session.run(), .finished(step: 2))
        let pipeline = try LoadedPipeline.load(dir)
        XCTAssertEqual(pipeline.classes, ClassLabels(names: ["left", "middle", "right"], nullClass: 3))
        let plan = try XCTUnwrap(try ClassRequest(choice: "all", guidance: 2).plan(pipeline, batch: 2))
        XCTAssertEqual(plan.count, 6)
        XCTAssertEqual(plan.conditioning.labels, [0, 0, 1, 1, 2, 2])
        XCTAssertEqual(plan.rowLabels, ["left", "middle", "right"])
        XCTAssertEqual(try ClassRequest(choice: "Middle", guidance: 0).plan(pipeline, batch: 2)?.conditioning.labels, [1])
        XCTAssertThrowsError(try ClassRequest(choice: "up", guidance: 0).plan(pipeline, batch: 2)) { XCTAssert("\($0)".contains("left"), "\($0)") }
        XCTAssertThrowsError(try ClassRequest(choice: nil, guidance: -1).plan(pipeline, batch: 2))
    }
}
