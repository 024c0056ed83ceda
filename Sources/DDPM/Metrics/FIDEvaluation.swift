import DDPMCore
import Foundation

/// `ddpm-cl fid A B --features classifier`: features of both sets from the domain classifier's
/// penultimate layer, FID, KID and the class histogram of the classifier's predictions.
public struct FIDReport {
    public var fid: Double
    public var kid: KernelInceptionDistance.Result
    public var a: SetSummary
    public var b: SetSummary
    public var classNames: [String]
    public var classifierAccuracy: Double
    public var classifierHeldOut: String
    public var featureDimension: Int
    public var seconds: Double

    public struct SetSummary {
        public var description: String
        public var count: Int
        /// Images predicted as each class.
        public var histogram: [Int]
        /// Whether the features came from the cache.
        public var cached: Bool
    }
}

public struct FIDSettings {
    /// At most this many images of each set (the first ones); nil: all.
    public var limit: Int?
    public var kidSubsets = 100
    public var kidSubsetSize = 1000
    public var seed: UInt64 = 0
    /// Reuse (and write) cached features of datasets (Fashion-MNIST splits).
    public var cache = true
    public init() {}
}

public enum FIDEvaluation {
    public static func evaluate(_ a: ImageSource, _ b: ImageSource, classifier: TrainedClassifier, backend: Backend,
                                settings: FIDSettings) throws -> FIDReport {
        let start = Date()
        let extractor = try ClassifierFeatures(backend: backend, classifier: classifier)
        let fa = try features(of: a, extractor: extractor, limit: settings.limit, cache: settings.cache)
        let fb = try features(of: b, extractor: extractor, limit: settings.limit, cache: settings.cache)
        return try report(fa, fb, classifier: classifier, settings: settings, start: start)
    }

    /// FID, KID and histograms from two sets' features.
    public static func report(_ fa: SourceFeatures, _ fb: SourceFeatures, classifier: TrainedClassifier, settings: FIDSettings,
                              start: Date = Date()) throws -> FIDReport {
        let fid = try FrechetDistance.between(GaussianStatistics(fa.features), GaussianStatistics(fb.features))
        let kid = try KernelInceptionDistance.compute(fa.features, fb.features, subsets: settings.kidSubsets,
                                                      subsetSize: settings.kidSubsetSize, seed: settings.seed)
        let k = classifier.config.classes
        func summary(_ f: SourceFeatures) -> FIDReport.SetSummary {
            var h = [Int](repeating: 0, count: k)
            for p in f.predictions { h[p] += 1 }
            return .init(description: f.description, count: f.features.rows, histogram: h, cached: f.cached)
        }
        return FIDReport(fid: fid, kid: kid, a: summary(fa), b: summary(fb), classNames: classifier.config.classNames,
                         classifierAccuracy: classifier.heldOutAccuracy, classifierHeldOut: classifier.heldOutDescription,
                         featureDimension: classifier.config.featureDimension, seconds: Date().timeIntervalSince(start))
    }

    public struct SourceFeatures {
        public var features: FeatureMatrix
        public var predictions: [Int]
        public var description: String
        public var cached: Bool
    }

    /// The features of a source; datasets are cached per classifier (by its fingerprint)
    /// in cacheDirectory()/features/, so reference statistics are computed once.
    public static func features(of source: ImageSource, extractor: ClassifierFeatures, limit: Int?, cache: Bool) throws -> SourceFeatures {
        let c = extractor.classifier.config
        // Only datasets are cached: a folder or a .npy may change under the same name.
        var cacheable = false
        if cache, case .fashionMNIST = source { cacheable = true }
        let stem = "\(extractor.classifier.fingerprint)-\(sanitized(source.cacheKey))-\(limit.map(String.init) ?? "all")"
        let dir = cacheDirectory().appendingPathComponent("features")
        let featureURL = dir.appendingPathComponent(stem + ".npy"), classURL = dir.appendingPathComponent(stem + "-classes.npy")
        if cacheable, let f = try? readNPY(featureURL), let p = try? readNPY(classURL), f.shape.count == 2,
           f.shape[1] == c.featureDimension, p.shape == [f.shape[0]] {
            return SourceFeatures(features: FeatureMatrix(rows: f.shape[0], dimension: f.shape[1], floats: f.values),
                                  predictions: p.values.map { Int($0) }, description: "\(source) (\(f.shape[0]) images)", cached: true)
        }
        let set = try source.load(size: c.sampleSize, channels: c.inChannels, limit: limit)
        let out = try extractor.run(set)
        if cacheable {
            try writeNPY(float32: out.features.values.map(Float.init), shape: [set.count, c.featureDimension], to: featureURL)
            try writeNPY(float32: out.predictions.map(Float.init), shape: [set.count], to: classURL)
        }
        return SourceFeatures(features: out.features, predictions: out.predictions, description: set.description, cached: false)
    }

    static func sanitized(_ key: String) -> String {
        String(key.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" }.suffix(80))
    }
}
