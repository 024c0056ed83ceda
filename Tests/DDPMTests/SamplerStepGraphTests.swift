import DDPM
import DDPMCore
import DDPMCPU
import DDPMParity
import XCTest

/// The CPU reference, recording what its caller does: each op's kind, and writes and reads.
final class RecordingBackend: ForwardingBackend {
    enum Event: Equatable { case run(OpKind), write, read, stepDone }
    var events: [Event] = []
    override var name: String { "recording" }
    override func run(_ op: Op, inputs: [TensorRef], outputs: [TensorRef], step: UInt32) throws {
        events.append(.run(op.kind))
        try super.run(op, inputs: inputs, outputs: outputs, step: step)
    }
    override func write(_ values: [Float], to buffer: DeviceBuffer) throws {
        events.append(.write)
        try super.write(values, to: buffer)
    }
    override func read(_ buffer: DeviceBuffer, count: Int) throws -> [Float] {
        events.append(.read)
        return try super.read(buffer, count: count)
    }
}

/// A sampler step is one run of one graph (the network and the step's ops after it): every step
/// launches the same ops in the same order, the step's own ops last, and nothing is written to or
/// read from the device between a chunk's first step and its last. Every sampler, with dynamic
/// thresholding, a learned variance, UniPC's corrector and classifier guidance.
final class SamplerStepGraphTests: XCTestCase {
    func testEveryStepIsTheSameOpsWithNothingWrittenOrRead() throws {
        var learned = ModelPreset.tiny.config
        learned.outChannels = 2
        var thresholded = SchedulerSettings(schedule: NoiseSchedule(kind: .linear, timesteps: 40))
        thresholded.thresholding = true
        var learnedRange = SchedulerSettings(schedule: NoiseSchedule(kind: .linear, timesteps: 40))
        learnedRange.variance = .learnedRange
        let plain = SchedulerSettings(schedule: NoiseSchedule(kind: .linear, timesteps: 40))
        let cases: [(String, UNetConfig, SchedulerSettings, SamplerKind, guided: Bool)] = [
            ("ddpm", ModelPreset.tiny.config, plain, .ddpm, false),
            ("ddim thresholded", ModelPreset.tiny.config, thresholded, .ddim(eta: 0.5), false),
            ("ddpm learned variance", learned, learnedRange, .ddpm, false),
            ("dpm-solver 3", ModelPreset.tiny.config, thresholded, .dpmSolver(DPMSolverSettings(order: 3)), false),
            ("unipc 3", learned, plain, .unipc(UniPCSettings(order: 3)), false),
            ("ddpm guided", ModelPreset.tiny.config, plain, .ddpm, true),
            ("euler ancestral guided", ModelPreset.tiny.config, plain, .euler(EulerSettings(ancestral: true)), true),
        ]
        for (name, config, settings, kind, guided) in cases {
            var weights = Weights(graph: UNet(config: config, batch: 1).graph)
            weights.initialize(seed: 3)
            let backend = RecordingBackend()
            let sampler = try Sampler(backend: backend, config: config, weights: weights, settings: settings, batch: 2)
            if guided {
                var classifierConfig = ClassifierConfig(sampleSize: 8, inChannels: 1, classNames: ["a", "b"], blockOutChannels: [8],
                                                        layersPerBlock: 1, normNumGroups: 4)
                classifierConfig.noise = ClassifierNoise(schedule: .linear, timesteps: 40)
                var classifierWeights = Weights(graph: EncoderClassifier(config: classifierConfig, batch: 1).graph)
                classifierWeights.initialize(seed: 5)
                let classifier = TrainedClassifier(config: classifierConfig, weights: classifierWeights, heldOutAccuracy: 0.5,
                                                   heldOutDescription: "none", trainingDescription: "none", steps: 0)
                sampler.classifierGuide = try ClassifierGuide(backend: backend, classifier: classifier, scale: 10, batch: 2,
                                                              labels: ClassConditioning(labels: [0, 1]))
            }
            backend.events = []
            let images = try sampler.sample(count: 4, seed: 1, sampler: kind, steps: 6) { _, _ in backend.events.append(.stepDone) }
            XCTAssert(images.allSatisfy(\.isFinite), name)
            // Two chunks of 2 images, each: writes, the steps, and the result read back.
            var steps: [[RecordingBackend.Event]] = [], current: [RecordingBackend.Event] = [], between: [RecordingBackend.Event] = []
            for event in backend.events {
                switch event {
                case .stepDone:
                    steps.append(current)
                    current = []
                case .run: current.append(event)
                case .write, .read:
                    // Only before a chunk's first step (its x_T, labels, the history zeroed) or after its last.
                    let chunkEdge = current.isEmpty && (steps.count % 6 == 0)
                    XCTAssert(chunkEdge, "\(name): a \(event) inside a run of steps, after \(steps.count) steps")
                    between.append(event)
                }
            }
            XCTAssertEqual(steps.count, 12, name)
            for (i, step) in steps.enumerated() { XCTAssertEqual(step, steps[0], "\(name): step \(i) launches other ops than step 0") }
            let stepOps: Set<OpKind> = [.samplerStep, .solverUpdate, .add]
            if case .run(let last)? = steps[0].last { XCTAssert(stepOps.contains(last), "\(name): the step ends with \(last)") }
            XCTAssert(steps[0].contains(.run(.conv2d)) && steps[0].contains { [.run(.samplerStep), .run(.solverUpdate)].contains($0) }, name)
            XCTAssertEqual(between.filter { $0 == .read }.count, 2, "\(name): one read per chunk")
        }
    }
}
