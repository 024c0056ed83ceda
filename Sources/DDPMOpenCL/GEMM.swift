import Foundation

/// One operand of a strided GEMM: element (row, col) of batch item b lives at
/// offset + b*batchStride + row*rowStride + col*columnStride (all in floats).
public struct GEMMOperand {
    public var buffer: CLBuffer
    public var offset: Int
    public var batchStride: Int
    public var rowStride: Int
    public var columnStride: Int

    public init(buffer: CLBuffer, offset: Int = 0, batchStride: Int, rowStride: Int, columnStride: Int) {
        self.buffer = buffer
        self.offset = offset
        self.batchStride = batchStride
        self.rowStride = rowStride
        self.columnStride = columnStride
    }
}

/// A GEMM call the operands cannot serve (an index outside its buffer, or past 32-bit indexing).
public struct GEMMError: Error, CustomStringConvertible {
    public let description: String
}

/// Every item's A panels packed once (`GEMM.pack`), for calls whose A does not change between them
/// (a sampler's weights), in the tiles its shape class had then. CPU path only.
public final class PackedA {
    let buffer: CLBuffer
    let tiles: GEMMTiles
    let m, k, batch: Int
    init(buffer: CLBuffer, tiles: GEMMTiles, m: Int, k: Int, batch: Int) {
        (self.buffer, self.tiles, self.m, self.k, self.batch) = (buffer, tiles, m, k, batch)
    }
    /// Whether these panels are those of an m×k A of `batch` items packed in `tiles`.
    func matches(m: Int, k: Int, batch: Int, tiles: GEMMTiles) -> Bool {
        self.m == m && self.k == k && self.batch == batch && self.tiles == tiles
    }
}

/// Strided batched SGEMM on one OpenCL context (kernels: Kernels/gemm.cl).
///
/// CPU path (PoCL): the operands are packed into zero-padded panels (A as [M/mr][K][mr], B as
/// [N/nr][K][nr]) by two pack kernels, then a register-blocked micro-kernel computes one mr×nr block
/// of C per work-item (work-group size 1). The batch is processed in chunks so the packed panels stay
/// cache-sized; with sumOverBatch the chunk's items are laid end to end along k.
/// GPU path: a local-memory tiled kernel (tm×tn tiles, 16×16 work-items) reads the operands directly.
/// Which path and tiles serve a call is the device profile's choice per shape class
/// (`DeviceProfile.tiles(for:)`); with a tuner attached, a class is timed on its first call
/// (GEMM+Tuning.swift). Every CPU tile shape sums each output over k in the same order with fma, so
/// they all give bit-identical results.
/// Everything is enqueued on the context's in-order queue and `run` never blocks (except during a
/// timing search). Not thread-safe: one GEMM object per queue, calls from one thread.
public final class GEMM {
    public typealias Variant = GEMMTiles.Variant

    /// The kernels of one build of gemm.cl.
    struct Kernels {
        let tiles: GEMMTiles
        let packA: CLKernel?, packB: CLKernel?, micro: CLKernel?
        let tiled: CLKernel?, reduce: CLKernel?
    }

    let context: CLContext
    private let source: String
    public private(set) var profile: DeviceProfile
    private var builds: [GEMMTiles: Kernels] = [:]
    private var scratchA: CLBuffer?, scratchB: CLBuffer?
    /// The A operand whose packed panels scratchA holds at offset 0 (one item, not summed), for
    /// calls that ask to reuse them (`reusePackedA`).
    private var lastPackedA: PackedAKey?

    private struct PackedAKey: Equatable {
        let buffer: ObjectIdentifier
        let offset, rowStride, columnStride, m, k: Int
        let tiles: GEMMTiles
    }
    /// Set while tuning: classes not yet searched are timed on their first large call.
    public var tuner: GEMMTuner?

    /// The path used for calls of the general class (the one conv and linear layers take).
    public var variant: Variant { profile.tiles(for: .general).variant }

    /// Packed floats (A and B together, unpadded) per batch chunk; chunks are at least one item.
    /// Measured on PoCL (2-core Zen 3): cache-sized chunks beat packing the whole batch at once.
    /// Counted without the tiles' padding, so that the chunks (and the order of sums) do not
    /// depend on the tile shape. (A B read in place is not counted; that depends on the tile width,
    /// but only for calls whose items are not summed, where chunks do not change the sums.)
    public var chunkBudgetFloats = 1 << 20

    /// Whether the CPU path reads B in place where it can (`readsBInPlace`) instead of packing it;
    /// off: B is always packed (the results are bit-identical either way; a test compares them).
    public var readsBInPlaceWherePossible = true

    /// When set, every launch records a profiling event; read them with `takeProfile()` after the
    /// caller has finished the queue (for benchmarks).
    public var profiling = false
    private var events: [(String, CLEvent)] = []
    /// The shape class of the call being enqueued, for profile names ("reduction gemm_pack_b").
    private var currentShape: GEMMShapeClass?

    /// Seconds per kernel name since the last call, summed over launches (queue must be finished).
    public func takeProfile() -> [(kernel: String, launches: Int, seconds: Double)] {
        var totals: [String: (Int, Double)] = [:]
        for (name, event) in events { totals[name, default: (0, 0)].0 += 1; totals[name, default: (0, 0)].1 += event.seconds }
        events.removeAll()
        return totals.sorted { $0.key < $1.key }.map { ($0.key, $0.value.0, $0.value.1) }
    }

    private func launch(_ kernel: CLKernel, global: [Int], local: [Int]) throws {
        if let event = try context.launch(kernel, global: global, local: local, profile: profiling) {
            events.append(((currentShape.map { "\($0.rawValue) " } ?? "") + kernel.name, event))
        }
    }

    /// Work sizes per CPU work-item (PoCL pays ~0.1 µs per work-group) and the fewest work-items
    /// a launch is split into (2 cores, a few items each for balance).
    static let packFloatsPerItem = 4096, microFMAsPerItem = 32768, minWorkItems = 16
    /// Work-groups a GPU launch should have at least (about two per SM on an H100).
    static let gpuGroups = 264

    /// `source` is the text of Kernels/gemm.cl. Builds the kernels of every tile shape the profile
    /// names now, so that a broken driver shows up here, not in the middle of a step.
    public init(context: CLContext, source: String, profile: DeviceProfile) throws {
        self.context = context
        self.source = source
        self.profile = profile
        for tiles in Set([profile.defaultGEMM] + Array(profile.gemm.values)) { _ = try kernels(for: tiles) }
    }

    /// Uses `tiles` for one shape class from now on (the tuner's choice).
    public func choose(_ tiles: GEMMTiles, for shape: GEMMShapeClass) throws {
        _ = try kernels(for: tiles)
        profile.gemm[shape.rawValue] = tiles
    }

    func kernels(for tiles: GEMMTiles) throws -> Kernels {
        if let k = builds[tiles] { return k }
        if let problem = tiles.problem { throw GEMMError(description: "GEMM tiles \(tiles): \(problem)") }
        let program = try context.buildProgram(source: source, options: tiles.buildOptions, file: "Kernels/gemm.cl")
        let k: Kernels
        switch tiles.variant {
        case .cpu:
            k = Kernels(tiles: tiles, packA: try program.kernel("gemm_pack_a"), packB: try program.kernel("gemm_pack_b"),
                        micro: try program.kernel("gemm_micro"), tiled: nil, reduce: nil)
        case .gpu:
            k = Kernels(tiles: tiles, packA: nil, packB: nil, micro: nil,
                        tiled: try program.kernel("gemm_tiled"), reduce: try program.kernel("gemm_reduce"))
        }
        builds[tiles] = k
        return k
    }

    /// C[b] = alpha * A[b] (m×k) · B[b] (k×n)  [+ C[b] when accumulate], for b in 0..<batch.
    /// With sumOverBatch: one C (its batchStride ignored) = alpha * Σ_b A[b]·B[b] [+ C].
    /// With reusePackedA the caller promises that A's contents have not changed since the previous
    /// call that used the same A: its packed panels are reused if the CPU path still holds them (a
    /// convolution's chunks of images share the weights: packing the 4608×256 A of a 512→256 input
    /// gradient at 8×8 for each of its six chunks took it from 7.0 to 9.7 ms).
    public func run(m: Int, n: Int, k: Int, batch: Int,
                    a: GEMMOperand, b: GEMMOperand, c: GEMMOperand,
                    alpha: Float = 1, accumulate: Bool = false, sumOverBatch: Bool = false,
                    reusePackedA: Bool = false, packedA: PackedA? = nil) throws {
        guard m >= 0, n >= 0, k >= 0, batch >= 0 else {
            throw GEMMError(description: "GEMM with negative size m=\(m) n=\(n) k=\(k) batch=\(batch)")
        }
        if m == 0 || n == 0 || (batch == 0 && !sumOverBatch) { return }
        let cItems = sumOverBatch ? 1 : batch
        try Self.validate("A", a, rows: m, cols: k, items: batch)
        try Self.validate("B", b, rows: k, cols: n, items: batch)
        try Self.validate("C", c, rows: m, cols: n, items: cItems)
        let call = Call(m: m, n: n, k: k, batch: batch, a: a, b: b, c: c, alpha: alpha, accumulate: accumulate,
                        sum: sumOverBatch, reusePackedA: reusePackedA, packedA: packedA)
        let shape = GEMMShapeClass(m: m, n: n, k: k, sumOverBatch: sumOverBatch)
        if let tuner, tuner.wantsSearch(shape, flops: call.flops) { try search(shape, on: call, tuner: tuner) }
        currentShape = shape
        defer { currentShape = nil }
        try run(call, with: try kernels(for: profile.tiles(for: shape)))
    }

    /// A (m×k, `batch` items, not summed) packed for later calls with the same A, in the tiles its
    /// shape class has now; nil on the GPU path, which reads A where it lies. The caller keeps it
    /// while A stays unchanged and passes it to `run` with A itself: a call whose tiles differ (a
    /// tuner's new choice) packs A as usual.
    public func pack(m: Int, k: Int, batch: Int, a: GEMMOperand) throws -> PackedA? {
        guard let bytes = packedBytes(m: m, k: k, batch: batch) else { return nil }
        let tiles = profile.tiles(for: Self.packedShape(m: m, k: k))
        try Self.validate("A", a, rows: m, cols: k, items: batch)
        let kernels = try kernels(for: tiles)
        let mBlocks = (m + tiles.mr - 1) / tiles.mr
        try Self.check32("packed panels", bytes / 4)
        let buffer = try context.makeBuffer(bytes: bytes)
        try packPanels(kernels.packA!, a, rStride: a.rowStride, pStride: a.columnStride, start: 0, items: batch, extent: m,
                       k: k, blocks: mBlocks, width: tiles.mr, into: buffer, sum: false, chunkItems: batch)
        return PackedA(buffer: buffer, tiles: tiles, m: m, k: k, batch: batch)
    }

    /// The shape class whose tiles prepacked A panels take (the class does not depend on n).
    private static func packedShape(m: Int, k: Int) -> GEMMShapeClass { GEMMShapeClass(m: m, n: 1, k: k, sumOverBatch: false) }

    /// The device memory `pack` would take for these sizes now (nil: it would not pack).
    public func packedBytes(m: Int, k: Int, batch: Int) -> Int? {
        let tiles = profile.tiles(for: Self.packedShape(m: m, k: k))
        guard tiles.variant == .cpu, m > 0, k > 0, batch > 0 else { return nil }
        return (m + tiles.mr - 1) / tiles.mr * tiles.mr * k * batch * 4
    }

    /// Whether a call of m×k with `batch` items would use `packed` as it is, without reading A: its
    /// tiles are still the shape class's and no timing search of the class is pending. Only then
    /// may the caller leave A itself stale.
    public func uses(_ packed: PackedA, m: Int, k: Int, batch: Int) -> Bool {
        let shape = Self.packedShape(m: m, k: k)
        return packed.matches(m: m, k: k, batch: batch, tiles: profile.tiles(for: shape)) && !(tuner?.pending.contains(shape) ?? false)
    }

    /// One GEMM call's arguments.
    struct Call {
        var m, n, k, batch: Int
        var a, b, c: GEMMOperand
        var alpha: Float
        var accumulate, sum: Bool
        var reusePackedA = false
        /// A's panels packed beforehand; used when they match the call and its tiles, else A is packed as usual.
        var packedA: PackedA?
        var flops: Double { 2 * Double(m) * Double(n) * Double(k) * Double(max(batch, 1)) }
    }

    func run(_ call: Call, with kernels: Kernels) throws {
        switch kernels.tiles.variant {
        case .cpu: try runPacked(call, kernels)
        case .gpu: try runTiled(call, kernels)
        }
    }

    // MARK: - CPU: packed panels + register-blocked micro-kernel

    private func runPacked(_ call: Call, _ kernels: Kernels) throws {
        let (m, n, k, batch, a, b, c) = (call.m, call.n, call.k, call.batch, call.a, call.b, call.c)
        let (alpha, accumulate, sum) = (call.alpha, call.accumulate, call.sum)
        let packA = kernels.packA!, packB = kernels.packB!, micro = kernels.micro!
        let mr = kernels.tiles.mr, nr = kernels.tiles.nr
        let mBlocks = (m + mr - 1) / mr, nBlocks = (n + nr - 1) / nr
        let aPer = mBlocks * mr * k, bPer = nBlocks * nr * k   // packed floats per item
        // An operand shared by all items (batchStride 0) is packed once, unless items are summed.
        let aShared = !sum && a.batchStride == 0 && batch > 1
        let bShared = !sum && b.batchStride == 0 && batch > 1
        let bInPlace = readsBInPlaceWherePossible && Self.readsBInPlace(call, nr: nr)
        // In place, a partial last panel is packed on its own (the micro-kernel's tailBlock).
        let tailBlock = bInPlace && n % nr != 0 ? nBlocks - 1 : -1
        let tailPer = tailBlock >= 0 ? nr * k : 0
        let perItem = (aShared ? 0 : m * k) + (bShared ? 0 : bInPlace ? tailPer : n * k)   // unpadded: see chunkBudgetFloats
        let chunk = max(1, min(max(batch, 1), perItem == 0 ? batch : chunkBudgetFloats / perItem))
        let aFloats = aShared ? aPer : aPer * chunk
        let bFloats = bInPlace ? (bShared ? tailPer : tailPer * chunk) : bShared ? bPer : bPer * chunk
        try Self.check32("packed panels", max(aFloats, bFloats))
        let previousA = self.scratchA
        let scratchA = try scratch(&self.scratchA, floats: aFloats)
        if scratchA !== previousA { lastPackedA = nil }
        let scratchB = try scratch(&self.scratchB, floats: bFloats)
        // Only one item's A packed at offset 0 can be reused by a later call.
        let aKey = !sum && (aShared || batch == 1)
            ? PackedAKey(buffer: ObjectIdentifier(a.buffer), offset: a.offset, rowStride: a.rowStride, columnStride: a.columnStride,
                      m: m, k: k, tiles: kernels.tiles)
            : nil

        func pack(_ kernel: CLKernel, _ src: GEMMOperand, rStride: Int, pStride: Int, start: Int, items: Int,
                  extent: Int, blocks: Int, width: Int, scratch: CLBuffer, chunkItems: Int) throws {
            try packPanels(kernel, src, rStride: rStride, pStride: pStride, start: start, items: items, extent: extent,
                           k: k, blocks: blocks, width: width, into: scratch, sum: sum, chunkItems: chunkItems)
        }
        // Panels packed beforehand serve every chunk in place of scratchA (at the chunk's first item).
        let prepacked = call.packedA.flatMap { p in
            p.matches(m: m, k: k, batch: batch, tiles: kernels.tiles) && !sum && !aShared ? p.buffer : nil
        }

        if batch == 0 {  // sumOverBatch over no items: C = alpha*0 [+ C]
            try launchMicro(micro, mr: mr, nr: nr, scratchA, 0, 0, scratchB, 0, 0, k: 0, c: c, cOffset: c.offset, items: 1,
                            m: m, n: n, mBlocks: mBlocks, nBlocks: nBlocks, alpha: alpha, accumulate: accumulate)
            return
        }
        var start = 0
        while start < batch {
            let count = min(chunk, batch - start)
            let (pa, aOffset) = prepacked.map { ($0, start * aPer) } ?? (scratchA, 0)
            if prepacked == nil && (!aShared || start == 0) && !(call.reusePackedA && aKey != nil && aKey == lastPackedA) {
                try pack(packA, a, rStride: a.rowStride, pStride: a.columnStride,
                         start: start, items: aShared ? 1 : count, extent: m,
                         blocks: mBlocks, width: mr, scratch: scratchA, chunkItems: count)
                lastPackedA = aKey
            }
            if !bInPlace && (!bShared || start == 0) {
                try pack(packB, b, rStride: b.columnStride, pStride: b.rowStride,
                         start: start, items: bShared ? 1 : count, extent: n,
                         blocks: nBlocks, width: nr, scratch: scratchB, chunkItems: count)
            }
            if tailBlock >= 0 && (!bShared || start == 0) {
                var last = b
                last.offset += tailBlock * nr * b.columnStride
                try pack(packB, last, rStride: b.columnStride, pStride: b.rowStride,
                         start: start, items: bShared ? 1 : count, extent: n - tailBlock * nr,
                         blocks: 1, width: nr, scratch: scratchB, chunkItems: count)
            }
            if sum {
                try launchMicro(micro, mr: mr, nr: nr, scratchA, 0, count * k * mr, scratchB, 0, count * k * nr, k: count * k,
                                c: c, cOffset: c.offset, items: 1, m: m, n: n, mBlocks: mBlocks, nBlocks: nBlocks,
                                alpha: alpha, accumulate: accumulate || start > 0)
            } else if bInPlace {
                try launchMicro(micro, mr: mr, nr: nr, pa, aShared ? 0 : aPer, k * mr, aOffset: aOffset,
                                b.buffer, b.batchStride, nr, bOffset: b.offset + start * b.batchStride, bRow: b.rowStride,
                                tail: (scratchB, bShared ? 0 : tailPer, tailBlock), k: k, c: c, cOffset: c.offset + start * c.batchStride, items: count,
                                m: m, n: n, mBlocks: mBlocks, nBlocks: nBlocks, alpha: alpha, accumulate: accumulate)
            } else {
                try launchMicro(micro, mr: mr, nr: nr, pa, aShared ? 0 : aPer, k * mr, aOffset: aOffset, scratchB, bShared ? 0 : bPer, k * nr,
                                k: k, c: c, cOffset: c.offset + start * c.batchStride, items: count,
                                m: m, n: n, mBlocks: mBlocks, nBlocks: nBlocks, alpha: alpha, accumulate: accumulate)
            }
            start += count
        }
    }

    /// Packs items start ..< start + items of `src` (A: rStride = rowStride; B: its transpose) into
    /// zero-padded panels of `width` in `scratch`: each item its own set, or with `sum` the
    /// `chunkItems` items end to end along k.
    private func packPanels(_ kernel: CLKernel, _ src: GEMMOperand, rStride: Int, pStride: Int, start: Int, items: Int,
                            extent: Int, k: Int, blocks: Int, width: Int, into scratch: CLBuffer, sum: Bool, chunkItems: Int) throws {
        if k == 0 { return }
        let kl = sum ? chunkItems * k : k
        let dstItem = sum ? k * width : blocks * width * k
        let (panelsPer, pPer) = Self.packSplit(blocks: blocks, width: width, k: k, items: items, rowsContiguous: rStride == 1)
        try kernel.setArguments([
            .buffer(src.buffer), .int(src.offset + start * src.batchStride), .int(src.batchStride),
            .int(rStride), .int(pStride), .int(extent), .int(k), .int(blocks), .int(panelsPer), .int(pPer),
            .buffer(scratch), .int(dstItem), .int(kl * width),
        ])
        try launch(kernel, global: [(blocks + panelsPer - 1) / panelsPer, (k + pPer - 1) / pPer, items], local: [1, 1, 1])
    }

    /// Work per pack work-item: a few thousand floats (PoCL's per-work-group cost), split so that
    /// reads run along the source's contiguous direction, with enough work-items for both cores.
    static func packSplit(blocks: Int, width: Int, k: Int, items: Int, rowsContiguous: Bool) -> (Int, Int) {
        var panelsPer: Int, pPer: Int
        if rowsContiguous {  // k outer, whole rows of panels inner
            panelsPer = blocks
            pPer = max(1, min(k, packFloatsPerItem / (blocks * width)))
        } else if width * k >= packFloatsPerItem {  // one panel, k in multiples of 8 (register transpose)
            panelsPer = 1
            pPer = min(k, max(8, packFloatsPerItem / width / 8 * 8))
        } else {
            panelsPer = max(1, min(blocks, packFloatsPerItem / (width * k)))
            pPer = k
        }
        func count() -> Int { ((blocks + panelsPer - 1) / panelsPer) * ((k + pPer - 1) / pPer) * items }
        while count() < minWorkItems {
            if rowsContiguous && pPer > 1 { pPer = (pPer + 1) / 2 }
            else if panelsPer > 1 { panelsPer = (panelsPer + 1) / 2 }
            else if !rowsContiguous && pPer > 8 { pPer = max(8, (pPer / 2 + 7) / 8 * 8) }
            else { break }
        }
        return (panelsPer, pPer)
    }

    /// The row stride to give a row-major B of n columns, and C, so that the CPU path reads all of B in
    /// place (`readsBInPlace`, with no partial last panel to pack): n rounded up to whole panels of the
    /// shape class's tiles (and a panel more where that is a multiple of 4 KiB), if that adds at most
    /// an eighth to the columns; else n. The caller fills B's extra columns with zeros and ignores C's,
    /// and calls `run` with this as n. (im2col's columns, a chunk of images side by side: at 8×8 a
    /// chunk of 64 images is 4096 columns, a multiple of 4 KiB, and no whole number of 48-wide panels.)
    public func inPlaceWidth(m: Int, n: Int, k: Int) -> Int {
        let tiles = profile.tiles(for: GEMMShapeClass(m: m, n: n, k: k, sumOverBatch: false))
        guard tiles.variant == .cpu, readsBInPlaceWherePossible, n > 0 else { return n }
        var width = (n + tiles.nr - 1) / tiles.nr * tiles.nr
        if Self.rowsShareCacheSets(width) { width += tiles.nr }
        return width - n <= n / 8 ? width : n
    }

    /// Whether the micro-kernel reads B where it lies instead of from packed panels: its rows
    /// contiguous, at least one whole panel (a partial last one is packed alone), items not summed
    /// along k. Not when the row stride is a multiple of 4 KiB: every row of a panel would fall in the
    /// same L1 cache set.
    static func readsBInPlace(_ call: Call, nr: Int) -> Bool {
        !call.sum && call.b.columnStride == 1 && call.n >= nr && !rowsShareCacheSets(call.b.rowStride)
    }

    /// Whether rows this many floats apart fall in the same L1 cache sets (a multiple of 4 KiB).
    static func rowsShareCacheSets(_ rowStride: Int) -> Bool { rowStride % 1024 == 0 }

    private func launchMicro(_ micro: CLKernel, mr: Int, nr: Int, _ pa: CLBuffer, _ aItem: Int, _ aPanel: Int, aOffset: Int = 0,
                             _ pb: CLBuffer, _ bItem: Int, _ bPanel: Int, bOffset: Int = 0, bRow: Int? = nil,
                             tail: (buffer: CLBuffer, item: Int, block: Int)? = nil, k: Int,
                             c: GEMMOperand, cOffset: Int, items: Int, m: Int, n: Int,
                             mBlocks: Int, nBlocks: Int, alpha: Float, accumulate: Bool) throws {
        // Several n-blocks per work-item when k is short (PoCL's per-work-group cost), but keep
        // enough work-items for both cores.
        var nbPer = max(1, min(nBlocks, Self.microFMAsPerItem / (mr * nr * max(k, 1))))
        while nbPer > 1 && mBlocks * ((nBlocks + nbPer - 1) / nbPer) * items < Self.minWorkItems {
            nbPer = (nbPer + 1) / 2
        }
        try micro.setArguments([
            .buffer(pa), .int(aOffset), .int(aItem), .int(aPanel),
            .buffer(pb), .int(bOffset), .int(bItem), .int(bPanel), .int(bRow ?? nr),
            .buffer(tail?.buffer ?? pb), .int(tail?.item ?? 0), .int(tail?.block ?? -1),
            .int(k),
            .buffer(c.buffer), .int(cOffset), .int(c.batchStride), .int(c.rowStride), .int(c.columnStride),
            .int(m), .int(n), .float(alpha), .int(accumulate ? 1 : 0), .int(nBlocks), .int(nbPer),
        ])
        try launch(micro, global: [mBlocks, (nBlocks + nbPer - 1) / nbPer, items], local: [1, 1, 1])
    }

    private func scratch(_ slot: inout CLBuffer?, floats: Int) throws -> CLBuffer {
        let bytes = max(floats, 1) * 4
        if let buffer = slot, buffer.bytes >= bytes { return buffer }
        slot = nil  // release the old one first
        let buffer = try context.makeBuffer(bytes: bytes + bytes / 4)
        slot = buffer
        return buffer
    }

    // MARK: - GPU: local-memory tiles

    private func runTiled(_ call: Call, _ kernels: Kernels) throws {
        let (m, n, k, batch, a, b, c) = (call.m, call.n, call.k, call.batch, call.a, call.b, call.c)
        let (alpha, accumulate, sum) = (call.alpha, call.accumulate, call.sum)
        let kernel = kernels.tiled!
        let tileM = kernels.tiles.tm, tileN = kernels.tiles.tn
        let groupsN = (n + tileN - 1) / tileN, groupsM = (m + tileM - 1) / tileM
        // sumOverBatch with few output tiles: split the items into slices that write partial sums
        // (a GPU needs a few hundred work-groups), then add them up.
        var per = 1, z = batch  // items per work-group slice, slices
        if sum {
            let slices = max(1, min(batch, Self.gpuGroups / (groupsN * groupsM)))
            per = max(1, (batch + slices - 1) / slices)
            z = max(1, (batch + per - 1) / per)
        }
        var out = c, outAlpha = alpha, outAccumulate = accumulate
        if sum && z > 1 {
            try Self.check32("partial sums", z * m * n)
            lastPackedA = nil
            let partial = try scratch(&scratchA, floats: z * m * n)
            out = GEMMOperand(buffer: partial, batchStride: m * n, rowStride: n, columnStride: 1)
            outAlpha = 1; outAccumulate = false
        } else if sum {
            out.batchStride = 0
        }
        try kernel.setArguments([
            .buffer(a.buffer), .int(a.offset), .int(a.batchStride), .int(a.rowStride), .int(a.columnStride),
            .buffer(b.buffer), .int(b.offset), .int(b.batchStride), .int(b.rowStride), .int(b.columnStride),
            .buffer(out.buffer), .int(out.offset), .int(out.batchStride), .int(out.rowStride), .int(out.columnStride),
            .int(m), .int(n), .int(k), .int(batch), .int(per), .float(outAlpha), .int(outAccumulate ? 1 : 0),
        ])
        try launch(kernel, global: [groupsN * 16, groupsM * 16, z], local: [16, 16, 1])
        if sum && z > 1 {
            let reduce = kernels.reduce!
            try reduce.setArguments([
                .buffer(out.buffer), .int(z), .int(m), .int(n),
                .buffer(c.buffer), .int(c.offset), .int(c.rowStride), .int(c.columnStride),
                .float(alpha), .int(accumulate ? 1 : 0),
            ])
            try launch(reduce, global: [(n + 15) / 16 * 16, (m + 15) / 16 * 16], local: [16, 16])
        }
    }

    // MARK: - Checks

    /// Every element the call touches must lie inside the buffer, with 32-bit kernel indices.
    private static func validate(_ name: String, _ op: GEMMOperand, rows: Int, cols: Int, items: Int) throws {
        if rows == 0 || cols == 0 || items == 0 { return }
        var lo = op.offset, hi = op.offset
        for (count, stride) in [(items, op.batchStride), (rows, op.rowStride), (cols, op.columnStride)] {
            let span = (count - 1) * stride
            if span < 0 { lo += span } else { hi += span }
        }
        let capacity = op.buffer.bytes / 4
        guard lo >= 0, hi < capacity else {
            throw GEMMError(description: "GEMM operand \(name) reaches floats \(lo)...\(hi) of a buffer of \(capacity)")
        }
        try check32("operand \(name)", hi + 1)
    }

    private static func check32(_ what: String, _ floats: Int) throws {
        guard floats <= Int(Int32.max) else {
            throw GEMMError(description: "GEMM \(what): \(floats) floats exceed 32-bit indexing")
        }
    }
}
