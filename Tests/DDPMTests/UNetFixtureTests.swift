import DDPM
import DDPMCore
import Foundation
import XCTest

/// Our U-Net, given diffusers' weights and inputs, reproduces diffusers' UNet2DModel output.
final class UNetFixtureTests: XCTestCase {
    /// diffusers sums in other orders (and in PyTorch's conv algorithms); float32 round-off over a
    /// few dozen layers stays far below 1e-9 NMSE (measured ~1e-13); a wrong layer gives ≥ 1e-3.
    let tolerance = 1e-9

    func check(_ name: String) throws {
        let dir = try fixture(name)
        let config = try UNetConfig.load(dir.appendingPathComponent("config.json"))
        let input = try readNPY(dir.appendingPathComponent("input.npy"))
        let timesteps = try readNPY(dir.appendingPathComponent("timesteps.npy"))
        let expected = try readNPY(dir.appendingPathComponent("output.npy"))
        let net = UNet(config: config, batch: input.shape[0])
        var weights = Weights(graph: net.graph)
        try weights.load(readSafetensors(dir.appendingPathComponent("diffusion_pytorch_model.safetensors")), source: name)
        for backend in try testBackends() {
            let executor = try Executor(graph: net.graph, outputs: [net.output], backend: backend)
            for (paramName, value) in net.graph.parameters {
                executor.bind(value, to: try backend.makeBuffer(weights.values[paramName]!))
            }
            executor.bind(net.sample, to: try backend.makeBuffer(input.values))
            executor.bind(net.timesteps, to: try backend.makeBuffer(timesteps.values))
            try executor.run(step: 0)
            let out = try backend.read(executor.buffer(net.output), count: expected.values.count)
            let error = nmse(out, expected.values)
            XCTAssertLessThan(error, tolerance, "\(name) on \(backend.name): NMSE \(error)")
        }
    }

    func testTiny() throws { try check("unet-tiny") }
    func testCifarLike() throws { try check("unet-cifarlike") }
    func testDeep() throws { try check("unet-deep") }

    func testParameterNamesMatchDiffusers() throws {
        let dir = try fixture("unet-tiny")
        let listed = try String(contentsOf: dir.appendingPathComponent("param_names.txt"), encoding: .utf8)
            .split(separator: "\n").map { $0.split(separator: " ")[0] }.map(String.init)
        let net = UNet(config: try UNetConfig.load(dir.appendingPathComponent("config.json")), batch: 1)
        XCTAssertEqual(Set(net.graph.parameters.map(\.name)), Set(listed))
    }

    func testCifar10PresetHasTheReferenceParameterCount() {
        let net = UNet(config: ModelPreset.cifar10.config, batch: 1)
        XCTAssertEqual(Weights(graph: net.graph).parameterCount, 35_746_307)
    }

    func testUnknownBlockTypeIsRefused() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("bad-config-\(getpid()).json")
        try Data(#"{"down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"], "up_block_types": ["UpBlock2D", "UpBlock2D"], "block_out_channels": [32, 64]}"#.utf8).write(to: url)
        XCTAssertThrowsError(try UNetConfig.load(url)) { error in
            XCTAssert("\(error)".contains("CrossAttnDownBlock2D"), "\(error)")
            XCTAssert("\(error)".contains("AttnDownBlock2D"), "the message should say what is supported: \(error)")
        }
    }
}

final class UNetConfigTests: XCTestCase {
    /// attention_head_dim nil (one head per block, as google/ddpm-cifar10-32) survives the checkpoint's
    /// JSON and the pipeline's config.json: a missing key would read back as diffusers' default 8.
    func testConfigRoundTripsThroughJSON() throws {
        for preset in ModelPreset.allCases {
            let config = preset.config
            let viaEncoder = try JSONDecoder().decode(UNetConfig.self, from: JSONEncoder().encode(config))
            XCTAssertEqual(viaEncoder, config, preset.rawValue)
            let viaDiffusersFile = try JSONDecoder().decode(UNetConfig.self, from: config.jsonData())
            XCTAssertEqual(viaDiffusersFile, config, preset.rawValue)
        }
    }
}
