import DDPMCore
import Foundation

/// The network whose features FID and KID compare: the domain classifier (`--features classifier`)
/// or pytorch-fid's InceptionV3 (`--features inception`).
public protocol FeatureNetwork: AnyObject {
    var featureDimension: Int { get }
    /// Class names when the network classifies (the histogram of predictions); empty otherwise.
    var classNames: [String] { get }
    /// Names the cached features of this network's weights.
    var fingerprint: String { get }
    /// What the printout says the features are (the ruler).
    var summary: FeatureSummary { get }
    /// The size and channels both sets are read at.
    func inputFormat(_ a: ImageSource, _ b: ImageSource) throws -> (size: Int, channels: Int)
    /// Features (and predicted classes, empty without classes) of every image of `set`.
    func features(_ set: ImageSet) throws -> (features: FeatureMatrix, predictions: [Int])
}

/// What the features are, for the printout and the JSON.
public enum FeatureSummary {
    /// The domain classifier with its held-out accuracy (printed with every FID).
    case classifier(accuracy: Double, heldOut: String)
    /// InceptionV3's pool3, reading images of `size`² resized to 299².
    case inception(size: Int)
}

extension ClassifierFeatures: FeatureNetwork {
    public var featureDimension: Int { classifier.config.featureDimension }
    public var classNames: [String] { classifier.config.classNames }
    public var fingerprint: String { classifier.fingerprint }
    public var summary: FeatureSummary { .classifier(accuracy: classifier.heldOutAccuracy, heldOut: classifier.heldOutDescription) }
    public func inputFormat(_ a: ImageSource, _ b: ImageSource) throws -> (size: Int, channels: Int) {
        (classifier.config.sampleSize, classifier.config.inChannels)
    }
    public func features(_ set: ImageSet) throws -> (features: FeatureMatrix, predictions: [Int]) {
        let out = try run(set)
        return (out.features, out.predictions)
    }
}
