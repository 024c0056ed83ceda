import DDPMCore
import Foundation

/// Draws images with a trained U-Net: x_T ~ N(0, I), then the reverse steps of a DDPM or DDIM run or
/// of a multistep solver. A step is one run of one graph: the network and the step's ops after it
/// (SamplerUpdate.swift), with the step's coefficients given to its nodes and the timesteps of the
/// whole run on the device, so that nothing is written to the device inside a run of steps.
/// Image i depends only on (seed, i): its initial noise and every step's noise come from Philox
/// streams addressed by the image index, whatever the batch size or device.
public final class Sampler {
    public let backend: Backend
    public let config: UNetConfig
    public let settings: SchedulerSettings
    public let batch: Int
    /// Class labels and guidance of a class-conditional model (nil for an unconditional one).
    public let conditioning: ClassConditioning?
    private let weights: Weights
    /// The weights on the device, uploaded once (Backend.markConstant) and bound to every step graph.
    private var weightBuffers: [String: DeviceBuffer] = [:]
    private let sampleBuffer: DeviceBuffer
    private let nextBuffer: DeviceBuffer
    private let labelBuffer: DeviceBuffer?
    /// The network and the step's ops for the layout sampled last (built for DDPM at first).
    private var stepGraph: StepGraph?
    /// A multistep solver's history ring, and UniPC's two more buffers for the corrected input.
    private var history: [DeviceBuffer] = []
    private var correctorBuffers: [DeviceBuffer] = []
    /// Classifier guidance (Dhariwal & Nichol 2021): steers every step with a noisy classifier's
    /// gradient. Its batch must be this sampler's.
    public var classifierGuide: ClassifierGuide? {
        didSet { precondition(classifierGuide.map { $0.batch == batch } ?? true, "the classifier guide's batch must be the sampler's") }
    }

    /// A class-conditional model samples with `conditioning`, or without it class i mod num_class_embeds.
    public init(backend: Backend, config: UNetConfig, weights: Weights, settings: SchedulerSettings, batch: Int,
                conditioning: ClassConditioning? = nil) throws {
        self.backend = backend; self.config = config; self.settings = settings; self.batch = batch
        self.conditioning = config.numClassEmbeds.map { conditioning ?? ClassConditioning(labels: Array(0..<$0)) }
        self.weights = weights
        let count = batch * config.inChannels * config.sampleSize * config.sampleSize
        sampleBuffer = try backend.makeBuffer(count: count)
        nextBuffer = try backend.makeBuffer(count: count)
        labelBuffer = config.isClassConditional ? try backend.makeBuffer(count: batch) : nil
        _ = try makeStepGraph(.ancestral(AncestralUpdate.Layout(sampler: .ddpm, settings: settings, guided: false)))
    }

    /// The network and one layout's step ops in one graph, so that a step is one executor run.
    private struct StepGraph {
        enum Layout: Hashable { case ancestral(AncestralUpdate.Layout), multistep(MultistepUpdate.Layout) }
        enum Update { case ancestral(AncestralUpdate), multistep(MultistepUpdate) }
        let layout: Layout
        let net: GuidedUNet
        let update: Update
        let executor: Executor
    }

    /// The step graph of `layout`: the last one, or a new one (the old one's buffers freed first).
    private func makeStepGraph(_ layout: StepGraph.Layout) throws -> StepGraph {
        if let stepGraph, stepGraph.layout == layout { return stepGraph }
        stepGraph = nil
        let net = GuidedUNet(config: config, batch: batch, conditioning: conditioning)
        let graph = net.graph, c = config.inChannels
        // A learned-variance model outputs [ε (or x₀, v), v_σ]: the step reads the halves.
        let split = config.outChannels == 2 * c
        let prediction = split ? graph(.sliceChannels(start: 0, count: c), net.output) : net.output
        let update: StepGraph.Update
        var placements: [Value: DeviceBuffer]
        switch layout {
        case .ancestral(let layout):
            precondition(!layout.learnedVariance || split, "a learned variance needs a model with 2·in_channels outputs")
            let variance = layout.learnedVariance ? graph(.sliceChannels(start: c, count: c), net.output) : nil
            let ancestral = AncestralUpdate(graph: graph, xt: net.sample, prediction: prediction, variance: variance,
                                            layout: layout, settings: settings)
            update = .ancestral(ancestral)
            placements = [ancestral.output: nextBuffer]
        case .multistep(let layout):
            if history.count != layout.slots { history = try (0..<layout.slots).map { _ in try backend.makeBuffer(count: sampleBuffer.count) } }
            if layout.correctorTerms > 0 && correctorBuffers.isEmpty {
                correctorBuffers = try (0..<2).map { _ in try backend.makeBuffer(count: sampleBuffer.count) }
            }
            let multistep = MultistepUpdate(graph: graph, xt: net.sample, prediction: prediction, layout: layout, settings: settings)
            update = .multistep(multistep)
            placements = [multistep.output: nextBuffer, multistep.prediction: history[0]]
            if let corrected = multistep.corrected { placements[corrected] = correctorBuffers[0] }
        }
        let executor = try Executor(graph: graph, outputs: Array(placements.keys), backend: backend, placements: placements)
        for (name, value) in graph.parameters {
            if weightBuffers[name] == nil { weightBuffers[name] = try backend.makeConstantBuffer(weights.values[name]!) }
            executor.bind(value, to: weightBuffers[name]!)
        }
        if let labels = net.classLabels { executor.bind(labels, to: labelBuffer!) }
        let made = StepGraph(layout: layout, net: net, update: update, executor: executor)
        stepGraph = made
        return made
    }

    /// One step in one run of the step graph: from x_t in `current` into `next` (the output placed
    /// there), the model at the step's row of `timestepRows`. With classifier guidance the guide's
    /// gradient at x_t (its own graph) is computed first and bound to the graph's gradient leaf.
    private func run(_ graph: StepGraph, output: Value, guidanceGradient: Value?, from current: DeviceBuffer,
                     into next: DeviceBuffer, timesteps: DeviceBuffer, t: Int) throws {
        let executor = graph.executor
        executor.bind(graph.net.sample, to: current)
        executor.bind(graph.net.timesteps, to: timesteps)
        executor.place(output, in: next)
        if let guide = classifierGuide, let guidanceGradient {
            let gradient = try guide.lossGradient(x: TensorRef(current, graph.net.graph.shape(graph.net.sample)), timesteps: timesteps)
            executor.bind(guidanceGradient, to: gradient.buffer)
        }
        try executor.run(step: UInt32(t))
    }

    /// Uploads the class labels of images first ..< first + count (class-conditional models).
    private func writeLabels(first: Int, count: Int) throws {
        try classifierGuide?.setLabels(first: first, count: count)
        guard let labelBuffer, let conditioning else { return }
        try backend.write(conditioning.batchLabels(first: first, count: count, batch: batch), to: labelBuffer)
    }

    /// Writes the initial noise and labels of images first ..< first + n; returns the noise.
    private func startChunk(first: Int, count n: Int, given: [Float]?, seed: UInt64) throws -> [Float] {
        let x = initialBatch(first: first, count: n, given: given, seed: seed)
        try backend.write(x, to: sampleBuffer)
        try writeLabels(first: first, count: n)
        return x
    }

    /// The plan indices whose x_t the trajectory records (first chunk only; 0 is x_T).
    private static func snapshotPoints(first: Int, steps: Int, snapshots: Int) -> Set<Int> {
        first == 0 && snapshots > 1 ? Set((0..<snapshots).map { $0 * steps / (snapshots - 1) }) : []
    }

    /// The model's timestep input for every step of a run, uploaded once: one row of `batch` per
    /// step (rows at the backend's view alignment), so that no step writes to the device.
    private func timestepRows(_ timesteps: [Double]) throws -> [DeviceBuffer] {
        let alignment = backend.viewAlignment
        let stride = (batch + alignment - 1) / alignment * alignment
        var table = [Float](repeating: 0, count: max(stride * timesteps.count, 1))
        for (row, t) in timesteps.enumerated() {
            table.replaceSubrange(row * stride..<row * stride + batch, with: repeatElement(Float(t), count: batch))
        }
        let buffer = try backend.makeBuffer(table)
        return try timesteps.indices.map { try backend.makeView(of: buffer, offset: $0 * stride, count: batch) }
    }

    public var imageShape: Shape { Shape(config.inChannels, config.sampleSize, config.sampleSize) }

    /// The initial noise of image `index`: Philox normals of the initial-noise stream.
    public func initialNoise(image index: Int, seed: UInt64) -> [Float] {
        (0..<imageShape.count).map { Philox.normal(seed: seed, index: $0, image: UInt32(index), step: 0, stream: RandomStream.initialNoise) }
    }

    /// Samples `count` images (N×C×H×W in about [-1, 1]). `initialNoise`, when given, replaces the
    /// Philox x_T (N×C×H×W). `progress(done, total)` is called after every model evaluation.
    /// With `snapshots` > 0, `trajectory` receives x_t of the first batch at that many evenly spaced
    /// points of the run (the first is x_T, the last the result), each N×C×H×W.
    public func sample(count: Int, seed: UInt64, sampler: SamplerKind, steps: Int, initialNoise given: [Float]? = nil,
                       snapshots: Int = 0, trajectory: ((Int, [Float]) -> Void)? = nil,
                       progress: (Int, Int) -> Void = { _, _ in }) throws -> [Float] {
        if let plan = try settings.solverSteps(sampler, count: steps) {
            return try sampleMultistep(count: count, seed: seed, plan: plan, initialNoise: given, snapshots: snapshots,
                                       trajectory: trajectory, progress: progress)
        }
        let per = imageShape.count
        let plan = settings.reverseSteps(sampler, count: steps, seed: seed)
        let layout = AncestralUpdate.Layout(sampler: sampler, settings: settings, guided: classifierGuide != nil)
        let graph = try makeStepGraph(.ancestral(layout))
        guard case .ancestral(let update) = graph.update else { preconditionFailure("a DDPM/DDIM layout makes an ancestral update") }
        let timesteps = try timestepRows(plan.map { Double($0.t) })
        var out = [Float](repeating: 0, count: count * per)
        let chunks = stride(from: 0, to: count, by: batch).map { ($0, min(batch, count - $0)) }
        var done = 0
        for (first, n) in chunks {
            let x = try startChunk(first: first, count: n, given: given, seed: seed)
            var current = sampleBuffer, next = nextBuffer
            let snapshotAt = Self.snapshotPoints(first: first, steps: plan.count, snapshots: snapshots)
            if snapshotAt.contains(0) { trajectory?(plan.first?.t ?? 0, Array(x.prefix(n * per))) }
            for (index, step) in plan.enumerated() {
                var op = step.op
                op.firstImage = UInt32(first)
                let guidance = classifierGuide.map {
                    layout.shiftsMean ? $0.meanShift(sigma: op.sigma)
                        : $0.predictionShift(alphaBar: Double(settings.schedule.alphasCumprod[step.t]), prediction: settings.prediction)
                }
                update.configure(graph.executor, op: op, guidance: guidance ?? 0)
                try run(graph, output: update.output, guidanceGradient: update.guidanceGradient, from: current, into: next,
                        timesteps: timesteps[index], t: step.t)
                swap(&current, &next)
                if snapshotAt.contains(index + 1) { trajectory?(step.previous, try backend.read(current, count: n * per)) }
                done += 1
                progress(done, plan.count * chunks.count)
            }
            let values = try backend.read(current, count: n * per)
            out.replaceSubrange(first * per..<(first + n) * per, with: values)
        }
        return out
    }

    /// x_T of images first ..< first + count (given, or drawn by (seed, image)), padded to the device batch.
    private func initialBatch(first: Int, count n: Int, given: [Float]?, seed: UInt64) -> [Float] {
        let per = imageShape.count
        var x = [Float](repeating: 0, count: batch * per)
        for i in 0..<n {
            let noise = given.map { Array($0[(first + i) * per..<(first + i + 1) * per]) } ?? initialNoise(image: first + i, seed: seed)
            x.replaceSubrange(i * per..<(i + 1) * per, with: noise)
        }
        return x
    }

    // MARK: Multistep solvers

    private func sampleMultistep(count: Int, seed: UInt64, plan: [SolverStep], initialNoise given: [Float]?,
                                 snapshots: Int, trajectory: ((Int, [Float]) -> Void)?, progress: (Int, Int) -> Void) throws -> [Float] {
        let per = imageShape.count
        let layout = MultistepUpdate.Layout(plan: plan, settings: settings, guided: classifierGuide != nil)
        let graph = try makeStepGraph(.multistep(layout))
        guard case .multistep(let update) = graph.update else { preconditionFailure("a solver layout makes a multistep update") }
        let timesteps = try timestepRows(plan.map { Double($0.modelTimestep) })
        // UniPC's corrector keeps the previous step's input: x, next, last and corrected are then four
        // distinct buffers.
        let corrects = layout.correctorTerms > 0
        let pool = corrects ? [sampleBuffer, nextBuffer] + correctorBuffers : [sampleBuffer, nextBuffer]
        let zeros = [Float](repeating: 0, count: sampleBuffer.count)
        var out = [Float](repeating: 0, count: count * per)
        let chunks = stride(from: 0, to: count, by: batch).map { ($0, min(batch, count - $0)) }
        var done = 0
        for (first, n) in chunks {
            let x = try startChunk(first: first, count: n, given: given, seed: seed)
            // The steps before the history fills read its empty slots with coefficient 0: zeros, not an
            // earlier chunk's values (0·NaN would carry a diverged image into this chunk).
            for slot in history { try backend.write(zeros, to: slot) }
            var current = sampleBuffer, next = nextBuffer
            var last = sampleBuffer, corrected = corrects ? correctorBuffers[0] : sampleBuffer   // last: read from the second step on
            let snapshotAt = Self.snapshotPoints(first: first, steps: plan.count, snapshots: snapshots)
            if snapshotAt.contains(0) { trajectory?(plan.first?.t ?? 0, Array(x.prefix(n * per))) }
            for (index, step) in plan.enumerated() {
                let guidance = classifierGuide?.predictionShift(alphaBar: step.alphaBar(settings), prediction: settings.prediction)
                update.configure(graph.executor, step: step, index: index, history: history, input: current, previous: index > 0 ? last : nil,
                                 corrected: corrects ? corrected : nil, seed: seed, firstImage: UInt32(first), guidance: guidance ?? 0)
                try run(graph, output: update.output, guidanceGradient: update.guidanceGradient, from: current, into: next,
                        timesteps: timesteps[index], t: step.t)
                current = next
                if corrects {
                    last = corrected
                    corrected = pool.first { $0 !== current && $0 !== last }!
                    next = pool.first { $0 !== current && $0 !== last && $0 !== corrected }!
                } else {
                    next = pool.first { $0 !== current }!
                }
                if snapshotAt.contains(index + 1) {
                    trajectory?(index + 1 < plan.count ? plan[index + 1].t : -1, try backend.read(current, count: n * per))
                }
                done += 1
                progress(done, plan.count * chunks.count)
            }
            out.replaceSubrange(first * per..<(first + n) * per, with: try backend.read(current, count: n * per))
        }
        return out
    }
}
