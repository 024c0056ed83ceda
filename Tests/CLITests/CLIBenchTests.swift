import Foundation
import XCTest

/// `bench` and `tune` refuse impossible sizes with a message naming the flag (no trace, no nonsense figures).
final class CLIBenchTests: XCTestCase {
    func testBenchRefusesImpossibleSizes() throws {
        let tiny = ["--model", "tiny", "--device", "cpu-reference"]
        try expectUserError(["bench", "--batch", "0"] + tiny, mentioning: ["--batch 0"])
        try expectUserError(["bench", "--batch", "-3"] + tiny, mentioning: ["--batch -3"])
        try expectUserError(["bench", "--batch", "2", "--steps", "0", "--device-batch", "0"] + tiny, mentioning: ["--steps 0"])
        try expectUserError(["bench", "--batch", "2", "--device-batch", "-1"] + tiny, mentioning: ["--device-batch -1"])
        try expectUserError(["bench", "--batch", "1000000000"] + tiny, mentioning: ["--batch 1000000000", "fits"], seconds: 30)
    }

    /// On an OpenCL device bench ends with the FMA peak and the 1024³ GEMM, also in its JSON, and the
    /// JSON file appears whole (written to a temp file, then renamed).
    func testBenchReportsTheDevicePeak() throws {
        let json = scratchFolder("bench-peak").appendingPathComponent("bench.json")
        let r = try runCLI(["bench", "--model", "tiny", "--batch", "2", "--steps", "1", "--device-batch", "2", "--json", json.path])
        if ProcessInfo.processInfo.environment["DDPM_REQUIRE_CL"] != "1" && r.status == 2 { throw XCTSkip("no OpenCL here") }
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssert(r.out.contains("device peak: FMA ") && r.out.contains("GEMM 1024^3"), r.out)
        let figures = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
        for key in ["fma_peak_gflops", "gemm_1024_gflops", "train_images_per_second", "sample_images_per_second_per_step"] {
            let value = try XCTUnwrap(figures[key] as? Double, "\(key) in \(figures)")
            XCTAssert(value > 0 && value.isFinite, "\(key) = \(value)")
        }
    }

    func testTuneNeedsAnOpenCLDevice() throws {
        try expectUserError(["tune", "--device", "cpu-reference"], mentioning: ["OpenCL device"])
    }
}
