import DDPMCore
import Foundation

/// How long to train and what to write along the way.
public struct SessionSettings {
    /// Train until this step (total, counting resumed steps), or…
    public var steps: Int?
    /// …for this many minutes of wall-clock time.
    public var minutes: Double?
    public var logEvery = 10
    public var sampleEvery = 200
    public var checkpointEvery = 500
    public var sampleCount = 16
    public var sampleSteps = 20
    /// FID/KID every `fidEvery` steps (0: never) with this monitor (fid.csv, fid.png).
    public var fidEvery = 0
    public var fid: TrainingFID?
    public init() {}
}

/// How a session ended.
public enum SessionOutcome: Equatable {
    case finished(step: Int)
    case interrupted(step: Int)
}

/// The training loop around a Trainer: batches from a prefetch thread, the progress bar or log lines,
/// log.csv and loss.png, sample grids from fixed noise, checkpoints and the diffusers pipeline,
/// Ctrl-C and NaN handling. Every file is written to a temporary name and renamed.
/// Data parallel (the trainer's `parallel`): every rank trains on its shard of each batch; rank 0
/// alone prints and writes files; stopping (time, Ctrl-C) is decided by all ranks together.
public final class TrainingSession {
    let trainer: Trainer
    let data: TrainingData
    let directory: RunDirectory
    let settings: SessionSettings
    let say: (String) -> Void
    let progressBar: ProgressBar?
    let parallel: DataParallel?
    /// Whether this process writes files and prints (rank 0, or the only process).
    var isRoot: Bool { parallel?.isRoot ?? true }
    /// The run's training seconds so far (the checkpoint's plus this session's wall-clock time, less
    /// the time FID evaluations took).
    var clock: () -> Double = { 0 }
    /// Seconds this session spent in FID evaluations. They do not count against --minutes or a
    /// time-driven cosine, so measuring a run does not change what it trains.
    var evaluationSeconds = 0.0
    /// The TensorBoard event file of this session (scalars at every log step, FID/KID, sample grids).
    var events: TensorBoardWriter?

    public init(trainer: Trainer, data: TrainingData, directory: RunDirectory, settings: SessionSettings,
                terminal: Bool, say: @escaping (String) -> Void) {
        parallel = trainer.parallel
        let root = trainer.parallel?.isRoot ?? true
        self.trainer = trainer; self.data = data; self.directory = directory; self.settings = settings
        self.say = root ? say : { _ in }
        progressBar = terminal && root ? ProgressBar() : nil
    }

    /// A stop condition every rank sees at the same step (each rank's own view of the clock or of a
    /// signal could differ by a step, and a rank that stops alone leaves the others waiting).
    func agreed(_ flag: Bool) throws -> Bool {
        guard let parallel else { return flag }
        return try parallel.anyRank(flag)
    }

    public func run() throws -> SessionOutcome {
        let options = trainer.options
        var log = TrainingLog(directory: directory, keepingUpTo: trainer.step)
        events = TensorBoardWriter(directory: directory.url)
        let start = Date()
        // The run's training time goes on from the checkpoint's (a time-driven cosine follows it).
        let priorSeconds = trainer.trainingSeconds
        let sessionSeconds = { [unowned self] in Date().timeIntervalSince(start) - self.evaluationSeconds }
        clock = { priorSeconds + sessionSeconds() }
        let firstStep = trainer.step + 1
        let k = options.accumulationSteps
        // The prefetcher counts micro-batches: step s uses micro-batches (s−1)·k + 1 … s·k.
        let prefetch = BatchPrefetcher(data: data, batch: options.batch, images: parallel?.shard(ofBatch: options.batch),
                                       firstStep: (firstStep - 1) * k + 1)
        defer { prefetch.stop() }
        var lastLog = (time: Date(), step: trainer.step)
        var smoothed: Float?
        let totalText = settings.steps.map { "\($0)" } ?? "\(Int(settings.minutes ?? 0)) min"

        if let parallel {
            try parallel.checkAgreement(try trainer.checkpoint().fingerprint, on: "the starting state (options, step, weights)")
        }

        func finished() throws -> Bool {
            if let steps = settings.steps, trainer.step >= steps { return true }
            // Rank 0's clock decides: it alone pauses for FID evaluations, which the others wait out.
            if let minutes = settings.minutes { return try agreed(isRoot && sessionSeconds() >= minutes * 60) }
            return false
        }

        while try !finished() {
            trainer.trainingSeconds = clock()
            let batches = (0..<k).map { prefetch.take(step: trainer.step * k + $0 + 1) }
            try trainer.trainStep(microBatches: batches.map { $0.images }, labels: data.labels == nil ? nil : batches.map { $0.labels! })
            let step = trainer.step
            let fidNow = settings.fidEvery > 0 && step % settings.fidEvery == 0 && settings.fid != nil
            let logNow = step % settings.logEvery == 0 || step == settings.steps || fidNow
            if logNow {
                let (loss, gradNorm) = try trainer.readLossAndGradientNorm()
                try checkFinite(loss: loss, gradientNorm: gradNorm, step: step)
                let now = Date()
                let ips = Double((step - lastLog.step) * options.batch * k) / max(now.timeIntervalSince(lastLog.time), 1e-9)
                lastLog = (now, step)
                smoothed = smoothed.map { 0.9 * $0 + 0.1 * loss } ?? loss
                if isRoot {
                    log.append(.init(step: step, loss: loss, lr: trainer.lastLearningRate, gradNorm: gradNorm, imagesPerSecond: ips))
                    events?.add(step: step, [.scalar(tag: "loss", value: loss), .scalar(tag: "lr", value: trainer.lastLearningRate),
                                             .scalar(tag: "grad_norm", value: gradNorm), .scalar(tag: "images_per_second", value: Float(ips))])
                }
                let elapsed = sessionSeconds()
                let eta: Double? = settings.steps.map { Double($0 - step) * elapsed / Double(step - firstStep + 1) }
                    ?? settings.minutes.map { max(0, $0 * 60 - elapsed) }
                if let bar = progressBar {
                    bar.show(step: step, total: settings.steps, loss: smoothed!, imagesPerSecond: ips, eta: eta)
                } else {
                    say(String(format: "step %d/%@  loss %.4f (smoothed %.4f)  grad norm %.3f  lr %.2e  %.1f img/s  ETA %@",
                               step, totalText, loss, smoothed!, gradNorm, trainer.lastLearningRate, ips, formatDuration(eta ?? 0)))
                }
            }
            if isRoot && settings.sampleEvery > 0 && step % settings.sampleEvery == 0 { try writeSamples() }
            if isRoot && fidNow {
                try measureFID(&log)
                lastLog.time = Date()   // the next img/s figure leaves the evaluation out
            }
            if settings.checkpointEvery > 0 && step % settings.checkpointEvery == 0 { try save(&log) }
            if try agreed(Interruption.requested) {
                progressBar?.finish()
                try save(&log)
                return .interrupted(step: step)
            }
        }
        progressBar?.finish()
        try save(&log)
        if isRoot {
            try writeSamples()
            try events?.flush()
        }
        return .finished(step: trainer.step)
    }

    /// Stops the run when the loss or the gradient norm is NaN or infinite; nothing is saved after
    /// that, so the checkpoint on disk stays the last good one.
    func checkFinite(loss: Float, gradientNorm: Float, step: Int) throws {
        guard !(loss.isFinite && gradientNorm.isFinite) else { return }
        let what = loss.isFinite ? "the gradient norm became \(gradientNorm)" : "the loss became \(loss)"
        throw UserError("""
            \(what) at step \(step) (learning rate \(trainer.lastLearningRate)). \
            Training stopped; the last good checkpoint is kept in \(directory.checkpoint.path). \
            Try a lower --lr, a longer --warmup, or --grad-clip 1.
            """)
    }

    /// Checkpoint, pipeline (EMA weights), log and plot — only when the last step and the weights
    /// are finite (the loss is read here even between log steps, one sync per checkpoint).
    func save(_ log: inout TrainingLog) throws {
        let (loss, gradNorm) = try trainer.readLossAndGradientNorm()
        try checkFinite(loss: loss, gradientNorm: gradNorm, step: trainer.step)
        trainer.trainingSeconds = clock()
        guard isRoot else { return }   // every rank holds the same weights; one writes them
        let checkpoint = try trainer.checkpoint()
        for (name, values) in checkpoint.model.values where !values.allSatisfy(\.isFinite) {
            throw UserError("the weight \(name) is not finite at step \(trainer.step); training stopped and the last good checkpoint is kept in \(directory.checkpoint.path). Try a lower --lr or --grad-clip 1.")
        }
        // The checkpoint goes last: it is the commit point. A kill before it leaves the previous
        // checkpoint, and resuming redoes the step and rewrites the pipeline and log identically.
        try directory.writePipeline(config: trainer.options.model, weights: checkpoint.ema, scheduler: trainer.options.schedulerSettings,
                                    classes: trainer.options.classLabels)
        try log.write()
        try events?.flush()
        try checkpoint.write(to: directory.checkpoint)
    }

    /// FID/KID of the EMA weights' samples against the reference (TrainingFID), logged and plotted.
    func measureFID(_ log: inout TrainingLog) throws {
        guard let fid = settings.fid else { return }
        let row = try fid.evaluate(step: trainer.step, trainingSeconds: clock(), backend: trainer.backend, config: trainer.options.model,
                                   weights: try trainer.emaWeights(), scheduler: trainer.options.schedulerSettings,
                                   conditioning: trainer.options.classLabels?.everyClass)
        try fid.write(to: directory)
        log.setFID(row.fid, kid: row.kid, step: row.step)
        evaluationSeconds += row.seconds
        events?.add(step: row.step, [.scalar(tag: "fid", value: Float(row.fid)), .scalar(tag: "kid", value: Float(row.kid))])
        progressBar?.finish()
        say(String(format: "step %d  FID %.3f  KID %.5f  (%d samples, %@, %.1f s)", row.step, row.fid, row.kid,
                   fid.samples, fid.solverDescription(trainer.options.schedulerSettings), row.seconds))
    }

    /// A grid of `sampleCount` images from the EMA weights with fixed noise (seed 0), in `sampleSteps`
    /// steps of `SchedulerSettings.fastSampler` (thresholded DPM-Solver++(2M)).
    func writeSamples() throws {
        let (schedule, kind) = trainer.options.schedulerSettings.fastSampler()
        let sampler = try Sampler(backend: trainer.backend, config: trainer.options.model, weights: try trainer.emaWeights(),
                                  settings: schedule, batch: settings.sampleCount,
                                  conditioning: trainer.options.classLabels?.everyClass)
        // A model with fewer timesteps than sampleSteps samples with all of them.
        let steps = min(settings.sampleSteps, trainer.options.timesteps)
        let images = try sampler.sample(count: settings.sampleCount, seed: 0, sampler: kind, steps: steps)
        let c = trainer.options.model
        let grid = SampledImages(values: images, count: settings.sampleCount, channels: c.inChannels, size: c.sampleSize).grid()
        let file = directory.samples.appendingPathComponent("step-\(trainer.step).png")
        try writePNG(grid, to: file)
        events?.add(step: trainer.step, [.image(tag: "samples", png: try Data(contentsOf: file), height: grid.height,
                                                width: grid.width, channels: grid.channels)])
    }
}

/// "1h02m", "3m12s", "45s"
public func formatDuration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    if s >= 3600 { return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) }
    if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
    return "\(s)s"
}

/// A one-line progress bar on a terminal: step/total, smoothed loss, img/s, ETA.
public final class ProgressBar {
    public init() {}
    public func show(step: Int, total: Int?, loss: Float?, imagesPerSecond: Double, eta: Double?) {
        let width = 24
        var bar = ""
        if let total {
            let filled = min(width, width * step / max(total, 1))
            bar = "[" + String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled) + "] "
        }
        let lossText = loss.map { String(format: "  loss %.4f", $0) } ?? ""
        let line = String(format: "\r%@step %d%@%@  %.1f img/s  ETA %@   ", bar, step, total.map { "/\($0)" } ?? "",
                          lossText, imagesPerSecond, formatDuration(eta ?? 0))
        FileHandle.standardError.write(Data(line.utf8))
    }
    public func finish() { FileHandle.standardError.write(Data("\n".utf8)) }
}
