import DDPMCore
import Foundation

/// One training run (llm.c's shape): the whole step — noising, U-Net forward, MSE, backward, grad
/// norm and clip, AdamW, EMA — is enqueued on the device; the host only uploads the next batch and
/// reads the loss every `logEvery` steps.
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
    /// Device memory of the planned activations and gradients.
    public var plannedBytes: Int { executor.plannedBytes }

    private let net: UNet
    private let x0: Value
    private let gradients: [Value]
    private let executor: Executor
    private let x0Buffer: DeviceBuffer
    private let statsBuffer: DeviceBuffer
    /// A parameter's device state: its value, Adam moments and EMA.
    private struct ParameterState {
        let name: String, shape: Shape
        let param: DeviceBuffer, m: DeviceBuffer, v: DeviceBuffer, ema: DeviceBuffer
    }
    private var parameters: [ParameterState] = []
    /// Averaged gradients when accumulating over micro-batches (empty otherwise).
    private var accumulated: [DeviceBuffer] = []

    /// A fresh run (weights initialised from the seed) or a resumed one (from a checkpoint).
    public init(backend: Backend, options: TrainingOptions, resumeFrom checkpoint: Checkpoint? = nil) throws {
        self.backend = backend
        self.options = options
        let b = options.batch
        let size = options.model.sampleSize
        let graph = Graph()
        x0 = graph.input("x0", Shape(b, options.model.inChannels, size, size))
        let noised = options.noised(x0, in: graph)
        net = UNet(config: options.model, batch: b, graph: graph, sample: noised[0], timesteps: noised[2],
                   training: true, dropoutSeed: options.seed ^ 0xD50F)
        loss = options.loss(output: net.output, x0: x0, noised: noised, in: graph)
        gradients = graph.gradients(of: loss, wrt: graph.parameters.map(\.value))
        self.graph = graph
        executor = try Executor(graph: graph, outputs: [loss] + gradients, backend: backend)
        x0Buffer = try backend.makeBuffer(count: graph.shape(x0).count)
        executor.bind(x0, to: x0Buffer)
        statsBuffer = try backend.makeBuffer(count: 2)

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
        for (name, value) in graph.parameters {
            let shape = graph.shape(value)
            let zeros = [Float](repeating: 0, count: shape.count)
            let p = try backend.makeBuffer(weights.values[name]!)
            executor.bind(value, to: p)
            parameters.append(ParameterState(name: name, shape: shape, param: p,
                                             m: try backend.makeBuffer(checkpoint?.adamM.values[name] ?? zeros),
                                             v: try backend.makeBuffer(checkpoint?.adamV.values[name] ?? zeros),
                                             ema: try backend.makeBuffer(checkpoint?.ema.values[name] ?? weights.values[name]!)))
            if options.accumulationSteps > 1 { accumulated.append(try backend.makeBuffer(count: shape.count)) }
        }
    }

    /// Runs one step on `batch` (N×C×H×W in [-1, 1]). Nothing is read back.
    public func trainStep(batch: [Float]) throws { try trainStep(microBatches: [batch]) }

    /// One optimizer step on `accumulationSteps` micro-batches: their gradients are averaged on the
    /// device. Micro-batch i of step s draws its noise at Philox step (s−1)·k + i + 1.
    public func trainStep(microBatches: [[Float]]) throws {
        let k = options.accumulationSteps
        precondition(microBatches.count == k, "expected \(k) micro-batches")
        step += 1
        var grads = gradients.map(executor.tensor)
        for (i, batch) in microBatches.enumerated() {
            try backend.write(batch, to: x0Buffer)
            try executor.run(step: UInt32((step - 1) * k + i + 1))
            guard k > 1 else { break }
            for (g, acc) in zip(gradients.map(executor.tensor), accumulated) {
                let target = TensorRef(acc, g.shape)
                if i == 0 {
                    try backend.run(.scale(1 / Float(k)), inputs: [g], outputs: [target], step: 0)
                } else {
                    try backend.run(.scale(1 / Float(k)), inputs: [g], outputs: [g], step: 0)   // in place, elementwise
                    try backend.run(.add, inputs: [target, g], outputs: [target], step: 0)
                }
            }
            grads = zip(accumulated, grads).map { TensorRef($0, $1.shape) }
        }
        let stats = TensorRef(statsBuffer, Shape(2))
        try backend.run(.gradNorm(maxNorm: options.gradientClip), inputs: grads, outputs: [stats], step: 0)
        lastLearningRate = options.learningRate(step: step, trainingSeconds: trainingSeconds)
        let adam = Adam(learningRate: lastLearningRate, weightDecay: options.weightDecay, step: step)
        let rate = options.emaRate(step: step)
        for (p, g) in zip(parameters, grads) {
            try backend.run(.adamStep(adam), inputs: [g, stats],
                            outputs: [TensorRef(p.param, p.shape), TensorRef(p.m, p.shape), TensorRef(p.v, p.shape)], step: 0)
            try backend.run(.emaUpdate(rate: rate), inputs: [TensorRef(p.param, p.shape)], outputs: [TensorRef(p.ema, p.shape)], step: 0)
        }
    }

    /// The loss of the last step and its gradient norm before clipping (waits for the device).
    public func readLossAndGradientNorm() throws -> (loss: Float, gradientNorm: Float) {
        let l = try backend.read(executor.buffer(loss), count: 1)[0]
        let s = try backend.read(statsBuffer, count: 2)
        return (l, s[0])
    }

    /// d(loss)/d(parameter) of the last step, by parameter name (before clipping).
    public func gradientValues() throws -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for (p, g) in zip(parameters, gradients) { out[p.name] = try backend.read(executor.buffer(g), count: p.shape.count) }
        return out
    }

    /// The averaged gradients of the last step when accumulating over micro-batches.
    public func accumulatedGradientValues() throws -> [String: [Float]] {
        precondition(!accumulated.isEmpty, "not accumulating")
        var out: [String: [Float]] = [:]
        for (p, acc) in zip(parameters, accumulated) { out[p.name] = try backend.read(acc, count: p.shape.count) }
        return out
    }

    /// Host copies of the weights (raw or EMA), the Adam moments: everything a checkpoint needs.
    public func checkpoint() throws -> Checkpoint {
        Checkpoint(step: step, options: options, model: try read { $0.param }, ema: try emaWeights(),
                   adamM: try read { $0.m }, adamV: try read { $0.v }, trainingSeconds: trainingSeconds)
    }

    /// The EMA weights only (what sample grids and exports use).
    public func emaWeights() throws -> Weights { try read { $0.ema } }

    private func read(_ pick: (ParameterState) -> DeviceBuffer) throws -> Weights {
        var w = Weights(graph: graph)
        for p in parameters { w.values[p.name] = try backend.read(pick(p), count: p.shape.count) }
        return w
    }

    /// Floating-point operations of one step: 2 per multiply-add of the convolutions and matrix
    /// products, forward and backward (elementwise ops are not counted).
    public var flopsPerStep: Double {
        var total = 0.0
        for node in graph.nodes {
            let s = node.inputs.map(graph.shape)
            switch node.op {
            case .conv2d(let c):
                let out = graph.shape(node.outputs[0])
                total += 2 * Double(out.count) * Double(s[0][1] * c.kernel * c.kernel)
            case .conv2dBackwardInput(let c, _, _):
                total += 2 * Double(s[0].count) * Double(s[1][1] * c.kernel * c.kernel)
            case .conv2dBackwardWeight(let c):
                total += 2 * Double(s[0].count) * Double(s[1][1] * c.kernel * c.kernel)
            case .matmul(let p):
                let k = p.transposeA ? s[0][1] : s[0][2]
                total += 2 * Double(graph.shape(node.outputs[0]).count) * Double(k)
            case .linear:
                total += 2 * Double(graph.shape(node.outputs[0]).count) * Double(s[0][1])
            default: break
            }
        }
        return total
    }
}
