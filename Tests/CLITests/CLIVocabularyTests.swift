import Foundation
import XCTest

/// One name per meaning: --num-images (-n) is how many images, --batch images per training step,
/// --device-batch images per sampling model evaluation. The old spellings still work with a notice.
final class CLIVocabularyTests: XCTestCase {
    let cpu = ["--device", "cpu-reference"]

    func testOldSampleBatchDrawsTheSameImagesWithANotice() throws {
        let pipe = try copyOfTinyPipeline("vocabulary-pipe")
        let new = scratchFolder("vocabulary-new"), old = scratchFolder("vocabulary-old")
        let a = try runCLI(["sample", pipe.path, "-n", "3", "--device-batch", "2", "--steps", "2", "--out", new.path] + cpu)
        XCTAssertEqual(a.status, 0, a.err)
        XCTAssertFalse(a.err.contains("note:"), a.err)
        let b = try runCLI(["sample", pipe.path, "--batch", "3", "--device-batch", "2", "--steps", "2", "--out", old.path] + cpu)
        XCTAssertEqual(b.status, 0, b.err)
        XCTAssert(b.err.contains("note: sample --batch is now --num-images"), b.err)
        XCTAssertEqual(b.err.split(separator: "\n").filter { $0.hasPrefix("note:") }.count, 1, b.err)
        XCTAssertEqual(try Data(contentsOf: new.appendingPathComponent("samples.npy")),
                       try Data(contentsOf: old.appendingPathComponent("samples.npy")))
        XCTAssert(a.out.contains("sampling 3 images"), a.out)
        // Both spellings at once: refused, whatever the values.
        try expectUserError(["sample", pipe.path, "--batch", "3", "--num-images", "3"] + cpu, mentioning: ["--num-images alone"])
    }

    func testOldSpellingsOfOtherCommandsStillParseWithANotice() throws {
        let cases: [([String], String, String)] = [
            (["eval", "/nonexistent/run", "--n", "4"] + cpu, "eval --n is now --num-images", "not a model directory"),
            (["fid", "/nonexistent/samples.npy", "--data", "fashion-mnist", "--n", "10"], "fid --n is now --num-images", "does not exist"),
            (["classifier", "eval", "--classifier", "/nonexistent/c.safetensors", "--n", "5"] + cpu, "classifier eval --n is now --num-images", "classifier"),
            (["bench", "--model", "tiny", "--batch", "2", "--sample-batch", "-1"] + cpu, "bench --sample-batch is now --device-batch", "--device-batch -1"),
        ]
        for (arguments, notice, error) in cases {
            let r = try runCLI(arguments)
            XCTAssertNotEqual(r.status, 0, "\(arguments): \(r.out)")
            XCTAssert(r.err.contains("note: \(notice)"), "\(arguments): \(r.err)")
            XCTAssert(r.err.contains(error), "\(arguments): \(r.err)")
            XCTAssertFalse(r.err.contains("Fatal error") || r.err.contains("Unknown option"), r.err)
        }
    }

    /// --help teaches the new names and hides the old ones.
    func testHelpShowsOneNamePerMeaning() throws {
        for (command, shown, hidden) in [(["sample"], ["-n, --num-images", "--device-batch"], ["--batch <"]),
                                         (["eval"], ["-n, --num-images"], ["--n <"]),
                                         (["fid"], ["-n, --num-images"], ["--n <"]),
                                         (["classifier", "eval"], ["-n, --num-images"], ["--n <"]),
                                         (["bench"], ["--batch <", "--device-batch"], ["--sample-batch"])] {
            let r = try runCLI(command + ["--help"])
            XCTAssertEqual(r.status, 0, r.err)
            for word in shown { XCTAssert(r.out.contains(word), "\(command) --help lacks \(word): \(r.out)") }
            for word in hidden { XCTAssertFalse(r.out.contains(word), "\(command) --help shows \(word): \(r.out)") }
        }
    }
}
