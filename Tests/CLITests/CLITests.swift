import Foundation
import XCTest

/// Runs the built binary the way a user does.
final class CLITests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func binary() throws -> URL {
        for config in ["release", "debug"] {
            let url = Self.root.appendingPathComponent(".build/\(config)/ddpm-cl")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw XCTSkip("ddpm-cl is not built (run `swift build -c release`)")
    }

    func run(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
        let process = Process()
        process.executableURL = try binary()
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    func testHelpTeaches() throws {
        let r = try run(["--help"])
        XCTAssertEqual(r.status, 0)
        for word in ["devices", "check", "--device"] { XCTAssert(r.out.contains(word), "help lacks \(word): \(r.out)") }
    }

    func testDevicesListsPoCL() throws {
        let r = try run(["devices"])
        if ProcessInfo.processInfo.environment["DDPM_REQUIRE_CL"] != "1" && r.status == 2 { throw XCTSkip("no OpenCL here") }
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssert(r.out.hasPrefix("0: "), r.out)
        let json = try run(["devices", "--json"])
        let parsed = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]]
        XCTAssertEqual(parsed?.first?["index"] as? Int, 0)
    }

    func testMissingDeviceIsAClearError() throws {
        let r = try run(["check", "--device", "99"])
        XCTAssertEqual(r.status, 2)
        XCTAssert(r.err.contains("no OpenCL device 99") || r.err.contains("No OpenCL device was found"), r.err)
        XCTAssertFalse(r.err.contains("Fatal error"), r.err)
        let bad = try run(["check", "--device", "gpu"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssert(bad.err.contains("--device takes a number"), bad.err)
    }
}
