import Foundation
import XCTest

/// Class-conditional training and guided sampling through the binary (cpu-reference, tiny model).
final class CLIConditioningTests: XCTestCase {
    /// A folder with two class subfolders of 8×8 gray PNGs (a bright left or right half).
    func classFolder() throws -> URL {
        let dir = scratchFolder("classes")
        for (name, left) in [("left", true), ("right", false)] {
            let sub = dir.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
            for i in 0..<3 {
                let pixels = (0..<64).map { p -> UInt8 in ((p % 8 < 4) == left) ? UInt8(200 + i * 10) : 20 }
                try pgmAsPNG(pixels, to: sub.appendingPathComponent("\(i).png"))
            }
        }
        return dir
    }

    /// Writes an 8×8 gray PNG by way of the binary's own reader-compatible format: a stored
    /// (uncompressed) zlib stream, so no library is needed here.
    func pgmAsPNG(_ pixels: [UInt8], to url: URL) throws {
        func crc(_ data: [UInt8]) -> UInt32 {
            var c: UInt32 = 0xFFFF_FFFF
            for b in data {
                c ^= UInt32(b)
                for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            }
            return ~c
        }
        func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
            let typed = Array(type.utf8) + body
            return be(UInt32(body.count)) + typed + be(crc(typed))
        }
        var raw: [UInt8] = []
        for y in 0..<8 { raw += [0] + pixels[(y * 8)..<(y * 8 + 8)] }
        var a: UInt32 = 1, b: UInt32 = 0
        for v in raw { a = (a + UInt32(v)) % 65521; b = (b + a) % 65521 }
        let n = UInt16(raw.count)
        let zlib: [UInt8] = [0x78, 0x01, 0x01, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8(~n >> 8)] + raw + be(b << 16 | a)
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
            + chunk("IHDR", be(8) + be(8) + [8, 0, 0, 0, 0]) + chunk("IDAT", zlib) + chunk("IEND", [])
        try Data(png).write(to: url)
    }

    func testClassConditionalTrainingAndGuidedSampling() throws {
        let data = try classFolder()
        let run = scratchFolder("cond-run")
        let train = try runCLI(["train", "--device", "cpu-reference", "--model", "tiny", "--data", data.path, "--class-conditional",
                                "--cond-drop", "0.2", "--steps", "2", "--batch", "4", "--sample-every", "0", "--out", run.path])
        XCTAssertEqual(train.status, 0, train.err)
        let labels = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("pipeline/class_labels.json"))) as! [String: Any]
        XCTAssertEqual(labels["class_names"] as? [String], ["left", "right"])
        XCTAssertEqual(labels["null_class"] as? Int, 2)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("pipeline/unet/config.json"))) as! [String: Any]
        XCTAssertEqual(config["num_class_embeds"] as? Int, 3)

        let out = run.appendingPathComponent("all")
        let sample = try runCLI(["sample", run.path, "--device", "cpu-reference", "--class", "all", "--num-images", "3", "--guidance", "1.5",
                                 "--sampler", "ddim", "--steps", "3", "--out", out.path])
        XCTAssertEqual(sample.status, 0, sample.err)
        XCTAssert(sample.out.contains("6 images") && sample.out.contains("guidance_scale 2.5"), sample.out)
        XCTAssert(FileManager.default.fileExists(atPath: out.appendingPathComponent("images/0005.png").path))
        let one = try runCLI(["sample", run.path, "--device", "cpu-reference", "--class", "right", "--num-images", "2", "--sampler", "dpm++2m",
                              "--steps", "3", "--out", run.appendingPathComponent("right").path])
        XCTAssertEqual(one.status, 0, one.err)
        XCTAssert(one.out.contains("class 1 (right)"), one.out)

        try expectUserError(["sample", run.path, "--device", "cpu-reference", "--class", "up", "--steps", "2"], mentioning: ["--class up", "left", "right"])
        try expectUserError(["sample", run.path, "--device", "cpu-reference", "--guidance", "-1", "--steps", "2"], mentioning: ["--guidance", "guidance_scale"])
        try expectUserError(["train", "--device", "cpu-reference", "--model", "tiny", "--cond-drop", "0.1", "--steps", "1"],
                            mentioning: ["--cond-drop", "--class-conditional"])
        // eval: log p(x | y) with the folder's labels, or the null class's unconditional mode; the two
        // bounds differ, so the labels reach the network.
        func bound(_ extra: [String]) throws -> [String: Any] {
            let r = try runCLI(["eval", run.path, "--device", "cpu-reference", "--data", data.path, "-n", "6", "--stride", "250", "--json"] + extra)
            XCTAssertEqual(r.status, 0, r.err)
            return try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any]
        }
        let conditional = try bound([]), unconditional = try bound(["--null-class"])
        XCTAssertEqual(conditional["conditioning"] as? String, "data labels")
        XCTAssertEqual(unconditional["conditioning"] as? String, "null class")
        let (bitsY, bitsNull) = (try XCTUnwrap(conditional["bits_per_dim"] as? Double), try XCTUnwrap(unconditional["bits_per_dim"] as? Double))
        XCTAssert(bitsY.isFinite && bitsY > 0 && bitsNull.isFinite && bitsNull > 0 && bitsY != bitsNull, "\(bitsY) \(bitsNull)")
        try expectUserError(["eval", run.path, "--device", "cpu-reference", "-n", "2", "--stride", "250"],
                            mentioning: ["2 classes", "Fashion-MNIST", "--null-class"])
        let flat = try XCTUnwrap(FileManager.default.contentsOfDirectory(at: data.appendingPathComponent("left"), includingPropertiesForKeys: nil).first)
        try expectUserError(["eval", run.path, "--device", "cpu-reference", "--data", flat.deletingLastPathComponent().path, "--stride", "250"],
                            mentioning: ["no labels", "class subfolders", "--null-class"])
        // Resuming continues the class-conditional run.
        let resumed = try runCLI(["train", "--resume", run.path, "--device", "cpu-reference", "--steps", "3", "--sample-every", "0"])
        XCTAssertEqual(resumed.status, 0, resumed.err)
    }

    func testUnconditionalModelsRefuseClassFlags() throws {
        let dir = try copyOfTinyPipeline("uncond-class")
        try expectUserError(["sample", dir.path, "--device", "cpu-reference", "--class", "3", "--steps", "2"], mentioning: ["--class", "class-conditional"])
        try expectUserError(["sample", dir.path, "--device", "cpu-reference", "--guidance", "2", "--steps", "2"], mentioning: ["--guidance", "class-conditional"])
        try expectUserError(["eval", dir.path, "--device", "cpu-reference", "--null-class", "--stride", "5"], mentioning: ["--null-class", "unconditional"])
    }
}
