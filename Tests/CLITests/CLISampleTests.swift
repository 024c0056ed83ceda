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

    /// DPM-Solver++ from the command line, with Karras sigmas; --karras with DDIM is refused with the fix.
    func testDPMSolverSamples() throws {
        let dir = try pipeline("dpm") { $0["num_train_timesteps"] = 1000; $0["beta_end"] = 0.02; $0["beta_start"] = 0.0001 }
        for (sampler, extra) in [("dpm++2m", ["--karras"]), ("dpm++3m", []), ("dpm++2m-sde", ["--spacing", "trailing"]), ("euler", []), ("euler-a", ["--spacing", "trailing"]),
                                 ("unipc", []), ("heun", ["--sigmas", "karras"]), ("euler", ["--sigmas", "exponential"])] {
            let r = try runCLI(["sample", dir.path, "--device", "cpu-reference", "--sampler", sampler, "--steps", "7", "--num-images", "2",
                                "--out", dir.appendingPathComponent("out-\(sampler)").path] + extra)
            XCTAssertEqual(r.status, 0, "\(sampler): \(r.err)")
            XCTAssert(r.out.contains("7 steps"), r.out)
        }
        // β up to 0.35 over 1000 steps: ᾱ underflows, σ is infinite; a clear error, not a crash.
        let underflow = try pipeline("underflow") { $0["num_train_timesteps"] = 1000 }
        let u = try runCLI(["sample", underflow.path, "--device", "cpu-reference", "--sampler", "dpm++2m", "--num-images", "1"])
        XCTAssertNotEqual(u.status, 0)
        XCTAssert(u.err.contains("--sampler ddpm or ddim") && !u.err.contains("Backtrace"), u.err)
        let refused = try runCLI(["sample", dir.path, "--device", "cpu-reference", "--sampler", "ddim", "--karras"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssert(refused.err.contains("--sampler dpm++2m"), refused.err)
        // A pipeline whose scheduler_config.json names UniPCMultistepScheduler samples with UniPC by default.
        let unipc = try pipeline("unipc") {
            $0["_class_name"] = "UniPCMultistepScheduler"; $0["num_train_timesteps"] = 1000; $0["beta_end"] = 0.02; $0["solver_order"] = 3
        }
        let u3 = try runCLI(["sample", unipc.path, "--device", "cpu-reference", "--num-images", "1", "--steps", "5",
                             "--out", unipc.appendingPathComponent("out").path])
        XCTAssertEqual(u3.status, 0, u3.err)
        XCTAssert(u3.out.contains("with unipc (5 steps)"), u3.out)
        // A scheduler class ddpm-cl does not implement is refused with what to pass instead.
        let lms = try pipeline("lms") { $0["_class_name"] = "LMSDiscreteScheduler" }
        let r = try runCLI(["sample", lms.path, "--device", "cpu-reference", "--num-images", "1"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssert(r.err.contains("LMSDiscreteScheduler") && r.err.contains("--sampler"), r.err)
        // An unsupported option of a supported class: refused with the fix.
        let bh1 = try pipeline("bh1") { $0["_class_name"] = "UniPCMultistepScheduler"; $0["solver_type"] = "bh1" }
        let b = try runCLI(["sample", bh1.path, "--device", "cpu-reference", "--num-images", "1"])
        XCTAssertNotEqual(b.status, 0)
        XCTAssert(b.err.contains("final_sigmas_type to sigma_min"), b.err)
    }

    /// Review bug: `train --model tiny` stopped on the default data (28×28 images, sample_size 8).
    func testTinyModelTrainsOnFashionMNIST() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"),
                          "dataset-fashion-mnist is not installed")
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("ddpm-cli-tiny-\(getpid())")
        try? FileManager.default.removeItem(at: out)
        let r = try runCLI(["train", "--device", "cpu-reference", "--model", "tiny", "--steps", "1", "--batch", "2",
                            "--sample-every", "0", "--out", out.path])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssert(FileManager.default.fileExists(atPath: out.appendingPathComponent("checkpoint.safetensors").path))
        // --zero-snr needs v-prediction: refused with the fix, before any work.
        let refused = try runCLI(["train", "--device", "cpu-reference", "--model", "tiny", "--zero-snr", "--steps", "1"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssert(refused.err.contains("--prediction v"), refused.err)
    }

    /// Review bug: trailing spacing made t = −1 for 3 steps of 1000 and the sampler crashed (exit 132).
    func testTrailingSpacingSamples() throws {
        let dir = try pipeline("trailing") { $0["num_train_timesteps"] = 1000 }
        for steps in ["3", "7", "61"] {
            let r = try runCLI(["sample", dir.path, "--device", "cpu-reference", "--sampler", "ddim", "--steps", steps,
                                "--spacing", "trailing", "--num-images", "1", "--out", dir.appendingPathComponent("out-\(steps)").path])
            XCTAssertEqual(r.status, 0, "steps \(steps): \(r.err)")
            XCTAssert(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out-\(steps)/grid.png").path))
        }
    }
}
