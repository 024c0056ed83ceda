import DDPMCore
import Foundation

/// Draws images with a trained U-Net: x_T ~ N(0, I), then the reverse steps of a DDPM or DDIM run.
/// Image i depends only on (seed, i): its initial noise and every step's noise come from Philox
/// streams addressed by the image index, whatever the batch size or device.
public final class Sampler {
    public let backend: Backend
    public let config: UNetConfig
    public let settings: SchedulerSettings
    public let batch: Int
    private let net: UNet
    private let executor: Executor
    private let sampleBuffer: DeviceBuffer
    private let nextBuffer: DeviceBuffer
    private let timestepBuffer: DeviceBuffer

    public init(backend: Backend, config: UNetConfig, weights: Weights, settings: SchedulerSettings, batch: Int) throws {
        self.backend = backend; self.config = config; self.settings = settings; self.batch = batch
        net = UNet(config: config, batch: batch)
        executor = try Executor(graph: net.graph, outputs: [net.output], backend: backend)
        for (name, value) in net.graph.parameters {
            executor.bind(value, to: try backend.makeBuffer(weights.values[name]!))
        }
        let count = net.graph.shape(net.sample).count
        sampleBuffer = try backend.makeBuffer(count: count)
        nextBuffer = try backend.makeBuffer(count: count)
        timestepBuffer = try backend.makeBuffer(count: batch)
        executor.bind(net.sample, to: sampleBuffer)
        executor.bind(net.timesteps, to: timestepBuffer)
    }

    public var imageShape: Shape { Shape(config.inChannels, config.sampleSize, config.sampleSize) }

    /// The initial noise of image `index`: Philox normals of the initial-noise stream.
    public func initialNoise(image index: Int, seed: UInt64) -> [Float] {
        (0..<imageShape.count).map { Philox.normal(seed: seed, index: $0, image: UInt32(index), step: 0, stream: RandomStream.initialNoise) }
    }

    /// Samples `count` images (N×C×H×W in about [-1, 1]). `initialNoise`, when given, replaces the
    /// Philox x_T (N×C×H×W). `progress(done, total)` is called after every model evaluation.
    /// With `snapshots` > 0, `trajectory` receives x_t of the first batch at that many evenly spaced
    /// points of the run (the first is x_T, the last the result), each N×C×H×W.
    public func sample(count: Int, seed: UInt64, sampler: SamplerKind, steps: Int, initialNoise given: [Float]? = nil,
                       snapshots: Int = 0, trajectory: ((Int, [Float]) -> Void)? = nil,
                       progress: (Int, Int) -> Void = { _, _ in }) throws -> [Float] {
        let per = imageShape.count
        let plan = settings.reverseSteps(sampler, count: steps, seed: seed)
        var out = [Float](repeating: 0, count: count * per)
        let chunks = stride(from: 0, to: count, by: batch).map { ($0, min(batch, count - $0)) }
        var done = 0
        for (first, n) in chunks {
            var x = [Float](repeating: 0, count: batch * per)
            for i in 0..<n {
                let noise = given.map { Array($0[(first + i) * per..<(first + i + 1) * per]) } ?? initialNoise(image: first + i, seed: seed)
                x.replaceSubrange(i * per..<(i + 1) * per, with: noise)
            }
            try backend.write(x, to: sampleBuffer)
            var current = sampleBuffer, next = nextBuffer
            let snapshotAt: Set<Int> = first == 0 && snapshots > 1
                ? Set((0..<snapshots).map { $0 * plan.count / (snapshots - 1) }) : []
            if snapshotAt.contains(0) { trajectory?(plan.first?.t ?? 0, Array(x.prefix(n * per))) }
            for (index, step) in plan.enumerated() {
                executor.bind(net.sample, to: current)
                try backend.write([Float](repeating: Float(step.t), count: batch), to: timestepBuffer)
                try executor.run(step: 0)
                var op = step.op
                op.firstImage = UInt32(first)
                let shape = net.graph.shape(net.sample)
                try backend.run(.samplerStep(op), inputs: [TensorRef(current, shape), executor.tensor(net.output)],
                                outputs: [TensorRef(next, shape)], step: UInt32(step.t))
                swap(&current, &next)
                if snapshotAt.contains(index + 1) { trajectory?(step.previous, try backend.read(current, count: n * per)) }
                done += 1
                progress(done, plan.count * chunks.count)
            }
            let values = try backend.read(current, count: n * per)
            out.replaceSubrange(first * per..<(first + n) * per, with: values)
        }
        return out
    }
}
