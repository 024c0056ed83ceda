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

    func testTuneNeedsAnOpenCLDevice() throws {
        try expectUserError(["tune", "--device", "cpu-reference"], mentioning: ["OpenCL device"])
    }
}
