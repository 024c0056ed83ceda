import DDPM
import DDPMCore
import Foundation
import XCTest

/// The validation layer's pieces, one refusal each (the fuzz suite covers the combinations).
final class ValidationTests: XCTestCase {
    func temporary(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("validation-\(getpid())-\(name)")
    }

    func message(_ body: () throws -> Void) -> String {
        do { try body(); return "" } catch let error as UserError { return error.message } catch { return "not a UserError: \(error)" }
    }

    func testDuplicateKeysAreFound() {
        XCTAssertEqual(JSONText.firstDuplicateKey(Data(#"{"a": 1, "b": {"a": 2}, "c": [{"x": 1}, {"x": 2}]}"#.utf8)), nil)
        XCTAssertEqual(JSONText.firstDuplicateKey(Data(#"{"a": 1, "b": 2, "a": 3}"#.utf8)), "a")
        XCTAssertEqual(JSONText.firstDuplicateKey(Data(#"{"n": {"k": "}", "k": 1}}"#.utf8)), "k")
        XCTAssertEqual(JSONText.firstDuplicateKey(Data(#"{"a\"b": 1, "a\u0022b": 2}"#.utf8)), "a\"b")
    }

    func testSafetensorsWithADuplicateKeyIsRefused() throws {
        let header = #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        var data = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(Data(header.utf8) + Data([0, 0, 128, 63]))
        let url = temporary("duplicate.safetensors")
        try data.write(to: url)
        let text = message { _ = try readSafetensors(url) }
        XCTAssert(text.contains(url.path) && text.contains("\"w\" twice"), text)
    }

    func testConfigErrorsNameTheKeyTheValueAndWhatIsAllowed() throws {
        let url = temporary("config.json")
        let base = try String(contentsOf: fixture("pipeline-tiny/unet/config.json"), encoding: .utf8)
        for (from, to, words) in [("\"norm_num_groups\": 4", "\"norm_num_groups\": 0", ["\"norm_num_groups\" is 0", "1…"]),
                                  ("\"layers_per_block\": 1", "\"layers_per_block\": 2.5", ["\"layers_per_block\"", "whole number", "2.5"]),
                                  ("\"norm_eps\": 1e-05", "\"norm_eps\": \"tiny\"", ["norm_eps", "a number"]),
                                  ("\"sample_size\": 8", "\"sample_size\": 8, \"sample_size\": 16", ["\"sample_size\" twice"])] {
            XCTAssert(base.contains(from), from)
            try base.replacingOccurrences(of: from, with: to).write(to: url, atomically: true, encoding: .utf8)
            let text = message { _ = try UNetConfig.load(url) }
            for w in words + [url.path] { XCTAssert(text.contains(w), "'\(w)' not in: \(text)") }
        }
    }

    func testCheckpointOptionsAreTyped() throws {
        var options = TrainingOptions(model: ModelPreset.tiny.config)
        options.schedule = .cosine
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(options)) as! [String: Any]
        XCTAssertEqual(json["schedule"] as? String, "squaredcos_cap_v2", "the stored name must stay diffusers' (old checkpoints read back)")
        var bogus = json
        bogus["prediction"] = "bogus"
        let data = try JSONSerialization.data(withJSONObject: bogus)
        let text = message { _ = try JSONText.decode(TrainingOptions.self, from: data, source: "ckpt") }
        XCTAssert(text.contains("\"prediction\"") && text.contains("bogus"), text)
    }

    func testStaleTemporaryFilesOfDeadProcessesOnly() throws {
        let dir = temporary("stale")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("pipeline"), withIntermediateDirectories: true)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        let dead = dir.appendingPathComponent("pipeline/.config.json.tmp-\(p.processIdentifier)")
        let alive = dir.appendingPathComponent(".log.csv.tmp-\(getpid())")
        try Data().write(to: dead)
        try Data().write(to: alive)
        XCTAssertEqual(removeStaleTemporaryFiles(under: dir), [dead.path])
        XCTAssert(FileManager.default.fileExists(atPath: alive.path), "a live writer's file was removed")
    }

    func testRunLockRefusesASecondOwnerAndReleases() throws {
        let dir = temporary("lock")
        try? FileManager.default.removeItem(at: dir)
        let lock = try RunLock(directory: dir)
        // Another process's live pid: our parent (the test runner's shell or swift-test) is alive.
        try Data("\(getppid())\n".utf8).write(to: lock.url)
        let text = message { _ = try RunLock(directory: dir) }
        XCTAssert(text.contains("pid \(getppid())"), text)
        XCTAssert(FileManager.default.fileExists(atPath: lock.url.path), "a refused lock removed the owner's file")
        try Data("\(getpid())\n".utf8).write(to: lock.url)
        lock.release()
        XCTAssertFalse(FileManager.default.fileExists(atPath: lock.url.path))
    }
}
