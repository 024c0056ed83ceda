import DDPM
import DDPMCore
import DDPMCPU
import Foundation
import XCTest

/// Classifier guidance: the noisy classifier's training, the device gradient ∇_x log p(y | x_t, t)
/// against finite differences, and guided sampling with every solver.
final class ClassifierGuidanceTests: XCTestCase {
    let names = ["a", "b", "c"]

    /// A noisy classifier for the tiny U-Net's 8×8 images (random weights) and the schedule it knows.
    func noisyClassifier(timesteps: Int = 40) -> (TrainedClassifier, SchedulerSettings) {
        var config = ClassifierConfig(sampleSize: 8, inChannels: 1, classNames: names, blockOutChannels: [8, 16],
                                      layersPerBlock: 1, normNumGroups: 4)
        config.noise = ClassifierNoise(schedule: .linear, timesteps: timesteps)
        var weights = Weights(graph: EncoderClassifier(config: config, batch: 1).graph)
        weights.initialize(seed: 21)
        let trained = TrainedClassifier(config: config, weights: weights, heldOutAccuracy: 0.5, heldOutDescription: "none",
                                        trainingDescription: "none", steps: 0)
        return (trained, SchedulerSettings(schedule: NoiseSchedule(kind: .linear, timesteps: timesteps)))
    }

    /// The classifier's logits for images x at timesteps t (one per image), on the CPU reference.
    func logits(_ classifier: TrainedClassifier, x: [Float], t: [Float]) throws -> [Float] {
        let backend = CPUBackend()
        let net = EncoderClassifier(config: classifier.config, batch: t.count)
        let executor = try Executor(graph: net.graph, outputs: [net.logits], backend: backend)
        for (name, value) in net.graph.parameters { executor.bind(value, to: try backend.makeBuffer(classifier.weights.values[name]!)) }
        executor.bind(net.images, to: try backend.makeBuffer(x))
        executor.bind(net.timesteps, to: try backend.makeBuffer(t))
        try executor.run(step: 0)
        return try backend.read(executor.buffer(net.logits), count: t.count * names.count)
    }

    /// log p(y_n | x_n, t_n) summed over the batch, on the host from the classifier's logits.
    func logProbability(_ classifier: TrainedClassifier, x: [Float], t: [Float], labels: [Int]) throws -> Double {
        let logits = try logits(classifier, x: x, t: t).map(Double.init)
        var total = 0.0
        for (n, y) in labels.enumerated() {
            let row = logits[(n * names.count)..<((n + 1) * names.count)]
            let m = row.max()!
            total += row[n * names.count + y] - m - log(row.map { exp($0 - m) }.reduce(0, +))
        }
        return total
    }

    /// The guide's device gradient is ∇_x log p(y | x, t): it matches central differences of the
    /// host log-probability through the whole noisy classifier, on both backends.
    func testGradientMatchesFiniteDifferences() throws {
        let (classifier, _) = noisyClassifier()
        var random = SplitMix64(seed: 5)
        let batch = 2, per = 64
        let x = (0..<(batch * per)).map { _ in random.normal() }
        let t: [Float] = [3, 31]
        let labels = [2, 0]
        var expected = [Float](repeating: 0, count: x.count)
        let h: Float = 1e-2
        // A dozen coordinates of each image (their log-probabilities are independent).
        let picks = (0..<12).flatMap { k in [k * 5 % per, per + (k * 7 + 3) % per] }
        for i in picks {
            var plus = x, minus = x
            plus[i] += h
            minus[i] -= h
            expected[i] = Float((try logProbability(classifier, x: plus, t: t, labels: labels)
                                 - logProbability(classifier, x: minus, t: t, labels: labels)) / (2 * Double(h)))
        }
        for backend in try testBackends() {
            let guide = try ClassifierGuide(backend: backend, classifier: classifier, scale: 1, batch: batch,
                                            labels: ClassConditioning(labels: labels))
            let gradient = try guide.logProbabilityGradient(x: x, timesteps: t)
            var diff = 0.0, norm = 0.0
            for i in picks {
                diff += Double(gradient[i] - expected[i]) * Double(gradient[i] - expected[i])
                norm += Double(expected[i]) * Double(expected[i])
            }
            // GradientChecks' bound: float32 central differences with h = 1e-2 leave O(h²) + ~1e-5 rounding;
            // a wrong sign or factor gives ~1.
            XCTAssertLessThan(diff.squareRoot() / max(norm.squareRoot(), 1e-3), 2e-2, backend.name)
        }
    }

    /// Image i depends only on (seed, i) with classifier guidance, on every backend and solver;
    /// scale 0 leaves the unguided images; a positive scale changes them and raises log p(y | x₀).
    func testGuidedSamplingWithEverySolver() throws {
        let (classifier, settings) = noisyClassifier()
        let config = ModelPreset.tiny.config
        var weights = Weights(graph: UNet(config: config, batch: 1).graph)
        weights.initialize(seed: 4)
        let labels = ClassConditioning(labels: [1, 2, 0])
        let kinds: [(SamplerKind, Int)] = [(.ddpm, 40), (.ddim(eta: 0), 8), (.dpmSolver(DPMSolverSettings(order: 2)), 6),
                                           (.euler(EulerSettings(ancestral: true)), 6)]
        for (kind, steps) in kinds {
            var results: [[Float]] = []
            for backend in try testBackends() {
                for deviceBatch in [3, 2] {
                    let sampler = try Sampler(backend: backend, config: config, weights: weights, settings: settings, batch: deviceBatch)
                    sampler.classifierGuide = try ClassifierGuide(backend: backend, classifier: classifier, scale: 30, batch: deviceBatch, labels: labels)
                    results.append(try sampler.sample(count: 3, seed: 7, sampler: kind, steps: steps))
                }
            }
            XCTAssert(results[0].allSatisfy(\.isFinite), "\(kind)")
            XCTAssertEqual(results[0], results[1], "\(kind): the device batch changed the images")
            for r in results.dropFirst(2) { XCTAssertLessThan(nmse(r, results[0]), 1e-7, "\(kind): the backends disagree") }

            let cpu = CPUBackend()
            let plain = try Sampler(backend: cpu, config: config, weights: weights, settings: settings, batch: 3)
                .sample(count: 3, seed: 7, sampler: kind, steps: steps)
            let zero = try Sampler(backend: cpu, config: config, weights: weights, settings: settings, batch: 3)
            zero.classifierGuide = try ClassifierGuide(backend: cpu, classifier: classifier, scale: 0, batch: 3, labels: labels)
            XCTAssertEqual(try zero.sample(count: 3, seed: 7, sampler: kind, steps: steps), plain, "\(kind): scale 0 must change nothing")
            XCTAssertGreaterThan(nmse(results[0], plain), 1e-6, "\(kind): guidance had no effect")
            let t0: [Float] = [0, 0, 0]
            let guidedLogP = try logProbability(classifier, x: results[0], t: t0, labels: [1, 2, 0])
            let plainLogP = try logProbability(classifier, x: plain, t: t0, labels: [1, 2, 0])
            XCTAssertGreaterThan(guidedLogP, plainLogP, "\(kind): guidance should make the classes more likely")
        }
    }

    /// A learned-variance model (out_channels = 2·in_channels): guidance shifts the prediction half
    /// only (the variance half is the model's), with DDPM's learned σ, DDIM and a solver; the backends
    /// agree, scale 0 changes nothing, and a positive scale raises log p(y | x₀).
    func testGuidanceOfALearnedVarianceModel() throws {
        var (classifier, settings) = noisyClassifier()
        settings.variance = .learnedRange
        var config = ModelPreset.tiny.config
        config.outChannels = 2
        var weights = Weights(graph: UNet(config: config, batch: 1).graph)
        weights.initialize(seed: 4)
        let labels = ClassConditioning(labels: [1, 2, 0])
        for (kind, steps) in [(SamplerKind.ddpm, 40), (.ddim(eta: 0), 8), (.dpmSolver(DPMSolverSettings(order: 2)), 6)] {
            var results: [[Float]] = []
            for backend in try testBackends() {
                let sampler = try Sampler(backend: backend, config: config, weights: weights, settings: settings, batch: 3)
                sampler.classifierGuide = try ClassifierGuide(backend: backend, classifier: classifier, scale: 30, batch: 3, labels: labels)
                results.append(try sampler.sample(count: 3, seed: 7, sampler: kind, steps: steps))
            }
            XCTAssert(results[0].allSatisfy(\.isFinite), "\(kind)")
            for r in results.dropFirst() { XCTAssertLessThan(nmse(r, results[0]), 1e-7, "\(kind): the backends disagree") }
            let cpu = CPUBackend()
            let sampler = try Sampler(backend: cpu, config: config, weights: weights, settings: settings, batch: 3)
            let plain = try sampler.sample(count: 3, seed: 7, sampler: kind, steps: steps)
            sampler.classifierGuide = try ClassifierGuide(backend: cpu, classifier: classifier, scale: 0, batch: 3, labels: labels)
            XCTAssertEqual(try sampler.sample(count: 3, seed: 7, sampler: kind, steps: steps), plain, "\(kind): scale 0 must change nothing")
            let t0: [Float] = [0, 0, 0]
            XCTAssertGreaterThan(try logProbability(classifier, x: results[0], t: t0, labels: [1, 2, 0]),
                                 try logProbability(classifier, x: plain, t: t0, labels: [1, 2, 0]), "\(kind): guidance should make the classes more likely")
        }
    }

    /// `classifier eval` of a noisy classifier: each image noised to q(x_t | x₀) with the classifier's
    /// schedule and run at timestep t. The logits equal a by-hand x_t and t through the same network,
    /// the timestep reaches it (other logits at t = 0 for the same x_t), and the accuracy counts
    /// those logits' predictions.
    func testAccuracyPerNoiseLevel() throws {
        let (classifier, settings) = noisyClassifier()
        let images: [Float] = (0..<(4 * 64)).map { Float(sin(Double($0) * 0.37)) }
        let labels = [0, 1, 2, 1]
        let set = ImageSet(images: images, count: 4, channels: 1, size: 8, labels: labels, classNames: names, description: "test")
        let features = try ClassifierFeatures(backend: CPUBackend(), classifier: classifier, batch: 4)
        let measured = try features.accuracyByNoiseLevel(set, timesteps: [0, 20, 39], seed: 5)
        XCTAssertEqual(measured.map(\.timestep), [0, 20, 39])
        for (t, accuracy) in measured {
            let a = Double(settings.schedule.alphasCumprod[t])
            let xt = images.indices.map { j in
                Float(a.squareRoot() * Double(images[j]) + (1 - a).squareRoot()
                      * Double(Philox.normal(seed: 5, index: j % 64, image: UInt32(j / 64), step: UInt32(t), stream: RandomStream.initialNoise)))
            }
            let noised = ClassifierFeatures.noised(set, alphaCumprod: a, timestep: t, seed: 5)
            XCTAssertEqual(noised.images, xt, "t = \(t)")
            let out = try features.run(noised, timestep: t)
            let byHand = try logits(classifier, x: xt, t: [Float](repeating: Float(t), count: 4))
            XCTAssertEqual(out.logits, byHand, "t = \(t)")
            if t > 0 { XCTAssertNotEqual(try features.run(noised, timestep: 0).logits, out.logits, "t = \(t) must reach the network") }
            XCTAssertEqual(accuracy, Double(zip(out.predictions, labels).filter { $0 == $1 }.count) / 4)
        }
        XCTAssertThrowsError(try features.accuracyByNoiseLevel(set, timesteps: [40])) { XCTAssert("\($0)".contains("0…39"), "\($0)") }
        var clean = classifier
        clean.config.noise = nil
        XCTAssertThrowsError(try ClassifierFeatures(backend: CPUBackend(), classifier: clean, batch: 4).accuracyByNoiseLevel(set, timesteps: [0])) {
            XCTAssert("\($0)".contains("--noisy"), "\($0)")
        }
    }

    /// A clean (FID) classifier, another schedule or another size cannot guide; the message says why.
    func testUnfitClassifiersAreRefused() throws {
        let (classifier, settings) = noisyClassifier()
        let config = ModelPreset.tiny.config
        XCTAssertNoThrow(try ClassifierGuide.check(classifier, source: "c", model: config, settings: settings))
        var clean = classifier
        clean.config.noise = nil
        XCTAssertThrowsError(try ClassifierGuide.check(clean, source: "c", model: config, settings: settings)) {
            XCTAssert("\($0)".contains("--noisy"), "\($0)")
        }
        let other = SchedulerSettings(schedule: NoiseSchedule(kind: .cosine, timesteps: 40))
        XCTAssertThrowsError(try ClassifierGuide.check(classifier, source: "c", model: config, settings: other)) {
            XCTAssert("\($0)".contains("schedule"), "\($0)")
        }
        XCTAssertThrowsError(try ClassifierGuide.check(classifier, source: "c", model: ModelPreset.small.config, settings: settings))
    }

    /// `classifier train --noisy`: the trainer noises batches on the device (x_t, t from qSample), the
    /// loss is finite and the two backends agree; the schedule is stored with the weights.
    func testNoisyClassifierTrainsAndRoundTrips() throws {
        var options = ClassifierTrainingOptions()
        options.batch = 4
        options.noise = ClassifierNoise(schedule: .linear, timesteps: 40)
        var config = ClassifierConfig(sampleSize: 8, inChannels: 1, classNames: names, blockOutChannels: [8, 16],
                                      layersPerBlock: 1, normNumGroups: 4)
        config.noise = options.noise
        var random = SplitMix64(seed: 2)
        let images = (0..<(4 * 64)).map { _ in random.normal() }
        var losses: [Float] = []
        for backend in try testBackends() {
            let trainer = try ClassifierTrainer(backend: backend, config: config, options: options)
            try trainer.trainStep(images: images, labels: [0, 1, 2, 1])
            losses.append(try trainer.readLoss())
            try trainer.trainStep(images: images, labels: [0, 1, 2, 1])
            // Step 2 draws other t and ε: the loss changes even before the weights matter much.
            XCTAssertNotEqual(try trainer.readLoss(), losses.last!)
        }
        XCTAssert(losses[0].isFinite)
        for l in losses.dropFirst() { XCTAssertEqual(l, losses[0], accuracy: 1e-4 * max(1, abs(losses[0]))) }
        let trained = TrainedClassifier(config: config, weights: try ClassifierTrainer(backend: CPUBackend(), config: config, options: options).weights(),
                                        heldOutAccuracy: 0.4, heldOutDescription: "x", trainingDescription: "y", steps: 2)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("noisy-\(getpid()).safetensors")
        try trained.write(to: url)
        XCTAssertEqual(try TrainedClassifier.read(url).config.noise, options.noise)
    }
}
