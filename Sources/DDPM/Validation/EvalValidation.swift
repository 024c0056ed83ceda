import DDPMCore
import Foundation

extension VariationalBound {
    /// `--stride S` must leave at least one KL term: S < T (t = 0 is the decoder term).
    public func checkStride(_ stride: Int) throws {
        let total = settings.schedule.timesteps
        guard stride >= 1 && stride < total else {
            throw UserError("--stride \(stride): the model has \(total) timesteps, so it takes 1…\(total - 1) (with \(stride) no KL term would be evaluated and the bound would read 0).")
        }
    }
}

extension MemoryNeed {
    /// What a UNetNoisePredictor (eval) allocates on the device.
    public static func evaluation(_ config: UNetConfig, weights: Weights, settings: SchedulerSettings) throws -> MemoryNeed {
        try measure { backend, batch in
            _ = try UNetNoisePredictor(backend: backend, config: config, weights: weights, settings: settings, batch: batch,
                                       labels: config.isClassConditional ? [Int](repeating: 0, count: batch) : nil)
        }
    }
}
