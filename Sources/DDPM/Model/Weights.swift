import DDPMCore
import Foundation

/// Host copies of a model's parameters by diffusers name, in graph order.
public struct Weights {
    public var names: [String]
    public var shapes: [String: Shape]
    public var values: [String: [Float]]

    public init(graph: Graph) {
        names = graph.parameters.map(\.name)
        shapes = Dictionary(uniqueKeysWithValues: graph.parameters.map { ($0.name, graph.shape($0.value)) })
        values = [:]
    }

    public var parameterCount: Int { shapes.values.reduce(0) { $0 + $1.count } }

    /// PyTorch's default initialisation, seeded: conv and linear weights and biases uniform in
    /// ±1/√fan_in (kaiming_uniform with a=√5), GroupNorm weight 1 and bias 0.
    public mutating func initialize(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        for name in names {
            let shape = shapes[name]!
            if name.contains("norm") {   // norm1, norm2, group_norm, conv_norm_out
                values[name] = [Float](repeating: name.hasSuffix(".weight") ? 1 : 0, count: shape.count)
                continue
            }
            let weightShape = name.hasSuffix(".bias") ? shapes[String(name.dropLast(5)) + ".weight"]! : shape
            let fanIn = weightShape.dims.dropFirst().reduce(1, *)
            let bound = 1 / Float(fanIn).squareRoot()
            values[name] = (0..<shape.count).map { _ in bound * (2 * Float(random.uniform()) - 1) }
        }
    }

    /// Loads a diffusers safetensors file; every parameter must be present with its shape.
    public mutating func load(_ tensors: SafeTensors, source: String, prefix: String = "") throws {
        for name in names {
            guard let entry = tensors.tensors[prefix + name] else {
                throw UserError("\(source) has no tensor \"\(prefix + name)\" that this model needs. Is the config.json the one these weights were saved with?")
            }
            let shape = shapes[name]!
            guard entry.shape == shape.dims else {
                throw UserError("\(source): tensor \"\(prefix + name)\" has shape \(entry.shape), the model expects \(shape.dims).")
            }
            values[name] = entry.values
        }
        let unknown = tensors.tensors.keys.filter { $0.hasPrefix(prefix) && shapes[String($0.dropFirst(prefix.count))] == nil }
        if !unknown.isEmpty {
            throw UserError("\(source) has tensors this model does not use: \(unknown.sorted().prefix(5).joined(separator: ", "))\(unknown.count > 5 ? ", …" : ""). Check that config.json matches the weights.")
        }
    }

    /// Tensors for a safetensors file, names prefixed.
    public func entries(prefix: String = "") -> [String: SafeTensors.Entry] {
        Dictionary(uniqueKeysWithValues: names.map { (prefix + $0, SafeTensors.Entry(shape: shapes[$0]!.dims, values: values[$0]!)) })
    }
}

/// SplitMix64 for weight initialisation and data order (host-side randomness).
public struct SplitMix64 {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }
    /// A Fisher–Yates shuffle of 0..<count.
    public mutating func permutation(_ count: Int) -> [Int] {
        var p = Array(0..<count)
        for i in stride(from: count - 1, to: 0, by: -1) { p.swapAt(i, Int(next() % UInt64(i + 1))) }
        return p
    }
}
