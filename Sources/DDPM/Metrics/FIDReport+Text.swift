import Foundation

extension FIDReport {
    /// What `ddpm-cl fid` prints: the two numbers, the ruler (the classifier's accuracy), the histograms.
    public func text(classifierFile: String) -> String {
        var lines = [
            String(format: "FID %.4f   KID %.5f ± %.5f (%d subsets of %d)", fid, kid.mean, kid.standardDeviation, kid.subsets, kid.subsetSize),
            "A: \(a.description)\(a.cached ? " [cached features]" : "")",
            "B: \(b.description)\(b.cached ? " [cached features]" : "")",
            String(format: "features: %d-d penultimate layer of the domain classifier %@ (held-out accuracy %.2f%% on %@)",
                   featureDimension, classifierFile, 100 * classifierAccuracy, classifierHeldOut),
            "predicted classes:",
        ]
        let width = max(12, classNames.map(\.count).max() ?? 0)
        for (i, name) in classNames.enumerated() {
            let pa = 100 * Double(a.histogram[i]) / Double(max(a.count, 1)), pb = 100 * Double(b.histogram[i]) / Double(max(b.count, 1))
            lines.append("  " + name.padding(toLength: width, withPad: " ", startingAt: 0) + String(format: "  A %5.1f%%   B %5.1f%%", pa, pb))
        }
        lines.append(String(format: "(%.1f s)", seconds))
        return lines.joined(separator: "\n")
    }

    public func jsonText() throws -> String {
        let object: [String: Any] = [
            "fid": fid, "kid": kid.mean, "kid_std": kid.standardDeviation, "kid_subsets": kid.subsets, "kid_subset_size": kid.subsetSize,
            "a": ["description": a.description, "count": a.count, "histogram": a.histogram],
            "b": ["description": b.description, "count": b.count, "histogram": b.histogram],
            "classes": classNames, "classifier_accuracy": classifierAccuracy, "classifier_held_out": classifierHeldOut,
            "feature_dimension": featureDimension, "seconds": seconds,
        ]
        return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self)
    }
}
