import DDPM
import DDPMCore
import DDPMCPU
import DDPMOpenCL
import Foundation
import XCTest

/// Files written by scripts/make-fixtures from diffusers (see Fixtures/README.md).
func fixture(_ path: String) throws -> URL {
    guard let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
        throw XCTSkip("fixtures missing from the test bundle")
    }
    return root.appendingPathComponent(path)
}

/// The backends a test should agree on: the CPU reference, and the first OpenCL device when there
/// is one (required when DDPM_REQUIRE_CL=1).
func testBackends() throws -> [Backend] {
    var backends: [Backend] = [CPUBackend()]
    if let cl = try sharedOpenCL() { backends.append(cl) }
    return backends
}

private var cachedOpenCL: OpenCLBackend??

func sharedOpenCL() throws -> OpenCLBackend? {
    if let cached = cachedOpenCL { return cached }
    let required = ProcessInfo.processInfo.environment["DDPM_REQUIRE_CL"] == "1"
    let device = (try? CLDevices.all())?.first
    if device == nil && required { XCTFail("DDPM_REQUIRE_CL=1 but no OpenCL device") }
    let backend = try device.map { try OpenCLBackend(device: $0) }
    cachedOpenCL = .some(backend)
    return backend
}

/// Σ(a−b)²/Σb²
func nmse(_ a: [Float], _ b: [Float]) -> Double {
    var d = 0.0, n = 0.0
    for (x, y) in zip(a, b) { d += Double(x - y) * Double(x - y); n += Double(y) * Double(y) }
    return n > 0 ? d / n : d
}

/// 12 synthetic 8×8 images: bright squares at different places on a dark background.
func syntheticData(seed: UInt64 = 3) -> TrainingData {
    var images = [Float](repeating: -1, count: 12 * 64)
    for n in 0..<12 {
        let (top, left) = (n % 4, (n / 4) * 2)
        for y in top..<(top + 4) { for x in left..<(left + 3) { images[n * 64 + y * 8 + x] = 1 } }
    }
    return TrainingData(images: images, count: 12, channels: 1, size: 8, description: "synthetic", seed: seed)
}

func tinyOptions(dropout: Float = 0) -> TrainingOptions {
    var config = ModelPreset.tiny.config
    config.dropout = dropout
    var o = TrainingOptions(model: config)
    o.batch = 4
    o.learningRate = 1e-3
    o.warmupSteps = 2
    o.seed = 7
    return o
}
