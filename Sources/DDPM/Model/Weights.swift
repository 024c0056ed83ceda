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
    /// ±1/√fan_in (kaiming_uniform with a=√5), GroupNorm weight 1 and bias 0, a class embedding N(0, 1).
    public mutating func initialize(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        for name in names {
            let shape = shapes[name]!
            if name.contains("norm") {   // norm1, norm2, group_norm, conv_norm_out
                values[name] = [Float](repeating: name.hasSuffix(".weight") ? 1 : 0, count: shape.count)
                continue
            }
            if name == "class_embedding.weight" {   // nn.Embedding: N(0, 1)
                values[name] = (0..<shape.count).map { _ in random.normal() }
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
            if let bad = entry.values.firstIndex(where: { !$0.isFinite }) {
                throw UserError("\(source): tensor \"\(prefix + name)\" holds \(entry.values[bad]) at element \(bad); weights must be finite. The file was written by a run that diverged, or is damaged: use an earlier checkpoint or re-export the model.")
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
