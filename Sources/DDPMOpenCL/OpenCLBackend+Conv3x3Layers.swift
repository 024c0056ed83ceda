import DDPMCore
import Foundation

/// How one stride-1 3×3 layer runs, chosen by timing its passes on its first use: which path takes
/// the forward pass and the input gradient (`data`), and which the weight gradient. The profile's
/// `conv3x3` blocking and flags pick a path for layers that have no plan (those too small to time,
/// a network's first layer); a plan replaces them because the best path depends on the layer: on a
/// 2-core Zen 3 (AVX2, batch 64) Winograd F(4×4) took 5.3 ms against the direct kernel's 10.9 for
/// 128→64 channels on 8×8, under the 128 channels its flag needs, and the fused F(2×2) 8.8 ms
/// against F(4×4)'s 16.5 for 32→32 on 32×32.
public struct Conv3x3LayerPlan: Codable, Hashable, Sendable {
    public enum Method: String, Codable, Hashable, Sendable, CaseIterable {
        /// Winograd F(4×4, 3×3): transforms and batched GEMMs (OpenCLBackend+Winograd.swift).
        case winograd4
        /// The fused Winograd F(2×2, 3×3) kernel; forward pass and input gradient only.
        case winograd2x2
        /// The direct kernels with the profile's blocking (OpenCLBackend+Conv3x3.swift).
        case direct
        /// im2col (or col2im) and a GEMM.
        case im2col
    }

    public var data: Method
    public var weightGradient: Method
    /// Seconds per method as timed: forward + input gradient under "data <method>", the weight
    /// gradient under "weight gradient <method>".
    public var seconds: [String: Double]

    public init(data: Method, weightGradient: Method, seconds: [String: Double] = [:]) {
        (self.data, self.weightGradient, self.seconds) = (data, weightGradient, seconds)
    }

    /// The key of a layer's plan: its channels and plane, and the direct blocking the plan was timed
    /// with (a new blocking from a later 3×3 search leaves older plans unused), e.g.
    /// "32->32 at 32x32, 8x3x3x1x1r". Batch sizes share one plan.
    public static func key(channels: (Int, Int), h: Int, width: Int, tiles: Conv3x3Tiles) -> String {
        "\(channels.0)->\(channels.1) at \(h)x\(width), \(tiles.vw)x\(tiles.rows)x\(tiles.cob)x\(tiles.gradCob)x\(tiles.gradCov)"
            + (tiles.gradRows ? "r" : "")
    }
}

/// Makes a plan for each stride-1 3×3 layer large enough to time (`isConv3x3TuningLayer`), once,
/// on its first forward pass; `onChoice` hears each one (the CLI saves it in the profile cache).
public final class Conv3x3LayerTuner {
    public var onChoice: ((String, Conv3x3LayerPlan) -> Void)?
    public private(set) var plans: [String: Conv3x3LayerPlan] = [:]

    public init() {}

    func record(_ plan: Conv3x3LayerPlan, key: String) {
        plans[key] = plan
        onChoice?(key, plan)
    }
}

extension OpenCLBackend {
    /// The path a stride-1 3×3 pass of this layer (channels in, out) takes: the method forced while
    /// a layer is timed, else the layer's plan where it can run, else the profile's flags.
    /// Other convolutions, and every convolution without a direct blocking, take im2col (or the
    /// pointwise GEMM).
    func conv3x3Method(_ c: Conv2D, channels: (Int, Int), h: Int, width: Int, weightGradient: Bool = false) -> Conv3x3LayerPlan.Method {
        guard isDirect3x3Shape(c), let tiles = conv3x3Tiles else { return .im2col }
        if let forced = forcedConv3x3Method { return forced }
        if let plan = conv3x3LayerPlans[Conv3x3LayerPlan.key(channels: channels, h: h, width: width, tiles: tiles)] {
            let method = weightGradient ? plan.weightGradient : plan.data
            if canRun(method, c, channels: channels, h: h, width: width, weightGradient: weightGradient) { return method }
        }
        if usesWinograd(c, h: h, width: width, channels: channels, weightGradient: weightGradient) { return .winograd4 }
        if !weightGradient && usesWinograd2x2(c, width: width) { return .winograd2x2 }
        return canRun(.direct, c, channels: channels, h: h, width: width, weightGradient: weightGradient) ? .direct : .im2col
    }

    /// Whether `method` can run this pass whatever the profile's flags (a plan's F(4×4) needs no
    /// channel count, but planes of at least 8×8 for every pass).
    func canRun(_ method: Conv3x3LayerPlan.Method, _ c: Conv2D, channels: (Int, Int), h: Int, width: Int, weightGradient: Bool) -> Bool {
        switch method {
        case .winograd4: return min(h, width) >= Self.winogradMinPlane
        case .winograd2x2: return !weightGradient && (width + 1) / 2 >= Self.winograd2x2MinTiles
        case .direct: return weightGradient ? usesDirect3x3(c, width: width, channels: channels.1) : usesDirect3x3(c, width: width)
        case .im2col: return true
        }
    }

    /// Times every method that can run this layer (outputs to scratch): forward + input gradient
    /// together, the weight gradient on its own, best of five each, and keeps the fastest of each
    /// as the layer's plan. Blocks: it finishes the queue per measurement.
    func searchConv3x3Layer(_ tuner: Conv3x3LayerTuner, key: String, x: CLBuffer, w: CLBuffer, xs: Shape, ws: Shape, c: Conv2D) throws {
        let (_, ci, h, width) = xs.nchw
        let co = ws[0]
        let passes = try conv3x3TrialPasses(x: x, w: w, xs: xs, ws: ws, c: c)
        defer { forcedConv3x3Method = nil }
        var seconds: [String: Double] = [:]
        func fastest(weightGradient: Bool, _ pass: () throws -> Void) -> Conv3x3LayerPlan.Method {
            let methods = Conv3x3LayerPlan.Method.allCases.filter {
                canRun($0, c, channels: (ci, co), h: h, width: width, weightGradient: weightGradient)
            }
            let times = bestInTurns(methods, select: { forcedConv3x3Method = $0 }, pass)
            for (method, time) in times { seconds["\(weightGradient ? "weight gradient" : "data") \(method.rawValue)"] = time }
            return times.min { $0.1 < $1.1 }?.0 ?? .im2col
        }
        let data = fastest(weightGradient: false, passes.data)
        let weightGradient = fastest(weightGradient: true, passes.weightGradient)
        let plan = Conv3x3LayerPlan(data: data, weightGradient: weightGradient, seconds: seconds)
        conv3x3LayerPlans[key] = plan
        tuner.record(plan, key: key)
    }

    /// A search's trial passes of one layer, into scratch outputs: the forward pass and the input
    /// gradient (`data`), and the weight gradient. The forward output, filled with 0.01, serves as
    /// dy for the gradients, so a trial's result never feeds the next.
    func conv3x3TrialPasses(x: CLBuffer, w: CLBuffer, xs: Shape, ws: Shape, c: Conv2D) throws
        -> (data: () throws -> Void, weightGradient: () throws -> Void) {
        let ys = Shape(xs[0], ws[0], xs[2], xs[3])
        let y = try context.makeBuffer(bytes: ys.count * 4)
        let dx = try context.makeBuffer(bytes: xs.count * 4)
        let dw = try context.makeBuffer(bytes: ws.count * 4)
        try context.write(y, from: [Float](repeating: 0.01, count: ys.count), bytes: ys.count * 4)
        return ({ [unowned self] in
                    try self.conv2dForward(y, x, w, nil, xs, ws, c)
                    try self.conv2dBackwardInput(dx, xs, y, w, ys, c)
                 },
                { [unowned self] in try self.conv2dBackwardWeight(dw, y, x, ys, xs, c) })
    }

    /// Runs a search with every search detached: its trial convolutions must not start another
    /// search (a 3×3 layer's plan under each blocking the 3×3 search tries) nor become a GEMM
    /// shape class's tuning sample (GEMMs are searched on the layers the chosen path runs).
    func withSearchesDetached(_ search: () throws -> Void) throws {
        let attached = (gemm.tuner, conv3x3Tuner, conv3x3LayerTuner)
        (gemm.tuner, conv3x3Tuner, conv3x3LayerTuner) = (nil, nil, nil)
        defer { (gemm.tuner, conv3x3Tuner, conv3x3LayerTuner) = attached }
        try search()
    }

    /// Each candidate's best of five timed runs of `pass` (after one run each that builds and warms
    /// up), the candidates taking turns, one run each per round, so that a slow spell of a shared
    /// machine falls on all of them alike rather than on whichever was being timed. A candidate whose
    /// run throws (a path the driver cannot build or run) is left out.
    func bestInTurns<Candidate>(_ candidates: [Candidate], select: (Candidate) -> Void,
                                _ pass: () throws -> Void) -> [(Candidate, Double)] {
        func run(_ candidate: Candidate) -> Double? {
            select(candidate)
            let t0 = DispatchTime.now().uptimeNanoseconds
            guard (try? pass()) != nil, (try? context.finish()) != nil else { return nil }
            return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        }
        var times: [(Candidate, Double)] = candidates.compactMap { run($0) == nil ? nil : ($0, .infinity) }
        for _ in 0..<5 {
            times = times.compactMap { candidate, best in run(candidate).map { (candidate, min(best, $0)) } }
        }
        return times
    }
}
