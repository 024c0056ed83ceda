import DDPMCore
import Foundation

/// Device memory of a Trainer or Sampler, measured before anything is allocated: the object is
/// built against a MeasuringBackend (symbolic shapes, no buffers), exactly at the batch asked for.
/// A straight line through two measured batches (1 and 16) guides the search for a batch that fits,
/// and the batch it suggests is measured exactly too.
public struct MemoryNeed {
    public var fixedBytes: Int
    public var perImageBytes: Int
    public var fixedLargest: Int
    public var perImageLargest: Int
    /// Builds the object at a batch against a backend (a MeasuringBackend here).
    let build: (Backend, Int) throws -> Void

    static let slopeBatch = 16

    /// The line's estimate (used only to search for a batch that fits).
    public func bytes(batch: Int) -> Int {
        fixedBytes.addingClamped(perImageBytes.multipliedClamped(batch - 1) / (Self.slopeBatch - 1))
    }
    public func largest(batch: Int) -> Int {
        fixedLargest.addingClamped(perImageLargest.multipliedClamped(batch - 1) / (Self.slopeBatch - 1))
    }

    /// Bytes in all and the largest buffer at exactly this batch.
    public func measured(batch: Int) throws -> (total: Int, largest: Int) {
        let backend = MeasuringBackend()
        try build(backend, batch)
        return (backend.totalBytes, backend.largestBufferBytes)
    }

    /// The largest batch that fits `limits` (0 when not even one image fits).
    public func largestBatch(fitting limits: MemoryLimits) -> Int {
        var low = 0, high = 1
        while high < 1 << 40 && fits(batch: high, limits) { low = high; high *= 2 }
        while high - low > 1 {
            let mid = (low + high) / 2
            if fits(batch: mid, limits) { low = mid } else { high = mid }
        }
        return low
    }

    func fits(batch: Int, _ limits: MemoryLimits) -> Bool {
        bytes(batch: batch) <= limits.totalBytes && largest(batch: batch) <= limits.largestBufferBytes
    }

    /// The largest batch that fits, measured: the line's answer, shrunk until the exact need fits.
    public func fittingBatch(_ limits: MemoryLimits) throws -> Int {
        var batch = largestBatch(fitting: limits)
        for _ in 0..<40 where batch >= 1 {
            let m = try measured(batch: batch)
            if m.total <= limits.totalBytes && m.largest <= limits.largestBufferBytes { return batch }
            batch = batch * 9 / 10
        }
        return 0
    }

    static func measure(_ build: @escaping (Backend, Int) throws -> Void) throws -> MemoryNeed {
        let one = MeasuringBackend(), many = MeasuringBackend()
        try build(one, 1)
        try build(many, slopeBatch)
        return MemoryNeed(fixedBytes: one.totalBytes, perImageBytes: max(0, many.totalBytes - one.totalBytes),
                          fixedLargest: one.largestBufferBytes, perImageLargest: max(0, many.largestBufferBytes - one.largestBufferBytes),
                          build: build)
    }

    /// What a Trainer for `options` allocates on the device.
    public static func training(_ options: TrainingOptions) throws -> MemoryNeed {
        try measure { backend, batch in
            var o = options
            o.batch = batch
            _ = try Trainer(backend: backend, options: o)
        }
    }

    /// What a Sampler for `config` (with `weights`) allocates on the device.
    public static func sampling(_ config: UNetConfig, weights: Weights, settings: SchedulerSettings,
                                conditioning: ClassConditioning? = nil) throws -> MemoryNeed {
        try measure { backend, batch in
            _ = try Sampler(backend: backend, config: config, weights: weights, settings: settings, batch: batch, conditioning: conditioning)
        }
    }

    /// Refuses a batch that does not fit the backend's memory, naming `flag`, the memory needed and
    /// a batch that fits. Backends that do not know their limits are not checked.
    public func check(batch: Int, flag: String, on backend: Backend, what: String, advice: String = "") throws {
        guard let limits = backend.memoryLimits else { return }
        // Huge requests are refused on the line's estimate (it errs by kilobytes, not terabytes);
        // the rest are measured exactly at the batch asked for.
        let estimate = (total: bytes(batch: batch), largest: largest(batch: batch))
        let need = estimate.total > 2 * limits.totalBytes ? estimate : try measured(batch: batch)
        guard need.total > limits.totalBytes || need.largest > limits.largestBufferBytes else { return }
        let fitting = try fittingBatch(limits)
        let suggestion = fitting >= 1
            ? "\(flag) \(fitting) fits\(advice)"
            : "even one image does not fit: use a smaller model (fewer or narrower blocks, a smaller sample_size)"
        throw UserError("""
            \(what) with \(flag) \(batch) needs about \(formatBytes(need.total)) of memory on \(backend.name) \
            (largest buffer \(formatBytes(need.largest))), but it has \(formatBytes(limits.totalBytes)) \
            (largest buffer \(formatBytes(limits.largestBufferBytes))). \(suggestion).
            """, exitCode: 2)
    }

    /// Runs `body` (which allocates); a DeviceMemoryError becomes a message naming the flag and half
    /// the batch that should have fitted (the driver gave less than it reports).
    public func allocating<T>(batch: Int, flag: String, on backend: Backend, what: String, advice: String = "",
                              _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as DeviceMemoryError {
            let need = (try? measured(batch: batch).total) ?? bytes(batch: batch)
            let fitting = min(try backend.memoryLimits.map(fittingBatch) ?? 0, batch - 1) / 2
            throw UserError("""
                \(what) with \(flag) \(batch) needs about \(formatBytes(need)) on \(backend.name), and the \
                device refused: \(error.description). \(fitting >= 1 ? "Try \(flag) \(fitting)\(advice)." : "Use a smaller model.")
                """, exitCode: 2)
        }
    }
}

extension Int {
    func addingClamped(_ other: Int) -> Int { let (r, o) = addingReportingOverflow(other); return o ? .max : r }
    func multipliedClamped(_ other: Int) -> Int { let (r, o) = multipliedReportingOverflow(by: other); return o ? .max : r }
}
