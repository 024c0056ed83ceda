import DDPM
import DDPMCore
import Foundation
import XCTest

/// Improved DDPM training (learned variance, the hybrid loss L_simple + λ·L_vlb with the mean
/// stopped): the VLB term in closed form, against improved-diffusion, the stop-gradient, and a
/// learned-variance training step on both backends.
final class HybridLossTests: XCTestCase {
    /// Runs one VLB term on `backend`: loss and dv.
    func vlb(_ backend: Backend, _ options: TrainingOptions, x0: [Float], xt: [Float], m: [Float], v: [Float], t: [Float],
             shape: Shape) throws -> Float {
        let g = Graph()
        let leaves = ["x0", "xt", "m", "v"].map { g.input($0, shape) }
        let tv = g.input("t", Shape(shape[0]))
        let table = g.constant(options.vlbTable, Shape(6, options.timesteps))
        let loss = g(.vlbTerm(VLBTerm(timesteps: options.timesteps, scale: 1)), leaves[0], leaves[1], leaves[2], leaves[3], tv, table)
        let e = try Executor(graph: g, outputs: [loss], backend: backend)
        for (leaf, values) in zip(leaves + [tv], [x0, xt, m, v, t]) { e.bind(leaf, to: try backend.makeBuffer(values)) }
        try e.run(step: 0)
        return try backend.read(e.buffer(loss), count: 1)[0]
    }

    func options(timesteps: Int = 20, prediction: Prediction = .epsilon) -> TrainingOptions {
        var o = TrainingOptions(model: ModelPreset.tiny.config)
        o.timesteps = timesteps
        o.betaStart = 0.002
        o.betaEnd = 0.4
        o.prediction = prediction
        o.learnSigma = true
        o.model.outChannels = 2 * o.model.inChannels
        return o
    }

    /// Closed forms, from the schedule directly: with the model's mean equal to the posterior mean
    /// and v = −1 (σ² = β̃) the KL is 0; with v = +1 (σ² = β) it is ½(−1 + log β − log β̃ + β̃/β)
    /// nats; a mean off by δ adds c1²·(1/ᾱ − 1)·δ²/(2σ²) (ε-prediction). At t = 0 with the mean on
    /// the pixel, −log(2Φ̃(u) − 1), u = 1/(255σ), Φ̃ improved-diffusion's tanh approximation.
    func testVLBTermClosedForms() throws {
        let o = options()
        let acp = o.noiseSchedule.alphasCumprod.map(Double.init)
        let shape = Shape(1, 1, 2, 2)
        let x0: [Float] = [0.2, -0.4, 0.6, 0.0]
        let eps: [Float] = [0.3, -1.1, 0.5, 1.7]
        for backend in try testBackends() {
            for t in [3, 11, 19] {
                let a = acp[t], aPrev = acp[t - 1], beta = 1 - a / aPrev
                let tilde = beta * (1 - aPrev) / (1 - a), c1 = beta * aPrev.squareRoot() / (1 - a)
                let xt = zip(x0, eps).map { Float(a.squareRoot() * Double($0) + (1 - a).squareRoot() * Double($1)) }
                let exactEps = zip(xt, x0).map { Float((Double($0) - a.squareRoot() * Double($1)) / (1 - a).squareRoot()) }
                let ln2 = log(2.0)
                let zero = try vlb(backend, o, x0: x0, xt: xt, m: exactEps, v: [-1, -1, -1, -1], t: [Float(t)], shape: shape)
                XCTAssertEqual(Double(zero), 0, accuracy: 2e-5, "\(backend.name) t=\(t): exact mean and variance")
                let large = try vlb(backend, o, x0: x0, xt: xt, m: exactEps, v: [1, 1, 1, 1], t: [Float(t)], shape: shape)
                let expected = 0.5 * (-1 + log(beta) - log(tilde) + tilde / beta) / ln2
                XCTAssertEqual(Double(large), expected, accuracy: 2e-5 + 1e-4 * expected, "\(backend.name) t=\(t): σ² = β")
                let delta: Float = 0.25
                let off = try vlb(backend, o, x0: x0, xt: xt, m: exactEps.map { $0 + delta }, v: [-1, -1, -1, -1], t: [Float(t)], shape: shape)
                let d2 = c1 * c1 * (1 / a - 1) * Double(delta * delta)
                XCTAssertEqual(Double(off), d2 / (2 * tilde) / ln2, accuracy: 1e-4 * d2 / tilde + 2e-5, "\(backend.name) t=\(t): mean off by δ")
            }
            // Decoder: the model's mean on the pixel (x̂0 = x0), σ² = β̃_1 (v = −1, the clipped value at t = 0).
            let a0 = acp[0]
            let xt = zip(x0, eps).map { Float(a0.squareRoot() * Double($0) + (1 - a0).squareRoot() * Double($1)) }
            let exactEps = zip(xt, x0).map { Float((Double($0) - a0.squareRoot() * Double($1)) / (1 - a0).squareRoot()) }
            let nll = try vlb(backend, o, x0: x0, xt: xt, m: exactEps, v: [-1, -1, -1, -1], t: [0], shape: shape)
            let sigma = (acp[1] / acp[0] < 1 ? (1 - acp[1] / acp[0]) * (1 - acp[0]) / (1 - acp[1]) : 0).squareRoot()
            func cdf(_ x: Double) -> Double { 0.5 * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x))) }
            let u = 1 / (255 * sigma)
            XCTAssertEqual(Double(nll), -log(2 * cdf(u) - 1) / log(2.0), accuracy: 1e-4, "\(backend.name) decoder")
        }
    }

    /// The hybrid loss and its gradient with respect to the model output match improved-diffusion's
    /// training_losses (LEARNED_RANGE, RESCALED_MSE) and torch's autograd (scripts/make-training-loss-fixtures).
    func testHybridLossMatchesImprovedDiffusion() throws {
        let data = try Data(contentsOf: try fixture("training-loss/hybrid.json"))
        let cases = try JSONSerialization.jsonObject(with: data) as! [[String: Any]]
        XCTAssertEqual(cases.count, 2)
        for c in cases {
            let name = c["name"] as! String
            let dims = c["shape"] as! [Int]
            let shape = Shape(dims[0], dims[1], dims[2], dims[3])
            let outShape = Shape(dims[0], 2 * dims[1], dims[2], dims[3])
            func floats(_ key: String) -> [Float] { (c[key] as! [NSNumber]).map(\.floatValue) }
            var o = options(timesteps: c["timesteps"] as! Int, prediction: c["prediction"] as! String == "epsilon" ? .epsilon : .sample)
            o.betaStart = (c["beta_start"] as! NSNumber).doubleValue
            o.betaEnd = (c["beta_end"] as! NSNumber).doubleValue
            o.sampleLossWeighting = "none"   // improved-diffusion's START_X loss is the plain x₀-MSE
            o.model.inChannels = dims[1]
            o.model.outChannels = 2 * dims[1]
            XCTAssertNil(o.lossWeights(o.noiseSchedule))
            for backend in try testBackends() {
                let g = Graph()
                let x0 = g.input("x0", shape), xt = g.input("xt", shape), target = g.input("target", shape)
                let t = g.input("t", Shape(dims[0])), w = g.input("w", Shape(dims[0]))
                let out = g.input("out", outShape)
                let loss = o.loss(output: out, x0: x0, noised: [xt, target, t, w], in: g)
                let grad = g.gradients(of: loss, wrt: [out])[0]
                let e = try Executor(graph: g, outputs: [loss, grad], backend: backend)
                let targetValues = o.prediction == .epsilon ? floats("noise") : floats("x0")
                let ts = (c["t"] as! [Int]).map(Float.init)
                for (leaf, values) in [(x0, floats("x0")), (xt, floats("x_t")), (target, targetValues), (t, ts),
                                       (w, [Float](repeating: 1, count: dims[0])), (out, floats("output"))] {
                    e.bind(leaf, to: try backend.makeBuffer(values))
                }
                try e.run(step: 0)
                let value = try backend.read(e.buffer(loss), count: 1)[0]
                let expected = (c["loss"] as! NSNumber).floatValue
                // The fixture is float64; the kernels are float32, and the decoder's bins at t = 0 hold
                // probabilities down to ~1e-5 whose difference of two CDFs keeps only ~3 digits there
                // (as in improved-diffusion's own float32 training): 1e-4 relative.
                XCTAssertEqual(value, expected, accuracy: 1e-4 * max(1, abs(expected)), "\(name) on \(backend.name): loss")
                let dOut = try backend.read(e.buffer(grad), count: outShape.count)
                // 1e-7: the same float32 decoder bins as the loss (above).
                XCTAssertLessThan(nmse(dOut, floats("grad_output")), 1e-7, "\(name) on \(backend.name): d loss / d output")
            }
        }
    }

    /// The stop-gradient: the gradient of the hybrid loss with respect to the mean half of the output
    /// is that of L_simple alone (bit for bit), although the VLB term does depend on the mean; the
    /// variance half gets its gradient from L_vlb alone.
    func testMeanGradientComesFromLSimpleAlone() throws {
        let o = options()
        let (n, c, hw) = (3, o.model.inChannels, 4)
        let shape = Shape(n, c, hw, hw), outShape = Shape(n, 2 * c, hw, hw)
        var random = SplitMix64(seed: 5)
        func normals(_ k: Int) -> [Float] { (0..<k).map { _ in Float(random.uniform() * 2 - 1) } }
        let x0v = normals(shape.count).map { (($0 * 127.5).rounded()) / 127.5 }
        let values: [[Float]] = [x0v, normals(shape.count), normals(shape.count), [0, 5, 13], [1, 1, 1], normals(outShape.count)]
        let backend = try testBackends()[0]
        func run(_ build: (Graph, [Value]) -> Value) throws -> (loss: Float, grad: [Float]) {
            let g = Graph()
            let leaves = [g.input("x0", shape), g.input("xt", shape), g.input("target", shape), g.input("t", Shape(n)),
                          g.input("w", Shape(n)), g.input("out", outShape)]
            let loss = build(g, leaves)
            let grad = g.gradients(of: loss, wrt: [leaves[5]])[0]
            let e = try Executor(graph: g, outputs: [loss, grad], backend: backend)
            for (leaf, v) in zip(leaves, values) { e.bind(leaf, to: try backend.makeBuffer(v)) }
            try e.run(step: 0)
            return (try backend.read(e.buffer(loss), count: 1)[0], try backend.read(e.buffer(grad), count: outShape.count))
        }
        let hybrid = try run { g, x in o.loss(output: x[5], x0: x[0], noised: [x[1], x[2], x[3], x[4]], in: g) }
        let simple = try run { g, x in g(.mse(weighted: false), g(.sliceChannels(start: 0, count: c), x[5]), x[2]) }
        let per = c * hw * hw
        for image in 0..<n {
            let mean = (image * 2 * per)..<(image * 2 * per + per), variance = (image * 2 * per + per)..<((image + 1) * 2 * per)
            XCTAssertEqual(Array(hybrid.grad[mean]), Array(simple.grad[mean]), "image \(image): the mean's gradient is L_simple's")
            XCTAssertEqual(Array(simple.grad[variance]), [Float](repeating: 0, count: per))
            XCTAssertGreaterThan(hybrid.grad[variance].map(abs).max()!, 0, "image \(image): v learns from L_vlb")
        }
        // The VLB term does depend on the mean (so the stop is what keeps its gradient out).
        var moved = values
        moved[5] = values[5].enumerated().map { i, v in (i % (2 * per)) < per ? v + 0.5 : v }
        let g = Graph()
        let leaves = [g.input("x0", shape), g.input("xt", shape), g.input("m", shape), g.input("v", shape), g.input("t", Shape(n))]
        let table = g.constant(o.vlbTable, Shape(6, o.timesteps))
        let term = g(.vlbTerm(VLBTerm(timesteps: o.timesteps, scale: 1)), leaves[0], leaves[1], leaves[2], leaves[3], leaves[4], table)
        let e = try Executor(graph: g, outputs: [term], backend: backend)
        func halves(_ out: [Float]) -> ([Float], [Float]) {
            ((0..<n).flatMap { out[($0 * 2 * per)..<($0 * 2 * per + per)] }, (0..<n).flatMap { out[($0 * 2 * per + per)..<(($0 + 1) * 2 * per)] })
        }
        var terms: [Float] = []
        for out in [values[5], moved[5]] {
            let (m, v) = halves(out)
            for (leaf, vals) in zip(leaves, [values[0], values[1], m, v, values[3]]) { e.bind(leaf, to: try backend.makeBuffer(vals)) }
            try e.run(step: 0)
            terms.append(try backend.read(e.buffer(term), count: 1)[0])
        }
        XCTAssertGreaterThan(abs(terms[1] - terms[0]), 1e-3 * abs(terms[0]), "L_vlb depends on the mean")
    }

    /// A learned-variance run: one training step agrees across backends, the pipeline says
    /// variance_type learned_range, and the model samples with its own variance.
    func testLearnedVarianceTrainingStep() throws {
        var o = tinyOptions()
        o.learnSigma = true
        o.model.outChannels = 2 * o.model.inChannels
        try o.validate(.flags)
        XCTAssertEqual(o.schedulerSettings.json["variance_type"] as? String, "learned_range")
        let data = syntheticData()
        var losses: [Float] = []
        for backend in try testBackends() {
            let trainer = try Trainer(backend: backend, options: o)
            try trainer.trainStep(batch: data.batch(step: 1, size: o.batch))
            try trainer.trainStep(batch: data.batch(step: 2, size: o.batch))
            losses.append(try trainer.readLossAndGradientNorm().loss)
            XCTAssertTrue(losses.last!.isFinite)
        }
        if losses.count == 2 { XCTAssertEqual(losses[0], losses[1], accuracy: 1e-5 * max(1, abs(losses[0]))) }
        var plain = o
        plain.learnSigma = nil
        XCTAssertThrowsError(try plain.validate(.flags)) { XCTAssertTrue("\($0)".contains("--learn-sigma"), "\($0)") }
    }
}
