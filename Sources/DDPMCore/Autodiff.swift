/// Reverse-mode autodiff: each op's gradient rule (its vector-Jacobian product) written as more
/// nodes. `gradients(of:wrt:)` appends the backward graph in reverse node order.
extension Graph {
    /// Appends the backward graph of scalar `loss` and returns d(loss)/d(v) for each v in `wrt`.
    public func gradients(of loss: Value, wrt targets: [Value]) -> [Value] {
        precondition(shape(loss).count == 1, "loss must be a scalar, got \(shape(loss))")
        var grad: [Value: Value] = [loss: constant([1], Shape(1))]
        let forwardCount = nodes.count

        // Only nodes on a path from a target to the loss need a gradient.
        var needsGrad = Set(targets)
        for node in nodes[0..<forwardCount] where node.inputs.contains(where: needsGrad.contains) {
            needsGrad.formUnion(node.outputs)
        }

        for index in stride(from: forwardCount - 1, through: 0, by: -1) {
            let node = nodes[index]
            let outGrads = node.outputs.map { grad[$0] }
            guard outGrads.contains(where: { $0 != nil }),
                  node.inputs.contains(where: needsGrad.contains) else { continue }
            guard let dy = outGrads[0] else { preconditionFailure("\(node.op): only the first output is differentiable") }
            guard let rule = node.op.gradientRule else { preconditionFailure("\(node.op.kind) has no gradient rule") }
            let inGrads = rule(self, node.inputs, node.outputs, dy)
            for (input, g) in zip(node.inputs, inGrads) {
                guard let g, needsGrad.contains(input) else { continue }
                if let existing = grad[input] { grad[input] = self(.add, existing, g) } else { grad[input] = g }
            }
        }
        return targets.map { target in
            guard let g = grad[target] else { preconditionFailure("\(target) does not influence the loss") }
            return g
        }
    }
}

/// The inputs' gradients of one node from its first output's gradient dy, as more nodes in the
/// graph (nil where an input needs none): (graph, inputs, outputs, dy) → input gradients.
public typealias GradientRule = (Graph, [Value], [Value], Value) -> [Value?]

extension Op {
    /// Whether the op has a gradient rule; derived from the rule itself, so that a new op with a
    /// rule cannot escape the gradient-coverage test.
    public var isDifferentiable: Bool { gradientRule != nil }

    /// The op's gradient rule (its vector-Jacobian product), or nil for ops that are never
    /// differentiated (the backward ops themselves, optimizer and diffusion steps).
    public var gradientRule: GradientRule? {
        switch self {
        case .conv2d(let c):
            return { g, x, _, dy in
                let s = g.shape(x[0])
                let dx = g(.conv2dBackwardInput(c, height: s[2], width: s[3]), dy, x[1])
                let dw = g(.conv2dBackwardWeight(c), dy, x[0])
                return [dx, dw] + (c.bias ? [g(.sumToChannels(keepBatch: false), dy)] : [])
                    + (c.addsChannels ? [g(.sumToChannels(keepBatch: true), dy)] : []) + (c.addsResidual ? [dy] : [])
            }
        case .linear:
            return { g, x, _, dy in
                // y = x·wᵀ + b, seen as [1,N,I]·[1,O,I]ᵀ.
                let (n, i) = (g.shape(x[0])[0], g.shape(x[0])[1])
                let o = g.shape(x[1])[0]
                let dy3 = g(.reshape(Shape(1, n, o)), dy)
                let dx = g(.matmul(MatMul()), dy3, g(.reshape(Shape(1, o, i)), x[1]))
                let dw = g(.matmul(MatMul(transposeA: true)), dy3, g(.reshape(Shape(1, n, i)), x[0]))
                return [g(.reshape(Shape(n, i)), dx), g(.reshape(Shape(o, i)), dw), g(.sumToChannels(keepBatch: false), dy)]
            }
        case .matmul(let p):
            return { g, x, _, dy in
                let (a, b) = (x[0], x[1])
                let da = p.transposeA
                    ? g(.matmul(MatMul(transposeA: p.transposeB, transposeB: true, alpha: p.alpha)), b, dy)
                    : g(.matmul(MatMul(transposeA: false, transposeB: !p.transposeB, alpha: p.alpha)), dy, b)
                let db = p.transposeB
                    ? g(.matmul(MatMul(transposeA: true, transposeB: p.transposeA, alpha: p.alpha)), dy, a)
                    : g(.matmul(MatMul(transposeA: !p.transposeA, transposeB: false, alpha: p.alpha)), a, dy)
                return [da, db]
            }
        case .groupNorm(let gn):
            return { g, x, _, dy in
                let d = g.apply(.groupNormBackward(gn), [x[0], x[1], dy] + (gn.silu ? [x[2]] : []))
                return [d[0], d[1], d[2]]
            }
        case .silu:
            return { g, x, _, dy in [g(.siluBackward, x[0], dy)] }
        case .softmax:
            return { g, _, y, dy in [g(.softmaxBackward, y[0], dy)] }
        case .attention(let scale):
            return { g, x, _, dy in g.apply(.attentionBackward(scale: scale), [x[0], x[1], x[2], dy]) }
        case .add:
            return { _, _, _, dy in [dy, dy] }
        case .mul:
            return { g, x, _, dy in [g(.mul, dy, x[1]), g(.mul, dy, x[0])] }
        case .scale(let f):
            return { g, _, _, dy in [g(.scale(f), dy)] }
        case .addChannels:
            return { g, _, _, dy in [dy, g(.sumToChannels(keepBatch: true), dy)] }
        case .concatChannels:
            return { g, x, _, dy in
                let ca = g.shape(x[0])[1], cb = g.shape(x[1])[1]
                return [g(.sliceChannels(start: 0, count: ca), dy), g(.sliceChannels(start: ca, count: cb), dy)]
            }
        case .sliceChannels(let start, _):
            return { g, x, _, dy in [g(.sliceChannelsBackward(start: start, total: g.shape(x[0])[1]), dy)] }
        case .upsampleNearest2x:
            return { g, _, _, dy in [g(.upsampleNearest2xBackward, dy)] }
        case .reshape:
            return { g, x, _, dy in [g(.reshape(g.shape(x[0])), dy)] }
        case .dropout(let d):
            return { g, _, _, dy in [g(.dropout(d), dy)] }
        case .mse(let weighted):
            return { g, x, _, dy in
                let dpred = weighted ? g(.mseBackward(weighted: true), x[0], x[1], x[2], dy)
                                     : g(.mseBackward(weighted: false), x[0], x[1], dy)
                return [dpred] + Array(repeating: nil, count: x.count - 1)
            }
        case .vlbTerm(let v):
            // Only the variance output v (input 3) gets a gradient: the mean m is stopped.
            return { g, x, _, dy in [nil, nil, nil, g.apply(.vlbTermBackward(v), x + [dy])[0], nil, nil] }
        case .globalAveragePool:
            return { g, x, _, dy in
                let s = g.shape(x[0])
                return [g(.globalAveragePoolBackward(height: s[2], width: s[3]), dy)]
            }
        case .crossEntropy:
            return { g, x, _, dy in [g(.crossEntropyBackward, x[0], x[1], dy), nil] }
        case .embedding:
            return { g, x, _, dy in [g(.embeddingBackward(rows: g.shape(x[0])[0]), dy, x[1]), nil] }
        default:
            return nil
        }
    }
}
