extension Op {
    /// The shapes of the outputs for the given input shapes. Impossible combinations are programmer
    /// errors (the U-Net builder and autodiff construct them) and stop with a message.
    public func outputShapes(_ s: [Shape]) -> [Shape] {
        func need(_ count: Int) {
            precondition(s.count == count, "\(self) takes \(count) inputs, got \(s.count): \(s)")
        }
        switch self {
        case .conv2d(let c):
            need(c.inputCount)
            let (n, ci, h, w) = s[0].nchw
            precondition(s[1].dims == [s[1][0], ci, c.kernelHeight, c.kernelWidth], "conv2d weight \(s[1]) does not fit input \(s[0])")
            if let b = c.biasInput { precondition(s[b].dims == [s[1][0]], "conv2d bias \(s[b]) does not fit weight \(s[1])") }
            if let t = c.channelAddendInput { precondition(s[t].dims == [n, s[1][0]], "conv2d addend \(s[t]) is not [N, Co] of \(s[0]), \(s[1])") }
            let (ho, wo) = c.outputSize(height: h, width: w)
            precondition(ho > 0 && wo > 0, "conv2d output would be empty for input \(s[0])")
            let y = Shape(n, s[1][0], ho, wo)
            if let r = c.residualInput { precondition(s[r] == y, "conv2d residual \(s[r]) is not the output's shape \(y)") }
            return [y]
        case .conv2dBackwardInput(let c, let h, let w):
            need(2)
            let (ho, wo) = c.outputSize(height: h, width: w)
            precondition(s[0].dims == [s[0][0], s[1][0], ho, wo], "conv2d dy \(s[0]) does not fit weight \(s[1]) at \(h)×\(w)")
            return [Shape(s[0][0], s[1][1], h, w)]
        case .conv2dBackwardWeight(let c):
            need(2)
            let (n, ci, h, w) = s[1].nchw
            let (ho, wo) = c.outputSize(height: h, width: w)
            precondition(s[0].rank == 4 && s[0][0] == n && s[0][2] == ho && s[0][3] == wo, "conv2d dy \(s[0]) does not fit x \(s[1])")
            return [Shape(s[0][1], ci, c.kernelHeight, c.kernelWidth)]
        case .linear:
            need(3)
            precondition(s[0].rank == 2 && s[1].rank == 2 && s[1][1] == s[0][1] && s[2].dims == [s[1][0]],
                         "linear shapes do not fit: x \(s[0]) w \(s[1]) b \(s[2])")
            return [Shape(s[0][0], s[1][0])]
        case .matmul(let p):
            need(2)
            precondition(s[0].rank == 3 && s[1].rank == 3 && s[0][0] == s[1][0], "matmul needs [B,·,·] inputs: \(s)")
            let (m, k) = p.transposeA ? (s[0][2], s[0][1]) : (s[0][1], s[0][2])
            let (k2, n) = p.transposeB ? (s[1][2], s[1][1]) : (s[1][1], s[1][2])
            precondition(k == k2, "matmul inner dimensions differ: \(s[0]) \(s[1]) \(p)")
            return [Shape(s[0][0], m, n)]
        case .attention, .attentionBackward:
            let backward = if case .attentionBackward = self { true } else { false }
            need(backward ? 4 : 3)
            precondition(s[0].rank == 3 && s.allSatisfy { $0 == s[0] }, "attention needs equal [B, d, T] inputs: \(s)")
            return backward ? [s[0], s[0], s[0]] : [s[0]]
        case .groupNorm(let g):
            need(3)
            let c = s[0][1]
            precondition(s[0].rank >= 3 && c % g.groups == 0 && s[1].dims == [c] && s[2].dims == [c],
                         "group_norm: \(s[0]) with \(g.groups) groups, gamma \(s[1]), beta \(s[2])")
            return [s[0]]
        case .groupNormBackward(let g):
            need(g.silu ? 4 : 3)
            precondition(s[2] == s[0] && (!g.silu || s[3] == s[1]), "group_norm backward: \(s)")
            return [s[0], s[1], s[1]]
        case .silu, .relu, .softmax, .scale, .dropout:
            need(1)
            return [s[0]]
        case .siluBackward, .softmaxBackward, .add, .mul:
            need(2)
            precondition(s[0] == s[1], "\(self) needs equal shapes: \(s[0]) vs \(s[1])")
            return [s[0]]
        case .addChannels:
            need(2)
            let (n, c, _, _) = s[0].nchw
            precondition(s[1].dims == [n, c], "addChannels: x \(s[0]) with v \(s[1])")
            return [s[0]]
        case .sumToChannels(let keepBatch):
            need(1)
            let (n, c, _, _) = s[0].nchw
            return [keepBatch ? Shape(n, c) : Shape(c)]
        case .concatChannels:
            need(2)
            let a = s[0].nchw, b = s[1].nchw
            precondition(s[0].rank == 4 && s[1].rank == 4 && a.n == b.n && a.h == b.h && a.w == b.w,
                         "concat: \(s[0]) with \(s[1])")
            return [Shape(a.n, a.c + b.c, a.h, a.w)]
        case .sliceChannels(let start, let count):
            need(1)
            precondition(s[0].rank == 4 && start >= 0 && count > 0 && start + count <= s[0][1], "slice \(start)+\(count) of \(s[0])")
            return [Shape(s[0][0], count, s[0][2], s[0][3])]
        case .sliceChannelsBackward(let start, let total):
            need(1)
            precondition(s[0].rank == 4 && start + s[0][1] <= total)
            return [Shape(s[0][0], total, s[0][2], s[0][3])]
        case .upsampleNearest2x:
            need(1)
            precondition(s[0].rank == 4)
            return [Shape(s[0][0], s[0][1], 2 * s[0][2], 2 * s[0][3])]
        case .upsampleNearest2xBackward:
            need(1)
            precondition(s[0].rank == 4 && s[0][2] % 2 == 0 && s[0][3] % 2 == 0)
            return [Shape(s[0][0], s[0][1], s[0][2] / 2, s[0][3] / 2)]
        case .reshape(let shape):
            need(1)
            precondition(shape.count == s[0].count, "reshape \(s[0]) to \(shape) changes the element count")
            return [shape]
        case .timestepEmbedding(let e):
            need(1)
            precondition(s[0].rank == 1)
            return [Shape(s[0][0], e.dim)]
        case .mse(let weighted):
            need(weighted ? 3 : 2)
            precondition(s[0] == s[1] && (!weighted || s[2].dims == [s[0][0]]), "mse: \(s)")
            return [Shape(1)]
        case .mseBackward(let weighted):
            need(weighted ? 4 : 3)
            precondition(s[0] == s[1] && s.last!.dims == [1])
            return [s[0]]
        case .qSample(let q):
            need(2)
            precondition(s[1].dims == [3, q.timesteps], "qSample table \(s[1]) must be [3, \(q.timesteps)]")
            return [s[0], s[0], Shape(s[0][0]), Shape(s[0][0])]
        case .vlbTerm(let v), .vlbTermBackward(let v):
            let backward: Bool
            if case .vlbTermBackward = self { backward = true } else { backward = false }
            need(backward ? 7 : 6)
            precondition(s[0].rank == 4 && s[1] == s[0] && s[2] == s[0] && s[3] == s[0] && s[4].dims == [s[0][0]]
                         && s[5].dims == [6, v.timesteps] && (!backward || s[6].dims == [1]), "\(self): \(s)")
            return [backward ? s[0] : Shape(1)]
        case .solverUpdate(let u):
            need(1 + u.c.count)
            precondition(s.allSatisfy { $0 == s[0] }, "solverUpdate inputs differ: \(s)")
            return [s[0]]
        case .samplerStep(let p):
            need(p.learnedVariance ? 3 : 2)
            precondition(s.allSatisfy { $0 == s[0] }, "samplerStep inputs differ: \(s)")
            return [s[0]]
        case .dynamicThreshold:
            need(1)
            return [s[0]]
        case .gradNorm:
            precondition(!s.isEmpty)
            return [Shape(2)]
        case .globalAveragePool:
            need(1)
            precondition(s[0].rank == 4, "globalAveragePool needs [N,C,H,W], got \(s[0])")
            return [Shape(s[0][0], s[0][1])]
        case .globalAveragePoolBackward(let h, let w):
            need(1)
            precondition(s[0].rank == 2 && h > 0 && w > 0, "globalAveragePoolBackward: dy \(s[0]) at \(h)×\(w)")
            return [Shape(s[0][0], s[0][1], h, w)]
        case .maxPool2d(let p), .averagePool2d(let p):
            need(1)
            precondition(s[0].rank == 4, "\(self) needs [N,C,H,W], got \(s[0])")
            let (ho, wo) = p.outputSize(height: s[0][2], width: s[0][3])
            precondition(ho > 0 && wo > 0, "\(self): output would be empty for input \(s[0])")
            return [Shape(s[0][0], s[0][1], ho, wo)]
        case .resizeBilinear(let h, let w):
            need(1)
            precondition(s[0].rank == 4 && h > 0 && w > 0, "resizeBilinear to \(h)×\(w) needs [N,C,H,W], got \(s[0])")
            return [Shape(s[0][0], s[0][1], h, w)]
        case .crossEntropy:
            need(2)
            precondition(s[0].rank == 2 && s[1].dims == [s[0][0]], "crossEntropy: logits \(s[0]) with labels \(s[1])")
            return [Shape(1)]
        case .crossEntropyBackward:
            need(3)
            precondition(s[0].rank == 2 && s[1].dims == [s[0][0]] && s[2].dims == [1], "crossEntropyBackward: \(s)")
            return [s[0]]
        case .adamStep:
            need(5)
            precondition(s[2...].allSatisfy { $0.count == s[0].count } && s[1].count == 2, "adamStep: \(s)")
            return Array(s[2...])
        case .emaUpdate:
            need(2)
            precondition(s[0].count == s[1].count, "emaUpdate: \(s)")
            return [s[1]]
        case .accumulate:
            need(2)
            precondition(s[0].count == s[1].count, "accumulate: \(s)")
            return [s[0]]
        case .embedding:
            need(2)
            precondition(s[0].rank == 2 && s[1].rank == 1, "embedding: table \(s[0]) with indices \(s[1])")
            return [Shape(s[1][0], s[0][1])]
        case .embeddingBackward(let rows):
            need(2)
            precondition(rows > 0 && s[0].rank == 2 && s[1].dims == [s[0][0]], "embeddingBackward: dy \(s[0]) with indices \(s[1])")
            return [Shape(rows, s[0][1])]
        }
    }
}
