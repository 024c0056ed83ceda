import DDPMCore
import Foundation

/// Times training steps and sampling network evaluations of one model on random data, for
/// `ddpm-cl bench` and `ddpm-cl tune`. No dataset needed; nothing is written.
public final class SpeedProbe {
    public let trainer: Trainer
    public let options: TrainingOptions
    private let batchValues: [Float]
    /// Class 0 for every image of a class-conditional model.
    private let labelValues: [Float]?

    /// `batchFlag` names the option that set `batch` in errors (a batch that cannot fit is refused
    /// before anything is allocated, with a batch that fits).
    public init(backend: Backend, model: UNetConfig, batch: Int, batchFlag: String = "--batch") throws {
        guard batch >= 1 else { throw UserError("\(batchFlag) \(batch): it takes a whole number of images ≥ 1.") }
        var options = TrainingOptions(model: model)
        options.batch = batch
        self.options = options
        let need = try MemoryNeed.training(options)
        try need.check(batch: batch, flag: batchFlag, on: backend, what: "training")
        trainer = try need.allocating(batch: batch, flag: batchFlag, on: backend, what: "training") {
            try Trainer(backend: backend, options: options)
        }
        var random = SplitMix64(seed: 1)
        labelValues = model.isClassConditional ? [Float](repeating: 0, count: batch) : nil
        batchValues = (0..<(batch * model.inChannels * model.sampleSize * model.sampleSize)).map { _ in
            Float(random.uniform() * 2 - 1)
        }
    }

    /// One untimed step: builds kernels, makes machine code, runs any pending tuning searches.
    public func warmUp() throws {
        try trainer.trainStep(batch: batchValues, labels: labelValues)
        _ = try trainer.readLossAndGradientNorm()
    }

    /// Seconds per training step: the median of `steps` steps, each waited for, as the PyTorch
    /// reference (scripts/bench-pytorch.py) takes the median of its steps. On a shared machine a mean
    /// follows the worst interruption; the median compares like with like.
    public func secondsPerTrainingStep(steps: Int) throws -> Double {
        guard steps >= 1 else { throw UserError("--steps \(steps): time at least 1 training step.") }
        var seconds: [Double] = []
        for _ in 0..<steps {
            let start = Date()
            try trainer.trainStep(batch: batchValues, labels: labelValues)
            _ = try trainer.readLossAndGradientNorm()
            seconds.append(Date().timeIntervalSince(start))
        }
        seconds.sort()
        return steps % 2 == 1 ? seconds[steps / 2] : (seconds[steps / 2 - 1] + seconds[steps / 2]) / 2
    }

    /// Seconds per network evaluation of `batch` images in a DDIM sampling run (after one untimed run).
    /// `beforeTiming` runs after the warm-up evaluation, just before the timed ones (`bench --profile`
    /// starts profiling there).
    public func secondsPerSamplingEvaluation(batch: Int, evaluations: Int = 5, beforeTiming: () -> Void = {}) throws -> Double {
        guard batch >= 1 else { throw UserError("--device-batch \(batch): it takes a whole number of images ≥ 1 (0 skips sampling).") }
        let sampler = try Sampler.fitting(backend: trainer.backend, config: options.model, weights: try trainer.emaWeights(),
                                          settings: options.schedulerSettings, batch: batch, flag: "--device-batch")
        _ = try sampler.sample(count: batch, seed: 0, sampler: .ddim(eta: 0), steps: 1)
        beforeTiming()
        let start = Date()
        _ = try sampler.sample(count: batch, seed: 0, sampler: .ddim(eta: 0), steps: evaluations)
        return Date().timeIntervalSince(start) / Double(evaluations)
    }
}
