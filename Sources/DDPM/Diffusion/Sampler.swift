import DDPMCore
import Foundation

/// Draws images with a trained U-Net: x_T ~ N(0, I), then the reverse steps of a DDPM or DDIM run.
/// Image i depends only on (seed, i): its initial noise and every step's noise come from Philox
/// streams addressed by the image index, whatever the batch size or device.
public final class Sampler {
    public let backend: Backend
    public let config: UNetConfig
    public let settings: SchedulerSettings
    public let batch: Int
    /// Class labels and guidance of a class-conditional model (nil for an unconditional one).
    public let conditioning: ClassConditioning?
    private let net: GuidedUNet
    private let executor: Executor
    private let sampleBuffer: DeviceBuffer
    private let nextBuffer: DeviceBuffer
    /// The model's timestep input of the step being taken (a row of `timestepRows`).
    private var currentTimesteps: DeviceBuffer?
    private var labelBuffer: DeviceBuffer?
    /// Classifier guidance (Dhariwal & Nichol 2021): steers every step with a noisy classifier's
    /// gradient. Its batch must be this sampler's.
    public var classifierGuide: ClassifierGuide? {
        didSet { precondition(classifierGuide.map { $0.batch == batch } ?? true, "the classifier guide's batch must be the sampler's") }
    }
    private var spareBuffer: DeviceBuffer?

    /// A class-conditional model samples with `conditioning`, or without it class i mod num_class_embeds.
    public init(backend: Backend, config: UNetConfig, weights: Weights, settings: SchedulerSettings, batch: Int,
                conditioning: ClassConditioning? = nil) throws {
        self.backend = backend; self.config = config; self.settings = settings; self.batch = batch
        self.conditioning = config.numClassEmbeds.map { conditioning ?? ClassConditioning(labels: Array(0..<$0)) }
        net = GuidedUNet(config: config, batch: batch, conditioning: self.conditioning)
        executor = try Executor(graph: net.graph, outputs: [net.output], backend: backend)
        for (name, value) in net.graph.parameters {
            executor.bind(value, to: try backend.makeConstantBuffer(weights.values[name]!))
        }
        let count = net.graph.shape(net.sample).count
        sampleBuffer = try backend.makeBuffer(count: count)
        nextBuffer = try backend.makeBuffer(count: count)
        executor.bind(net.sample, to: sampleBuffer)
        if let labels = net.classLabels {
            labelBuffer = try backend.makeBuffer(count: batch)
            executor.bind(labels, to: labelBuffer!)
        }
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

    /// One model evaluation on the x_t in `current`, at one step's row of `timestepRows`.
    private func evaluateModel(on current: DeviceBuffer, timesteps: DeviceBuffer) throws {
        executor.bind(net.sample, to: current)
        executor.bind(net.timesteps, to: timesteps)
        currentTimesteps = timesteps
        try executor.run(step: 0)
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

    private var scratch: [DeviceBuffer] = []

    private var halves: [DeviceBuffer] = []

    private func reverseStep(_ op: SamplerStep, sampler: SamplerKind, t: Int, current: DeviceBuffer, next: DeviceBuffer) throws {
        let shape = net.graph.shape(net.sample)
        if settings.thresholding && scratch.isEmpty { scratch = try (0..<3).map { _ in try backend.makeBuffer(count: shape.count) } }
        var model = executor.tensor(net.output)
        // Classifier guidance: DDPM with a fixed variance shifts the mean after the step, the rest the prediction.
        let meanShift = sampler == .ddpm && !op.learnedVariance
        if let guide = classifierGuide, !meanShift {
            model = try guide.shiftedPrediction(model, x: TensorRef(current, shape), timesteps: currentTimesteps!,
                                                alphaBar: Double(settings.schedule.alphasCumprod[t]), prediction: settings.prediction)
        }
        var variance: TensorRef?
        if config.outChannels == 2 * config.inChannels {
            // A learned-variance model outputs [ε (or x₀, v), v_σ]: split the halves.
            if halves.isEmpty { halves = try (0..<2).map { _ in try backend.makeBuffer(count: shape.count) } }
            let c = config.inChannels
            try backend.run(.sliceChannels(start: 0, count: c), inputs: [model], outputs: [TensorRef(halves[0], shape)], step: 0)
            try backend.run(.sliceChannels(start: c, count: c), inputs: [model], outputs: [TensorRef(halves[1], shape)], step: 0)
            model = TensorRef(halves[0], shape)
            variance = TensorRef(halves[1], shape)
        }
        try Self.reverseStep(op, sampler: sampler, settings: settings, backend: backend, xt: TensorRef(current, shape),
                             model: model, variance: op.learnedVariance ? variance : nil, out: TensorRef(next, shape),
                             scratch: scratch, step: UInt32(t))
        if let guide = classifierGuide, meanShift {
            if spareBuffer == nil { spareBuffer = try backend.makeBuffer(count: shape.count) }
            let shifted = TensorRef(spareBuffer!, shape)
            try guide.shiftMean(TensorRef(next, shape), xt: TensorRef(current, shape), timesteps: currentTimesteps!, sigma: op.sigma,
                                into: shifted)
            try backend.run(.scale(1), inputs: [shifted], outputs: [TensorRef(next, shape)], step: 0)   // an exact copy
        }
    }

    /// x_t → x_prev with the step's coefficients. With dynamic thresholding the step is split: x̂0
    /// (and for DDIM ε̂ from the unthresholded output) first, x̂0 thresholded per image, then the
    /// update from them. `scratch` holds three x_t-sized buffers when thresholding.
    public static func reverseStep(_ op: SamplerStep, sampler: SamplerKind, settings: SchedulerSettings, backend: Backend,
                                   xt: TensorRef, model: TensorRef, variance: TensorRef? = nil, out: TensorRef,
                                   scratch: [DeviceBuffer], step: UInt32) throws {
        precondition(op.learnedVariance == (variance != nil), "a learned-variance step needs the model's variance half")
        let extra = variance.map { [$0] } ?? []
        guard settings.thresholding else {
            return try backend.run(.samplerStep(op), inputs: [xt, model] + extra, outputs: [out], step: step)
        }
        let shape = xt.shape
        let (x0, thresholded, eps) = (TensorRef(scratch[0], shape), TensorRef(scratch[1], shape), TensorRef(scratch[2], shape))
        func only(p0: Float = 0, pe: Float = 0) -> SamplerStep {
            SamplerStep(kx: op.kx, km: op.km, clip: 0, ex: op.ex, em: op.em, p0: p0, pe: pe, px: 0, sigma: 0, seed: 0, firstImage: 0)
        }
        try backend.run(.samplerStep(only(p0: 1)), inputs: [xt, model], outputs: [x0], step: 0)
        try backend.run(.dynamicThreshold(ratio: settings.dynamicThresholdingRatio, maxValue: settings.sampleMaxValue),
                        inputs: [x0], outputs: [thresholded], step: 0)
        var final = op
        (final.kx, final.km, final.clip) = (0, 1, 0)      // x̂0 := the thresholded input
        if case .ddim = sampler {
            try backend.run(.samplerStep(only(pe: 1)), inputs: [xt, model], outputs: [eps], step: 0)
            (final.ex, final.em) = (1, 0)                 // ε̂ := the first input; DDIM has px = 0
            try backend.run(.samplerStep(final), inputs: [eps, thresholded] + extra, outputs: [out], step: step)
        } else {
            try backend.run(.samplerStep(final), inputs: [xt, thresholded] + extra, outputs: [out], step: step)
        }
    }

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
                try evaluateModel(on: current, timesteps: timesteps[index])
                var op = step.op
                op.firstImage = UInt32(first)
                try reverseStep(op, sampler: sampler, t: step.t, current: current, next: next)
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

    // MARK: Multistep solvers

    private var history: [DeviceBuffer] = []

    /// One solver step on the device: the prediction (x̂0, or ε̂) of the model output into the history
    /// ring (slot `index` mod its size), dynamically thresholded when on, then UniPC's corrector (from
    /// `last`, the previous step's corrected input, into `corrected`) and the solverUpdate op from x (or
    /// the corrected x) and the history. `model` is the prediction (the first half of a learned-variance
    /// output). `chain` is needed when a combination has more than three terms. Returns whether the
    /// update started from `corrected`, which is then the next step's `last`.
    @discardableResult
    public static func multistepStep(_ step: SolverStep, settings: SchedulerSettings, backend: Backend,
                                     xt: TensorRef, model: TensorRef, history: [TensorRef], scratch: TensorRef?, out: TensorRef,
                                     index: Int, seed: UInt64, firstImage: UInt32,
                                     last: TensorRef? = nil, corrected: TensorRef? = nil, chain: TensorRef? = nil) throws -> Bool {
        let convert = SamplerStep(kx: Float(step.kx), km: Float(step.km), clip: Float(step.clip), ex: 0, em: 0, p0: 1, pe: 0, px: 0,
                                  sigma: 0, seed: 0, firstImage: 0)
        let slot = history[index % history.count]
        if settings.thresholding, let scratch {
            try backend.run(.samplerStep(convert), inputs: [xt, model], outputs: [scratch], step: 0)
            try backend.run(.dynamicThreshold(ratio: settings.dynamicThresholdingRatio, maxValue: settings.sampleMaxValue),
                            inputs: [scratch], outputs: [slot], step: 0)
        } else {
            try backend.run(.samplerStep(convert), inputs: [xt, model], outputs: [slot], step: 0)
        }
        let newestFirst = (0..<step.terms).map { k in history[((index - k) % history.count + history.count) % history.count] }
        var x = xt
        if let corrector = step.corrector, let last, let corrected {
            try combine(corrector, last, newestFirst, into: corrected, chain: chain, backend: backend)
            x = corrected
        }
        let update = SolverCombination(cx: step.cx, c: step.c)
        try combine(update, x, newestFirst, into: out, chain: chain, backend: backend, noise: step.noise, seed: seed,
                    firstImage: firstImage, step: UInt32(step.t))
        return x.buffer === corrected?.buffer
    }

    /// out = cx·x + Σ c[k]·d[k] (+ noise·z) with solverUpdate ops of up to three terms each, the
    /// partial sums through `chain`.
    static func combine(_ f: SolverCombination, _ x: TensorRef, _ d: [TensorRef], into out: TensorRef, chain: TensorRef?,
                        backend: Backend, noise: Double = 0, seed: UInt64 = 0, firstImage: UInt32 = 0, step: UInt32 = 0) throws {
        if f.c.count > 3 {
            guard let chain else { preconditionFailure("a combination of \(f.c.count) predictions needs a chain buffer") }
            let head = SolverUpdate(cx: Float(f.cx), c: f.c.prefix(3).map(Float.init))
            try backend.run(.solverUpdate(head), inputs: [x] + d.prefix(3), outputs: [chain], step: 0)
            return try combine(SolverCombination(cx: 1, c: Array(f.c.dropFirst(3))), chain, Array(d.dropFirst(3)), into: out,
                               chain: nil, backend: backend, noise: noise, seed: seed, firstImage: firstImage, step: step)
        }
        let update = SolverUpdate(cx: Float(f.cx), c: f.c.map(Float.init), sigma: Float(noise), seed: seed, firstImage: firstImage)
        try backend.run(.solverUpdate(update), inputs: [x] + d.prefix(f.c.count), outputs: [out], step: step)
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

    private var correctorBuffers: [DeviceBuffer] = []

    private func sampleMultistep(count: Int, seed: UInt64, plan: [SolverStep], initialNoise given: [Float]?,
                                 snapshots: Int, trajectory: ((Int, [Float]) -> Void)?, progress: (Int, Int) -> Void) throws -> [Float] {
        let per = imageShape.count
        let shape = net.graph.shape(net.sample)
        let slots = plan.map(\.terms).max() ?? 1
        if history.count != slots { history = try (0..<slots).map { _ in try backend.makeBuffer(count: shape.count) } }
        if halves.count < 3 { halves = try (0..<3).map { _ in try backend.makeBuffer(count: shape.count) } }
        let timesteps = try timestepRows(plan.map { Double($0.modelTimestep) })
        // UniPC's corrector keeps the previous step's input: x, next, last and corrected are then four
        // distinct buffers (and a chain for four-term sums).
        let corrects = plan.contains { $0.corrector != nil }
        if corrects && correctorBuffers.isEmpty { correctorBuffers = try (0..<3).map { _ in try backend.makeBuffer(count: shape.count) } }
        let pool = corrects ? [sampleBuffer, nextBuffer, correctorBuffers[0], correctorBuffers[1]] : [sampleBuffer, nextBuffer]
        var out = [Float](repeating: 0, count: count * per)
        let chunks = stride(from: 0, to: count, by: batch).map { ($0, min(batch, count - $0)) }
        var done = 0
        for (first, n) in chunks {
            let x = try startChunk(first: first, count: n, given: given, seed: seed)
            var current = sampleBuffer, next = nextBuffer
            var last: DeviceBuffer?
            let snapshotAt = Self.snapshotPoints(first: first, steps: plan.count, snapshots: snapshots)
            if snapshotAt.contains(0) { trajectory?(plan.first?.t ?? 0, Array(x.prefix(n * per))) }
            for (index, step) in plan.enumerated() {
                try evaluateModel(on: current, timesteps: timesteps[index])
                var model = executor.tensor(net.output)
                if config.outChannels == 2 * config.inChannels {
                    try backend.run(.sliceChannels(start: 0, count: config.inChannels), inputs: [model],
                                    outputs: [TensorRef(halves[0], shape)], step: 0)
                    model = TensorRef(halves[0], shape)
                }
                if let guide = classifierGuide {
                    model = try guide.shiftedPrediction(model, x: TensorRef(current, shape), timesteps: currentTimesteps!,
                                                        alphaBar: step.alphaBar(settings), prediction: settings.prediction)
                }
                let corrected = corrects ? pool.first { $0 !== current && $0 !== last && $0 !== next } : nil
                let usedCorrected = try Self.multistepStep(
                    step, settings: settings, backend: backend, xt: TensorRef(current, shape), model: model,
                    history: history.map { TensorRef($0, shape) }, scratch: TensorRef(halves[2], shape), out: TensorRef(next, shape),
                    index: index, seed: seed, firstImage: UInt32(first), last: last.map { TensorRef($0, shape) },
                    corrected: corrected.map { TensorRef($0, shape) }, chain: corrects ? TensorRef(correctorBuffers[2], shape) : nil)
                if corrects { last = usedCorrected ? corrected : current }
                current = next
                next = pool.first { $0 !== current && $0 !== last }!
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
