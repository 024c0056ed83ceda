import DDPM
import DDPMCore

// The sampler steps' ops (SamplerUpdate.swift) on host values, with a fake model's output given: what
// the scheduler fixtures feed. Each call builds its graph on fresh buffers, so that the Sampler's own
// rotation of buffers is checked against a loop that rotates nothing.

/// One DDPM/DDIM step: x_t, the model output (and with a learned variance its v half) → x_prev.
func ancestralStep(_ op: SamplerStep, sampler: SamplerKind, settings: SchedulerSettings, backend: Backend,
                   x: [Float], model: [Float], variance: [Float]? = nil, shape: Shape, step: UInt32) throws -> [Float] {
    let graph = Graph()
    let xt = graph.input("x", shape), m = graph.input("model", shape)
    let v = variance.map { _ in graph.input("variance", shape) }
    let update = AncestralUpdate(graph: graph, xt: xt, prediction: m, variance: v,
                                 layout: AncestralUpdate.Layout(sampler: sampler, settings: settings, guided: false), settings: settings)
    let executor = try Executor(graph: graph, outputs: [update.output], backend: backend)
    executor.bind(xt, to: try backend.makeBuffer(x))
    executor.bind(m, to: try backend.makeBuffer(model))
    if let v, let variance { executor.bind(v, to: try backend.makeBuffer(variance)) }
    update.configure(executor, op: op)
    try executor.run(step: step)
    return try backend.read(executor.buffer(update.output), count: x.count)
}

/// A multistep solver's run, step by step: its history ring and UniPC's previous input are kept here.
final class MultistepSteps {
    let backend: Backend
    let update: MultistepUpdate
    let executor: Executor
    let xt: Value, model: Value
    let history: [DeviceBuffer]
    let count: Int
    /// UniPC's previous (corrected) input.
    private var last: DeviceBuffer?

    init(plan: [SolverStep], settings: SchedulerSettings, backend: Backend, shape: Shape) throws {
        self.backend = backend
        count = shape.count
        let graph = Graph()
        xt = graph.input("x", shape)
        model = graph.input("model", shape)
        update = MultistepUpdate(graph: graph, xt: xt, prediction: model,
                                 layout: MultistepUpdate.Layout(plan: plan, settings: settings, guided: false), settings: settings)
        history = try (0..<update.layout.slots).map { _ in try backend.makeBuffer([Float](repeating: 0, count: shape.count)) }
        var placements = [update.output: try backend.makeBuffer(count: count), update.prediction: history[0]]
        if let corrected = update.corrected { placements[corrected] = try backend.makeBuffer(count: count) }
        executor = try Executor(graph: graph, outputs: Array(placements.keys), backend: backend, placements: placements)
    }

    /// Step `index` of the run from x with the model's output at it → x_next.
    func step(_ index: Int, _ step: SolverStep, x: [Float], model output: [Float], seed: UInt64) throws -> [Float] {
        let input = try backend.makeBuffer(x)
        executor.bind(xt, to: input)
        executor.bind(model, to: try backend.makeBuffer(output))
        let corrected = try backend.makeBuffer(count: count)
        let out = try backend.makeBuffer(count: count)
        executor.place(update.output, in: out)
        update.configure(executor, step: step, index: index, history: history, input: input, previous: last,
                         corrected: update.corrected == nil ? nil : corrected, seed: seed, firstImage: 0)
        try executor.run(step: UInt32(step.t))
        last = update.corrected == nil ? nil : corrected
        return try backend.read(out, count: count)
    }
}
