/// Runs a graph on a backend. At construction it orders the nodes the requested outputs need,
/// computes each tensor's lifetime and assigns buffers from a pool so that dead activations are
/// reused; the buffers are allocated once and reused by every run.
///
/// Storage that is not pooled: views (reshape) share their input's buffer; the outputs of in-place
/// ops (Op.inPlaceInputs, e.g. AdamW on the flat parameters) share the buffer of the input they
/// overwrite, which no later node may read; placed values are written into a caller's buffer
/// (e.g. a gradient into its view of the flat gradient buffer).
public final class Executor {
    public let graph: Graph
    public let backend: Backend
    public let outputs: [Value]
    /// Bytes of device memory held by the planned (non-leaf) tensors.
    public private(set) var plannedBytes = 0

    private let schedule: [Int]
    /// Root value (views and in-place outputs resolved) → buffer slot.
    private var slotOfRoot: [Int: Int] = [:]
    private var slots: [DeviceBuffer] = []
    private var rootOf: [Int: Int] = [:]
    private var constants: [Int: DeviceBuffer] = [:]
    private var bound: [Int: DeviceBuffer] = [:]
    private var placed: [Int: DeviceBuffer] = [:]
    /// Ops that replace a node's own for later runs (per-step coefficients), by node index.
    private var replaced: [Int: Op] = [:]

    /// `placements` puts computed values into the caller's buffers instead of the pool.
    public init(graph: Graph, outputs: [Value], backend: Backend, placements: [Value: DeviceBuffer] = [:]) throws {
        self.graph = graph
        self.backend = backend
        self.outputs = outputs

        // 1. The nodes the outputs depend on, in graph order.
        var needed = Set(outputs.map(\.id))
        var keep = [Bool](repeating: false, count: graph.nodes.count)
        for index in stride(from: graph.nodes.count - 1, through: 0, by: -1) {
            let node = graph.nodes[index]
            if node.outputs.contains(where: { needed.contains($0.id) }) {
                keep[index] = true
                node.inputs.forEach { needed.insert($0.id) }
            }
        }
        schedule = keep.indices.filter { keep[$0] }

        // 2. Views and in-place outputs share their input's storage: every value maps to a root.
        func root(_ v: Int) -> Int { rootOf[v] ?? v }
        var lastRead: [Int: Int] = [:]
        for (position, index) in schedule.enumerated() {
            for v in graph.nodes[index].inputs { lastRead[v.id] = position }
        }
        for (position, index) in schedule.enumerated() {
            let node = graph.nodes[index]
            if case .reshape = node.op { rootOf[node.outputs[0].id] = root(node.inputs[0].id) }
            if let aliased = node.op.inPlaceInputs {
                for (output, input) in zip(node.outputs, aliased.map { node.inputs[$0] }) {
                    precondition(lastRead[input.id] == position && !outputs.contains(input),
                                 "\(node.op.kind) overwrites \(input), which is read after it")
                    rootOf[output.id] = root(input.id)
                }
            }
        }
        for (value, buffer) in placements {
            let id = root(value.id)
            precondition(graph.producer[id] != nil, "only computed values can be placed: \(value)")
            precondition(placed[id] == nil, "\(value) shares its storage with another placed value")
            precondition(buffer.count >= graph.shape(value).count, "buffer too small for \(value) \(graph.shape(value))")
            placed[id] = buffer
        }

        // 3. Last use of each root (requested outputs live to the end).
        var lastUse: [Int: Int] = [:]
        for (position, index) in schedule.enumerated() {
            let node = graph.nodes[index]
            for v in node.inputs + node.outputs { lastUse[root(v.id)] = position }
        }
        for v in outputs { lastUse[root(v.id)] = Int.max }

        // 4. Assign slots: best-fit reuse of freed buffers of similar size.
        var slotSizes: [Int] = []
        var free: [Int] = []
        for (position, index) in schedule.enumerated() {
            let node = graph.nodes[index]
            if case .reshape = node.op { continue }
            for v in node.outputs where root(v.id) == v.id && placed[v.id] == nil {
                let count = graph.shape(v).count
                let candidates = free.filter { slotSizes[$0] >= count && slotSizes[$0] <= 2 * count + 1024 }
                if let best = candidates.min(by: { slotSizes[$0] < slotSizes[$1] }) {
                    free.removeAll { $0 == best }
                    slotOfRoot[v.id] = best
                } else {
                    slotSizes.append(count)
                    slotOfRoot[v.id] = slotSizes.count - 1
                }
            }
            // Release what dies here (after the outputs are placed, so outputs never alias inputs).
            for v in Set((node.inputs + node.outputs).map { root($0.id) }) where lastUse[v] == position {
                if let slot = slotOfRoot[v] { free.append(slot) }
            }
        }
        slots = try slotSizes.map { try backend.makeBuffer(count: max($0, 1)) }
        plannedBytes = slotSizes.reduce(0, +) * 4

        for (id, leaf) in graph.leaves {
            if case .constant(let values) = leaf, needed.contains(id) {
                constants[id] = try backend.makeBuffer(values)
            }
        }
    }

    /// Binds a leaf (input or parameter) to a buffer for subsequent runs.
    public func bind(_ value: Value, to buffer: DeviceBuffer) {
        precondition(graph.producer[value.id] == nil, "only leaves can be bound")
        precondition(buffer.count >= graph.shape(value).count, "buffer too small for \(value) \(graph.shape(value))")
        bound[value.id] = buffer
    }

    /// Moves a value placed at construction into another caller's buffer for subsequent runs: values
    /// that live across runs in buffers the caller rotates (a sampler's x_t and its history).
    public func place(_ value: Value, in buffer: DeviceBuffer) {
        let id = rootOf[value.id] ?? value.id
        precondition(placed[id] != nil, "only values placed at construction can be moved: \(value)")
        precondition(buffer.count >= graph.shape(value).count, "buffer too small for \(value) \(graph.shape(value))")
        placed[id] = buffer
    }

    /// The buffer that holds `value` after a run (valid until the next run).
    public func buffer(_ value: Value) -> DeviceBuffer {
        let id = rootOf[value.id] ?? value.id
        if let slot = slotOfRoot[id] { return slots[slot] }
        if let b = placed[id] ?? bound[id] ?? constants[id] { return b }
        preconditionFailure("\(value) is neither planned nor bound")
    }

    public func tensor(_ value: Value) -> TensorRef { TensorRef(buffer(value), graph.shape(value)) }

    /// Runs the node that produces `value` with `op` from now on: the same kind and shapes with
    /// other coefficients (a step's learning rate, a micro-batch's accumulation mode).
    public func replaceOp(ofNodeProducing value: Value, with op: Op) {
        guard let index = graph.producer[value.id] else { preconditionFailure("\(value) is a leaf") }
        let node = graph.nodes[index]
        precondition(op.kind == node.op.kind && op.outputShapes(node.inputs.map(graph.shape)) == node.outputs.map(graph.shape),
                     "\(op) cannot replace \(node.op)")
        replaced[index] = op
    }

    /// The position in the schedule of the node that produces `value`: `run(step:nodes:)` with
    /// 0..<p and then p..<scheduledNodeCount is one run split just before that node.
    public func position(of value: Value) -> Int {
        guard let index = graph.producer[value.id], let position = schedule.firstIndex(of: index) else {
            preconditionFailure("\(value) is not computed by this executor")
        }
        return position
    }

    /// Enqueues the scheduled nodes (all, or those at `positions`). Nothing is read back.
    public func run(step: UInt32, nodes positions: Range<Int>? = nil) throws {
        for index in schedule[positions ?? schedule.indices] {
            let node = graph.nodes[index]
            if case .reshape = node.op { continue }
            try backend.run(replaced[index] ?? node.op, inputs: node.inputs.map(tensor), outputs: node.outputs.map(tensor), step: step)
        }
    }

    public var scheduledNodeCount: Int { schedule.count }
}
