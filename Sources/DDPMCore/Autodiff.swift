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
            let inGrads = vjp(node, outGrads)
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

    /// The gradient rule of one node: input gradients from output gradients (nil = not needed).
    private func vjp(_ node: Node, _ outGrads: [Value?]) -> [Value?] {
        let x = node.inputs
        guard let dy = outGrads[0] else { preconditionFailure("\(node.op): only the first output is differentiable") }
        switch node.op {
        case .conv2d(let c):
            let s = shape(x[0])
            let dx = self(.conv2dBackwardInput(c, height: s[2], width: s[3]), dy, x[1])
            let dw = self(.conv2dBackwardWeight(c), dy, x[0])
            return c.bias ? [dx, dw, self(.sumToChannels(keepBatch: false), dy)] : [dx, dw]
        case .linear:
            // y = x·wᵀ + b, seen as [1,N,I]·[1,O,I]ᵀ.
            let (n, i) = (shape(x[0])[0], shape(x[0])[1])
            let o = shape(x[1])[0]
            let dy3 = self(.reshape(Shape(1, n, o)), dy)
            let dx = self(.matmul(MatMul()), dy3, self(.reshape(Shape(1, o, i)), x[1]))
            let dw = self(.matmul(MatMul(transposeA: true)), dy3, self(.reshape(Shape(1, n, i)), x[0]))
            return [self(.reshape(Shape(n, i)), dx), self(.reshape(Shape(o, i)), dw),
                    self(.sumToChannels(keepBatch: false), dy)]
        case .matmul(let p):
            let (a, b) = (x[0], x[1])
            let da = p.transposeA
                ? self(.matmul(MatMul(transposeA: p.transposeB, transposeB: true, alpha: p.alpha)), b, dy)
                : self(.matmul(MatMul(transposeA: false, transposeB: !p.transposeB, alpha: p.alpha)), dy, b)
            let db = p.transposeB
                ? self(.matmul(MatMul(transposeA: true, transposeB: p.transposeA, alpha: p.alpha)), dy, a)
                : self(.matmul(MatMul(transposeA: !p.transposeA, transposeB: false, alpha: p.alpha)), a, dy)
            return [da, db]
        case .groupNorm(let g):
            let d = apply(.groupNormBackward(g), [x[0], x[1], dy])
            return [d[0], d[1], d[2]]
        case .silu:
            return [self(.siluBackward, x[0], dy)]
        case .softmax:
            return [self(.softmaxBackward, node.outputs[0], dy)]
        case .add:
            return [dy, dy]
        case .mul:
            return [self(.mul, dy, x[1]), self(.mul, dy, x[0])]
        case .scale(let f):
            return [self(.scale(f), dy)]
        case .addChannels:
            return [dy, self(.sumToChannels(keepBatch: true), dy)]
        case .concatChannels:
            let ca = shape(x[0])[1], cb = shape(x[1])[1]
            return [self(.sliceChannels(start: 0, count: ca), dy), self(.sliceChannels(start: ca, count: cb), dy)]
        case .sliceChannels(let start, _):
            return [self(.sliceChannelsBackward(start: start, total: shape(x[0])[1]), dy)]
        case .upsampleNearest2x:
            return [self(.upsampleNearest2xBackward, dy)]
        case .reshape:
            return [self(.reshape(shape(x[0])), dy)]
        case .dropout(let d):
            return [self(.dropout(d), dy)]
        case .mse(let weighted):
            let dpred = weighted ? self(.mseBackward(weighted: true), x[0], x[1], x[2], dy)
                                 : self(.mseBackward(weighted: false), x[0], x[1], dy)
            return [dpred] + Array(repeating: nil, count: x.count - 1)
        case .globalAveragePool:
            let s = shape(x[0])
            return [self(.globalAveragePoolBackward(height: s[2], width: s[3]), dy)]
        case .crossEntropy:
            return [self(.crossEntropyBackward, x[0], x[1], dy), nil]
        default:
            preconditionFailure("\(node.op.kind) has no gradient rule")
        }
    }
}
