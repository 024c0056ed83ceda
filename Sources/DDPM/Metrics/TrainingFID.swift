import DDPMCore
import Foundation

/// FID and KID during training (`train --fid-every N --fid-samples 500`): every N steps, samples from
/// the EMA weights in `steps` steps of the training grids' solver (`SchedulerSettings.fastSampler`:
/// thresholded DPM-Solver++(2M); DDIM η = 0 for a schedule it refuses), features from the domain classifier (or
/// InceptionV3 with `--fid-features inception`), compared with the reference set's features
/// (computed once per dataset and cached). Rows go to fid.csv, the curve to fid.png in the run directory.
public final class TrainingFID {
    /// `seconds`: what the evaluation cost; `trainingSeconds`: the run's training time at `step`
    /// (evaluations excluded, so the curve's time axis is the time spent training).
    public struct Row { public var step: Int; public var fid: Double; public var kid: Double; public var seconds: Double; public var trainingSeconds: Double }
    public let samples: Int
    public let steps: Int
    public let network: FeatureNetwork
    /// The size and channels generated images must have for the network.
    let format: (size: Int, channels: Int)
    public private(set) var rows: [Row] = []
    let reference: FIDEvaluation.SourceFeatures
    let settings: FIDSettings

    /// With the domain classifier's features.
    public convenience init(backend: Backend, classifier: TrainedClassifier, reference: ImageSource, referenceCount: Int = 10_000,
                            samples: Int = 500, steps: Int = 10, kidSubsets: Int = 20) throws {
        try self.init(network: try ClassifierFeatures(backend: backend, classifier: classifier),
                      format: (classifier.config.sampleSize, classifier.config.inChannels), reference: reference,
                      referenceCount: referenceCount, samples: samples, steps: steps, kidSubsets: kidSubsets)
    }

    /// `referenceCount` images of `reference` read at `format` (their features cached per network).
    /// For Inception, `format` is (the model's sample size, 3): samples of 1 channel are replicated.
    public init(network: FeatureNetwork, format: (size: Int, channels: Int), reference: ImageSource, referenceCount: Int = 10_000,
                samples: Int = 500, steps: Int = 10, kidSubsets: Int = 20) throws {
        self.network = network; self.format = format; self.samples = samples; self.steps = steps
        self.reference = try FIDEvaluation.features(of: reference, network: network, format: format, limit: referenceCount, cache: true)
        var s = FIDSettings()
        s.kidSubsets = kidSubsets
        s.kidSubsetSize = 1000
        settings = s
    }

    /// Samples, measures and records one row (the fixed seed 0: the same noise at every evaluation).
    @discardableResult
    public func evaluate(step: Int, trainingSeconds: Double, backend: Backend, config: UNetConfig, weights: Weights, scheduler: SchedulerSettings,
                         conditioning: ClassConditioning? = nil) throws -> Row {
        let start = Date()
        // Inception (format channels 3) replicates gray samples; the classifier reads its own channels only.
        guard config.sampleSize == format.size, config.inChannels == format.channels || format.channels == 3 && network is InceptionFeatures else {
            throw UserError("--fid-every: the model makes \(config.inChannels)×\(config.sampleSize)² images but the feature network reads "
                + "\(format.channels)×\(format.size)²; train a classifier on this data.")
        }
        let (sampling, kind) = Self.solver(scheduler)
        // Measured against the device first, as `sample` is: a batch that cannot fit is refused with one that does.
        let sampler = try Sampler.fitting(backend: backend, config: config, weights: weights, settings: sampling, batch: min(samples, 100),
                                          conditioning: conditioning, flag: "--fid-samples")
        let images = try sampler.sample(count: samples, seed: 0, sampler: kind, steps: steps)
        // Quantised as a saved sample would be, so the number matches `ddpm-cl fid` on samples.npy.
        let bytes = toUInt8(images)
        let set = ImageSet(images: bytes.map { Float($0) / 127.5 - 1 }, count: samples, channels: config.inChannels,
                           size: config.sampleSize, description: "step \(step) samples")
        let out = try network.features(set)
        let generated = FIDEvaluation.SourceFeatures(features: out.features, predictions: out.predictions,
                                                      description: set.description, cached: false)
        let report = try FIDEvaluation.report(generated, reference, network: network, settings: settings)
        let row = Row(step: step, fid: report.fid, kid: report.kid.mean, seconds: Date().timeIntervalSince(start),
                      trainingSeconds: trainingSeconds)
        rows.append(row)
        return row
    }

    /// The training grids' solver; DDIM η = 0 (not DDPM) where DPM-Solver++ refuses the schedule.
    static func solver(_ scheduler: SchedulerSettings) -> (settings: SchedulerSettings, kind: SamplerKind) {
        scheduler.fastSampler(fallback: .ddim(eta: 0))
    }

    /// "DPM-Solver++(2M)-10 thresholded" or "DDIM-10", for the log.
    public func solverDescription(_ scheduler: SchedulerSettings) -> String {
        if case .dpmSolver = Self.solver(scheduler).kind { return "DPM-Solver++(2M)-\(steps) thresholded" }
        return "DDIM-\(steps)"
    }

    /// Reads earlier rows of a resumed run (up to `step`; files from before the training_seconds column read it as 0).
    public func restore(from directory: RunDirectory, upTo step: Int) {
        guard let text = try? String(contentsOf: Self.csv(directory), encoding: .utf8) else { return }
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: ",").compactMap { Double($0) }
            guard f.count == 4 || f.count == 5, Int(f[0]) <= step else { continue }
            rows.append(Row(step: Int(f[0]), fid: f[1], kid: f[2], seconds: f[3], trainingSeconds: f.count == 5 ? f[4] : 0))
        }
    }

    public func write(to directory: RunDirectory) throws {
        var text = "step,fid,kid,seconds,training_seconds\n"
        for r in rows { text += "\(r.step),\(r.fid),\(r.kid),\(String(format: "%.2f,%.1f", r.seconds, r.trainingSeconds))\n" }
        try writeAtomically(Data(text.utf8), to: Self.csv(directory))
        try writePNG(renderLossPlot(steps: rows.map(\.step), losses: rows.map { Float($0.fid) }, title: "fid"),
                     to: directory.url.appendingPathComponent("fid.png"))
    }

    static func csv(_ directory: RunDirectory) -> URL { directory.url.appendingPathComponent("fid.csv") }
}
