import Foundation
import XCTest

/// Every crash the 2026-12-01 probe found (issue 18) is a clear error now, run through the binary.
final class CLICrashTests: XCTestCase {
    let cpu = ["--device", "cpu-reference"]

    func testSampleHugeBatchIsRefusedBeforeAllocating() throws {
        let pipe = try copyOfTinyPipeline("huge-batch")
        try expectUserError(["sample", pipe.path, "--num-images", "1000000000", "--steps", "1"] + cpu,
                            mentioning: ["--num-images 1000000000", "host memory", "fits"], seconds: 20)
    }

    func testTrainMinutesNaN() throws {
        try expectUserError(["train", "--minutes", "nan", "--out", scratchFolder("nan-minutes").path] + cpu, mentioning: ["--minutes"])
    }

    func testTrainWithFewTimestepsDrawsItsGrid() throws {
        // The probe: --timesteps 2…49 trained, then crashed drawing the 50-step sample grid.
        let pipe = try copyOfTinyPipeline("few-steps-data")
        let images = scratchFolder("few-steps-images")
        let made = try runCLI(["sample", pipe.path, "--num-images", "2", "--steps", "2", "--out", images.path] + cpu)
        XCTAssertEqual(made.status, 0, made.err)
        let out = scratchFolder("few-steps-run")
        let r = try runCLI(["train", "--model", "tiny", "--data", images.appendingPathComponent("images").path, "--timesteps", "3",
                            "--steps", "1", "--batch", "2", "--out", out.path] + cpu)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssert(FileManager.default.fileExists(atPath: out.appendingPathComponent("samples/step-1.png").path), r.out)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent(".lock").path), "lock left behind")
    }

    func testUNetConfigCrashesAreErrors() throws {
        let cases: [(String, Any, [String])] = [
            ("sample_size", 0, ["sample_size"]), ("sample_size", 100000, ["sample_size", "100000"]),
            ("layers_per_block", -1, ["layers_per_block", "-1"]), ("norm_num_groups", 0, ["norm_num_groups"]),
            ("in_channels", -1, ["in_channels"]), ("out_channels", -1, ["out_channels"]),
            ("block_out_channels", [8, -16], ["block_out_channels"]), ("attention_head_dim", 3, ["attention_head_dim", "divide"]),
            ("downsample_padding", 5, ["downsample_padding"]), ("norm_eps", 0, ["norm_eps"]), ("dropout", 1.5, ["dropout"]),
            ("mid_block_type", NSNull(), ["mid_block_type"]), ("layers_per_block", 2.5, ["layers_per_block", "whole number"]),
            ("norm_eps", "small", ["norm_eps", "number"]),
        ]
        for (key, value, words) in cases {
            let pipe = try copyOfTinyPipeline("unet-\(key)")
            try editJSON(pipe.appendingPathComponent("unet/config.json")) { $0[key] = value }
            try expectUserError(["sample", pipe.path, "--num-images", "1", "--steps", "1"] + cpu, mentioning: words + ["config.json"])
            try expectUserError(["train", "--model", pipe.appendingPathComponent("unet/config.json").path, "--steps", "1",
                                 "--out", scratchFolder("unet-run").path] + cpu, mentioning: words)
        }
    }

    func testSchedulerConfigCrashesAreErrors() throws {
        let cases: [(String, Any, [String])] = [
            ("num_train_timesteps", 0, ["num_train_timesteps"]), ("num_train_timesteps", 1, ["num_train_timesteps"]),
            ("num_train_timesteps", -1, ["num_train_timesteps"]), ("num_train_timesteps", 1_000_000_000, ["num_train_timesteps"]),
            ("steps_offset", -1, ["steps_offset"]), ("steps_offset", 5000, ["steps_offset"]),
            ("_class_name", "LMSDiscreteScheduler", ["LMSDiscreteScheduler"]), ("beta_schedule", 5, ["beta_schedule"]),
            ("beta_start", 0.5, ["beta_start", "beta_end"]), ("beta_end", 1.0, ["beta_end"]), ("beta_end", -0.1, ["beta_end"]),
            ("clip_sample_range", 0, ["clip_sample_range"]), ("dynamic_thresholding_ratio", 1.5, ["dynamic_thresholding_ratio"]),
            ("clip_sample", "yes", ["clip_sample"]), ("prediction_type", "bogus", ["prediction_type"]),
        ]
        for (key, value, words) in cases {
            let pipe = try copyOfTinyPipeline("scheduler-\(key)")
            try editJSON(pipe.appendingPathComponent("scheduler/scheduler_config.json")) { $0[key] = value }
            try expectUserError(["sample", pipe.path, "--num-images", "1", "--steps", "1"] + cpu,
                                mentioning: words + ["scheduler_config.json"], seconds: 20)
        }
        let empty = try copyOfTinyPipeline("scheduler-empty")
        try Data("{}".utf8).write(to: empty.appendingPathComponent("scheduler/scheduler_config.json"))
        try expectUserError(["sample", empty.path, "--num-images", "1", "--steps", "1"] + cpu, mentioning: ["_class_name"])
        let missing = try copyOfTinyPipeline("scheduler-missing")
        try FileManager.default.removeItem(at: missing.appendingPathComponent("scheduler/scheduler_config.json"))
        try expectUserError(["sample", missing.path, "--num-images", "1", "--steps", "1"] + cpu, mentioning: ["scheduler_config.json", "missing"])
    }

    func testNaNWeightsAreRefusedNamingTheTensor() throws {
        let pipe = try copyOfTinyPipeline("nan-weights")
        let file = pipe.appendingPathComponent("unet/diffusion_pytorch_model.safetensors")
        var parts = try SafetensorsParts(file)
        let (name, info) = parts.header.first { $0.key != "__metadata__" }!
        let begin = ((info as! [String: Any])["data_offsets"] as! [Int])[0]
        parts.data.replaceSubrange(begin..<(begin + 4), with: [0x00, 0x00, 0xC0, 0x7F])   // NaN
        try parts.write(to: file)
        try expectUserError(["sample", pipe.path, "--num-images", "1", "--steps", "1"] + cpu, mentioning: [name, "nan", "finite"])
    }

    func testBadInitialNoise() throws {
        let pipe = try copyOfTinyPipeline("init-noise")
        let noise = scratchFolder("init-noise.npy")
        var values = [Float](repeating: 0.1, count: 64)
        values[5] = .nan
        try npyData(shape: [1, 1, 8, 8], values: values).write(to: noise)
        try expectUserError(["sample", pipe.path, "--num-images", "1", "--steps", "1", "--init-noise", noise.path] + cpu, mentioning: ["--init-noise", "finite"])
        try npyData(shape: [1, 1, 8, 8], values: [Float](repeating: 0.1, count: 64), trailing: 12).write(to: noise)
        try expectUserError(["sample", pipe.path, "--num-images", "1", "--steps", "1", "--init-noise", noise.path] + cpu, mentioning: ["12 bytes follow"])
    }

    func testOutOfRangeFlags() throws {
        let out = ["--out", scratchFolder("flags").path]
        let cases: [([String], [String])] = [
            (["train", "--ema", "2"] + out, ["--ema 2"]), (["train", "--ema", "-1"] + out, ["--ema -1"]),
            (["train", "--lr", "nan"] + out, ["--lr"]), (["train", "--warmup", "-5"] + out, ["--warmup -5"]),
            (["train", "--timesteps", "1000000000"] + out, ["--timesteps"]), (["train", "--timesteps", "1"] + out, ["--timesteps"]),
            (["train", "--out", ""], ["--out"]), (["train", "--grad-clip", "inf"] + out, ["--grad-clip"]),
            (["train", "--steps", "0"] + out, ["--steps"]), (["train", "--batch", "-4"] + out, ["--batch -4"]),
        ]
        for (arguments, words) in cases { try expectUserError(arguments + cpu, mentioning: words, seconds: 20) }
        let pipe = try copyOfTinyPipeline("eta")
        for eta in ["nan", "inf", "1e30", "-1"] {
            try expectUserError(["sample", pipe.path, "--sampler", "ddim", "--eta", eta, "--num-images", "1"] + cpu, mentioning: ["--eta"])
        }
        try expectUserError(["sample", pipe.path, "--steps", "5000", "--num-images", "1"] + cpu, mentioning: ["--steps 5000"])
        try expectUserError(["eval", pipe.path, "--stride", "1000"] + cpu, mentioning: ["--stride 1000"])
        try expectUserError(["check", "--device", "-1"], mentioning: ["--device", "-1"])
    }

    func testHugeTrainingBatchNamesTheFlagAndAFittingBatch() throws {
        let out = scratchFolder("huge-train")
        let err = try expectUserError(["train", "--batch", "1000000000", "--steps", "1", "--out", out.path] + cpu,
                                      mentioning: ["--batch 1000000000", "needs about", "fits"], seconds: 30)
        XCTAssert(err.contains("TiB") || err.contains("GiB"), err)
        let r = try runCLI(["devices"])
        guard r.status == 0 else { return }   // no OpenCL: the CPU case above covers the check
        try expectUserError(["train", "--batch", "1000000000", "--steps", "1", "--out", out.path, "--device", "0"],
                            mentioning: ["--batch 1000000000", "needs about", "fits"], seconds: 60)
    }
}
