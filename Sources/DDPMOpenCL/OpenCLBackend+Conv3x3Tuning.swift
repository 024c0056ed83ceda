import DDPMCore
import Foundation

/// The timing search for 3×3 convolutions: on the first large stride-1 3×3 convolution it times
/// the forward pass, the input gradient and the weight gradient of that layer with each candidate
/// (the direct kernels with several blockings, and im2col + GEMM) and keeps the fastest.
public final class Conv3x3Tuner {
    /// What was timed and what won (nil tiles: im2col + GEMM).
    public struct Search: Codable, Sendable {
        public let call: String
        /// Seconds for forward + input gradient + weight gradient, per candidate description.
        public let seconds: [String: Double]
        public let winner: Conv3x3Tiles?
        /// How much faster the winner was than the starting choice (1 = the same).
        public let speedup: Double

        public init(call: String, seconds: [String: Double], winner: Conv3x3Tiles?, speedup: Double) {
            (self.call, self.seconds, self.winner, self.speedup) = (call, seconds, winner, speedup)
        }

        /// Whether every one of `candidates` was timed in this search.
        public func timed(_ candidates: [Conv3x3Tiles?]) -> Bool {
            candidates.allSatisfy { seconds[Conv3x3Tuner.label($0)] != nil }
        }
    }

    public let candidates: [Conv3x3Tiles?]
    public private(set) var search: Search?
    public var onChoice: ((Search) -> Void)?
    public private(set) var pending = true
    /// Winograd only runs on layers of 128 channels and more (`winogradMinChannels`): a search on a
    /// smaller layer skips its candidates, and the tuner then waits for a layer where it applies
    /// (a model's first such layer, or another model's) to search again with them.
    public var waitsForWinogradLayer = false

    public init(candidates: [Conv3x3Tiles?]) { self.candidates = candidates }

    public static func label(_ tiles: Conv3x3Tiles?) -> String { tiles?.description ?? "im2col + GEMM" }

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
        waitsForWinogradLayer = !search.timed(candidates)
        pending = waitsForWinogradLayer
        self.search = search
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

    /// Times every candidate on this layer's three convolutions (outputs to scratch) and keeps the
    /// fastest for all 3×3 convolutions from now on. Blocks: it finishes the queue per measurement.
    func searchConv3x3(_ tuner: Conv3x3Tuner, x: CLBuffer, w: CLBuffer, xs: Shape, ws: Shape, c: Conv2D) throws {
        let (n, ci, h, width) = xs.nchw
        let co = ws[0]
        let y = try context.makeBuffer(bytes: n * co * h * width * 4)
        let dx = try context.makeBuffer(bytes: n * ci * h * width * 4)
        let dw = try context.makeBuffer(bytes: co * ci * 9 * 4)
        try context.write(y, from: [Float](repeating: 0.01, count: n * co * h * width), bytes: n * co * h * width * 4)
        let ys = Shape(n, co, h, width)
        let start = conv3x3Tiles
        // GEMM shape classes are searched on the layers the chosen path runs, not on these trials.
        let gemmTuner = gemm.tuner
        gemm.tuner = nil
        defer { gemm.tuner = gemmTuner }
        var seconds: [String: Double] = [:]
        var times: [(Conv3x3Tiles?, Double)] = []
        func all() throws {
            try conv2dForward(y, x, w, nil, xs, ws, c)
            try conv2dBackwardInput(dx, xs, y, w, ys, c)
            try conv2dBackwardWeight(dw, y, x, ys, xs, c)
        }
        // A Winograd candidate on a layer too small for Winograd would time as its direct twin.
        let winograd = winogradApplies(channels: (ci, co), h: h, width: width)
        for tiles in [start] + tuner.candidates where !times.contains(where: { $0.0 == tiles }) {
            if tiles?.winograd == true && !winograd { continue }
            if let problem = tiles?.problem { throw GEMMError(description: "conv3x3 tiles \(tiles!): \(problem)") }
            conv3x3Tiles = tiles
            do {
                try all(); try context.finish()  // builds, machine code
                // Best of five: the machines are shared and noisy, and the winner is cached for good.
                var best = Double.infinity
                for _ in 0..<5 {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    try all(); try context.finish()
                    best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                }
                times.append((tiles, best))
                seconds[Conv3x3Tuner.label(tiles)] = best
            } catch {
                continue  // a candidate the driver cannot build or run is skipped
            }
        }
        guard let winner = times.min(by: { $0.1 < $1.1 }) else {
            conv3x3Tiles = start
            throw GEMMError(description: "conv3x3 tuning: no candidate ran")
        }
        let choice = Conv3x3Tuner.settingFusedFlag(of: winner.0, times: times)
        conv3x3Tiles = choice
        let startTime = times.first { $0.0 == start }?.1 ?? winner.1
        tuner.record(Conv3x3Tuner.Search(call: "\(ci)->\(co) channels at \(h)x\(width) batch \(n)", seconds: seconds,
                                         winner: choice, speedup: startTime / winner.1))
    }
}
