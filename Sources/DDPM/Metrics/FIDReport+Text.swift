import Foundation

extension FIDReport {
    /// What `ddpm-cl fid` prints: the two numbers, the ruler (which network, the classifier's
    /// accuracy), the histograms when the network has classes. `featureFile`: the weights' path.
    public func text(featureFile: String) -> String {
        var lines = [
            String(format: "FID %.4f   KID %.5f ± %.5f (%d subsets of %d)", fid, kid.mean, kid.standardDeviation, kid.subsets, kid.subsetSize),
            "A: \(a.description)\(a.cached ? " [cached features]" : "")",
            "B: \(b.description)\(b.cached ? " [cached features]" : "")",
            featureLine(featureFile),
        ]
        if !classNames.isEmpty { lines.append("predicted classes:") }
        let width = max(12, classNames.map(\.count).max() ?? 0)
        for (i, name) in classNames.enumerated() {
            let pa = 100 * Double(a.histogram[i]) / Double(max(a.count, 1)), pb = 100 * Double(b.histogram[i]) / Double(max(b.count, 1))
            lines.append("  " + name.padding(toLength: width, withPad: " ", startingAt: 0) + String(format: "  A %5.1f%%   B %5.1f%%", pa, pb))
        }
        lines.append(String(format: "(%.1f s)", seconds))
        return lines.joined(separator: "\n")
    }

    func featureLine(_ file: String) -> String {
        switch featureSummary {
        case .classifier(let accuracy, let heldOut):
            return String(format: "features: %d-d penultimate layer of the domain classifier %@ (held-out accuracy %.2f%% on %@)",
                          featureDimension, file, 100 * accuracy, heldOut)
        case .inception(let size):
            return "features: \(featureDimension)-d pool3 of pytorch-fid's FID InceptionV3 \(file) (images read at \(size)×\(size), "
                + "bilinear to 299×299)"
        }
    }

    public func jsonText() throws -> String {
        var object: [String: Any] = [
            "fid": fid, "kid": kid.mean, "kid_std": kid.standardDeviation, "kid_subsets": kid.subsets, "kid_subset_size": kid.subsetSize,
            "a": ["description": a.description, "count": a.count, "histogram": a.histogram],
            "b": ["description": b.description, "count": b.count, "histogram": b.histogram],
            "classes": classNames, "feature_dimension": featureDimension, "seconds": seconds,
        ]
        switch featureSummary {
        case .classifier(let accuracy, let heldOut):
            object["features"] = "classifier"
            object["classifier_accuracy"] = accuracy
            object["classifier_held_out"] = heldOut
        case .inception(let size):
            object["features"] = "inception"
            object["inception_input_size"] = size
        }
        return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self)
    }
}
