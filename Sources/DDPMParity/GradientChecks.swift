import DDPMCore

/// One finite-difference check of a gradient rule: the op's first output feeds
/// loss = count · mse(output, fixed random target) (or the op is the loss itself), autodiff gives
/// d(loss)/d(input), and central differences of the loss must agree.
public struct GradientCheckCase: CustomStringConvertible {
    public let op: Op
    public let inputs: [(shape: Shape, fill: InputFill)]
    /// Indices of the inputs whose gradients are checked.
    public let checked: [Int]
    public init(_ op: Op, _ inputs: [(Shape, InputFill)], checked: [Int]? = nil) {
        self.op = op
        self.inputs = inputs.map { (shape: $0.0, fill: $0.1) }
        self.checked = checked ?? Array(inputs.indices)
    }
    public var description: String { "\(op.kind.rawValue) " + inputs.map { $0.shape.description }.joined(separator: " ") }
}

public struct GradientCheckResult {
    public let testCase: GradientCheckCase
    /// Worst ‖analytic − numeric‖ / max(‖numeric‖, 1e-3) over the checked inputs.
    public let relativeError: Double
    public var passed: Bool { relativeError <= GradientChecks.tolerance }
}

public enum GradientChecks {
    /// Central differences in float32 with h = 1e-2 carry O(h²) truncation and ~1e-5 rounding
    /// error on losses of order 1: 2e-2 relative leaves room for both and still catches a wrong rule
    /// (a wrong sign, factor or index gives errors of order 1).
    public static let tolerance = 2e-2
    static let h: Float = 1e-2
    static let samplesPerInput = 12

    public static var all: [GradientCheckCase] {
        let n: InputFill = .normal(scale: 1)
        let s = Shape(2, 3, 4, 5)
        // The epilogue's cases with outputs under 1000 elements: the loss N·mse sums the output in
        // float32, and above that its rounding (~ulp(loss)/2h) is a few percent of the residual's
        // gradient (2·(y − target) per element): 2.6% measured on the 9×7×6×8 output.
        let epilogues = ParityCases.epilogues.filter { x, w, c in
            let (ho, wo) = c.outputSize(height: x[2], width: x[3])
            return x[0] * w[0] * ho * wo < 1000
        }
        var cases: [GradientCheckCase] = (ParityCases.convolutions + epilogues).map { x, w, c in
            GradientCheckCase(.conv2d(c), ParityCases.convolutionInputs(x, w, c))
        }.filter { $0.inputs[0].shape.count < 2000 }
        cases += [
            GradientCheckCase(.linear, [(Shape(3, 7), n), (Shape(5, 7), n), (Shape(5), n)]),
            GradientCheckCase(.groupNorm(GroupNorm(groups: 3, eps: 1e-5)), [(Shape(2, 6, 3, 4), n), (Shape(6), n), (Shape(6), n)]),
            GradientCheckCase(.groupNorm(GroupNorm(groups: 2, eps: 1e-5)), [(Shape(2, 4, 9), n), (Shape(4), n), (Shape(4), n)]),
            GradientCheckCase(.groupNorm(GroupNorm(groups: 3, eps: 1e-5, silu: true)), [(Shape(2, 6, 3, 4), n), (Shape(6), n), (Shape(6), n)]),
            GradientCheckCase(.silu, [(s, .normal(scale: 3))]),
            GradientCheckCase(.softmax, [(Shape(2, 3, 9), .normal(scale: 2))]),
            GradientCheckCase(.attention(scale: 0.6), [(Shape(2, 3, 7), n), (Shape(2, 3, 7), n), (Shape(2, 3, 7), n)]),
            GradientCheckCase(.add, [(s, n), (s, n)]),
            GradientCheckCase(.mul, [(s, n), (s, n)]),
            GradientCheckCase(.scale(-1.7), [(s, n)]),
            GradientCheckCase(.addChannels, [(s, n), (Shape(2, 3), n)]),
            GradientCheckCase(.concatChannels, [(Shape(2, 3, 4, 5), n), (Shape(2, 2, 4, 5), n)]),
            GradientCheckCase(.sliceChannels(start: 1, count: 2), [(Shape(2, 4, 3, 3), n)]),
            GradientCheckCase(.upsampleNearest2x, [(Shape(2, 3, 3, 4), n)]),
            GradientCheckCase(.reshape(Shape(2, 3, 20)), [(s, n)]),
            GradientCheckCase(.dropout(Dropout(probability: 0.25, seed: 5, stream: 1)), [(s, n)]),
            GradientCheckCase(.mse(weighted: false), [(s, n), (s, n)], checked: [0]),
            GradientCheckCase(.mse(weighted: true), [(s, n), (s, n), (Shape(2), .uniform(0.5, 2))], checked: [0]),
            GradientCheckCase(.globalAveragePool, [(Shape(2, 3, 4, 5), n)]),
            // Only v (input 3) has a gradient: the mean prediction is stopped in the VLB term.
            GradientCheckCase(.vlbTerm(VLBTerm(timesteps: ParityCases.vlbSteps, scale: 0.7)), ParityCases.vlbInputs, checked: [3]),
            GradientCheckCase(.crossEntropy, [(Shape(5, 7), .normal(scale: 2)), (Shape(5), .integers(7))], checked: [0]),
            // 9 lookups into 4 rows: some rows hit several times (their gradients sum), maybe one never.
            GradientCheckCase(.embedding, [(Shape(4, 6), n), (Shape(9), .integers(4))], checked: [0]),
        ]
        for ta in [false, true] {
            for tb in [false, true] {
                cases.append(GradientCheckCase(.matmul(MatMul(transposeA: ta, transposeB: tb, alpha: 0.7)),
                                               [(ta ? Shape(2, 4, 3) : Shape(2, 3, 4), n), (tb ? Shape(2, 5, 4) : Shape(2, 4, 5), n)]))
            }
        }
        return cases
    }

    public static func run(_ c: GradientCheckCase, backend: Backend) throws -> GradientCheckResult {
        var random = TestRandom(seed: 11)
        let graph = Graph()
        let leaves = c.inputs.enumerated().map { graph.input("x\($0.offset)", $0.element.shape) }
        let out = graph.apply(c.op, leaves)[0]
        let loss: Value
        if c.op.isLoss {
            loss = out
        } else {
            let shape = graph.shape(out)
            let target = graph.constant(random.normals(shape.count), shape)
            loss = graph(.scale(Float(shape.count)), graph(.mse(weighted: false), out, target))
        }
        let grads = graph.gradients(of: loss, wrt: c.checked.map { leaves[$0] })
        let executor = try Executor(graph: graph, outputs: [loss] + grads, backend: backend)
        var values = c.inputs.map { $0.fill.values($0.shape, &random) }
        let buffers = try values.map { try backend.makeBuffer($0) }
        for (leaf, buffer) in zip(leaves, buffers) { executor.bind(leaf, to: buffer) }

        func evaluate() throws -> Float {
            try executor.run(step: 3)
            return try backend.read(executor.buffer(loss), count: 1)[0]
        }
        _ = try evaluate()
        let analytic = try grads.map { try backend.read(executor.buffer($0), count: graph.shape($0).count) }

        var worst = 0.0
        for (slot, inputIndex) in c.checked.enumerated() {
            let count = c.inputs[inputIndex].shape.count
            var picks = Set<Int>()
            while picks.count < min(samplesPerInput, count) { picks.insert(Int(random.next() % UInt64(count))) }
            var diff = 0.0, norm = 0.0
            for i in picks.sorted() {
                let original = values[inputIndex][i]
                values[inputIndex][i] = original + h
                try backend.write(values[inputIndex], to: buffers[inputIndex])
                let plus = try evaluate()
                values[inputIndex][i] = original - h
                try backend.write(values[inputIndex], to: buffers[inputIndex])
                let minus = try evaluate()
                values[inputIndex][i] = original
                try backend.write(values[inputIndex], to: buffers[inputIndex])
                let numeric = (Double(plus) - Double(minus)) / (2 * Double(h))
                let d = Double(analytic[slot][i]) - numeric
                diff += d * d
                norm += numeric * numeric
            }
            worst = max(worst, diff.squareRoot() / max(norm.squareRoot(), 1e-3))
        }
        return GradientCheckResult(testCase: c, relativeError: worst)
    }
}

extension Op {
    /// Ops that are a scalar loss themselves: the gradient check differentiates them directly.
    var isLoss: Bool {
        switch self {
        case .mse, .crossEntropy, .vlbTerm: return true
        default: return false
        }
    }
}
