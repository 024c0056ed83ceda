import DDPM
import DDPMCore
import DDPMCPU
import Foundation
import XCTest

/// ddpm-cl's InceptionV3 against pytorch-fid's own FID Inception module (Fixtures/inception, made by
/// scripts/make-inception-fixture): both run the same deterministic stand-in weights
/// (InceptionTestWeights, the formula of scripts/inception_test_weights.py) on two 32×32 images.
final class InceptionTests: XCTestCase {
    /// pytorch-fid's features, as float32 on the CPU (MKL-DNN convolutions, BatchNorm unfolded), vs
    /// ours (BatchNorm folded in double, im2col/direct convolutions, other summation orders): each of
    /// the 94 layers adds float32 rounding of relative size ~1e-6 over sums of up to 4 032 terms; measured
    /// max abs difference 1.9e-6 (CPU reference) and 2.1e-6 (OpenCL on PoCL) on features of magnitude up to 3 (mean 0.3). 1e-4 leaves
    /// room for other drivers' rounding and still catches any wrong block: the two images' features
    /// differ by 0.06 on average, a wrong pool or padding moves them by more than 1e-2.
    static let tolerance: Float = 1e-4

    func testFeaturesMatchPytorchFIDOnEveryBackend() throws {
        let images = try readNPY(try fixture("inception/images.npy"))
        let expected = try readNPY(try fixture("inception/features.npy"))
        XCTAssertEqual(images.shape, [2, 3, 32, 32])
        XCTAssertEqual(expected.shape, [2, 2048])
        let weights = try InceptionWeights.fold(InceptionTestWeights.tensors(), source: "test weights")
        let rgb = ImageSet(images: images.values.map { $0 / 127.5 - 1 }, count: 2, channels: 3, size: 32, description: "fixture")
        // The second image is gray (three equal channels): as a 1-channel image it is replicated to RGB.
        let gray = ImageSet(images: Array(rgb.images[(3 * 1024)..<(4 * 1024)]), count: 1, channels: 1, size: 32, description: "gray")
        for backend in try testBackends() {
            // The CPU reference takes ~40 s per 299×299 image on this 2-core machine: it checks the
            // first image only; OpenCL checks both in one batch and the gray one alone.
            let isReference = backend is CPUBackend
            let set = isReference ? rgb.prefix(1) : rgb
            let features = try InceptionFeatures(backend: backend, weights: weights, size: 32, batch: set.count).features(set).features
            let worst = zip(features.values, expected.values).map { abs(Float($0) - $1) }.max()!
            XCTAssertLessThanOrEqual(worst, Self.tolerance, "\(backend.name): max abs difference from pytorch-fid")
            print("inception fixture on \(backend.name): max abs difference \(worst)")
            if isReference { continue }
            let one = try InceptionFeatures(backend: backend, weights: weights, size: 32, batch: 1).features(gray).features
            let worstGray = zip(one.values, expected.values[2048...]).map { abs(Float($0) - $1) }.max()!
            XCTAssertLessThanOrEqual(worstGray, Self.tolerance, "\(backend.name): gray image replicated to RGB")
        }
    }

    /// The Swift formula gives the same numbers as the Python one (its first three values, printed
    /// by scripts/make-inception-fixture): a mismatch here points at the weights, not the network.
    func testWeightsFollowTheSharedFormula() {
        let w = InceptionTestWeights.tensor("Conv2d_1a_3x3.conv.weight", Shape(32, 3, 3, 3))
        XCTAssertEqual(Array(w.prefix(3)), [-0.15198442339897156, 0.12142249196767807, -0.30463361740112305])
        XCTAssertEqual(InceptionWeights.fileTensors.count, 94 * 5)
        XCTAssertEqual(InceptionV3.architecture.count, 94)
    }

    /// Missing, corrupt and wrong-shaped files are refused with a message that says how to make one.
    func testBadWeightFilesAreRefusedWithAFix() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("inception-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func message(_ url: URL) -> String {
            do { _ = try InceptionWeights.read(url); return "accepted" } catch let e as UserError { return e.message } catch { return "\(error)" }
        }
        let missing = message(dir.appendingPathComponent("none.safetensors"))
        XCTAssert(missing.contains("no Inception weights") && missing.contains("scripts/convert-inception"), missing)

        let corrupt = dir.appendingPathComponent("corrupt.safetensors")
        try Data([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).write(to: corrupt)
        let c = message(corrupt)
        XCTAssert(c.contains("corrupt") && c.contains("scripts/convert-inception"), c)

        var tensors = InceptionTestWeights.tensors()
        let wrongShape = dir.appendingPathComponent("shape.safetensors")
        tensors["Mixed_6b.branch7x7_2.conv.weight"] = SafeTensors.Entry(shape: [128, 128, 7, 1], values: tensors["Mixed_6b.branch7x7_2.conv.weight"]!.values)
        try writeSafetensors(tensors, to: wrongShape)
        let s = message(wrongShape)
        XCTAssert(s.contains("Mixed_6b.branch7x7_2.conv.weight has shape [128, 128, 7, 1]") && s.contains("[128, 128, 1, 7]")
                  && s.contains("scripts/convert-inception"), s)

        tensors["Mixed_6b.branch7x7_2.conv.weight"] = nil
        let incomplete = dir.appendingPathComponent("incomplete.safetensors")
        try writeSafetensors(tensors, to: incomplete)
        let i = message(incomplete)
        XCTAssert(i.contains("no tensor Mixed_6b.branch7x7_2.conv.weight"), i)
    }
}

/// The deterministic stand-in weights (scripts/inception_test_weights.py has the formula).
enum InceptionTestWeights {
    static func fnv1a(_ name: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in name.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return h
    }

    static func uniform(_ hash: UInt64, _ i: Int) -> Double {
        var z = hash &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15 &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / Double(UInt64(1) << 53)
    }

    static func tensor(_ name: String, _ shape: Shape) -> [Float] {
        let h = fnv1a(name)
        return (0..<shape.count).map { i -> Float in
            let u = uniform(h, i)
            if name.hasSuffix("conv.weight") {
                let fanIn = shape.count / shape[0]
                return Float((2 * u - 1) * (6.0 / Double(fanIn)).squareRoot())
            }
            if name.hasSuffix("bn.weight") || name.hasSuffix("bn.running_var") { return Float(0.8 + 0.4 * u) }
            return Float(0.1 * (2 * u - 1))
        }
    }

    static func tensors() -> [String: SafeTensors.Entry] {
        var out: [String: SafeTensors.Entry] = [:]
        for (name, shape) in InceptionWeights.fileTensors {
            out[name] = SafeTensors.Entry(shape: shape.dims, values: tensor(name, shape))
        }
        return out
    }
}

/// `fid --features inception` end to end in the library: sources of different sizes are read at the
/// larger one, the report names the network and has no class histogram.
final class InceptionFIDTests: XCTestCase {
    func testFIDWithInceptionNamesTheNetworkAndReadsBothSetsAtOneSize() throws {
        // OpenCL only: the CPU reference takes ~40 s per image (InceptionTests checks it on one). One
        // evaluation: FID's 2048×2048 eigen-decompositions and products take ~1 minute here.
        guard let cl = try sharedOpenCL() else { throw XCTSkip("no OpenCL device") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("inception-fid-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = dir.appendingPathComponent("a.npy"), b = dir.appendingPathComponent("b.npy")
        let grayPixels: [UInt8] = (0..<432).map { (i: Int) -> UInt8 in UInt8((i * 37) % 256) }
        let rgbPixels: [UInt8] = (0..<2304).map { (i: Int) -> UInt8 in UInt8((i * 11) % 256) }
        try writeNPY(uint8: grayPixels, shape: [3, 1, 12, 12], to: a)
        try writeNPY(uint8: rgbPixels, shape: [3, 3, 16, 16], to: b)
        let (sa, sb) = (ImageSource.npy(a), ImageSource.npy(b))
        XCTAssertEqual(try InceptionFeatures.commonSize(sa, sb), 16)
        let weights = try InceptionWeights.fold(InceptionTestWeights.tensors(), source: "test weights")
        let network = try InceptionFeatures(backend: cl, weights: weights, size: 16, batch: 2)
        var settings = FIDSettings()
        settings.kidSubsets = 2
        settings.kidSubsetSize = 3
        let report = try FIDEvaluation.evaluate(sa, sb, network: network, settings: settings)
        XCTAssertEqual(report.featureDimension, 2048)
        XCTAssertEqual(report.a.count, 3)
        XCTAssert(report.fid > 0 && report.fid.isFinite, "\(report.fid)")
        let text = report.text(featureFile: "w.safetensors")
        XCTAssert(text.contains("features: 2048-d pool3 of pytorch-fid's FID InceptionV3 w.safetensors (images read at 16×16"), text)
        XCTAssertFalse(text.contains("predicted classes"), text)
        XCTAssert(try report.jsonText().contains("\"features\" : \"inception\""))
    }
}
