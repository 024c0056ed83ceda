import DDPMCore
import Foundation

/// `ddpm-cl fid A B`: features of both sets from a FeatureNetwork (the domain classifier's
/// penultimate layer, or InceptionV3's pool3), FID, KID and, where the network has classes, the
/// histogram of its predictions.
public struct FIDReport {
    public var fid: Double
    public var kid: KernelInceptionDistance.Result
    public var a: SetSummary
    public var b: SetSummary
    /// Empty when the feature network has no classes (Inception): no histogram.
    public var classNames: [String]
    public var featureSummary: FeatureSummary
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
        return try evaluate(a, b, network: try ClassifierFeatures(backend: backend, classifier: classifier), settings: settings,
                            start: start)
    }

    public static func evaluate(_ a: ImageSource, _ b: ImageSource, network: FeatureNetwork, settings: FIDSettings,
                                start: Date = Date()) throws -> FIDReport {
        let format = try network.inputFormat(a, b)
        let fa = try features(of: a, network: network, format: format, limit: settings.limit, cache: settings.cache)
        let fb = try features(of: b, network: network, format: format, limit: settings.limit, cache: settings.cache)
        return try report(fa, fb, network: network, settings: settings, start: start)
    }

    /// FID, KID and histograms from two sets' features.
    public static func report(_ fa: SourceFeatures, _ fb: SourceFeatures, network: FeatureNetwork, settings: FIDSettings,
                              start: Date = Date()) throws -> FIDReport {
        let fid = try FrechetDistance.between(GaussianStatistics(fa.features), GaussianStatistics(fb.features))
        let kid = try KernelInceptionDistance.compute(fa.features, fb.features, subsets: settings.kidSubsets,
                                                      subsetSize: settings.kidSubsetSize, seed: settings.seed)
        let k = network.classNames.count
        func summary(_ f: SourceFeatures) -> FIDReport.SetSummary {
            var h = [Int](repeating: 0, count: k)
            for p in f.predictions where p < k { h[p] += 1 }
            return .init(description: f.description, count: f.features.rows, histogram: h, cached: f.cached)
        }
        return FIDReport(fid: fid, kid: kid, a: summary(fa), b: summary(fb), classNames: network.classNames,
                         featureSummary: network.summary, featureDimension: network.featureDimension,
                         seconds: Date().timeIntervalSince(start))
    }

    public struct SourceFeatures {
        public var features: FeatureMatrix
        public var predictions: [Int]
        public var description: String
        public var cached: Bool
    }

    /// The features of a source read at `format`; datasets are cached per network (by its
    /// fingerprint) in cacheDirectory()/features/, so reference statistics are computed once.
    public static func features(of source: ImageSource, network: FeatureNetwork, format: (size: Int, channels: Int), limit: Int?,
                                cache: Bool) throws -> SourceFeatures {
        let d = network.featureDimension
        // Only datasets are cached: a folder or a .npy may change under the same name.
        var cacheable = false
        if cache, case .fashionMNIST = source { cacheable = true }
        let stem = "\(network.fingerprint)-\(sanitized(source.cacheKey))-\(limit.map(String.init) ?? "all")"
        let dir = cacheDirectory().appendingPathComponent("features")
        let featureURL = dir.appendingPathComponent(stem + ".npy"), classURL = dir.appendingPathComponent(stem + "-classes.npy")
        if cacheable, let f = try? readNPY(featureURL), let p = try? readNPY(classURL), f.shape.count == 2,
           f.shape[1] == d, p.shape == [f.shape[0]] || (network.classNames.isEmpty && p.shape == [0]) {
            return SourceFeatures(features: FeatureMatrix(rows: f.shape[0], dimension: f.shape[1], floats: f.values),
                                  predictions: p.values.map { Int($0) }, description: "\(source) (\(f.shape[0]) images)", cached: true)
        }
        let set = try source.load(size: format.size, channels: format.channels, limit: limit)
        let out = try network.features(set)
        if cacheable {
            try writeNPY(float32: out.features.values.map(Float.init), shape: [set.count, d], to: featureURL)
            try writeNPY(float32: out.predictions.map(Float.init), shape: [out.predictions.count], to: classURL)
        }
        return SourceFeatures(features: out.features, predictions: out.predictions, description: set.description, cached: false)
    }

    static func sanitized(_ key: String) -> String {
        String(key.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" }.suffix(80))
    }
}
