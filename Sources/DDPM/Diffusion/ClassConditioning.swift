import DDPMCore

/// What a class-conditional U-Net is sampled with: the class of each image and the classifier-free
/// guidance weight (Ho & Salimans 2022, arXiv 2207.12598).
///
/// Convention: ε̃ = (1 + w)·ε(x, y) − w·ε(x, ∅), where ∅ is the null class the model was trained
/// with (`train --cond-drop`). w = 0 is the plain conditional model; diffusers' `guidance_scale`
/// is 1 + w (its pipelines write ε_u + s·(ε_c − ε_u)). The mix is applied to the model output
/// whatever it predicts (ε, x₀ or v): the weights sum to 1, so mixing x₀ or v predictions is the
/// same as mixing ε at a fixed x_t, and every solver sees one guided output per step.
public struct ClassConditioning: Equatable {
    /// Image i gets class `labels[i % labels.count]` (so [k] gives every image class k).
    public var labels: [Int]
    /// w ≥ 0
    public var guidance: Float
    /// The null class index (num_classes), needed when guidance ≠ 0.
    public var nullClass: Int?

    public init(labels: [Int], guidance: Float = 0, nullClass: Int? = nil) {
        precondition(!labels.isEmpty, "a class list must not be empty")
        precondition(guidance == 0 || nullClass != nil, "classifier-free guidance needs the null class")
        self.labels = labels; self.guidance = guidance; self.nullClass = nullClass
    }

    public func label(ofImage i: Int) -> Int { labels[i % labels.count] }

    /// The labels of images first ..< first + count, padded with class 0 to `batch` (the padding is discarded).
    func batchLabels(first: Int, count: Int, batch: Int) -> [Float] {
        (0..<batch).map { $0 < count ? Float(label(ofImage: first + $0)) : 0 }
    }

    /// Whether a network call evaluates the batch twice (conditional and null class).
    public var isGuided: Bool { guidance != 0 }
}

/// The network a sampler calls: the U-Net, and for a class-conditional one its labels and, with
/// guidance, both predictions in ONE call on a batch of 2N (images first with their classes, then
/// the same images with the null class), mixed into one output [N, out_channels, H, W]. For a
/// learned-variance model (out_channels = 2·in_channels) only the prediction half is mixed; the
/// variance half is the conditional one's.
public struct GuidedUNet {
    public let graph: Graph
    public let sample: Value      // x_t [N, C, H, W]
    public let timesteps: Value   // [N]
    /// [N] class indices; nil for an unconditional model
    public let classLabels: Value?
    public let output: Value      // [N, out_channels, H, W]

    /// `batched` forces the 2N-image call even at w = 0 (tests compare it with the plain model).
    public init(config: UNetConfig, batch: Int, conditioning: ClassConditioning?, batched: Bool? = nil) {
        precondition(conditioning == nil || config.isClassConditional, "class labels for an unconditional model")
        let graph = Graph()
        self.graph = graph
        guard let conditioning, batched ?? conditioning.isGuided, let null = conditioning.nullClass else {
            let net = UNet(config: config, batch: batch, graph: graph)
            sample = net.sample
            timesteps = net.timesteps
            classLabels = net.classLabels
            output = net.output
            return
        }
        let (c, size) = (config.inChannels, config.sampleSize)
        sample = graph.input("sample", Shape(batch, c, size, size))
        timesteps = graph.input("timesteps", Shape(batch))
        let labels = graph.input("class_labels", Shape(batch))
        classLabels = labels
        // Two copies along the batch: seen as one image of N·C channels, concatenated with itself.
        func twice(_ v: Value, _ asImage: Shape, _ result: Shape) -> Value {
            let one = graph(.reshape(asImage), v)
            return graph(.reshape(result), graph(.concatChannels, one, one))
        }
        let x2 = twice(sample, Shape(1, batch * c, size, size), Shape(2 * batch, c, size, size))
        let t2 = twice(timesteps, Shape(1, batch, 1, 1), Shape(2 * batch))
        let nulls = graph.constant([Float](repeating: Float(null), count: batch), Shape(1, batch, 1, 1))
        let y2 = graph(.reshape(Shape(2 * batch)), graph(.concatChannels, graph(.reshape(Shape(1, batch, 1, 1)), labels), nulls))
        let net = UNet(config: config, batch: 2 * batch, graph: graph, sample: x2, timesteps: t2, classLabels: y2)
        let co = config.outChannels
        let halves = graph(.reshape(Shape(1, 2 * batch * co, size, size)), net.output)
        let cond = graph(.reshape(Shape(batch, co, size, size)), graph(.sliceChannels(start: 0, count: batch * co), halves))
        let uncond = graph(.reshape(Shape(batch, co, size, size)), graph(.sliceChannels(start: batch * co, count: batch * co), halves))
        let w = conditioning.guidance
        func mix(_ a: Value, _ b: Value) -> Value { graph(.add, graph(.scale(1 + w), a), graph(.scale(-w), b)) }
        if co == 2 * c {
            let mixed = mix(graph(.sliceChannels(start: 0, count: c), cond), graph(.sliceChannels(start: 0, count: c), uncond))
            output = graph(.concatChannels, mixed, graph(.sliceChannels(start: c, count: c), cond))
        } else {
            output = mix(cond, uncond)
        }
    }
}

/// `sample --class K|all --guidance w` against a loaded model: which class each image gets, how
/// many images that makes, and the grid's layout.
public struct ClassRequest {
    /// --class: an index, a class name, "all", or nil (every class in turn: image i gets i mod K)
    public var choice: String?
    /// --guidance w (ε̃ = (1+w)·ε_c − w·ε_u)
    public var guidance: Float

    public init(choice: String?, guidance: Float) { self.choice = choice; self.guidance = guidance }

    public struct Plan {
        /// The class of each image (and the guidance of a conditional model).
        public var conditioning: ClassConditioning
        /// What the U-Net gets: `conditioning` for a class-conditional model, nil for an unconditional
        /// one steered by a classifier alone.
        public var modelConditioning: ClassConditioning?
        /// Images to draw: --num-images, or --num-images per class with "all".
        public var count: Int
        /// With "all": the grid has one row per class of `columns` images, labelled with the names.
        public var columns: Int?
        public var rowLabels: [String]?
        public var description: String
    }

    /// nil for an unconditional model asked for nothing; refuses --class or --guidance on it, an
    /// unknown class, and guidance without a null class, naming the flag. With a guiding `classifier`
    /// the classes are the classifier's (an unconditional model) or must match the model's.
    public func plan(_ pipeline: LoadedPipeline, batch: Int, classifier: TrainedClassifier? = nil) throws -> Plan? {
        guard guidance.isFinite && guidance >= 0 && guidance <= 1000 else {
            throw UserError("--guidance \(guidance): it takes a weight w in [0, 1000]; ε̃ = (1+w)·ε(x, y) − w·ε(x, ∅), so 0 is the plain conditional model (diffusers' guidance_scale is 1 + w).")
        }
        let conditional = pipeline.config.isClassConditional
        if let classifier, let model = pipeline.classes, model.names.count != classifier.config.classes {
            throw UserError("--classifier knows \(classifier.config.classes) classes, the model \(model.names.count); classifier guidance needs the same classes in the same order.")
        }
        if !conditional, guidance != 0, classifier != nil {
            throw UserError("--guidance \(guidance) is classifier-free guidance, which needs a class-conditional model; with an unconditional one use --classifier-scale alone.")
        }
        let known = pipeline.classes ?? classifier.map { ClassLabels(names: $0.config.classNames, nullClass: nil) }
        guard let classes = known, conditional || classifier != nil else {
            if choice != nil || guidance != 0 {
                throw UserError("\(choice != nil ? "--class" : "--guidance") needs a class-conditional model (num_class_embeds in its config.json); this one is unconditional. Train one with `ddpm-cl train --class-conditional --cond-drop 0.1`.")
            }
            return nil
        }
        if guidance != 0 && classes.nullClass == nil {
            throw UserError("--guidance \(guidance): classifier-free guidance needs the null class of a model trained with --cond-drop (class_labels.json names it); this model has none. Use --guidance 0, or train with `--class-conditional --cond-drop 0.1`.")
        }
        let names = classes.names
        let listed = names.enumerated().map { "\($0.offset) \($0.element)" }.joined(separator: ", ")
        let guided = guidance != 0 ? String(format: ", guidance w = %g (diffusers' guidance_scale %g)", guidance, 1 + guidance) : ""
        switch choice {
        case nil:
            let c = ClassConditioning(labels: Array(names.indices), guidance: guidance, nullClass: classes.nullClass)
            return Plan(conditioning: c, modelConditioning: conditional ? c : nil, count: batch, columns: nil, rowLabels: nil, description: "classes in turn (image i: class i mod \(names.count))" + guided)
        case "all"?:
            let labels = names.indices.flatMap { [Int](repeating: $0, count: batch) }
            let c = ClassConditioning(labels: labels, guidance: guidance, nullClass: classes.nullClass)
            return Plan(conditioning: c, modelConditioning: conditional ? c : nil, count: labels.count, columns: batch, rowLabels: names,
                        description: "\(batch) per class, one row per class" + guided)
        case let text?:
            guard let k = classes.index(of: text) else {
                throw UserError("--class \(text): this model's classes are \(listed); give an index, a name or all.")
            }
            let c = ClassConditioning(labels: [k], guidance: guidance, nullClass: classes.nullClass)
            return Plan(conditioning: c, modelConditioning: conditional ? c : nil, count: batch, columns: nil, rowLabels: nil, description: "class \(k) (\(names[k]))" + guided)
        }
    }
}
