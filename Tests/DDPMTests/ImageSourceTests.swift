import DDPM
import DDPMCore
import DDPMCPU
import Foundation
import XCTest

/// The inputs of `ddpm-cl fid` and `ddpm-cl classifier`, and the FID pipeline end to end with a
/// small untrained classifier (no minutes of training inside the tests).
final class ImageSourceTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("ddpm-imagesource-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func testUInt8AndFloatNPYGiveTheSameImages() throws {
        let bytes: [UInt8] = (0..<(3 * 8 * 8)).map { UInt8(($0 * 37) % 256) }
        let u8 = dir.appendingPathComponent("u8.npy"), f32 = dir.appendingPathComponent("f32.npy")
        try writeNPY(uint8: bytes, shape: [3, 1, 8, 8], to: u8)
        try writeNPY(float32: bytes.map { Float($0) / 127.5 - 1 }, shape: [3, 1, 8, 8], to: f32)
        let a = try ImageSource.parse(u8.path).load(size: 8, channels: 1)
        let b = try ImageSource.parse(f32.path).load(size: 8, channels: 1)
        XCTAssertEqual(a.count, 3)
        XCTAssertEqual(a.images, b.images)
        XCTAssertEqual(a.images[1], Float(37) / 127.5 - 1)
        // Smaller images are padded with the background (−1), gray is repeated for RGB.
        let padded = try ImageSource.parse(u8.path).load(size: 12, channels: 3, limit: 2)
        XCTAssertEqual(padded.count, 2)
        XCTAssertEqual(padded.images[0], -1)
        XCTAssertEqual(padded.images[2 * 12 + 2], a.images[0])
        XCTAssertEqual(padded.images[144 + 2 * 12 + 2], a.images[0])
    }

    func testBadInputsAreClearErrors() throws {
        let hwc = dir.appendingPathComponent("hwc.npy")
        try writeNPY(uint8: [UInt8](repeating: 0, count: 2 * 8 * 8 * 3), shape: [2, 8, 8, 3], to: hwc)
        XCTAssertThrowsError(try ImageSource.parse(hwc.path).load(size: 8, channels: 1)) { error in
            XCTAssert("\(error)".contains("N×H×W×C"), "\(error)")
        }
        let wide = dir.appendingPathComponent("wide.npy")
        try writeNPY(float32: [0, 2, 0, 0], shape: [1, 1, 2, 2], to: wide)
        XCTAssertThrowsError(try ImageSource.parse(wide.path).load(size: 2, channels: 1)) { error in
            XCTAssert("\(error)".contains("[-1, 1]"), "\(error)")
        }
        XCTAssertThrowsError(try ImageSource.parse(dir.appendingPathComponent("missing").path))
        XCTAssertThrowsError(try ImageSource.parse("fashion-mnist:valid"))
        let run = dir.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        try Data().write(to: run.appendingPathComponent(Checkpoint.fileName))
        XCTAssertThrowsError(try ImageSource.parse(run.path)) { error in XCTAssert("\(error)".contains("no samples"), "\(error)") }
        XCTAssertEqual(try ImageSource.parse("fashion-mnist"), .fashionMNIST(.train))
        XCTAssertEqual(try ImageSource.parse("fashion-mnist:test"), .fashionMNIST(.test))
    }

    func testRunDirectoryReadsItsNewestSamplesAndFoldersTheirClasses() throws {
        let run = dir.appendingPathComponent("run")
        let samples = run.appendingPathComponent("samples/ddpm-100-seed0")
        try FileManager.default.createDirectory(at: samples, withIntermediateDirectories: true)
        try Data().write(to: run.appendingPathComponent(Checkpoint.fileName))
        try writeNPY(uint8: [UInt8](repeating: 255, count: 2 * 16), shape: [2, 1, 4, 4], to: samples.appendingPathComponent("samples.npy"))
        XCTAssertEqual(try ImageSource.parse(run.path), .npy(samples.appendingPathComponent("samples.npy")))
        XCTAssertEqual(try ImageSource.parse(samples.path), .npy(samples.appendingPathComponent("samples.npy")))

        let folder = dir.appendingPathComponent("classes")
        for (k, name) in ["cat", "dog"].enumerated() {
            let sub = folder.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
            for i in 0..<(k + 2) {
                try writePNG(Image8(width: 4, height: 4, channels: 1, pixels: [UInt8](repeating: UInt8(50 * k + i), count: 16)),
                             to: sub.appendingPathComponent("\(i).png"))
            }
        }
        let set = try ImageSource.parse(folder.path).load(size: 4, channels: 1)
        XCTAssertEqual(set.labels, [0, 0, 1, 1, 1])
        XCTAssertEqual(set.classNames, ["cat", "dog"])
    }

    func testFIDPipelineEndToEndWithAnUntrainedClassifier() throws {
        let config = ClassifierConfig(sampleSize: 8, inChannels: 1, classNames: ["a", "b", "c"], blockOutChannels: [8, 16],
                                      layersPerBlock: 1, normNumGroups: 4)
        var weights = Weights(graph: EncoderClassifier(config: config, batch: 1).graph)
        weights.initialize(seed: 3)
        let classifier = TrainedClassifier(config: config, weights: weights, heldOutAccuracy: 0.5, heldOutDescription: "none",
                                           trainingDescription: "none", steps: 0)
        let file = dir.appendingPathComponent("c.safetensors")
        try classifier.write(to: file)
        let loaded = try TrainedClassifier.read(file)
        XCTAssertEqual(loaded.fingerprint, classifier.fingerprint)
        var r = SplitMix64(seed: 5)
        func set(_ name: String, count: Int, bright: Bool) throws -> ImageSource {
            let bytes = (0..<(count * 64)).map { _ in UInt8(Int(r.next() % 128) + (bright ? 128 : 0)) }
            let url = dir.appendingPathComponent(name)
            try writeNPY(uint8: bytes, shape: [count, 1, 8, 8], to: url)
            return .npy(url)
        }
        let a = try set("a.npy", count: 150, bright: false), a2 = try set("a2.npy", count: 150, bright: false)
        let b = try set("b.npy", count: 120, bright: true)
        var settings = FIDSettings()
        settings.kidSubsets = 5
        settings.kidSubsetSize = 50
        let backend = CPUBackend()
        let same = try FIDEvaluation.evaluate(a, a, classifier: loaded, backend: backend, settings: settings)
        XCTAssertEqual(same.fid, 0, accuracy: 1e-6)
        let near = try FIDEvaluation.evaluate(a, a2, classifier: loaded, backend: backend, settings: settings)
        let far = try FIDEvaluation.evaluate(a, b, classifier: loaded, backend: backend, settings: settings)
        XCTAssertGreaterThan(far.fid, 5 * near.fid)
        XCTAssertGreaterThan(far.kid.mean, near.kid.mean)
        XCTAssertEqual(far.a.histogram.reduce(0, +), 150)
        XCTAssertEqual(far.b.histogram.reduce(0, +), 120)
        XCTAssert(far.text(featureFile: file.path).contains("held-out accuracy 50.00%"))
        // Per-class FID: the rows of B's images of one class, as if B held only them.
        let folder = dir.appendingPathComponent("fid-classes"), dogs = dir.appendingPathComponent("only-dogs/dog")
        for (k, name) in ["cat", "dog"].enumerated() {
            let sub = folder.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: dogs, withIntermediateDirectories: true)
            for i in 0..<(3 + k) {
                let image = Image8(width: 8, height: 8, channels: 1, pixels: (0..<64).map { UInt8((($0 * 7 + i * 31) % 200) + 40 * k) })
                try writePNG(image, to: sub.appendingPathComponent("\(i).png"))
                if name == "dog" { try writePNG(image, to: dogs.appendingPathComponent("\(i).png")) }
            }
        }
        var perClass = settings
        perClass.kidSubsetSize = 4
        perClass.onlyClass = "Dog"
        let byName = try FIDEvaluation.evaluate(a, .folder(folder), classifier: loaded, backend: backend, settings: perClass)
        perClass.onlyClass = "1"
        let byIndex = try FIDEvaluation.evaluate(a, .folder(folder), classifier: loaded, backend: backend, settings: perClass)
        perClass.onlyClass = nil
        let alone = try FIDEvaluation.evaluate(a, .folder(dogs.deletingLastPathComponent()), classifier: loaded, backend: backend, settings: perClass)
        XCTAssertEqual(byName.b.count, 4)
        XCTAssert(byName.b.description.contains("class 1 (dog)"), byName.b.description)
        XCTAssertEqual(byName.fid, byIndex.fid)
        XCTAssertEqual(byName.fid, alone.fid, accuracy: 1e-9 * max(1, alone.fid))
        XCTAssertEqual(byName.a.count, 150, "A has no labels: taken whole")
        perClass.onlyClass = "cat"
        let cats = try FIDEvaluation.evaluate(.folder(folder), .folder(folder), classifier: loaded, backend: backend, settings: perClass)
        XCTAssertEqual([cats.a.count, cats.b.count], [3, 3], "labelled sets on both sides are both filtered")
        perClass.onlyClass = "cow"
        XCTAssertThrowsError(try FIDEvaluation.evaluate(a, .folder(folder), classifier: loaded, backend: backend, settings: perClass)) {
            XCTAssert("\($0)".contains("0 cat, 1 dog"), "\($0)")
        }
        XCTAssertThrowsError(try FIDEvaluation.evaluate(a, b, classifier: loaded, backend: backend, settings: perClass)) {
            XCTAssert("\($0)".contains("no class labels"), "\($0)")
        }
        // The batch padding does not change features: batch 100 vs 7 give the same rows.
        let s = try a.load(size: 8, channels: 1)
        let f100 = try ClassifierFeatures(backend: backend, classifier: loaded, batch: 100).run(s)
        let f7 = try ClassifierFeatures(backend: backend, classifier: loaded, batch: 7).run(s)
        XCTAssertEqual(f100.features, f7.features)
    }
}
