import DDPM
import DDPMCore
import Foundation
import XCTest

/// File formats and datasets: PNG, NPY, safetensors, gzip, Fashion-MNIST, image folders,
/// image grids, loss plots and atomic writes.
final class IOTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("ddpm-io-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    /// Asserts that `body` throws a `UserError` whose message contains `fragment`.
    func assertUserError(_ fragment: String, file: StaticString = #filePath, line: UInt = #line,
                         _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("expected a UserError containing \"\(fragment)\"", file: file, line: line)
        } catch let error as UserError {
            XCTAssertTrue(error.message.contains(fragment),
                          "\"\(error.message)\" lacks \"\(fragment)\"", file: file, line: line)
        } catch {
            XCTFail("expected a UserError, got \(error)", file: file, line: line)
        }
    }

    /// Writes base64-encoded bytes to a file in the test folder.
    func writeBase64(_ text: String, name: String) throws -> URL {
        let url = folder.appendingPathComponent(name)
        try XCTUnwrap(Data(base64Encoded: text)).write(to: url)
        return url
    }

    // MARK: PNG

    func testPNGRoundTripGrayRGBAndRGBA() throws {
        for channels in [1, 3, 4] {
            let pixels = (0..<(7 * 5 * channels)).map { UInt8(($0 * 37) % 256) }
            let image = Image8(width: 7, height: 5, channels: channels, pixels: pixels)
            let url = folder.appendingPathComponent("sub/image\(channels).png")
            try writePNG(image, to: url)
            XCTAssertEqual(try readPNG(url), image)
        }
    }

    func testReadPNGPaletteSixteenBitAndGrayAlpha() throws {
        // Made with Python's zlib: a 2×2 8-bit palette image (red, green / blue, white).
        let palette = try readPNG(writeBase64(
            "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAMAAABFaP0WAAAADFBMVEX/AAAA/wAAAP/////7AGD2AAAADklEQVR4nGNgYGRgYgYAABEAB56iKhIAAAAASUVORK5CYII=",
            name: "palette.png"))
        XCTAssertEqual(palette.channels, 3)
        XCTAssertEqual(palette.pixels, [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255])

        // 2×1 16-bit gray: 0x1234 and 0xFFFF.
        let gray16 = try readPNG(writeBase64(
            "iVBORw0KGgoAAAANSUhEUgAAAAIAAAABEAAAAACB2fwVAAAADUlEQVR4nGMQMvn/HwAD5gJFLkKWdQAAAABJRU5ErkJggg==",
            name: "gray16.png"))
        XCTAssertEqual(gray16.channels, 1)
        XCTAssertEqual(gray16.pixels, [0x12, 255])

        // 1×1 gray+alpha: gray 100, alpha 200 → RGBA.
        let grayAlpha = try readPNG(writeBase64(
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR4nGNIOQEAAZMBLYFDvnYAAAAASUVORK5CYII=",
            name: "ga.png"))
        XCTAssertEqual(grayAlpha.channels, 4)
        XCTAssertEqual(grayAlpha.pixels, [100, 100, 100, 200])

        // 2×1 2-bit palette with tRNS (entry 0 transparent) → RGBA.
        let palette2 = try readPNG(writeBase64(
            "iVBORw0KGgoAAAANSUhEUgAAAAIAAAABAgMAAACJTJcZAAAABlBMVEUKFB4oMjzVG7TpAAAAAnRSTlMA/1uRIrUAAAAKSURBVHicYxAAAAASABGlVsdOAAAAAElFTkSuQmCC",
            name: "palette2.png"))
        XCTAssertEqual(palette2.channels, 4)
        XCTAssertEqual(palette2.pixels[3], 0)
        XCTAssertEqual(Array(palette2.pixels[4..<8]), [40, 50, 60, 255])
    }

    func testReadPNGErrors() throws {
        let text = folder.appendingPathComponent("notes.png")
        try Data("hello".utf8).write(to: text)
        assertUserError("not a PNG file (bad signature)") { _ = try readPNG(text) }
        assertUserError("does not exist") { _ = try readPNG(self.folder.appendingPathComponent("missing.png")) }

        // A valid signature and IHDR, then garbage.
        var broken = try XCTUnwrap(Data(base64Encoded:
            "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAMAAABFaP0WAAAADFBMVEX/AAAA/wAAAP/////7AGD2AAAADklEQVR4nGNgYGRgYgYAABEAB56iKhIAAAAASUVORK5CYII="))
        broken = broken.prefix(60)
        let brokenURL = folder.appendingPathComponent("broken.png")
        try broken.write(to: brokenURL)
        assertUserError("broken.png") { _ = try readPNG(brokenURL) }
    }

    // MARK: NPY

    func testNPYRoundTrip() throws {
        let floats: [Float] = [0, -1.5, 3.25, .greatestFiniteMagnitude, 1e-8, 42]
        let floatURL = folder.appendingPathComponent("a.npy")
        try writeNPY(float32: floats, shape: [2, 3], to: floatURL)
        XCTAssertEqual(try readNPY(floatURL), NPYArray(shape: [2, 3], values: floats))

        let bytes: [UInt8] = [0, 1, 128, 255]
        let byteURL = folder.appendingPathComponent("b.npy")
        try writeNPY(uint8: bytes, shape: [4], to: byteURL)
        XCTAssertEqual(try readNPY(byteURL), NPYArray(shape: [4], values: [0, 1, 128, 255]))

        // Byte for byte what numpy.save writes (checked with numpy 2.4): magic, version 1.0,
        // header length 118, header padded with spaces and '\n' so the data starts at 128.
        let raw = try Data(contentsOf: byteURL)
        XCTAssertEqual(Array(raw.prefix(10)), [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, 118, 0])
        XCTAssertEqual(raw.count, 128 + 4)
        let header = String(decoding: raw[10..<128], as: UTF8.self)
        XCTAssertEqual(header, "{'descr': '|u1', 'fortran_order': False, 'shape': (4,), }"
            + String(repeating: " ", count: 60) + "\n")
    }

    /// A .npy file as numpy writes it for the given dtype, shape and raw little-endian data.
    func handMadeNPY(descr: String, shape: String, data: [UInt8]) -> Data {
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var file = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        file.append(UInt8(header.utf8.count & 0xFF))
        file.append(UInt8(header.utf8.count >> 8))
        file.append(contentsOf: Array(header.utf8))
        file.append(contentsOf: data)
        return file
    }

    func testNPYReadsNumpyDefaultDtypes() throws {
        var doubles: [UInt8] = []
        for value in [1.5, -2.0, 0.25] as [Double] {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { doubles += $0 }
        }
        let f8 = folder.appendingPathComponent("f8.npy")
        try handMadeNPY(descr: "<f8", shape: "(3,)", data: doubles).write(to: f8)
        XCTAssertEqual(try readNPY(f8), NPYArray(shape: [3], values: [1.5, -2, 0.25]))

        var ints: [UInt8] = []
        for value in [7, -3, 0, 1_000_000] as [Int64] {
            withUnsafeBytes(of: value.littleEndian) { ints += $0 }
        }
        let i8 = folder.appendingPathComponent("i8.npy")
        try handMadeNPY(descr: "<i8", shape: "(2, 2)", data: ints).write(to: i8)
        XCTAssertEqual(try readNPY(i8), NPYArray(shape: [2, 2], values: [7, -3, 0, 1_000_000]))

        let scalar = folder.appendingPathComponent("scalar.npy")
        try handMadeNPY(descr: "<f4", shape: "()", data: [0, 0, 128, 63]).write(to: scalar)
        XCTAssertEqual(try readNPY(scalar), NPYArray(shape: [], values: [1]))
    }

    func testNPYErrors() throws {
        let truncated = folder.appendingPathComponent("t.npy")
        try handMadeNPY(descr: "<f4", shape: "(3,)", data: [0, 0, 128, 63]).write(to: truncated)
        assertUserError("truncated") { _ = try readNPY(truncated) }

        let complex = folder.appendingPathComponent("c.npy")
        try handMadeNPY(descr: "<c8", shape: "(1,)", data: [UInt8](repeating: 0, count: 8)).write(to: complex)
        assertUserError("unsupported dtype <c8") { _ = try readNPY(complex) }

        let garbage = folder.appendingPathComponent("g.npy")
        try Data("not numpy at all".utf8).write(to: garbage)
        assertUserError("bad magic") { _ = try readNPY(garbage) }
    }

    // MARK: safetensors

    func testSafetensorsRoundTrip() throws {
        let tensors: [String: SafeTensors.Entry] = [
            "b.weight": .init(shape: [2, 3], values: [1, 2, 3, 4, 5, -6]),
            "a.bias": .init(shape: [3], values: [0.5, -0.25, 1e-3]),
            "empty": .init(shape: [0, 4], values: []),
            "scalar": .init(shape: [], values: [7]),
        ]
        let url = folder.appendingPathComponent("model.safetensors")
        try writeSafetensors(tensors, metadata: ["step": "100", "note": "quote \" and \\ ok"], to: url)
        let loaded = try readSafetensors(url)
        XCTAssertEqual(loaded.tensors, tensors)
        XCTAssertEqual(loaded.metadata, ["step": "100", "note": "quote \" and \\ ok"])

        // The header length is a multiple of 8 and the header is JSON padded with spaces.
        let raw = try Data(contentsOf: url)
        let headerLength = raw.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual(headerLength % 8, 0)
        let header = String(decoding: raw[8..<(8 + headerLength)], as: UTF8.self)
        XCTAssertTrue(header.hasPrefix("{\"__metadata__\":"))
        XCTAssertEqual(raw.count, 8 + headerLength + 4 * (6 + 3 + 1))
        // Keys sorted: a.bias's data comes first.
        XCTAssertTrue(header.contains("\"a.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}"))
    }

    /// A safetensors file with the given JSON header (padded) and data buffer.
    func handMadeSafetensors(_ header: String, _ buffer: [UInt8]) -> Data {
        var text = header
        while text.utf8.count % 8 != 0 { text += " " }
        var data = Data()
        withUnsafeBytes(of: UInt64(text.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array(text.utf8))
        data.append(contentsOf: buffer)
        return data
    }

    func testSafetensorsReadsHalfBFloatAndDouble() throws {
        // F16 1.0 = 0x3C00, -2.0 = 0xC000, 2^-24 = 0x0001; BF16 1.0 = 0x3F80; F64 0.5.
        var buffer: [UInt8] = [0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00, 0x80, 0x3F]
        withUnsafeBytes(of: (0.5 as Double).bitPattern.littleEndian) { buffer += $0 }
        let header = """
        {"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},\
        "b":{"dtype":"BF16","shape":[1],"data_offsets":[6,8]},\
        "d":{"dtype":"F64","shape":[1,1],"data_offsets":[8,16]}}
        """
        let url = folder.appendingPathComponent("mixed.safetensors")
        try handMadeSafetensors(header, buffer).write(to: url)
        let loaded = try readSafetensors(url)
        XCTAssertEqual(loaded.tensors["h"]?.values, [1, -2, Float(pow(2.0, -24.0))])
        XCTAssertEqual(loaded.tensors["b"]?.values, [1])
        XCTAssertEqual(loaded.tensors["d"], SafeTensors.Entry(shape: [1, 1], values: [0.5]))
        XCTAssertEqual(loaded.metadata, [:])
    }

    func testSafetensorsCorruptFiles() throws {
        let good = folder.appendingPathComponent("good.safetensors")
        try writeSafetensors(["w": .init(shape: [4], values: [1, 2, 3, 4])], to: good)
        let bytes = try Data(contentsOf: good)

        let truncated = folder.appendingPathComponent("truncated.safetensors")
        try bytes.prefix(bytes.count - 3).write(to: truncated)
        assertUserError("tensor w's data_offsets point past the end of the file") {
            _ = try readSafetensors(truncated)
        }

        let tiny = folder.appendingPathComponent("tiny.safetensors")
        try bytes.prefix(20).write(to: tiny)
        assertUserError("header length") { _ = try readSafetensors(tiny) }

        let badJSON = folder.appendingPathComponent("badjson.safetensors")
        try handMadeSafetensors("{\"w\": [oops", []).write(to: badJSON)
        assertUserError("not a JSON object") { _ = try readSafetensors(badJSON) }

        let badDtype = folder.appendingPathComponent("dtype.safetensors")
        try handMadeSafetensors("{\"w\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}",
                                [UInt8](repeating: 0, count: 8)).write(to: badDtype)
        assertUserError("dtype I64") { _ = try readSafetensors(badDtype) }

        let gap = folder.appendingPathComponent("gap.safetensors")
        try handMadeSafetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                                [UInt8](repeating: 0, count: 8)).write(to: gap)
        assertUserError("gap") { _ = try readSafetensors(gap) }

        let shapeMismatch = folder.appendingPathComponent("shape.safetensors")
        try handMadeSafetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}",
                                [UInt8](repeating: 0, count: 8)).write(to: shapeMismatch)
        assertUserError("data_offsets cover 8 bytes") { _ = try readSafetensors(shapeMismatch) }

        assertUserError("corrupt safetensors file") {
            let text = self.folder.appendingPathComponent("text.safetensors")
            try Data("this is not a safetensors file at all".utf8).write(to: text)
            _ = try readSafetensors(text)
        }
    }

    // MARK: gzip

    func testGzip() throws {
        let text = "H4sIAAAAAAACA8tIzcnJV0ivyizgyhhljjJHmaPMUeYoc5Q5yhxIJgCNNvv/mAgAAA=="
        let url = try writeBase64(text, name: "hello.gz")
        let data = try readGzip(url)
        XCTAssertEqual(data, Data(String(repeating: "hello gzip\n", count: 200).utf8))
        // 2200 bytes decompressed: a bound below that (a decompression bomb, scaled down) is an error.
        XCTAssertEqual(try readGzip(url, maxBytes: 2200).count, 2200)
        assertUserError("decompresses to more than 2199 bytes") { _ = try readGzip(url, maxBytes: 2199) }

        let truncatedURL = folder.appendingPathComponent("truncated.gz")
        try Data(contentsOf: url).prefix(30).write(to: truncatedURL)
        assertUserError("corrupt or truncated") { _ = try readGzip(truncatedURL) }

        let plain = folder.appendingPathComponent("plain.gz")
        try Data("plain text".utf8).write(to: plain)
        assertUserError("not a gzip file") { _ = try readGzip(plain) }

        assertUserError("does not exist") { _ = try readGzip(self.folder.appendingPathComponent("nope.gz")) }
    }

    // MARK: Python JSON

    /// diffusers writes Python's JSON: a saved DPMSolverMultistepScheduler config holds
    /// `"lambda_min_clipped": -Infinity`, which strict JSON parsers refuse.
    func testPythonJSONReadsNonFiniteNumbers() throws {
        let text = #"{"lambda_min_clipped": -Infinity, "a": [Infinity, NaN, 1.5], "s": "NaN -Infinity \" Infinity", "NaNx": 2}"#
        let json = try PythonJSON.object(Data(text.utf8), source: "config.json")
        XCTAssertEqual((json["lambda_min_clipped"] as? NSNumber)?.doubleValue, -.infinity)
        let a = (json["a"] as! [NSNumber]).map(\.doubleValue)
        XCTAssertEqual(a[0], .infinity)
        XCTAssertTrue(a[1].isNaN)
        XCTAssertEqual(a[2], 1.5)
        XCTAssertEqual(json["s"] as? String, "NaN -Infinity \" Infinity", "tokens inside strings are left alone")
        XCTAssertEqual((json["NaNx"] as? NSNumber)?.intValue, 2)
        XCTAssertThrowsError(try PythonJSON.object(Data("{\"a\": Infinit}".utf8), source: "bad.json")) {
            XCTAssert("\($0)".contains("bad.json"), "\($0)")
        }
        // A pipeline whose scheduler config diffusers wrote with -Infinity loads.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("python-json-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.copyItem(at: try fixture("pipeline-tiny"), to: dir)
        let config = dir.appendingPathComponent("scheduler/scheduler_config.json")
        var body = try String(contentsOf: config, encoding: .utf8)
        body = body.replacingOccurrences(of: "\"beta_end\"", with: "\"lambda_min_clipped\": -Infinity,\n  \"beta_end\"")
        try body.write(to: config, atomically: true, encoding: .utf8)
        XCTAssertEqual(try LoadedPipeline.load(dir).settings.schedule.timesteps, 20)
        // The UNet's config.json is read the same way.
        let unetConfig = dir.appendingPathComponent("unet/config.json")
        var unetBody = try String(contentsOf: unetConfig, encoding: .utf8)
        unetBody = unetBody.replacingOccurrences(of: "\"sample_size\"", with: "\"some_future_key\": NaN,\n  \"sample_size\"")
        try unetBody.write(to: unetConfig, atomically: true, encoding: .utf8)
        XCTAssertEqual(try UNetConfig.load(unetConfig).sampleSize, 8)
    }

    // MARK: Fashion-MNIST

    func testFashionMNIST() throws {
        try XCTSkipUnless(FileManager.default.fileExists(
            atPath: FashionMNIST.defaultDirectory.appendingPathComponent("train-images-idx3-ubyte.gz").path),
            "dataset-fashion-mnist is not installed")
        let train = try FashionMNIST.load(split: .train)
        XCTAssertEqual(train.count, 60000)
        XCTAssertEqual([train.channels, train.height, train.width], [1, 28, 28])
        XCTAssertEqual(train.pixels.count, 60000 * 28 * 28)
        XCTAssertEqual(train.labels.count, 60000)
        XCTAssertTrue(train.labels.allSatisfy { (0...9).contains($0) })
        XCTAssertEqual(Set(train.labels).count, 10)
        // Checked with Python's gzip module: labels start 9, 0, 0, 3; the first image sums to 76247.
        XCTAssertEqual(Array(train.labels.prefix(4)), [9, 0, 0, 3])
        XCTAssertEqual(FashionMNIST.classNames[train.labels[0]], "Ankle boot")
        XCTAssertEqual(train.pixels.prefix(784).reduce(0) { $0 + Int($1) }, 76247)

        let test = try FashionMNIST.load(split: .test)
        XCTAssertEqual(test.count, 10000)
        XCTAssertEqual([test.channels, test.height, test.width], [1, 28, 28])
        XCTAssertEqual(Array(test.labels.prefix(4)), [9, 2, 1, 1])
        XCTAssertTrue(test.labels.allSatisfy { (0...9).contains($0) })
    }

    /// Review bug: `--model tiny` (sample_size 8) stopped with "images are 28×28 but the model's
    /// sample_size is 8". Fashion-MNIST is now shrunk to the model's size (area average).
    func testFashionMNISTShrinksToASmallModel() throws {
        try XCTSkipUnless(FileManager.default.fileExists(
            atPath: FashionMNIST.defaultDirectory.appendingPathComponent("t10k-images-idx3-ubyte.gz").path),
            "dataset-fashion-mnist is not installed")
        let data = try TrainingData.load("fashion-mnist", size: 8, channels: 1, seed: 0, horizontalFlip: false, split: .test)
        XCTAssertEqual(data.count, 10000)
        XCTAssertEqual(data.images.count, 10000 * 64)
        XCTAssertTrue(data.images.allSatisfy { $0 >= -1 && $0 <= 1 })
        // The area average keeps the mean brightness (up to byte rounding): compare with the 28×28 original.
        let original = try FashionMNIST.load(split: .test)
        let mean28 = original.pixels.prefix(784).reduce(0.0) { $0 + Double($1) } / 784 / 127.5 - 1
        let mean8 = data.images.prefix(64).reduce(0.0) { $0 + Double($1) } / 64
        XCTAssertEqual(mean8, mean28, accuracy: 0.01)
    }

    func testFashionMNISTErrors() throws {
        assertUserError("apt-get install dataset-fashion-mnist") {
            _ = try FashionMNIST.load(split: .train, directory: self.folder)
        }
        // Right names, wrong contents: the magic number check catches it.
        let bogus = try XCTUnwrap(Data(base64Encoded:
            "H4sIAAAAAAACA8tIzcnJV0ivyizgyhhljjJHmaPMUeYoc5Q5yhxIJgCNNvv/mAgAAA=="))
        try bogus.write(to: folder.appendingPathComponent("t10k-images-idx3-ubyte.gz"))
        try bogus.write(to: folder.appendingPathComponent("t10k-labels-idx1-ubyte.gz"))
        assertUserError("bad magic number") {
            _ = try FashionMNIST.load(split: .test, directory: self.folder)
        }
        XCTAssertEqual(FashionMNIST.classNames.count, 10)
        XCTAssertEqual(FashionMNIST.classNames[0], "T-shirt/top")
    }

    // MARK: image folder

    func testImageFolder() throws {
        let images = folder.appendingPathComponent("images")
        // b.png: 8×4 RGB, left half red, right half blue.
        var wide = Image8(width: 8, height: 4, channels: 3)
        for y in 0..<4 {
            for x in 0..<8 {
                let at = (y * 8 + x) * 3
                if x < 4 { wide.pixels[at] = 200 } else { wide.pixels[at + 2] = 100 }
            }
        }
        try writePNG(wide, to: images.appendingPathComponent("b.png"))
        // a/c.png (sorted first by path): 2×3 gray of value 90.
        try writePNG(Image8(width: 2, height: 3, channels: 1, pixels: [UInt8](repeating: 90, count: 6)),
                     to: images.appendingPathComponent("a/c.png"))
        try Data("ignored".utf8).write(to: images.appendingPathComponent("readme.txt"))

        let gray = try ImageFolder.load(directory: images, size: 2, channels: 1)
        XCTAssertEqual(gray.count, 2)
        XCTAssertEqual([gray.channels, gray.height, gray.width], [1, 2, 2])
        XCTAssertEqual(gray.labels, [0, 0])
        // First the uniform gray image (grown then cropped), then the wide one: shrunk to 4×2,
        // cropped to the middle 2×2, which is one red column and one blue column.
        let red = UInt8((0.299 * 200).rounded()), blue = UInt8((0.114 * 100).rounded())
        XCTAssertEqual(gray.pixels, [90, 90, 90, 90, red, blue, red, blue])

        let rgb = try ImageFolder.load(directory: images, size: 2, channels: 3)
        XCTAssertEqual(rgb.pixels.count, 2 * 3 * 2 * 2)
        XCTAssertEqual(Array(rgb.pixels[0..<12]), [UInt8](repeating: 90, count: 12))
        // The wide image in C×H×W: R plane, G plane, B plane.
        XCTAssertEqual(Array(rgb.pixels[12..<24]), [200, 0, 200, 0, 0, 0, 0, 0, 0, 100, 0, 100])

        let big = try ImageFolder.load(directory: images, size: 5, channels: 1)
        XCTAssertEqual([big.height, big.width], [5, 5])
        XCTAssertEqual(Array(big.pixels[0..<25]), [UInt8](repeating: 90, count: 25))
    }

    func testImageFolderErrors() throws {
        assertUserError("does not exist") {
            _ = try ImageFolder.load(directory: self.folder.appendingPathComponent("nope"), size: 8, channels: 1)
        }
        assertUserError("no .png files") { _ = try ImageFolder.load(directory: self.folder, size: 8, channels: 1) }
        try Data("junk".utf8).write(to: folder.appendingPathComponent("bad.png"))
        assertUserError("bad.png") { _ = try ImageFolder.load(directory: self.folder, size: 8, channels: 3) }
        assertUserError("channels") { _ = try ImageFolder.load(directory: self.folder, size: 8, channels: 2) }
    }

    // MARK: grids and plots

    func testMakeGridLayout() throws {
        // Four 1×3×3 images with constant values -1, 0, 1 and 2 (clamped to 1).
        let constants: [Float] = [-1, 0, 1, 2]
        let values = constants.flatMap { [Float](repeating: $0, count: 9) }
        let grid = makeGrid(values, count: 4, channels: 1, height: 3, width: 3)
        XCTAssertEqual([grid.width, grid.height, grid.channels], [2 * (3 + 2) + 2, 2 * (3 + 2) + 2, 1])
        func pixel(_ x: Int, _ y: Int) -> UInt8 { grid.pixels[y * grid.width + x] }
        XCTAssertEqual(pixel(0, 0), 0)  // padding
        XCTAssertEqual(pixel(2, 2), 0)  // image 0: -1 → 0
        XCTAssertEqual(pixel(7, 2), 128)  // image 1: 0 → round(127.5) = 128
        XCTAssertEqual(pixel(2, 7), 255)  // image 2
        XCTAssertEqual(pixel(9, 9), 255)  // image 3, clamped
        XCTAssertEqual(pixel(5, 2), 0)  // padding between columns
        XCTAssertEqual(pixel(2, 5), 0)  // padding between rows

        let rgb = makeGrid([Float](repeating: 0.5, count: 3 * 3 * 2 * 2), count: 3, channels: 3,
                           height: 2, width: 2, columns: 3, padding: 1)
        XCTAssertEqual([rgb.width, rgb.height, rgb.channels], [10, 4, 3])
        XCTAssertEqual(toUInt8([-5, -1, -0.5, 0, 0.5, 1, 7, .nan]), [0, 0, 64, 128, 191, 255, 255, 0])
    }

    func testLossPlot() throws {
        let steps = Array(stride(from: 0, to: 5000, by: 10))
        var state: UInt32 = 12345
        let losses: [Float] = steps.map { step in
            state = state &* 1_664_525 &+ 1_013_904_223
            let noise = Float(state >> 8) / Float(1 << 24)
            return 1.0 / (1 + Float(step) / 50) * (0.7 + 0.6 * noise) + 0.002
        }
        let plot = renderLossPlot(steps: steps, losses: losses)
        XCTAssertEqual([plot.width, plot.height, plot.channels], [640, 360, 3])
        XCTAssertTrue(plot.pixels.contains { $0 != 255 })
        try writePNG(plot, to: URL(fileURLWithPath: "/tmp/ddpm-loss-plot.png"))

        let small = renderLossPlot(steps: [1, 2, 3], losses: [0.5, 0.4, 0.45], width: 200, height: 100)
        XCTAssertEqual([small.width, small.height], [200, 100])
        let empty = renderLossPlot(steps: [], losses: [])
        XCTAssertEqual([empty.width, empty.height], [640, 360])
        let odd = renderLossPlot(steps: [5, 5], losses: [.nan, .infinity])
        XCTAssertEqual(odd.pixels.count, 640 * 360 * 3)
    }

    // MARK: atomic writes

    func testWriteAtomically() throws {
        let target = folder.appendingPathComponent("nested/dir/out.bin")
        try writeAtomically(Data([1, 2, 3]), to: target)
        try writeAtomically(Data([4, 5]), to: target)
        XCTAssertEqual(try Data(contentsOf: target), Data([4, 5]))
        let parent = target.deletingLastPathComponent().path
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: parent), ["out.bin"])

        // A failing writer leaves the old file and no temporary file behind.
        struct Boom: Error {}
        XCTAssertThrowsError(try writeAtomically(to: target) { temp in
            try Data([9, 9, 9]).write(to: temp)
            throw Boom()
        })
        XCTAssertEqual(try Data(contentsOf: target), Data([4, 5]))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: parent), ["out.bin"])

        // A parent that is a file cannot be created.
        assertUserError("cannot create the folder") {
            try writeAtomically(Data([1]), to: target.appendingPathComponent("child.bin"))
        }
    }
}
