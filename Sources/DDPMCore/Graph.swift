/// A value in a graph: a leaf (input, parameter, constant) or one output of a node.
public struct Value: Hashable, Sendable, CustomStringConvertible {
    public let id: Int
    public var description: String { "%\(id)" }
}

/// A graph of op nodes over NCHW float32 tensors, built once by ordinary Swift code (the U-Net
/// builder) and run many times by an Executor. Nodes are appended in a valid execution order.
public final class Graph {
    public struct Node {
        public let op: Op
        public let inputs: [Value]
        public let outputs: [Value]
    }
    public enum Leaf {
        case input(String)
        case parameter(String)
        case constant([Float])
    }

    public private(set) var nodes: [Node] = []
    public private(set) var shapes: [Shape] = []
    /// For each value: the index of the node that produces it, or nil for a leaf.
    public private(set) var producer: [Int?] = []
    public private(set) var leaves: [Int: Leaf] = [:]
    /// Parameters in creation order (the order of diffusers' state_dict for the U-Net).
    public private(set) var parameters: [(name: String, value: Value)] = []
    public private(set) var inputs: [(name: String, value: Value)] = []

    public init() {}

    public func shape(_ v: Value) -> Shape { shapes[v.id] }

    private func newValue(_ shape: Shape, producer node: Int?) -> Value {
        shapes.append(shape)
        producer.append(node)
        return Value(id: shapes.count - 1)
    }

    public func input(_ name: String, _ shape: Shape) -> Value {
        let v = newValue(shape, producer: nil)
        leaves[v.id] = .input(name)
        inputs.append((name, v))
        return v
    }

    public func parameter(_ name: String, _ shape: Shape) -> Value {
        precondition(!parameters.contains { $0.name == name }, "parameter \(name) defined twice")
        let v = newValue(shape, producer: nil)
        leaves[v.id] = .parameter(name)
        parameters.append((name, v))
        return v
    }

    public func constant(_ values: [Float], _ shape: Shape) -> Value {
        precondition(values.count == shape.count)
        let v = newValue(shape, producer: nil)
        leaves[v.id] = .constant(values)
        return v
    }

    /// Appends a node and returns its outputs.
    @discardableResult
    public func apply(_ op: Op, _ inputs: [Value]) -> [Value] {
        let outShapes = op.outputShapes(inputs.map(shape))
        let index = nodes.count
        let outputs = outShapes.map { newValue($0, producer: index) }
        nodes.append(Node(op: op, inputs: inputs, outputs: outputs))
        return outputs
    }

    /// Appends a single-output node and returns its output.
    public func callAsFunction(_ op: Op, _ inputs: Value...) -> Value {
        let outputs = apply(op, inputs)
        precondition(outputs.count == 1, "\(op) has \(outputs.count) outputs; use apply(_:_:)")
        return outputs[0]
    }
}
