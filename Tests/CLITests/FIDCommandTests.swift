import Foundation
import XCTest

/// `ddpm-cl fid` and `ddpm-cl classifier` refuse bad input with one clear paragraph.
final class FIDCommandTests: XCTestCase {
    func testMissingClassifierSaysHowToTrainOne() throws {
        let r = try runCLI(["fid", "fashion-mnist:test", "--data", "fashion-mnist:train", "-n", "10",
                            "--classifier", "/nonexistent/classifier.safetensors"])
        XCTAssertEqual(r.status, 1, r.err)
        XCTAssert(r.err.contains("ddpm-cl classifier train"), r.err)
        XCTAssertFalse(r.err.contains("Fatal error"), r.err)
    }

    func testBadSetsAndFlagsAreRefused() throws {
        let missing = try runCLI(["fid", "/nonexistent/samples.npy", "--data", "fashion-mnist"])
        XCTAssertEqual(missing.status, 1)
        XCTAssert(missing.err.contains("does not exist"), missing.err)
        let twice = try runCLI(["fid", "a.npy", "b.npy", "--data", "fashion-mnist"])
        XCTAssertNotEqual(twice.status, 0)
        XCTAssert(twice.err.contains("once"), twice.err)
        let noLabels = try runCLI(["classifier", "train", "--data", "/nonexistent"])
        XCTAssertEqual(noLabels.status, 1)
        XCTAssert(noLabels.err.contains("does not exist"), noLabels.err)
    }
}
