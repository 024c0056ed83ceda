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
