import DDPM
import DDPMCore
import DDPMCPU
import Foundation
import XCTest

/// A seeded fuzz of every reader of outside input (issue 18): each case mutates a valid input —
/// bit flips, truncation, absurd lengths, wrong types, out-of-range/negative/zero/huge numbers,
/// NaN, duplicate keys, missing files — and asserts that the reader returns, or throws a UserError
/// that names the input, with no crash, a bounded result and within a time bound.
/// Readers are called in-process; CLICrashTests runs the same kinds of input through the binary.
final class FuzzTests: XCTestCase {
    static let seed: UInt64 = 18
    var folder: URL!

    override func setUpWithError() throws {
        folder = fuzzFolder(name.filter(\.isLetter))
        try? FileManager.default.removeItem(at: folder)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    var peakAtStart = 0

    override func setUp() { peakAtStart = peakResidentBytes() }

    /// No case may allocate much: the process's peak memory grows by less than 512 MiB per reader.
    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
        let growth = peakResidentBytes() - peakAtStart
        XCTAssertLessThan(growth, 512 << 20, "peak resident memory grew by \(growth >> 20) MiB during \(name)")
    }

    func report(_ name: String, _ tally: FuzzTally) {
        print("fuzz \(name): \(tally.cases) cases, \(tally.accepted) accepted, \(tally.refused) refused with a message, slowest \(String(format: "%.3f", tally.slowest)) s, \(tally.messages.count) distinct messages")
    }

    func testSafetensorsReader() throws {
        var m = Mutator(seed: Self.seed)
        var tally = FuzzTally()
        let base = folder.appendingPathComponent("base.safetensors")
        try writeSafetensors(["a.weight": .init(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]), "a.bias": .init(shape: [3], values: [0, 1, 2]),
                              "b": .init(shape: [1, 1, 2, 2], values: [9, 8, 7, 6])], metadata: ["format": "pt", "step": "3"], to: base)
        let valid = try Data(contentsOf: base)
        let headerLength = Int(valid.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        let header = try JSONSerialization.jsonObject(with: valid.subdata(in: 8..<(8 + headerLength))) as! [String: Any]
        let body = valid.subdata(in: (8 + headerLength)..<valid.count)
        let url = folder.appendingPathComponent("case.safetensors")
        func assemble(_ text: Data, length: UInt64? = nil, data: Data = body) -> Data {
            var out = Data()
            withUnsafeBytes(of: (length ?? UInt64(text.count)).littleEndian) { out.append(contentsOf: $0) }
            return out + text + data
        }
        for i in 0..<2000 {
            let input: Data
            switch m.int(6) {
            case 0: input = m.bytes(valid)
            case 1: input = m.flipBits(valid, in: 0..<(8 + headerLength))
            case 2: input = assemble(valid.subdata(in: 8..<(8 + headerLength)),
                                     length: m.pick([0, 1, 2, 7, UInt64(headerLength - 1), UInt64(headerLength + 1), 100_000_001, UInt64.max, 1 << 40]))
            case 3:
                // One tensor's dtype, shape or offsets replaced by a nasty value.
                var h = header
                let name = m.pick(["a.weight", "a.bias", "b"])
                var info = h[name] as! [String: Any]
                let field = m.pick(["dtype", "shape", "data_offsets"])
                switch m.int(3) {
                case 0: info[field] = m.nastyValue()
                case 1: info[field] = field == "dtype" ? m.pick(["F16", "BF16", "F64", "I32", "U8", "f32", "F32 ", ""]) : [m.nastyValue(), m.nastyValue()]
                default: info[field] = field == "dtype" ? "F32" : [m.pick(Mutator.nastyNumbers), m.pick(Mutator.nastyNumbers), m.pick(Mutator.nastyNumbers)]
                }
                h[name] = info
                input = assemble((try? JSONSerialization.data(withJSONObject: h)) ?? Data("{".utf8))
            case 4: input = assemble(m.json(header, keys: ["a.weight", "a.bias", "b", "__metadata__"]))
            default:
                var h = header
                h["__metadata__"] = m.chance(0.5) ? m.nastyValue() : ["format": m.nastyValue()]
                input = assemble((try? JSONSerialization.data(withJSONObject: h)) ?? Data())
            }
            try input.write(to: url)
            tally.run("safetensors case \(i)", mention: url.path, maxValues: 2 * input.count) {
                try readSafetensors(url).tensors.values.reduce(0) { $0 + $1.values.count }
            }
        }
        tally.run("missing safetensors", mention: "nonexistent", maxValues: 0) { try readSafetensors(folder.appendingPathComponent("nonexistent")).tensors.count }
        report("safetensors", tally)
        XCTAssertGreaterThan(tally.refused, tally.cases / 2, "most mutations must be refused")
    }

    func testUNetConfigReader() throws {
        var m = Mutator(seed: Self.seed + 1)
        var tally = FuzzTally()
        let base = try JSONSerialization.jsonObject(with: Data(contentsOf: fixture("pipeline-tiny/unet/config.json"))) as! [String: Any]
        let keys = UNetConfig.jsonKeys
        let url = folder.appendingPathComponent("config.json")
        for i in 0..<1200 {
            var object = base
            // Sometimes two keys at once, to reach the relations (groups × channels, head size × channels).
            if m.chance(0.3) { object[m.pick(keys)] = m.pick(Mutator.nastyNumbers) }
            if m.chance(0.2) { object["block_out_channels"] = (0..<(1 + m.int(3))).map { _ in m.pick([8, 16, 12, 0, -8, 32, 3]) } }
            try m.json(object, keys: keys).write(to: url)
            tally.run("config case \(i)", mention: url.path, maxValues: UNetConfig.maxParameters) {
                let config = try UNetConfig.load(url)
                _ = UNet(config: config, batch: 2)   // a config that passes must build
                return config.parameterCount
            }
        }
        try? FileManager.default.removeItem(at: url)
        tally.run("missing config", mention: url.path, maxValues: 0) { try UNetConfig.load(url).parameterCount }
        report("config.json", tally)
        XCTAssertGreaterThan(tally.refused, tally.cases / 3)
    }

    func testSchedulerConfigReader() throws {
        var m = Mutator(seed: Self.seed + 2)
        var tally = FuzzTally()
        let bases = try ["pipeline-tiny/scheduler/scheduler_config.json", "scheduler/ddim-eta1-trailing-config.json",
                         "scheduler/ddpm-leading25-offset1-config.json"].map {
            try JSONSerialization.jsonObject(with: Data(contentsOf: fixture($0))) as! [String: Any]
        }
        let keys = ["_class_name", "num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas", "variance_type",
                    "clip_sample", "clip_sample_range", "prediction_type", "thresholding", "dynamic_thresholding_ratio",
                    "sample_max_value", "timestep_spacing", "steps_offset", "set_alpha_to_one", "rescale_betas_zero_snr"]
        let source = folder.appendingPathComponent("scheduler_config.json").path
        for i in 0..<2000 {
            let data = m.json(m.pick(bases), keys: keys)
            let steps = m.pick([1, 2, 3, 25, 50, 999, 1000, 1001, 0, -1])
            tally.run("scheduler case \(i)", mention: source, maxValues: 2 * SchedulerConfigCheck.maxTrainTimesteps) {
                let settings = try SchedulerSettings(json: JSONText.object(data, source: source), source: source)
                do { try settings.checkSteps(steps) } catch let e as UserError {
                    XCTAssert(e.message.contains("--steps"), e.message)
                    return settings.schedule.timesteps
                }
                XCTAssertEqual(settings.reverseSteps(.ddpm, count: steps, seed: 0).count, steps)
                XCTAssertEqual(settings.reverseSteps(.ddim(eta: 1), count: steps, seed: 0).count, steps)
                return settings.schedule.betas.count
            }
        }
        report("scheduler_config.json", tally)
        XCTAssertGreaterThan(tally.refused, tally.cases / 3)
    }

    func testCheckpointReader() throws {
        var m = Mutator(seed: Self.seed + 3)
        var tally = FuzzTally()
        let trainer = try Trainer(backend: CPUBackend(), options: tinyOptions())
        let base = folder.appendingPathComponent("base.safetensors")
        try trainer.checkpoint().write(to: base)
        let valid = try readSafetensors(base)
        let options = try JSONSerialization.jsonObject(with: Data(valid.metadata["options"]!.utf8)) as! [String: Any]
        let optionKeys = ["batch", "gradientAccumulation", "learningRate", "warmupSteps", "weightDecay", "gradientClip", "emaMaxDecay",
                          "emaPower", "emaInvGamma", "schedule", "timesteps", "betaStart", "betaEnd", "prediction", "seed", "data",
                          "horizontalFlip", "model"]
        let validBytes = try Data(contentsOf: base)
        let url = folder.appendingPathComponent(Checkpoint.fileName)
        for i in 0..<150 {
            var file = valid
            switch m.int(5) {
            case 0: file.metadata["step"] = m.pick(["-1", "0", "7", "1e3", "", "abc", "99999999999999999999", "3.5", " 4", "-0"])
            case 1, 2: file.metadata["options"] = String(decoding: m.json(options, keys: optionKeys), as: UTF8.self)
            case 3:
                var o = options, model = options["model"] as! [String: Any]
                model[m.pick(UNetConfig.jsonKeys)] = m.nastyValue()
                o["model"] = model
                file.metadata["options"] = String(decoding: try JSONSerialization.data(withJSONObject: o), as: UTF8.self)
            default:
                if m.chance(0.5) { file.metadata.removeValue(forKey: m.pick(["format", "step", "options"])) }
                else { file.metadata["format"] = m.pick(["pt", "ddpm-cl-checkpoint-2", ""]) }
            }
            if m.chance(0.15) {
                try m.bytes(validBytes).write(to: url)
            } else {
                if m.chance(0.1), let name = file.tensors.keys.sorted().first {   // a NaN or Inf weight
                    file.tensors[name]!.values[0] = m.pick([.nan, .infinity, -.infinity])
                }
                try writeSafetensors(file.tensors, metadata: file.metadata, to: url)
            }
            tally.run("checkpoint case \(i)", mention: url.path, maxValues: 2 * validBytes.count) {
                let c = try Checkpoint.read(url)
                return c.model.parameterCount * 4
            }
        }
        report("checkpoint", tally)
        XCTAssertGreaterThan(tally.refused, tally.cases / 3)
    }

    func testNPYReader() throws {
        var m = Mutator(seed: Self.seed + 4)
        var tally = FuzzTally()
        let base = folder.appendingPathComponent("base.npy")
        try writeNPY(float32: (0..<24).map(Float.init), shape: [2, 3, 4], to: base)
        let validFloat = try Data(contentsOf: base)
        try writeNPY(uint8: [UInt8](0..<12), shape: [3, 4], to: base)
        let validBytes = try Data(contentsOf: base)
        let url = folder.appendingPathComponent("case.npy")
        for i in 0..<1500 {
            let valid = m.chance(0.5) ? validFloat : validBytes
            var input: Data
            switch m.int(4) {
            case 0: input = m.bytes(valid)
            case 1: input = m.flipBits(valid, in: 0..<10)
            case 2:
                var text = String(decoding: valid.subdata(in: 10..<128.clamped(valid.count)), as: UTF8.self)
                let field = m.pick(["'descr': '<f4'", "'descr': '|u1'", "'shape': (2, 3, 4)", "'shape': (3, 4)", "'fortran_order': False"])
                let replacement = m.pick(["'descr': '>f4'", "'descr': '<f2'", "'descr': 5", "'shape': (-1, 4)", "'shape': (99999999999, 99999999999)",
                                          "'shape': (4294967296,)", "'shape': ()", "'shape': (2, 3, 4, 0)", "'shape': (1e3,)", "'shape': [2, 3]",
                                          "'fortran_order': True", "'shape': (3, 4,", "'descr': '<f8'", "'shape': (100000000,)"])
                text = text.replacingOccurrences(of: field, with: replacement)
                input = valid.prefix(10) + Data(text.utf8) + valid.dropFirst(128)
            default:
                input = valid
                let length = m.pick([0, 1, 5, 0xFFFF, 118, 200])
                input[8] = UInt8(length & 0xFF); input[9] = UInt8(length >> 8)
            }
            try input.write(to: url)
            tally.run("npy case \(i)", mention: url.path, maxValues: input.count) { try readNPY(url).values.count }
        }
        report("npy", tally)
        XCTAssertGreaterThan(tally.refused, tally.cases / 3)
    }

    func testPNGReader() throws {
        var m = Mutator(seed: Self.seed + 5)
        var tally = FuzzTally()
        let base = folder.appendingPathComponent("base.png")
        try writePNG(Image8(width: 8, height: 5, channels: 3, pixels: (0..<120).map { UInt8($0 * 2) }), to: base)
        let valid = try Data(contentsOf: base)
        let url = folder.appendingPathComponent("case.png")
        for i in 0..<1000 {
            var input: Data
            if m.chance(0.3) {
                // IHDR (bytes 16…28) with a nasty width or height and a correct CRC, so libpng reads it.
                var b = [UInt8](valid)
                let value = UInt32(truncatingIfNeeded: m.pick([0, 1, 65535, 65536, 1 << 20, 1 << 30, 0x7FFF_FFFF, 0xFFFF_FFFF, 3]))
                let at = m.chance(0.5) ? 16 : 20
                for k in 0..<4 { b[at + k] = UInt8(truncatingIfNeeded: value >> (24 - 8 * k)) }
                if m.chance(0.3) { b[24] = m.pick([0, 1, 2, 4, 8, 16, 32]); b[25] = m.pick([0, 2, 3, 4, 6, 7]) }
                let crc = crc32(b[12..<29])
                for k in 0..<4 { b[29 + k] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * k)) }
                input = Data(b)
            } else {
                input = valid.prefix(8) + m.bytes(valid.dropFirst(8))
            }
            try input.write(to: url)
            tally.run("png case \(i)", mention: url.path, maxValues: 8300 * 4 * input.count) { try readPNG(url).pixels.count }
        }
        report("png", tally)
        XCTAssertGreaterThan(tally.refused, tally.cases / 3)
    }

    func testIDXReader() throws {
        var m = Mutator(seed: Self.seed + 6)
        var tally = FuzzTally()
        func be(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (24 - 8 * $0)) } }
        let count = 3
        let images = be(0x0803) + be(UInt32(count)) + be(4) + be(4) + (0..<(count * 16)).map { UInt8($0) }
        let labels = be(0x0801) + be(UInt32(count)) + [1, 9, 0]
        let images0 = folder.appendingPathComponent("train-images-idx3-ubyte.gz"), labels0 = folder.appendingPathComponent("train-labels-idx1-ubyte.gz")
        for i in 0..<600 {
            var im = images, lb = labels
            switch m.int(4) {
            case 0:
                let at = m.pick([0, 4, 8, 12])
                let value = UInt32(truncatingIfNeeded: m.pick([0, 1, 2, 3, 5, 4097, 65536, 0x7FFF_FFFF, 0xFFFF_FFFF, 0x0801, 0x0803]))
                im.replaceSubrange(at..<(at + 4), with: be(value))
            case 1:
                if m.chance(0.5) { lb.replaceSubrange(4..<8, with: be(UInt32(m.pick([0, 2, 4, 1 << 31])))) } else { lb[8 + m.int(3)] = UInt8(m.int(256)) }
            case 2: if m.chance(0.5) { im = Array(im.prefix(m.int(im.count))) } else { lb = Array(lb.prefix(m.int(lb.count))) }
            default: break
            }
            var imageFile = gzipStored(Data(im)), labelFile = gzipStored(Data(lb))
            if m.chance(0.3) { if m.chance(0.5) { imageFile = m.bytes(imageFile) } else { labelFile = m.bytes(labelFile) } }
            try imageFile.write(to: images0)
            try labelFile.write(to: labels0)
            if m.chance(0.03) { try FileManager.default.removeItem(at: m.chance(0.5) ? images0 : labels0) }
            tally.run("idx case \(i)", mention: folder.path, maxValues: 4 * (imageFile.count + labelFile.count)) {
                try FashionMNIST.load(split: .train, directory: folder).pixels.count
            }
        }
        report("idx", tally)
        XCTAssertGreaterThan(tally.refused, tally.cases / 3)
    }

    func testPipelineDirectoryReader() throws {
        var m = Mutator(seed: Self.seed + 7)
        var tally = FuzzTally()
        let source = try fixture("pipeline-tiny")
        let dir = folder.appendingPathComponent("pipeline")
        for item in ["model_index.json", "unet", "scheduler"] {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: source.appendingPathComponent(item), to: dir.appendingPathComponent(item))
        }
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("model_index.json"))) as! [String: Any]
        let indexData = try Data(contentsOf: dir.appendingPathComponent("model_index.json"))
        let files = ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors", "scheduler/scheduler_config.json"]
        for i in 0..<150 {
            var removed: (URL, Data)?
            if m.chance(0.2) {
                let file = dir.appendingPathComponent(m.pick(Array(files.dropFirst())))
                removed = (file, try Data(contentsOf: file))
                try FileManager.default.removeItem(at: file)
            } else {
                try m.json(index, keys: ["_class_name", "unet", "scheduler"]).write(to: dir.appendingPathComponent("model_index.json"))
            }
            tally.run("pipeline case \(i)", mention: dir.path, maxValues: 1_000_000) { try LoadedPipeline.load(dir).weights.parameterCount }
            if let (file, data) = removed { try data.write(to: file) }
            try indexData.write(to: dir.appendingPathComponent("model_index.json"))
        }
        report("pipeline directory", tally)
    }

    func testTrainingFlagsAndSessionSettings() throws {
        var m = Mutator(seed: Self.seed + 8)
        var tally = FuzzTally()
        let floats: [Float] = [0, -1, 1, 2, 1e-30, 1e30, .nan, .infinity, -.infinity, 0.9999, 5e-4, -0.0, .greatestFiniteMagnitude]
        let ints = [0, -1, 1, 2, 3, 49, 50, 1000, 100_000, 100_001, 1_000_000_000, Int.max, Int.min]
        for i in 0..<400 {
            var o = tinyOptions()
            for _ in 0..<(1 + m.int(2)) {
                switch m.int(10) {
                case 0: o.batch = m.pick(ints.filter { $0 <= 1 << 20 })
                case 1: o.gradientAccumulation = m.pick(ints)
                case 2: o.learningRate = m.pick(floats)
                case 3: o.warmupSteps = m.pick(ints)
                case 4: o.weightDecay = m.pick(floats)
                case 5: o.gradientClip = m.pick(floats)
                case 6: o.emaMaxDecay = Double(m.pick(floats))
                case 7: o.timesteps = m.pick(ints)
                case 8: (o.betaStart, o.betaEnd) = (Double(m.pick(floats)), Double(m.pick(floats)))
                default: o.data = m.pick(["", "fashion-mnist", "/nonexistent"])
                }
            }
            tally.run("flags case \(i)", mention: nil, maxValues: Int.max) {
                do { try o.validate(.flags) } catch let e as UserError {
                    XCTAssert(e.message.hasPrefix("--") || e.message.contains("betaStart") || e.message.contains("betaEnd") || e.message.contains("emaP"), e.message)
                    throw e
                }
                XCTAssert(o.learningRate(step: 1).isFinite && o.emaDecay(step: 10).isFinite)
                guard o.batch <= 64 else { return 0 }
                return try MemoryNeed.training(o).bytes(batch: o.batch)   // builds the Trainer (measuring only)
            }
            var s = SessionSettings()
            s.steps = m.chance(0.5) ? m.pick(ints) : nil
            s.minutes = m.chance(0.5) ? Double(m.pick(floats)) : nil
            s.logEvery = m.pick(ints)
            s.sampleEvery = m.pick(ints)
            tally.run("session case \(i)", mention: "--", maxValues: 0) { try s.validate(); return 0 }
        }
        report("training flags", tally)
    }

    func testSampleRequests() throws {
        var m = Mutator(seed: Self.seed + 9)
        var tally = FuzzTally()
        let pipeline = try LoadedPipeline.load(fixture("pipeline-tiny"))
        let floats: [Float] = [0, -1, 1, 0.5, 2, 1e30, .nan, .infinity, 0.995, 1.0001]
        let ints = [0, -1, 1, 2, 7, 64, 999, 1000, 1001, 1_000_000_000, Int.max]
        for i in 0..<500 {
            var request = SampleRequest()
            request.count = m.pick(ints)
            request.deviceBatch = m.pick(ints)
            if m.chance(0.5) { request.sampler = .ddpm } else { request.sampler = .ddim; request.eta = m.pick(floats) }
            request.steps = m.chance(0.8) ? m.pick(ints) : nil
            if m.chance(0.3) { request.dynamicThreshold = m.pick(floats) }
            if m.chance(0.3) { request.sampleMaxValue = m.pick(floats) }
            if m.chance(0.3) { request.spacing = m.pick(SchedulerSettings.Spacing.allCases) }
            if m.chance(0.2) { request.variance = .learnedRange }
            tally.run("sample case \(i)", mention: "--", maxValues: Int.max) {
                let plan = try request.plan(pipeline)
                return plan.pipeline.settings.reverseSteps(plan.sampler, count: plan.steps, seed: 0).count
            }
        }
        report("sample requests", tally)
    }

}

private extension Int {
    func clamped(_ limit: Int) -> Int { Swift.min(self, limit) }
}
