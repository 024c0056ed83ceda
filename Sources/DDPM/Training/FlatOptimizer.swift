import DDPMCore

/// Where each parameter lives in the flat buffers: one offset per parameter, aligned to the
/// backend's view alignment. The padding between parameters is zero in every flat buffer and stays
/// zero (zero gradient and moments: AdamW and EMA keep a zero parameter at zero).
public struct FlatLayout {
    public let names: [String]
    public let shapes: [Shape]
    public let offsets: [Int]
    /// Floats in each flat buffer, padding included.
    public let count: Int

    public init(names: [String], shapes: [Shape], alignment: Int) {
        precondition(alignment >= 1)
        var offsets: [Int] = [], next = 0
        for shape in shapes {
            offsets.append(next)
            next += (shape.count + alignment - 1) / alignment * alignment
        }
        self.names = names; self.shapes = shapes; self.offsets = offsets; count = max(next, 1)
    }

    /// One flat host array from values by name (zero padding).
    func pack(_ values: [String: [Float]]) -> [Float] {
        var flat = [Float](repeating: 0, count: count)
        for (i, name) in names.enumerated() {
            let v = values[name]!
            precondition(v.count == shapes[i].count, "\(name): \(v.count) values for \(shapes[i])")
            flat.replaceSubrange(offsets[i]..<offsets[i] + v.count, with: v)
        }
        return flat
    }

    /// Values by name from one flat host array.
    func unpack(_ flat: [Float]) -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for (i, name) in names.enumerated() { out[name] = Array(flat[offsets[i]..<offsets[i] + shapes[i].count]) }
        return out
    }
}

/// The optimizer of a training graph on flat device buffers. Every parameter is a view into one
/// parameter buffer, and the backward graph writes every gradient straight into its view of one
/// gradient buffer (an Executor placement), so the gradient norm, AdamW, EMA and gradient
/// accumulation are one launch each. Its nodes are appended to the graph after the backward pass
/// and update the flat buffers in place (Op.inPlaceInputs); one Executor runs everything:
///
///   gradient stage (per micro-batch): forward, loss, backward → flat gradients
///                                     [→ accumulated = accumulated + gradients / k]
///   update stage (per step):          grad norm → AdamW on (parameters, m, v) [→ EMA]
///
/// `step` calls its `gradientHook` between the two stages with the buffer the update reads.
final class FlatOptimizer {
    let layout: FlatLayout
    let parameters: DeviceBuffer, gradients: DeviceBuffer, m: DeviceBuffer, v: DeviceBuffer
    let ema: DeviceBuffer?
    /// The mean gradient of the micro-batches when accumulating (nil otherwise).
    let accumulated: DeviceBuffer?
    /// The gradient norm and clip factor of the last update (a [2] value of the graph).
    let stats: Value
    /// Values the Executor must compute (the gradients and the updates).
    let outputs: [Value]
    /// Gradient values → their views of the flat gradient buffer (Executor placements).
    let placements: [Value: DeviceBuffer]

    private let backend: Backend
    private let accumulate: Value?, adam: Value, emaUpdate: Value?
    private let leaves: [(Value, DeviceBuffer)]
    private let accumulationSteps: Int

    /// Appends the optimizer nodes for `gradients` (d loss / d graph.parameters, in graph order) and
    /// makes the flat buffers from `weights` and, when resuming, the saved moments and EMA.
    init(graph: Graph, gradients gradientValues: [Value], backend: Backend, maxNorm: Float, accumulationSteps: Int,
         weights: Weights, m savedM: Weights? = nil, v savedV: Weights? = nil, ema savedEMA: Weights? = nil,
         keepsEMA: Bool) throws {
        precondition(gradientValues.count == graph.parameters.count)
        self.backend = backend
        self.accumulationSteps = accumulationSteps
        let shapes = graph.parameters.map { graph.shape($0.value) }
        let layout = FlatLayout(names: graph.parameters.map(\.name), shapes: shapes, alignment: backend.viewAlignment)
        let zeros = [Float](repeating: 0, count: layout.count)
        let parameters = try backend.makeBuffer(layout.pack(weights.values))
        // Device buffers start undefined: the gradients' padding is written as zeros too.
        let gradients = try backend.makeBuffer(zeros)
        let m = try backend.makeBuffer(savedM.map { layout.pack($0.values) } ?? zeros)
        let v = try backend.makeBuffer(savedV.map { layout.pack($0.values) } ?? zeros)
        let ema = keepsEMA ? try backend.makeBuffer(layout.pack((savedEMA ?? weights).values)) : nil
        let accumulated = accumulationSteps > 1 ? try backend.makeBuffer(zeros) : nil
        (self.layout, self.parameters, self.gradients, self.m, self.v, self.ema, self.accumulated) =
            (layout, parameters, gradients, m, v, ema, accumulated)

        var leaves: [(Value, DeviceBuffer)] = []
        var placements: [Value: DeviceBuffer] = [:]
        var placedGradients: [Value] = []
        for (i, (_, value)) in graph.parameters.enumerated() {
            leaves.append((value, try backend.makeView(of: parameters, offset: layout.offsets[i], count: shapes[i].count)))
            // A value that is the gradient of two parameters (an add's dy) is copied for the second.
            let g = placements[gradientValues[i]] == nil ? gradientValues[i] : graph(.scale(1), gradientValues[i])
            placements[g] = try backend.makeView(of: gradients, offset: layout.offsets[i], count: shapes[i].count)
            placedGradients.append(g)
        }
        self.placements = placements

        // The flat buffers as graph leaves. The flat gradient leaf has no edge to the nodes that
        // write its views; the Executor runs nodes in graph order, and these come after them all.
        let flat = Shape(layout.count)
        func leaf(_ name: String, _ buffer: DeviceBuffer) -> Value {
            let value = graph.input(name, flat)
            leaves.append((value, buffer))
            return value
        }
        var update = leaf("flat gradients", gradients)
        let accumulate = accumulated.map {
            graph(.accumulate(scale: 1 / Float(accumulationSteps), reset: true), leaf("flat accumulated gradients", $0), update)
        }
        if let accumulate { update = accumulate }
        let stats = graph(.gradNorm(maxNorm: maxNorm), update)
        let placeholder = Adam(learningRate: 0, step: 1)   // `step` gives each update its own coefficients
        let updated = graph.apply(.adamStep(placeholder), [update, stats, leaf("flat parameters", parameters),
                                                          leaf("flat adam m", m), leaf("flat adam v", v)])
        let emaUpdate = ema.map { graph(.emaUpdate(rate: 0), updated[0], leaf("flat ema", $0)) }
        (self.accumulate, self.stats, adam, self.emaUpdate) = (accumulate, stats, updated[0], emaUpdate)
        outputs = placedGradients + [accumulate, stats].compactMap { $0 } + updated + [emaUpdate].compactMap { $0 }
        self.leaves = leaves
    }

    /// Binds the parameters (views) and the flat buffers to the executor's leaves.
    func bind(to executor: Executor) {
        for (value, buffer) in leaves { executor.bind(value, to: buffer) }
    }

    /// One optimizer step: for each micro-batch i, `microBatch(i)` uploads its input and returns
    /// its Philox step, and the gradient stage runs; then `hook` sees the gradients the update will
    /// use; then the update stage runs. Nothing waits for the device.
    func step(executor: Executor, adam coefficients: Adam, emaRate: Float?, hook: ((DeviceBuffer) throws -> Void)?,
              microBatch: (Int) throws -> UInt32) throws {
        let split = executor.position(of: stats)
        for i in 0..<accumulationSteps {
            let philoxStep = try microBatch(i)
            if let accumulate {
                executor.replaceOp(ofNodeProducing: accumulate, with: .accumulate(scale: 1 / Float(accumulationSteps), reset: i == 0))
            }
            try executor.run(step: philoxStep, nodes: 0..<split)
        }
        // Gradients computed: the one point between backward and update (e.g. an all-reduce).
        try hook?(accumulated ?? gradients)
        executor.replaceOp(ofNodeProducing: adam, with: .adamStep(coefficients))
        if let emaUpdate, let emaRate { executor.replaceOp(ofNodeProducing: emaUpdate, with: .emaUpdate(rate: emaRate)) }
        try executor.run(step: 0, nodes: split..<executor.scheduledNodeCount)
    }

    /// Host copies of one flat buffer by parameter name (one read).
    func read(_ buffer: DeviceBuffer, into graph: Graph) throws -> Weights {
        var w = Weights(graph: graph)
        w.values = layout.unpack(try backend.read(buffer, count: layout.count))
        return w
    }
}
