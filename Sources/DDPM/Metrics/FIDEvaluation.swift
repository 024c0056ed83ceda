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
    /// Per-class FID: only the images of this class (a name or an index of the labels) in each set
    /// that has labels. The reference (B) must have them; samples of `sample --class K` (a .npy
    /// without labels) are taken whole.
    public var onlyClass: String?
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
        func of(_ source: ImageSource, labelsRequired: Bool) throws -> SourceFeatures {
            guard let k = settings.onlyClass else {
                return try features(of: source, network: network, format: format, limit: settings.limit, cache: settings.cache)
            }
            return try features(of: source, ofClass: k, labelsRequired: labelsRequired, network: network, format: format,
                                limit: settings.limit, cache: settings.cache)
        }
        let fa = try of(a, labelsRequired: false), fb = try of(b, labelsRequired: true)
        return try report(fa, fb, network: network, settings: settings, start: start)
    }

    /// The features of `source`'s images labelled `className` (a name, case-insensitive, or an
    /// index), at most `limit` of them in their order: the rows of the whole set's (cached) features.
    /// A set without labels is an error when `labelsRequired`, else taken whole.
    public static func features(of source: ImageSource, ofClass className: String, labelsRequired: Bool, network: FeatureNetwork,
                                format: (size: Int, channels: Int), limit: Int?, cache: Bool) throws -> SourceFeatures {
        guard source.hasLabels else {
            if !labelsRequired { return try features(of: source, network: network, format: format, limit: limit, cache: cache) }
            throw UserError("--class \(className): \(source) has no class labels; give a labelled reference (fashion-mnist:test, or a folder with one subfolder per class).")
        }
        let set = try source.load(size: format.size, channels: format.channels, limit: nil)
        guard let labels = set.labels, let names = set.classNames else { preconditionFailure("\(source) promised labels") }
        guard let k = Int(className).flatMap({ names.indices.contains($0) ? $0 : nil })
                ?? names.firstIndex(where: { $0.lowercased() == className.lowercased() }) else {
            throw UserError("--class \(className): \(set.description) has the classes \(names.enumerated().map { "\($0) \($1)" }.joined(separator: ", ")).")
        }
        let all = try features(of: source, network: network, format: format, limit: nil, cache: cache, loaded: set)
        var rows = labels.indices.filter { labels[$0] == k }
        if let limit { rows = Array(rows.prefix(limit)) }
        guard rows.count >= 2 else { throw UserError("--class \(className): \(set.description) has \(rows.count) image(s) of class \(names[k]); FID needs at least 2.") }
        return SourceFeatures(features: all.features.selecting(rows), predictions: rows.map { all.predictions[$0] },
                              description: "\(set.description), class \(k) (\(names[k])): \(rows.count) images", cached: all.cached)
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
    /// `loaded`: the source already loaded at `format` and `limit`, so a cache miss does not read it again.
    public static func features(of source: ImageSource, network: FeatureNetwork, format: (size: Int, channels: Int), limit: Int?,
                                cache: Bool, loaded: ImageSet? = nil) throws -> SourceFeatures {
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
        let set = try loaded ?? source.load(size: format.size, channels: format.channels, limit: limit)
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
