import Foundation

/// The timing search for GEMM tiles. Attached to a GEMM, it times every candidate on the first
/// large call of each shape class that has no choice yet, keeps the fastest, and reports it.
public final class GEMMTuner {
    /// One search: the call it was timed on and each candidate's best time.
    public struct Search: Codable, Sendable {
        public let shape: GEMMShapeClass
        public let call: String
        public let seconds: [String: Double]
        public let winner: GEMMTiles
        /// How much faster the winner was than the profile's starting choice (1 = the same).
        public let speedup: Double
    }

    public let candidates: [GEMMTiles]
    /// Classes to search; the others keep the profile's choice.
    public var pending: Set<GEMMShapeClass>
    public private(set) var searches: [Search] = []
    /// Called after each search with the updated profile (to save it).
    public var onChoice: ((DeviceProfile, Search) -> Void)?

    /// Calls below this many FLOPs are too short to time reliably (tens of microseconds on a CPU)
    /// and do not represent the class: they use the current choice and do not trigger a search.
    static let minFlops = 2e7

    public init(candidates: [GEMMTiles], pending: Set<GEMMShapeClass>) {
        self.candidates = candidates
        self.pending = pending
    }

    func wantsSearch(_ shape: GEMMShapeClass, flops: Double) -> Bool {
        pending.contains(shape) && flops >= Self.minFlops
    }

    func record(_ search: Search, profile: DeviceProfile) {
        pending.remove(search.shape)
        searches.append(search)
        onChoice?(profile, search)
    }
}

extension GEMM {
    /// Times each candidate on `call` (its output redirected to scratch, so the real C is untouched)
    /// and keeps the fastest for `shape`. Blocks: it finishes the queue for every measurement.
    func search(_ shape: GEMMShapeClass, on call: Call, tuner: GEMMTuner) throws {
        var trial = call
        trial.c = try scratchCopy(of: call.c, rows: call.m, cols: call.n, items: call.sum ? 1 : call.batch)
        let start = profile.tiles(for: shape)
        var seconds: [GEMMTiles: Double] = [:]
        for tiles in [start] + tuner.candidates where seconds[tiles] == nil {
            // A candidate the driver cannot build or run is skipped, not fatal.
            guard let kernels = try? kernels(for: tiles) else { continue }
            do {
                try run(trial, with: kernels)  // the first launch makes the machine code
                try context.finish()
                var t0 = DispatchTime.now().uptimeNanoseconds
                try run(trial, with: kernels)
                try context.finish()
                let once = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                // Best of five short measurements: the machines are shared and noisy.
                let reps = max(1, min(20, Int(0.02 / max(once, 1e-6))))
                var best = once
                for _ in 0..<5 {
                    t0 = DispatchTime.now().uptimeNanoseconds
                    for _ in 0..<reps { try run(trial, with: kernels) }
                    try context.finish()
                    best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 / Double(reps))
                }
                seconds[tiles] = best
            } catch {
                continue
            }
        }
        guard let winner = seconds.min(by: { $0.value < $1.value || ($0.value == $1.value && $0.key == start) })?.key else {
            throw GEMMError(description: "GEMM tuning: no candidate tile shape ran for \(shape.rawValue)")
        }
        try choose(winner, for: shape)
        let label = "\(call.m)x\(call.n)x\(call.k)" + (call.batch > 1 ? " batch \(call.batch)" : "") + (call.sum ? " summed" : "")
        let speedup = (seconds[start] ?? seconds[winner]!) / seconds[winner]!
        tuner.record(GEMMTuner.Search(shape: shape, call: label,
                                      seconds: Dictionary(uniqueKeysWithValues: seconds.map { ($0.key.description, $0.value) }),
                                      winner: winner, speedup: speedup),
                     profile: profile)
    }

    /// A zeroed buffer laid out like `c`'s span, with `c`'s strides.
    private func scratchCopy(of c: GEMMOperand, rows: Int, cols: Int, items: Int) throws -> GEMMOperand {
        var lo = c.offset, hi = c.offset
        for (count, stride) in [(items, c.batchStride), (rows, c.rowStride), (cols, c.columnStride)] where count > 0 {
            let span = (count - 1) * stride
            if span < 0 { lo += span } else { hi += span }
        }
        let floats = hi - lo + 1
        let buffer = try context.makeBuffer(bytes: floats * 4)
        let zeros = [Float](repeating: 0, count: floats)  // zeros: garbage could hold slow denormals
        try context.write(buffer, from: zeros, bytes: floats * 4)
        var out = c
        out.buffer = buffer
        out.offset = c.offset - lo
        return out
    }
}
