import DDPMCore
import Foundation

/// A training run split over the ranks of a GradientReducer (issue 19). Rank r of K takes images
/// [r·B/K, (r+1)·B/K) of every global batch (or micro-batch) of B, draws their noise and timesteps
/// with those global image indices, and between the backward pass and the optimizer every rank's
/// gradients are averaged, so all ranks take the same step. Rank 0 writes every file.
public struct DataParallel {
    public let reducer: GradientReducer
    public init(reducer: GradientReducer) { self.reducer = reducer }

    public var rank: Int { reducer.rank }
    public var size: Int { reducer.size }
    /// The rank that writes logs, samples, FID and checkpoints, and prints.
    public var isRoot: Bool { reducer.rank == 0 }

    /// The images of a global batch of `batch` this rank takes.
    public func shard(ofBatch batch: Int) -> Range<Int> {
        let n = batch / size
        return rank * n ..< (rank + 1) * n
    }

    /// Every rank takes the same number of images: the global batch must split evenly.
    public func check(batch: Int) throws {
        guard batch % size == 0 else {
            let lower = batch / size * size
            throw UserError("--batch \(batch) does not split evenly over \(size) ranks; give a multiple of \(size) (e.g. \(lower > 0 ? lower : size) or \(lower + size)).")
        }
    }

    /// The step's flat gradient buffer (`count` floats, zero padding included), read to one host
    /// buffer with the loss after it, summed over the ranks and divided by K, then written back: each
    /// rank's loss and gradients are means over its shard, so their mean is the mean over the global
    /// batch. Dividing the sum (one rounding) rather than scaling by 1/K keeps this exact up to the
    /// sum's own rounding; for K = 2 the sum is one add.
    func average(_ gradients: DeviceBuffer, count: Int, loss: DeviceBuffer, on backend: Backend) throws {
        var flat = try backend.read(gradients, count: count)
        flat.append(try backend.read(loss, count: 1)[0])
        try flat.withUnsafeMutableBufferPointer { try reducer.sum($0) }
        let k = Float(size)
        for i in flat.indices { flat[i] /= k }
        try backend.write(Array(flat[..<count]), to: gradients)
        try backend.write([flat[count]], to: loss)
    }

    /// True on every rank when it is true on any (an interrupt that reached one rank stops all of
    /// them at the same step).
    public func anyRank(_ flag: Bool) throws -> Bool {
        var values = [flag ? 1.0 : 0.0]
        try reducer.reduce(&values, .max)
        return values[0] > 0
    }

    /// Refuses to train when the ranks would start from different states (other flags, another
    /// checkpoint, another build): `fingerprint` must be the same on every rank.
    public func checkAgreement(_ fingerprint: UInt64, on what: String) throws {
        let halves = [Double(fingerprint >> 32), Double(fingerprint & 0xFFFF_FFFF)]
        var low = halves, high = halves
        try reducer.reduce(&low, .min)
        try reducer.reduce(&high, .max)
        guard low == high else {
            throw UserError("the \(size) ranks disagree on \(what): every rank must be started with the same flags and see the same checkpoint (a --resume folder every rank can read).")
        }
    }
}

/// FNV-1a over bytes: a fingerprint for comparing states across ranks (not for security).
public struct Fingerprint {
    public private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325
    public init() {}
    public mutating func add<S: Sequence>(_ bytes: S) where S.Element == UInt8 {
        for b in bytes { value = (value ^ UInt64(b)) &* 0x100_0000_01B3 }
    }
    /// Floats word by word (their bit patterns).
    public mutating func add(_ floats: [Float]) {
        for f in floats { value = (value ^ UInt64(f.bitPattern)) &* 0x100_0000_01B3 }
    }
}

extension Checkpoint {
    /// A fingerprint of the options, the step and every tensor (by sorted name), for checking that
    /// the ranks of a data-parallel run start from the same state.
    public var fingerprint: UInt64 {
        var f = Fingerprint()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        f.add((try? encoder.encode(options)) ?? Data())
        f.add(String(step).utf8)
        for weights in [model, ema, adamM, adamV] {
            for name in weights.values.keys.sorted() {
                f.add(name.utf8)
                f.add(weights.values[name]!)
            }
        }
        return f.value
    }
}
