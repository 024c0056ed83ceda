import DDPMCore
import Foundation

/// One training run (llm.c's shape): the whole step — noising, U-Net forward, MSE, backward, grad
/// norm and clip, AdamW, EMA — is one graph run enqueued on the device; the host only uploads the
/// next batch and reads the loss every `logEvery` steps. Parameters, gradients, Adam moments and
/// EMA live in flat buffers (FlatOptimizer).
public final class Trainer {
    public let backend: Backend
    public let options: TrainingOptions
    public private(set) var step: Int
    /// Training time spent before the next step, all sessions together (the session sets it; it
    /// drives a time-driven cosine learning rate and is stored in the checkpoint).
    public var trainingSeconds: Double
    /// The learning rate of the last step.
    public private(set) var lastLearningRate: Float = 0
    public let graph: Graph
    public let loss: Value
    public let parameterCount: Int
    /// The ranks this trainer shares its steps with (nil: one process, the whole batch).
    public let parallel: DataParallel?
    /// Images per micro-batch on this rank: the batch, or this rank's shard of it.
    public let localBatch: Int
    /// Device memory of the planned activations and the gradients.
    public var plannedBytes: Int { executor.plannedBytes + optimizer.layout.count * 4 }
    /// Runs between "gradients computed" and "optimizer update" in every step, with the flat
    /// gradient buffer the update reads (averaged over the micro-batches when accumulating; laid out
    /// as `flatLayout`). It may change the gradients in place (the data-parallel average runs first).
    public var gradientHook: ((DeviceBuffer) throws -> Void)?
    /// Where each parameter's gradient lives in the flat gradient buffer.
    public var flatLayout: FlatLayout { optimizer.layout }

    private let net: UNet
    private let x0: Value
    private let executor: Executor
    private let x0Buffer: DeviceBuffer
    private let optimizer: FlatOptimizer
    /// The batch's class labels (class-conditional models only).
    private let labelBuffer: DeviceBuffer?

    /// A fresh run (weights initialised from the seed) or a resumed one (from a checkpoint).
    public init(backend: Backend, options: TrainingOptions, resumeFrom checkpoint: Checkpoint? = nil,
                parallel: DataParallel? = nil) throws {
        self.backend = backend
        self.options = options
        self.parallel = parallel
        try parallel?.check(batch: options.batch)
        let shard = parallel?.shard(ofBatch: options.batch) ?? 0..<options.batch
        let b = shard.count
        localBatch = b
        let size = options.model.sampleSize
        let graph = Graph()
        x0 = graph.input("x0", Shape(b, options.model.inChannels, size, size))
        let noised = options.noised(x0, in: graph, firstImage: UInt32(shard.lowerBound))
        let labels = options.model.isClassConditional ? graph.input("class_labels", Shape(b)) : nil
        net = UNet(config: options.model, batch: b, graph: graph, sample: noised[0], timesteps: noised[2], classLabels: labels,
                   training: true, dropoutSeed: options.seed ^ 0xD50F, firstImage: UInt32(shard.lowerBound))
        loss = options.loss(output: net.output, x0: x0, noised: noised, in: graph)
        let gradients = graph.gradients(of: loss, wrt: graph.parameters.map(\.value))
        self.graph = graph

        var weights = Weights(graph: graph)
        if let checkpoint {
            weights = checkpoint.model
            step = checkpoint.step
            trainingSeconds = checkpoint.trainingSeconds
        } else {
            weights.initialize(seed: options.seed)
            step = 0
            trainingSeconds = 0
        }
        parameterCount = weights.parameterCount
        optimizer = try FlatOptimizer(graph: graph, gradients: gradients, backend: backend, maxNorm: options.gradientClip,
                                      accumulationSteps: options.accumulationSteps, weights: weights,
                                      m: checkpoint?.adamM, v: checkpoint?.adamV, ema: checkpoint?.ema, keepsEMA: true)
        executor = try Executor(graph: graph, outputs: [loss] + optimizer.outputs, backend: backend, placements: optimizer.placements)
        optimizer.bind(to: executor)
        x0Buffer = try backend.makeBuffer(count: graph.shape(x0).count)
        executor.bind(x0, to: x0Buffer)
        labelBuffer = try labels.map { try backend.makeBuffer(count: graph.shape($0).count) }
        if let labels, let labelBuffer { executor.bind(labels, to: labelBuffer) }
    }

    /// Runs one step on `batch` (N×C×H×W in [-1, 1]) and, for a class-conditional model, its
    /// labels (N floats holding class indices). Nothing is read back.
    public func trainStep(batch: [Float], labels: [Float]? = nil) throws {
        try trainStep(microBatches: [batch], labels: labels.map { [$0] })
    }

    /// One optimizer step on `accumulationSteps` micro-batches: their gradients are averaged on the
    /// device. Micro-batch i of step s draws its noise at Philox step (s−1)·k + i + 1.
    public func trainStep(microBatches: [[Float]], labels: [[Float]]? = nil) throws {
        let k = options.accumulationSteps
        precondition(microBatches.count == k, "expected \(k) micro-batches")
        precondition((labels != nil) == (labelBuffer != nil), "a class-conditional model trains with labels, an unconditional one without")
        step += 1
        lastLearningRate = options.learningRate(step: step, trainingSeconds: trainingSeconds)
        let adam = Adam(learningRate: lastLearningRate, weightDecay: options.weightDecay, step: step)
        try optimizer.step(executor: executor, adam: adam, emaRate: options.emaRate(step: step), hook: stepHook) { i in
            try backend.write(microBatches[i], to: x0Buffer)
            if let labelBuffer, let labels { try backend.write(labels[i], to: labelBuffer) }
            return UInt32((step - 1) * k + i + 1)
        }
    }

    /// What runs between the gradient stage and the update: with data parallelism (issue 19) the
    /// flat gradients and the loss are first averaged over the ranks, then `gradientHook`.
    private var stepHook: ((DeviceBuffer) throws -> Void)? {
        guard let parallel else { return gradientHook }
        return { [self] flat in
            try parallel.average(flat, count: optimizer.layout.count, loss: executor.buffer(loss), on: backend)
            try gradientHook?(flat)
        }
    }

    /// The loss of the last step and its gradient norm before clipping (waits for the device).
    public func readLossAndGradientNorm() throws -> (loss: Float, gradientNorm: Float) {
        let l = try backend.read(executor.buffer(loss), count: 1)[0]
        let s = try backend.read(executor.buffer(optimizer.stats), count: 2)
        return (l, s[0])
    }

    /// d(loss)/d(parameter) of the last step, by parameter name (before clipping).
    public func gradientValues() throws -> [String: [Float]] { try optimizer.read(optimizer.gradients, into: graph).values }

    /// The averaged gradients of the last step when accumulating over micro-batches.
    public func accumulatedGradientValues() throws -> [String: [Float]] {
        guard let accumulated = optimizer.accumulated else { preconditionFailure("not accumulating") }
        return try optimizer.read(accumulated, into: graph).values
    }

    /// Host copies of the weights (raw or EMA), the Adam moments: everything a checkpoint needs.
    public func checkpoint() throws -> Checkpoint {
        Checkpoint(step: step, options: options, model: try optimizer.read(optimizer.parameters, into: graph), ema: try emaWeights(),
                   adamM: try optimizer.read(optimizer.m, into: graph), adamV: try optimizer.read(optimizer.v, into: graph),
                   trainingSeconds: trainingSeconds)
    }

    /// The EMA weights only (what sample grids and exports use).
    public func emaWeights() throws -> Weights { try optimizer.read(optimizer.ema!, into: graph) }

    /// Floating-point operations of one step: 2 per multiply-add of the convolutions and matrix
    /// products (attention's included), forward and backward (elementwise ops are not counted).
    public var flopsPerStep: Double {
        var total = 0.0
        for node in graph.nodes {
            let s = node.inputs.map(graph.shape)
            switch node.op {
            case .conv2d(let c):
                let out = graph.shape(node.outputs[0])
                total += 2 * Double(out.count) * Double(s[0][1] * c.taps)
            case .conv2dBackwardInput(let c, _, _):
                total += 2 * Double(s[0].count) * Double(s[1][1] * c.taps)
            case .conv2dBackwardWeight(let c):
                total += 2 * Double(s[0].count) * Double(s[1][1] * c.taps)
            case .matmul(let p):
                let k = p.transposeA ? s[0][1] : s[0][2]
                total += 2 * Double(graph.shape(node.outputs[0]).count) * Double(k)
            case .linear:
                total += 2 * Double(graph.shape(node.outputs[0]).count) * Double(s[0][1])
            case .attention, .attentionBackward:
                // As the matrix products it replaces (QᵀK and V·Pᵀ; dP, dq, dk and dv), not the
                // fused kernels' recomputed scores, so that figures stay comparable.
                let (b, d, t) = (Double(s[0][0]), Double(s[0][1]), Double(s[0][2]))
                let products: Double = if case .attention = node.op { 2 } else { 4 }
                total += products * 2 * b * t * t * d
            default: break
            }
        }
        return total
    }
}
