import DDPMCore
import Foundation

/// Times training steps and sampling network evaluations of one model on random data, for
/// `ddpm-cl bench` and `ddpm-cl tune`. No dataset needed; nothing is written.
public final class SpeedProbe {
    public let trainer: Trainer
    public let options: TrainingOptions
    private let batchValues: [Float]

    public init(backend: Backend, model: UNetConfig, batch: Int) throws {
        var options = TrainingOptions(model: model)
        options.batch = batch
        self.options = options
        trainer = try Trainer(backend: backend, options: options)
        var random = SplitMix64(seed: 1)
        batchValues = (0..<(batch * model.inChannels * model.sampleSize * model.sampleSize)).map { _ in
            Float(random.uniform() * 2 - 1)
        }
    }

    /// One untimed step: builds kernels, makes machine code, runs any pending tuning searches.
    public func warmUp() throws {
        try trainer.trainStep(batch: batchValues)
        _ = try trainer.readLossAndGradientNorm()
    }

    /// Seconds per training step over `steps` steps (one host sync at the end).
    public func secondsPerTrainingStep(steps: Int) throws -> Double {
        let start = Date()
        for _ in 0..<steps { try trainer.trainStep(batch: batchValues) }
        _ = try trainer.readLossAndGradientNorm()
        return Date().timeIntervalSince(start) / Double(max(steps, 1))
    }

    /// Seconds per network evaluation of `batch` images in a DDIM sampling run (after one untimed run).
    public func secondsPerSamplingEvaluation(batch: Int, evaluations: Int = 5) throws -> Double {
        let sampler = try Sampler(backend: trainer.backend, config: options.model, weights: try trainer.emaWeights(),
                                  settings: options.schedulerSettings, batch: batch)
        _ = try sampler.sample(count: batch, seed: 0, sampler: .ddim(eta: 0), steps: 1)
        let start = Date()
        _ = try sampler.sample(count: batch, seed: 0, sampler: .ddim(eta: 0), steps: evaluations)
        return Date().timeIntervalSince(start) / Double(evaluations)
    }
}
