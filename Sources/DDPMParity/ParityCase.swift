import DDPMCore

/// How a parity case fills one input.
public enum InputFill {
    case normal(scale: Float)
    /// Uniform in [low, high).
    case uniform(Float, Float)
    /// Whole numbers in 0..<n (timesteps).
    case integers(Int)
    case values([Float])
}

/// One row of the parity suite: an op, its inputs, and the largest normalized MSE
/// Σ(a−b)²/Σb² allowed between the reference and the candidate backend.
public struct ParityCase: CustomStringConvertible {
    public let op: Op
    /// For in-place ops (Op.inPlaceInputs) the overwritten inputs are the outputs' buffers too.
    public let inputs: [(shape: Shape, fill: InputFill)]
    public let tolerance: Double
    public let seed: UInt64
    public var step: UInt32 = 7

    public init(_ op: Op, _ inputs: [(Shape, InputFill)], tolerance: Double = 1e-7, seed: UInt64 = 1) {
        self.op = op
        self.inputs = inputs.map { (shape: $0.0, fill: $0.1) }
        self.tolerance = tolerance
        self.seed = seed
    }

    public var description: String {
        "\(op.kind.rawValue) " + inputs.map { $0.shape.description }.joined(separator: " ")
    }

    /// Full parameters, printed on failure.
    public var details: String { "\(op) inputs \(inputs.map { $0.shape })" }
}

extension InputFill {
    func values(_ shape: Shape, _ random: inout TestRandom) -> [Float] {
        switch self {
        case .normal(let scale): return random.normals(shape.count, scale: scale)
        case .uniform(let low, let high):
            return (0..<shape.count).map { _ in low + (high - low) * Float(random.uniform()) }
        case .integers(let n): return (0..<shape.count).map { _ in Float(Int(random.uniform() * Double(n))) }
        case .values(let v): precondition(v.count == shape.count); return v
        }
    }
}
