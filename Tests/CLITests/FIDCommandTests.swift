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

/// `fid --features inception` refuses a missing or unusable weights file with the way to make one.
final class FIDInceptionCommandTests: XCTestCase {
    func testInceptionNeedsAUsableWeightsFile() throws {
        let none = try runCLI(["fid", "fashion-mnist:test", "--data", "fashion-mnist:train", "--features", "inception"])
        XCTAssertNotEqual(none.status, 0)
        XCTAssert(none.err.contains("--inception FILE") && none.err.contains("scripts/convert-inception"), none.err)
        let missing = try runCLI(["fid", "fashion-mnist:test", "--data", "fashion-mnist:train", "--features", "inception",
                                  "--inception", "/nonexistent/inception.safetensors"])
        XCTAssertEqual(missing.status, 1, missing.err)
        XCTAssert(missing.err.contains("no Inception weights") && missing.err.contains("scripts/convert-inception"), missing.err)
        let corrupt = FileManager.default.temporaryDirectory.appendingPathComponent("corrupt-\(UUID().uuidString).safetensors")
        try Data("not a safetensors file".utf8).write(to: corrupt)
        defer { try? FileManager.default.removeItem(at: corrupt) }
        let bad = try runCLI(["fid", "fashion-mnist:test", "--data", "fashion-mnist:train", "--features", "inception",
                              "--inception", corrupt.path])
        XCTAssertEqual(bad.status, 1, bad.err)
        XCTAssert(bad.err.contains("corrupt") && bad.err.contains("scripts/convert-inception"), bad.err)
        XCTAssertFalse(bad.err.contains("Fatal error"), bad.err)
        let train = try runCLI(["train", "--steps", "1", "--fid-every", "1", "--fid-features", "inception", "--out",
                                FileManager.default.temporaryDirectory.appendingPathComponent("run-\(UUID().uuidString)").path])
        XCTAssertEqual(train.status, 1, train.err)
        XCTAssert(train.err.contains("--inception FILE") && train.err.contains("scripts/convert-inception"), train.err)
    }
}
