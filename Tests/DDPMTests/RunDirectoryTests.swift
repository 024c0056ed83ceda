import DDPM
import DDPMCore
import Foundation
import XCTest

/// The pipeline a run writes has diffusers' layout: the same config keys and tensor names as the
/// DDPMPipeline diffusers itself saved (fixture pipeline-tiny), and it loads back into ddpm-cl.
final class RunDirectoryTests: XCTestCase {
    func testWrittenPipelineMatchesDiffusersLayout() throws {
        let reference = try fixture("pipeline-tiny")
        let loaded = try LoadedPipeline.load(reference)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pipeline-\(getpid())")
        try RunDirectory.writePipeline(at: dir, config: loaded.config, weights: loaded.weights, scheduler: loaded.settings)

        func keys(_ url: URL) throws -> Set<String> {
            Set((try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]).keys)
        }
        let ourConfig = try keys(dir.appendingPathComponent("unet/config.json"))
        // _name_or_path records where diffusers loaded the model from; it is not part of the model.
        let theirConfig = try keys(reference.appendingPathComponent("unet/config.json")).subtracting(["_name_or_path"])
        XCTAssertEqual(theirConfig.subtracting(ourConfig), [], "config.json keys diffusers writes that we do not")
        let ourScheduler = try keys(dir.appendingPathComponent("scheduler/scheduler_config.json"))
        let theirScheduler = try keys(reference.appendingPathComponent("scheduler/scheduler_config.json"))
        XCTAssertEqual(theirScheduler.subtracting(ourScheduler), [], "scheduler keys diffusers writes that we do not")
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("model_index.json"))) as! [String: Any]
        XCTAssertEqual(index["_class_name"] as? String, "DDPMPipeline")

        let ours = try readSafetensors(dir.appendingPathComponent("unet/diffusion_pytorch_model.safetensors"))
        let theirs = try readSafetensors(reference.appendingPathComponent("unet/diffusion_pytorch_model.safetensors"))
        XCTAssertEqual(Set(ours.tensors.keys), Set(theirs.tensors.keys))
        for (name, entry) in theirs.tensors { XCTAssertEqual(ours.tensors[name]?.shape, entry.shape, name) }

        let again = try LoadedPipeline.load(dir)
        XCTAssertEqual(again.config, loaded.config)
        XCTAssertEqual(again.settings, loaded.settings)
    }
}
