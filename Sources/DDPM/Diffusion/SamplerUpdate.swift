import DDPMCore

// The ops of a sampler step that follow the model, as nodes of the model's graph, so that a whole
// step is one executor run: nothing is scheduled by hand. Their coefficients change every step:
// `configure` gives the nodes that carry them the step's ops (Executor.replaceOp). What lives from
// one step to the next (x_t, the result, a multistep solver's history, UniPC's corrected input) is
// a leaf bound to, or an output placed in, a buffer that the Sampler rotates.

extension SamplerStep {
    /// A step that outputs p0·x̂0 + pe·ε̂ alone (no x_t term, no noise), x̂0 and ε̂ from these
    /// coefficients: a part of a thresholded DDPM/DDIM step, or a solver's conversion into x̂0 or ε̂.
    static func estimate(kx: Float = 0, km: Float = 0, clip: Float = 0, ex: Float = 0, em: Float = 0, p0: Float = 0, pe: Float = 0,
                         learnedVariance: Bool = false) -> SamplerStep {
        SamplerStep(kx: kx, km: km, clip: clip, ex: ex, em: em, p0: p0, pe: pe, px: 0, sigma: 0, seed: 0, firstImage: 0,
                    learnedVariance: learnedVariance)
    }
}

/// Classifier guidance's term: coefficient · d(loss)/dx, the gradient a leaf bound to the guide's
/// result (the classifier is its own graph, run before the step on the same x_t).
struct GuidanceTerm {
    let gradient: Value
    /// The scale node whose coefficient changes every step.
    let scaled: Value

    init(graph: Graph, like x: Value) {
        gradient = graph.input("guidance_gradient", graph.shape(x))
        scaled = graph(.scale(0), gradient)
    }

    func configure(_ executor: Executor, coefficient: Float) {
        executor.replaceOp(ofNodeProducing: scaled, with: .scale(coefficient))
    }
}

/// DDPM and DDIM: x_t, the model's prediction (and with a learned variance its v half) → x_prev.
/// With dynamic thresholding the step is split: x̂0 (and for DDIM ε̂ from the unthresholded
/// prediction) first, x̂0 thresholded per image, then the update from them.
public struct AncestralUpdate {
    /// What the nodes are; one graph serves every step of runs with the same layout.
    public struct Layout: Hashable {
        public var ddim: Bool
        public var thresholding: Bool
        /// The step reads the model's variance half (DDPM with learned_range).
        public var learnedVariance: Bool
        public var guided: Bool
        /// Classifier guidance moves the mean of a fixed-variance DDPM step (Dhariwal & Nichol's
        /// Algorithm 1), the prediction otherwise.
        public var shiftsMean: Bool { guided && !ddim && !learnedVariance }

        public init(sampler: SamplerKind, settings: SchedulerSettings, guided: Bool) {
            if case .ddim = sampler { ddim = true } else { ddim = false }
            thresholding = settings.thresholding
            learnedVariance = !ddim && settings.variance == .learnedRange
            self.guided = guided
        }
    }

    public let layout: Layout
    /// x_prev.
    public let output: Value
    /// The guide's d(loss)/dx leaf (nil unguided).
    public var guidanceGradient: Value? { guidance?.gradient }
    let guidance: GuidanceTerm?
    private let update: Value
    /// Thresholding's x̂0 and (DDIM) ε̂ nodes.
    private let x0: Value?, eps: Value?

    public init(graph: Graph, xt: Value, prediction model: Value, variance: Value?, layout: Layout, settings: SchedulerSettings) {
        precondition(layout.learnedVariance == (variance != nil), "a learned-variance step reads the model's variance half")
        self.layout = layout
        let guidance = layout.guided ? GuidanceTerm(graph: graph, like: xt) : nil
        self.guidance = guidance
        let prediction = guidance.map { layout.shiftsMean ? model : graph(.add, model, $0.scaled) } ?? model
        let extra = variance.map { [$0] } ?? []
        let placeholder = SamplerStep.estimate(learnedVariance: layout.learnedVariance)
        if layout.thresholding {
            let x0 = graph(.samplerStep(.estimate()), xt, prediction)
            let thresholded = graph(.dynamicThreshold(ratio: settings.dynamicThresholdingRatio, maxValue: settings.sampleMaxValue), x0)
            self.x0 = x0
            if layout.ddim {
                let eps = graph(.samplerStep(.estimate()), xt, prediction)
                self.eps = eps
                update = graph.apply(.samplerStep(placeholder), [eps, thresholded] + extra)[0]
            } else {
                eps = nil
                update = graph.apply(.samplerStep(placeholder), [xt, thresholded] + extra)[0]
            }
        } else {
            (x0, eps) = (nil, nil)
            update = graph.apply(.samplerStep(placeholder), [xt, prediction] + extra)[0]
        }
        if let guidance, layout.shiftsMean { output = graph(.add, update, guidance.scaled) } else { output = update }
    }

    /// The step's ops: `op` (with the chunk's firstImage) and the guidance coefficient of d(loss)/dx.
    public func configure(_ executor: Executor, op: SamplerStep, guidance coefficient: Float = 0) {
        precondition(op.learnedVariance == layout.learnedVariance, "the step's variance is not the layout's")
        guidance?.configure(executor, coefficient: coefficient)
        guard let x0 else { return executor.replaceOp(ofNodeProducing: update, with: .samplerStep(op)) }
        executor.replaceOp(ofNodeProducing: x0, with: .samplerStep(.estimate(kx: op.kx, km: op.km, ex: op.ex, em: op.em, p0: 1)))
        var final = op
        (final.kx, final.km, final.clip) = (0, 1, 0)          // x̂0 := the thresholded input
        if let eps {
            executor.replaceOp(ofNodeProducing: eps, with: .samplerStep(.estimate(kx: op.kx, km: op.km, ex: op.ex, em: op.em, pe: 1)))
            (final.ex, final.em) = (1, 0)                     // ε̂ := the first input; DDIM has px = 0
        }
        executor.replaceOp(ofNodeProducing: update, with: .samplerStep(final))
    }
}

/// A multistep solver's step (DPM-Solver++, UniPC, Euler, Heun): the prediction (x̂0, or ε̂) of the
/// model output, dynamically thresholded when on, becomes d_0, the newest of the history; UniPC's
/// corrector refines the step's input from the previous one's; then the update from x (or the
/// corrected x) and the history. A combination is cx·x + Σ c_k·d_k in solverUpdate nodes of up to
/// three terms (each partial sum the next one's x), with as many terms as the plan's largest; a
/// step with fewer gives the rest coefficient 0, so the history must hold finite values (it starts
/// zeroed). On steps without a corrector the corrector node copies x (cx = 1, every c_k = 0), so
/// that its result is always the next step's previous input.
public struct MultistepUpdate {
    public struct Layout: Hashable {
        /// The most predictions the update and the corrector combine (0: no corrector).
        public var updateTerms: Int, correctorTerms: Int
        public var thresholding: Bool
        public var guided: Bool
        /// History slots.
        public var slots: Int { max(updateTerms, correctorTerms) }

        public init(plan: [SolverStep], settings: SchedulerSettings, guided: Bool) {
            updateTerms = plan.map(\.c.count).max() ?? 1
            correctorTerms = plan.compactMap { $0.corrector?.c.count }.max() ?? 0
            thresholding = settings.thresholding
            self.guided = guided
        }
    }

    public let layout: Layout
    /// d_0: this step's prediction, placed in the history slot of the step.
    public let prediction: Value
    /// d_1 … d_{slots−1}, the older predictions newest first: leaves bound to the history.
    public let older: [Value]
    /// UniPC's previous (corrected) input: a leaf; and this step's corrected input, placed.
    public let last: Value?, corrected: Value?
    /// x_next.
    public let output: Value
    public var guidanceGradient: Value? { guidance?.gradient }
    let guidance: GuidanceTerm?
    private let convert: Value
    private let correctorNodes: [Value], updateNodes: [Value]

    public init(graph: Graph, xt: Value, prediction model: Value, layout: Layout, settings: SchedulerSettings) {
        self.layout = layout
        let guidance = layout.guided ? GuidanceTerm(graph: graph, like: xt) : nil
        self.guidance = guidance
        let shifted = guidance.map { graph(.add, model, $0.scaled) } ?? model
        convert = graph(.samplerStep(.estimate(p0: 1)), xt, shifted)
        prediction = layout.thresholding
            ? graph(.dynamicThreshold(ratio: settings.dynamicThresholdingRatio, maxValue: settings.sampleMaxValue), convert)
            : convert
        older = (1..<max(layout.slots, 1)).map { graph.input("history_\($0)", graph.shape(xt)) }
        let d = [prediction] + older
        var x = xt
        if layout.correctorTerms > 0 {
            let last = graph.input("previous_input", graph.shape(xt))
            correctorNodes = Self.combination(graph, last, Array(d.prefix(layout.correctorTerms)))
            (self.last, corrected) = (last, correctorNodes.last!)
            x = correctorNodes.last!
        } else {
            (correctorNodes, last, corrected) = ([], nil, nil)
        }
        updateNodes = Self.combination(graph, x, Array(d.prefix(layout.updateTerms)))
        output = updateNodes.last!
    }

    /// The nodes of cx·x + Σ c_k·d_k, three terms each.
    private static func combination(_ graph: Graph, _ x: Value, _ d: [Value]) -> [Value] {
        var nodes: [Value] = [], sum = x
        for start in stride(from: 0, to: d.count, by: 3) {
            let part = Array(d[start..<min(start + 3, d.count)])
            sum = graph.apply(.solverUpdate(SolverUpdate(cx: 0, c: part.map { _ in 0 })), [sum] + part)[0]
            nodes.append(sum)
        }
        return nodes
    }

    /// Gives the nodes of a combination `f` (its c padded with zeros); the noise goes with the last part.
    private static func configure(_ nodes: [Value], _ f: SolverCombination, terms: Int, executor: Executor,
                                  noise: Double = 0, seed: UInt64 = 0, firstImage: UInt32 = 0) {
        precondition(f.c.count <= terms, "a step combines more predictions than its layout's \(terms)")
        let c = f.c.map(Float.init) + [Float](repeating: 0, count: terms - f.c.count)
        for (i, node) in nodes.enumerated() {
            let part = Array(c[3 * i..<min(3 * i + 3, terms)])
            let final = i == nodes.count - 1
            let update = SolverUpdate(cx: i == 0 ? Float(f.cx) : 1, c: part, sigma: final ? Float(noise) : 0,
                                      seed: final ? seed : 0, firstImage: final ? firstImage : 0)
            executor.replaceOp(ofNodeProducing: node, with: .solverUpdate(update))
        }
    }

    /// Step `index` of a chunk: its ops, and its buffers. d_0 goes into the history slot `index` mod
    /// slots, the older predictions are read from the slots before it. The corrector runs when the
    /// step has one and there is a `previous` input (not on a chunk's first step); else it copies x.
    /// `corrected` receives the corrected input, which is the next step's `previous`.
    public func configure(_ executor: Executor, step: SolverStep, index: Int, history: [DeviceBuffer], input: DeviceBuffer,
                          previous: DeviceBuffer?, corrected: DeviceBuffer?, seed: UInt64, firstImage: UInt32,
                          guidance coefficient: Float = 0) {
        let slots = history.count
        precondition(slots == layout.slots, "a history of \(slots) slots for a layout of \(layout.slots)")
        executor.place(prediction, in: history[index % slots])
        for (k, leaf) in older.enumerated() { executor.bind(leaf, to: history[((index - k - 1) % slots + slots) % slots]) }
        guidance?.configure(executor, coefficient: coefficient)
        executor.replaceOp(ofNodeProducing: convert, with: .samplerStep(.estimate(kx: Float(step.kx), km: Float(step.km),
                                                                                   clip: Float(step.clip), p0: 1)))
        if let last, let correctedInput = self.corrected {
            guard let corrected else { preconditionFailure("a corrector layout needs a buffer for the corrected input") }
            let corrects = step.corrector != nil && previous != nil
            executor.bind(last, to: corrects ? previous! : input)
            executor.place(correctedInput, in: corrected)
            Self.configure(correctorNodes, corrects ? step.corrector! : SolverCombination(cx: 1, c: []), terms: layout.correctorTerms,
                           executor: executor)
        } else {
            precondition(step.corrector == nil, "a corrector step in a layout without one")
        }
        Self.configure(updateNodes, SolverCombination(cx: step.cx, c: step.c), terms: layout.updateTerms, executor: executor,
                       noise: step.noise, seed: seed, firstImage: firstImage)
    }
}
