import DDPM
import DDPMCore
import DDPMCPU
import Foundation
import XCTest

/// The domain classifier: its graph, one training step on both backends, learning a toy task.
final class ClassifierTests: XCTestCase {
    /// Toy data: class k is a bright square in quadrant k of a 16×16 image, on noise.
    func toySet(count: Int, seed: UInt64) -> ImageSet {
        var r = SplitMix64(seed: seed)
        var images: [Float] = [], labels: [Int] = []
        for _ in 0..<count {
            let k = Int(r.next() % 4)
            labels.append(k)
            for y in 0..<16 {
                for x in 0..<16 {
                    let inside = (y / 8) * 2 + (x / 8) == k && (2..<6).contains(y % 8) && (2..<6).contains(x % 8)
                    images.append((inside ? 0.8 : -0.8) + 0.3 * Float(r.uniform() - 0.5))
                }
            }
        }
        return ImageSet(images: images, count: count, channels: 1, size: 16, labels: labels,
                        classNames: ["a", "b", "c", "d"], description: "toy")
    }

    let config = ClassifierConfig(sampleSize: 16, inChannels: 1, classNames: ["a", "b", "c", "d"],
                                  blockOutChannels: [8, 16], layersPerBlock: 1, normNumGroups: 4)

    func testGraphShapesAndParameterNames() {
        let net = EncoderClassifier(config: config, batch: 3)
        XCTAssertEqual(net.graph.shape(net.features).dims, [3, 16])
        XCTAssertEqual(net.graph.shape(net.logits).dims, [3, 4])
        let names = net.graph.parameters.map(\.name)
        XCTAssert(names.contains("down_blocks.0.resnets.0.conv1.weight"))
        XCTAssert(names.contains("mid_block.resnets.1.norm2.bias"))
        XCTAssertEqual(names.last, "out.linear.bias")
        XCTAssertFalse(names.contains { $0.hasPrefix("up_blocks") })
    }

    func testGradientsAgreeAcrossBackends() throws {
        let set = toySet(count: 16, seed: 1)
        var options = ClassifierTrainingOptions()
        options.batch = 16
        var grads: [[String: [Float]]] = []
        for backend in try testBackends() {
            let trainer = try ClassifierTrainer(backend: backend, config: config, options: options)
            try trainer.trainStep(images: set.images, labels: set.labels!)
            grads.append(try trainer.gradientValues())
        }
        guard grads.count == 2 else { return }
        for (name, g) in grads[0].sorted(by: { $0.key < $1.key }) {
            XCTAssertLessThan(nmse(grads[1][name]!, g), 1e-6, name)
        }
    }

    func testOneStepAgreesAcrossBackendsAndLossFalls() throws {
        let set = toySet(count: 64, seed: 1)
        var options = ClassifierTrainingOptions()
        options.batch = 16
        options.warmup = 0
        var firstLosses: [Float] = []
        var weightsAfter: [[Float]] = []
        for backend in try testBackends() {
            let trainer = try ClassifierTrainer(backend: backend, config: config, options: options)
            var losses: [Float] = []
            for step in 0..<16 {
                let i = (step % 4) * 16
                let batch = set.selecting(Array(i..<(i + 16)))
                try trainer.trainStep(images: batch.images, labels: batch.labels!)
                losses.append(try trainer.readLoss())
            }
            XCTAssert(losses.allSatisfy(\.isFinite), "\(backend.name): \(losses)")
            // Chance is ln 4 ≈ 1.386; the last steps must be clearly below it.
            XCTAssertLessThan(losses.suffix(4).reduce(0, +) / 4, 0.9 * log(4), "\(backend.name): \(losses)")
            firstLosses.append(losses[0])
            weightsAfter.append(try trainer.weights().values["out.linear.weight"]!)
        }
        if firstLosses.count == 2 {
            XCTAssertEqual(firstLosses[0], firstLosses[1], accuracy: 1e-4 * abs(firstLosses[0]))
            XCTAssertLessThan(nmse(weightsAfter[1], weightsAfter[0]), 1e-6)
        }
    }
}
