import DDPMCore
import Foundation

/// The timing search for 3×3 convolutions. It runs once per class of layers (`Layers`), on the first
/// large stride-1 3×3 convolution of that class: it times the forward pass, the input gradient and
/// the weight gradient of that layer with each candidate that applies there (the direct kernels with
/// several blockings, the Winograd paths and im2col + GEMM) and keeps the fastest. One profile value
/// (`Conv3x3Tiles`) then serves every layer, put together from the searches by `combined`.
public final class Conv3x3Tuner {
    /// The classes of 3×3 layers a search is timed on.
    public enum Layers: String, Codable, Sendable, CaseIterable {
        /// Layers F(4×4) applies to (`winogradMinChannels` channels and more): their search decides
        /// whether they run F(4×4).
        case winograd
        /// Layers of fewer channels, on planes wide enough for the fused F(2×2): their search decides
        /// the rest (the fused flag, the direct blocking, im2col + GEMM).
        case narrower
    }

    /// What was timed and what won (nil tiles: im2col + GEMM).
    public struct Search: Codable, Sendable {
        public let call: String
        /// Seconds for forward + input gradient + weight gradient, per candidate description.
        public let seconds: [String: Double]
        public let winner: Conv3x3Tiles?
        /// How much faster the winner was than the starting choice (1 = the same).
        public let speedup: Double
        public let layers: Layers

        public init(call: String, seconds: [String: Double], winner: Conv3x3Tiles?, speedup: Double, layers: Layers) {
            (self.call, self.seconds, self.winner, self.speedup, self.layers) = (call, seconds, winner, speedup, layers)
        }

        /// Whether every one of `candidates` that applies to this search's layers was timed.
        public func timed(_ candidates: [Conv3x3Tiles?]) -> Bool {
            Conv3x3Tuner.candidates(candidates, for: layers).allSatisfy { seconds[Conv3x3Tuner.label($0)] != nil }
        }
    }

    public let candidates: [Conv3x3Tiles?]
    /// The searches made so far (or cached), one per class of layers.
    public private(set) var searches: [Layers: Search] = [:]
    public var onChoice: ((Search) -> Void)?

    /// `cached`: searches loaded from the profile cache; those that did not time every candidate
    /// of this build that applies to their layers are left out, so they run again.
    public init(candidates: [Conv3x3Tiles?], cached: [Search] = []) {
        self.candidates = candidates
        for search in cached where search.timed(candidates) { searches[search.layers] = search }
    }

    /// Whether a layer of this class is still to be searched.
    public func pending(_ layers: Layers) -> Bool { searches[layers] == nil }

    public static func label(_ tiles: Conv3x3Tiles?) -> String { tiles?.description ?? "im2col + GEMM" }

    /// The candidates a search on these layers times: F(4×4) only where it applies.
    public static func candidates(_ all: [Conv3x3Tiles?], for layers: Layers) -> [Conv3x3Tiles?] {
        layers == .winograd ? all : all.filter { $0?.winograd != true }
    }

    /// The one profile value the searches choose, nil when there is none yet (`.some(nil)`:
    /// im2col + GEMM). With one search, its winner. With both, the narrower layers' winner decides
    /// everything but F(4×4), which the Winograd layers' search decides: so a model's narrower layers
    /// keep their own choice (on a 2-core Zen 3, `small` trained at 23.4–24.0 img/s with the fused
    /// flag a 128-channel search had turned off, 29.7–35.8 with it). If im2col + GEMM won the
    /// narrower layers and F(4×4) the others, no one value says both: the Winograd winner is kept
    /// without its fused flag.
    public static func combined(_ searches: [Layers: Search]) -> Conv3x3Tiles?? {
        switch (searches[.winograd], searches[.narrower]) {
        case (nil, nil): return .none
        case let (wide?, nil): return .some(wide.winner)
        case let (nil, narrow?): return .some(narrow.winner)
        case let (wide?, narrow?):
            let f4 = wide.winner?.winograd == true
            guard var choice = narrow.winner else {
                guard f4, var kept = wide.winner else { return .some(nil) }
                kept.winograd2x2 = false
                return .some(kept)
            }
            choice.winograd = f4
            return .some(choice)
        }
    }

    /// The chosen value now (the searches combined).
    public var choice: Conv3x3Tiles?? { Self.combined(searches) }

    /// A winner with F(4×4) runs it on the search's layer whatever its fused F(2×2) flag, which only
    /// matters for the layers F(4×4) leaves out: it gets the flag if the fastest candidate with it
    /// (and without F(4×4)) beat the fastest without either. Other winners are returned as they are.
    public static func settingFusedFlag(of winner: Conv3x3Tiles?, times: [(Conv3x3Tiles?, Double)]) -> Conv3x3Tiles? {
        guard var choice = winner, choice.winograd else { return winner }
        func best(fused: Bool) -> Double {
            times.filter { $0.0?.winograd != true && ($0.0?.winograd2x2 ?? false) == fused }.map(\.1).min() ?? .infinity
        }
        choice.winograd2x2 = best(fused: true) < best(fused: false)
        return choice
    }

    func record(_ search: Search) {
        searches[search.layers] = search
        onChoice?(search)
    }
}

extension OpenCLBackend {
    /// Below this many FLOPs per forward pass a layer is too small to time reliably.
    static let conv3x3TuningMinFlops = 5e7
    /// A network's first layer (1 or 3 input channels) times unlike the rest: on `cifar10` at batch 16
    /// (113 MFLOP from 3 channels) its winner was 3.1× the starting choice there and 0.99× over a
    /// training step (2-core AVX-512 EPYC), so the search waits for a layer with this many inputs.
    static let conv3x3TuningMinChannels = 16

    /// Whether a 3×3 layer of this size is the one to time the search on.
    public static func isConv3x3TuningLayer(inputChannels: Int, flops: Double) -> Bool {
        inputChannels >= conv3x3TuningMinChannels && flops >= conv3x3TuningMinFlops
    }

    /// The class of layers a stride-1 3×3 layer's search speaks for, nil for one it does not: a plane
    /// too small for either Winograd path times mostly what those layers do not run.
    func conv3x3SearchLayers(channels: (Int, Int), h: Int, width: Int) -> Conv3x3Tuner.Layers? {
        if winogradApplies(channels: channels, h: h, width: width) { return .winograd }
        return (width + 1) / 2 >= Self.winograd2x2MinTiles ? .narrower : nil
    }

    /// Times every candidate that applies to these layers on this layer's three convolutions
    /// (outputs to scratch), and from now on runs what the tuner's searches choose together
    /// (`Conv3x3Tuner.combined`). Blocks: it finishes the queue per measurement.
    func searchConv3x3(_ tuner: Conv3x3Tuner, layers: Conv3x3Tuner.Layers, x: CLBuffer, w: CLBuffer, xs: Shape, ws: Shape,
                       c: Conv2D) throws {
        let (n, ci, h, width) = xs.nchw
        let co = ws[0]
        let passes = try conv3x3TrialPasses(x: x, w: w, xs: xs, ws: ws, c: c)
        let start = conv3x3Tiles
        var seconds: [String: Double] = [:]
        func all() throws {
            try passes.data()
            try passes.weightGradient()
        }
        // A Winograd candidate on a layer too small for Winograd would time as its direct twin.
        var trials: [Conv3x3Tiles?] = []
        for tiles in Conv3x3Tuner.candidates([start] + tuner.candidates, for: layers) where !trials.contains(tiles) {
            if let problem = tiles?.problem { throw GEMMError(description: "conv3x3 tiles \(tiles!): \(problem)") }
            trials.append(tiles)
        }
        // Best of five in turns: the machines are shared and noisy, and the winner is cached for good.
        let times = bestInTurns(trials, select: { conv3x3Tiles = $0 }, all)
        for (tiles, best) in times { seconds[Conv3x3Tuner.label(tiles)] = best }
        guard let winner = times.min(by: { $0.1 < $1.1 }) else {
            conv3x3Tiles = start
            throw GEMMError(description: "conv3x3 tuning: no candidate ran")
        }
        let startTime = times.first { $0.0 == start }?.1 ?? winner.1
        tuner.record(Conv3x3Tuner.Search(call: "\(ci)->\(co) channels at \(h)x\(width) batch \(n)", seconds: seconds,
                                         winner: Conv3x3Tuner.settingFusedFlag(of: winner.0, times: times),
                                         speedup: startTime / winner.1, layers: layers))
        conv3x3Tiles = tuner.choice ?? start
    }
}
