import DDPMOpenCL
import XCTest

/// The FMA peak that `bench` reports is only worth its number if the kernel does the multiply-adds
/// it is timed for: every work-item's sum must equal the same recurrence computed in Swift.
final class DevicePeakTests: XCTestCase {
    func testFMAPeakKernelDoesItsWorkOnBothProfiles() throws {
        _ = try requireOpenCLDevice()  // a skip without OpenCL, a failure under DDPM_REQUIRE_CL=1
        for named in DeviceProfile.parityProfiles {  // work-groups of one (CPU) and of 64 (GPU)
            let name = named.name
            let backend = try requireOpenCLBackend(named)
            for width in [8, 16] {
                let items = 128, iterations = 300
                let run = try backend.runFMAPeak(vectorWidth: width, items: items, iterations: iterations)
                XCTAssertEqual(run.sums.count, items * width)
                for id in 0..<items {
                    let expected = OpenCLBackend.fmaPeakExpected(id: id, iterations: iterations)
                    XCTAssertEqual(run.sums[id * width], expected, "\(name) float\(width) work-item \(id)")
                    XCTAssertEqual(run.sums[id * width + width - 1], expected, "\(name) float\(width) work-item \(id), last lane")
                }
            }
        }
        // The recurrence moves: a kernel that skipped its loop would leave the starting values.
        XCTAssertNotEqual(OpenCLBackend.fmaPeakExpected(id: 3, iterations: 300), OpenCLBackend.fmaPeakExpected(id: 3, iterations: 0))
    }

    func testMeasuredPeakIsAPositiveRate() throws {
        let peak = try requireOpenCLBackend().measurePeak()
        XCTAssert(peak.fmaGFLOPS.isFinite && peak.fmaGFLOPS > 0, "\(peak)")
        XCTAssert(peak.gemmGFLOPS.isFinite && peak.gemmGFLOPS > 0, "\(peak)")
        XCTAssert([8, 16].contains(peak.fmaVectorWidth), "\(peak)")
    }
}
