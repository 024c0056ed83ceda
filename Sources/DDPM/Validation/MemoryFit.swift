import DDPMCore
import Foundation

/// Device memory of a Trainer or Sampler, measured before anything is allocated: the object is built
/// against a MeasuringBackend at batch 1 and 2, and the need at batch b is the straight line through
/// them (activations grow with the batch; weights, moments and tables do not).
public struct MemoryNeed: Equatable {
    public var fixedBytes: Int
    public var perImageBytes: Int
    public var fixedLargest: Int
    public var perImageLargest: Int

    public func bytes(batch: Int) -> Int { fixedBytes.addingClamped(perImageBytes.multipliedClamped(batch - 1)) }
    public func largest(batch: Int) -> Int { fixedLargest.addingClamped(perImageLargest.multipliedClamped(batch - 1)) }

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

    static func measure(_ build: (Backend, Int) throws -> Void) throws -> MemoryNeed {
        let one = MeasuringBackend(), two = MeasuringBackend()
        try build(one, 1)
        try build(two, 2)
        return MemoryNeed(fixedBytes: one.totalBytes, perImageBytes: max(0, two.totalBytes - one.totalBytes),
                          fixedLargest: one.largestBufferBytes, perImageLargest: max(0, two.largestBufferBytes - one.largestBufferBytes))
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
    public static func sampling(_ config: UNetConfig, weights: Weights, settings: SchedulerSettings) throws -> MemoryNeed {
        try measure { backend, batch in
            _ = try Sampler(backend: backend, config: config, weights: weights, settings: settings, batch: batch)
        }
    }

    /// Refuses a batch that does not fit the backend's memory, naming `flag`, the memory needed and
    /// a batch that fits. Backends that do not know their limits are not checked.
    public func check(batch: Int, flag: String, on backend: Backend, what: String, advice: String = "") throws {
        guard let limits = backend.memoryLimits, !fits(batch: batch, limits) else { return }
        let fitting = largestBatch(fitting: limits)
        let suggestion = fitting >= 1
            ? "\(flag) \(fitting) fits\(advice)"
            : "even one image does not fit: use a smaller model (fewer or narrower blocks, a smaller sample_size)"
        throw UserError("""
            \(what) with \(flag) \(batch) needs about \(formatBytes(bytes(batch: batch))) of memory on \(backend.name) \
            (largest buffer \(formatBytes(largest(batch: batch)))), but it has \(formatBytes(limits.totalBytes)) \
            (largest buffer \(formatBytes(limits.largestBufferBytes))). \(suggestion).
            """, exitCode: 2)
    }

    /// Runs `body` (which allocates); a DeviceMemoryError becomes the same message as `check`.
    public func allocating<T>(batch: Int, flag: String, on backend: Backend, what: String, advice: String = "",
                              _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as DeviceMemoryError {
            let limits = backend.memoryLimits
            let fitting = limits.map { largestBatch(fitting: MemoryLimits(totalBytes: $0.totalBytes / 2, largestBufferBytes: $0.largestBufferBytes)) } ?? 0
            throw UserError("""
                \(what) with \(flag) \(batch) needs about \(formatBytes(bytes(batch: batch))) on \(backend.name), and the \
                device refused: \(error.description). \(fitting >= 1 ? "Try \(flag) \(fitting)\(advice)." : "Use a smaller model.")
                """, exitCode: 2)
        }
    }
}

extension Int {
    func addingClamped(_ other: Int) -> Int { let (r, o) = addingReportingOverflow(other); return o ? .max : r }
    func multipliedClamped(_ other: Int) -> Int { let (r, o) = multipliedReportingOverflow(by: other); return o ? .max : r }
}
