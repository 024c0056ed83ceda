import DDPMCore
import Dispatch
import Foundation

/// Host memory for the reference backend.
public final class CPUBuffer: DeviceBuffer {
    public let count: Int
    let pointer: UnsafeMutablePointer<Float>
    /// The buffer a view shares memory with (kept alive by the view); nil when this one owns it.
    private let owner: CPUBuffer?

    init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
        owner = nil
    }
    init(viewOf buffer: CPUBuffer, offset: Int, count: Int) {
        precondition(offset >= 0 && count >= 0 && offset + count <= buffer.count, "view \(offset)+\(count) outside a buffer of \(buffer.count)")
        self.count = count
        pointer = buffer.pointer + offset
        owner = buffer
    }
    deinit { if owner == nil { pointer.deallocate() } }
}

/// The reference backend: plain loops that define what every op means. Readable first; it uses
/// all cores (one task per image or channel) and is otherwise not optimised.
public final class CPUBackend: Backend {
    public let name = "cpu-reference"

    public init() {}

    public func makeBuffer(count: Int) throws -> DeviceBuffer {
        // Refuse what the host cannot hold instead of crashing in allocate().
        let limit = MemoryLimits.host.totalBytes
        guard count <= limit / 4 else { throw DeviceMemoryError(requestedBytes: count > Int.max / 4 ? Int.max : count * 4, reason: "the host has \(formatBytes(limit))") }
        return CPUBuffer(count: count)
    }

    public var memoryLimits: MemoryLimits? { .host }

    public func makeView(of buffer: DeviceBuffer, offset: Int, count: Int) throws -> DeviceBuffer {
        CPUBuffer(viewOf: buffer as! CPUBuffer, offset: offset, count: count)
    }
    public var viewAlignment: Int { 1 }

    public func write(_ values: [Float], to buffer: DeviceBuffer) throws {
        let b = buffer as! CPUBuffer
        precondition(values.count <= b.count)
        values.withUnsafeBufferPointer { b.pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    public func read(_ buffer: DeviceBuffer, count: Int) throws -> [Float] {
        let b = buffer as! CPUBuffer
        precondition(count <= b.count)
        return Array(UnsafeBufferPointer(start: b.pointer, count: count))
    }

    public func synchronize() throws {}

    public func run(_ op: Op, inputs: [TensorRef], outputs: [TensorRef], step: UInt32) throws {
        let x = inputs.map { UnsafePointer(($0.buffer as! CPUBuffer).pointer) }
        let y = outputs.map { ($0.buffer as! CPUBuffer).pointer }
        let s = inputs.map(\.shape)
        switch op {
        case .conv2d(let c):
            conv2dForward(y[0], x[0], x[1], c.biasInput.map { x[$0] }, s[0], s[1], c,
                          addend: c.channelAddendInput.map { x[$0] }, residual: c.residualInput.map { x[$0] })
        case .conv2dBackwardInput(let c, _, _):
            conv2dBackwardInput(y[0], outputs[0].shape, x[0], x[1], s[0], c)
        case .conv2dBackwardWeight(let c):
            conv2dBackwardWeight(y[0], outputs[0].shape, x[0], x[1], s[0], s[1], c)
        case .linear:
            linearForward(y[0], x[0], x[1], x[2], n: s[0][0], inFeatures: s[0][1], outFeatures: s[1][0])
        case .matmul(let p):
            matmul(y[0], x[0], x[1], s[0], s[1], p)
        case .groupNorm(let g):
            groupNormForward(y[0], x[0], x[1], x[2], s[0], g)
        case .groupNormBackward(let g):
            groupNormBackward(y[0], y[1], y[2], x[0], x[1], x[2], g.silu ? x[3] : nil, s[0], g)
        case .silu:
            elementwise(y[0], count: s[0].count) { i in siluValue(x[0][i]) }
        case .relu:
            elementwise(y[0], count: s[0].count) { i in max(x[0][i], 0) }
        case .siluBackward:
            elementwise(y[0], count: s[0].count) { i in x[1][i] * siluDerivative(x[0][i]) }
        case .softmax:
            softmaxForward(y[0], x[0], rows: s[0].count / s[0].dims.last!, length: s[0].dims.last!)
        case .softmaxBackward:
            softmaxBackward(y[0], x[0], x[1], rows: s[0].count / s[0].dims.last!, length: s[0].dims.last!)
        case .attention(let scale):
            attentionForward(y[0], x[0], x[1], x[2], s[0], scale: scale)
        case .attentionBackward(let scale):
            attentionBackward(y[0], y[1], y[2], x[0], x[1], x[2], x[3], s[0], scale: scale)
        case .add:
            elementwise(y[0], count: s[0].count) { i in x[0][i] + x[1][i] }
        case .mul:
            elementwise(y[0], count: s[0].count) { i in x[0][i] * x[1][i] }
        case .scale(let f):
            elementwise(y[0], count: s[0].count) { i in f * x[0][i] }
        case .addChannels:
            let (_, _, h, w) = s[0].nchw
            elementwise(y[0], count: s[0].count) { i in x[0][i] + x[1][i / (h * w)] }
        case .sumToChannels(let keepBatch):
            sumToChannels(y[0], x[0], s[0], keepBatch: keepBatch)
        case .concatChannels:
            concatChannels(y[0], x[0], x[1], s[0], s[1])
        case .sliceChannels(let start, let count):
            let (n, c, h, w) = s[0].nchw
            elementwise(y[0], count: n * count * h * w) { i in
                let (image, rest) = i.quotientAndRemainder(dividingBy: count * h * w)
                return x[0][image * c * h * w + start * h * w + rest]
            }
        case .sliceChannelsBackward(let start, let total):
            let (_, count, h, w) = s[0].nchw
            elementwise(y[0], count: outputs[0].shape.count) { i in
                let (image, rest) = i.quotientAndRemainder(dividingBy: total * h * w)
                let channel = rest / (h * w)
                guard channel >= start && channel < start + count else { return 0 }
                return x[0][image * count * h * w + rest - start * h * w]
            }
        case .upsampleNearest2x:
            let (n, c, h, w) = s[0].nchw
            elementwise(y[0], count: n * c * 4 * h * w) { i in
                let (plane, rest) = i.quotientAndRemainder(dividingBy: 4 * h * w)
                let (oy, ox) = rest.quotientAndRemainder(dividingBy: 2 * w)
                return x[0][plane * h * w + (oy / 2) * w + ox / 2]
            }
        case .upsampleNearest2xBackward:
            let (n, c, h2, w2) = s[0].nchw
            let (h, w) = (h2 / 2, w2 / 2)
            elementwise(y[0], count: n * c * h * w) { i in
                let (plane, rest) = i.quotientAndRemainder(dividingBy: h * w)
                let (iy, ix) = rest.quotientAndRemainder(dividingBy: w)
                let base = plane * h2 * w2 + 2 * iy * w2 + 2 * ix
                return (x[0][base] + x[0][base + 1]) + (x[0][base + w2] + x[0][base + w2 + 1])
            }
        case .reshape:
            elementwise(y[0], count: s[0].count) { i in x[0][i] }
        case .timestepEmbedding(let e):
            timestepEmbedding(y[0], x[0], n: s[0][0], e)
        case .dropout(let d):
            dropout(y[0], x[0], count: s[0].count, first: Int(d.firstImage) * (s[0].count / s[0][0]), d, step: step)
        case .mse(let weighted):
            y[0][0] = meanSquaredError(x[0], x[1], weighted ? x[2] : nil, s[0])
        case .mseBackward(let weighted):
            meanSquaredErrorBackward(y[0], x[0], x[1], weighted ? x[2] : nil, x[weighted ? 3 : 2][0], s[0])
        case .qSample(let q):
            qSample(y[0], y[1], y[2], y[3], x[0], x[1], s[0], q, step: step)
        case .vlbTerm(let p):
            y[0][0] = vlbTerm(x[0], x[1], x[2], x[3], x[4], x[5], s[0], p)
        case .vlbTermBackward(let p):
            vlbTermBackward(y[0], x[0], x[1], x[2], x[3], x[4], x[5], x[6][0], s[0], p)
        case .samplerStep(let p):
            samplerStep(y[0], x[0], x[1], p.learnedVariance ? x[2] : nil, s[0], p, step: step)
        case .solverUpdate(let u):
            solverUpdate(y[0], x[0], Array(x[1...]), s[0], u, step: step)
        case .dynamicThreshold(let ratio, let maxValue):
            dynamicThreshold(y[0], x[0], s[0], ratio: ratio, maxValue: maxValue)
        case .gradNorm(let maxNorm):
            gradNorm(y[0], zip(x, s).map { ($0, $1.count) }, maxNorm: maxNorm)
        case .adamStep(let a):
            adamStep(param: y[0], m: y[1], v: y[2], grad: x[0], clip: x[1][1], count: s[0].count, a)
        case .emaUpdate(let rate):
            emaUpdate(ema: y[0], param: x[0], count: s[0].count, rate: rate)
        case .accumulate(let scale, let reset):
            // In place: y[0] is x[0]. The scaled term is rounded before the sum (no fused multiply-add).
            for i in 0..<s[0].count {
                let term = scale * x[1][i]
                y[0][i] = reset ? term : y[0][i] + term
            }
        case .globalAveragePool:
            globalAveragePool(y[0], x[0], s[0])
        case .globalAveragePoolBackward:
            globalAveragePoolBackward(y[0], x[0], outputs[0].shape)
        case .crossEntropy:
            y[0][0] = crossEntropy(x[0], x[1], s[0])
        case .crossEntropyBackward:
            crossEntropyBackward(y[0], x[0], x[1], x[2][0], s[0])
        case .maxPool2d(let p):
            pool2d(y[0], x[0], s[0], p, average: false)
        case .averagePool2d(let p):
            pool2d(y[0], x[0], s[0], p, average: true)
        case .resizeBilinear(let h, let w):
            resizeBilinear(y[0], x[0], s[0], height: h, width: w)
        case .embedding:
            embeddingForward(y[0], x[0], x[1], rows: s[0][0], dim: s[0][1], n: s[1][0])
        case .embeddingBackward(let rows):
            embeddingBackward(y[0], x[0], x[1], rows: rows, dim: s[0][1], n: s[0][0])
        }
    }
}

/// out[i] = f(i) for every i, split across cores in chunks.
func elementwise(_ out: UnsafeMutablePointer<Float>, count: Int, _ f: (Int) -> Float) {
    let chunk = 1 << 14
    let chunks = (count + chunk - 1) / chunk
    withoutActuallyEscaping(f) { f in
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            for i in c * chunk..<min(count, (c + 1) * chunk) { out[i] = f(i) }
        }
    }
}

/// Runs body(i) for i in 0..<count on all cores.
func parallelFor(_ count: Int, _ body: (Int) -> Void) {
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: count, execute: body)
    }
}

func siluValue(_ x: Float) -> Float { x / (1 + expf(-x)) }
func siluDerivative(_ x: Float) -> Float {
    let s = 1 / (1 + expf(-x))
    return s * (1 + x * (1 - s))
}
