import Foundation
import XCTest

/// `ddpm-cl sample` end to end on the tiny diffusers pipeline of the fixtures (cpu-reference).
final class CLISampleTests: XCTestCase {
    /// A copy of Tests/DDPMTests/Fixtures/pipeline-tiny whose scheduler config is edited by `edit`.
    func pipeline(_ name: String, edit: (inout [String: Any]) -> Void = { _ in }) throws -> URL {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("DDPMTests/Fixtures/pipeline-tiny")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ddpm-cli-sample-\(getpid())-\(name)")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.copyItem(at: source, to: dir)
        let config = dir.appendingPathComponent("scheduler/scheduler_config.json")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: config)) as! [String: Any]
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: config)
        return dir
    }

    /// Review bug: trailing spacing made t = −1 for 3 steps of 1000 and the sampler crashed (exit 132).
    func testTrailingSpacingSamples() throws {
        let dir = try pipeline("trailing") { $0["num_train_timesteps"] = 1000 }
        for steps in ["3", "7", "61"] {
            let r = try runCLI(["sample", dir.path, "--device", "cpu-reference", "--sampler", "ddim", "--steps", steps,
                                "--spacing", "trailing", "--batch", "1", "--out", dir.appendingPathComponent("out-\(steps)").path])
            XCTAssertEqual(r.status, 0, "steps \(steps): \(r.err)")
            XCTAssert(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out-\(steps)/grid.png").path))
        }
    }
}
