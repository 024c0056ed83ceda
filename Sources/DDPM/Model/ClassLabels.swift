import DDPMCore
import Foundation

/// The classes of a class-conditional model, kept beside its diffusers pipeline in
/// class_labels.json (diffusers' UNet2DModel config has only num_class_embeds):
///   {"class_names": ["T-shirt/top", …], "null_class": 10}
/// The null class is the row that `train --cond-drop` trains as "no class" (index = class count);
/// classifier-free guidance needs it. A diffusers model without the file has neither.
public struct ClassLabels: Equatable {
    public var names: [String]
    public var nullClass: Int?

    public static let fileName = "class_labels.json"

    public init(names: [String], nullClass: Int?) { self.names = names; self.nullClass = nullClass }

    /// Every class in turn: image i gets class i mod count (training grids, FID during training).
    public var everyClass: ClassConditioning { ClassConditioning(labels: Array(names.indices)) }

    /// The class of a --class value: an index or a name (case-insensitive).
    public func index(of text: String) -> Int? {
        if let k = Int(text), names.indices.contains(k) { return k }
        return names.firstIndex { $0.lowercased() == text.lowercased() }
    }

    func write(to url: URL) throws {
        var object: [String: Any] = ["class_names": names]
        object["null_class"] = nullClass ?? NSNull()
        try writeAtomically(JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]), to: url)
    }

    /// Reads class_labels.json of a model with `embeddings` class rows; names and the null class must fit them.
    static func read(_ url: URL, embeddings: Int) throws -> ClassLabels {
        guard let data = FileManager.default.contents(atPath: url.path) else { throw UserError("cannot read \(url.path). Check its permissions.") }
        let json = try JSONText.object(data, source: url.path)
        guard let names = json["class_names"] as? [String], !names.isEmpty else {
            throw UserError("\(url.path): \"class_names\" must be a non-empty list of strings.")
        }
        let null = json["null_class"] as? Int
        guard names.count <= embeddings, null.map({ (0..<embeddings).contains($0) && $0 >= names.count }) ?? true else {
            throw UserError("\(url.path) names \(names.count) classes and null class \(null.map(String.init) ?? "null"), but the model's num_class_embeds is \(embeddings); the null class must be an embedding row after the named classes.")
        }
        return ClassLabels(names: names, nullClass: null)
    }

    /// A model without class_labels.json: its rows are classes 0 … num_class_embeds − 1, no null class.
    static func unnamed(embeddings: Int) -> ClassLabels {
        ClassLabels(names: (0..<embeddings).map { "class \($0)" }, nullClass: nil)
    }
}

extension TrainingOptions {
    /// The classes of a class-conditional run (nil when unconditional).
    public var classLabels: ClassLabels? { classNames.map { ClassLabels(names: $0, nullClass: $0.count) } }

    /// Makes the run class-conditional on `names`: num_class_embeds = count + 1, the last row the
    /// null class (index count) that `drop` (the --cond-drop probability) trains.
    public mutating func conditionOnClasses(_ names: [String], drop: Float) throws {
        if let k = model.numClassEmbeds, k != names.count + 1 {
            throw UserError("--class-conditional: the model config has num_class_embeds \(k), but the data has \(names.count) classes, which need \(names.count + 1) (one more for the null class). Set num_class_embeds to \(names.count + 1) or remove it.")
        }
        model.numClassEmbeds = names.count + 1
        classNames = names
        conditionDrop = drop
    }
}
