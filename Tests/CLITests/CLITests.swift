import Foundation
import XCTest

/// The ddpm-cl built beside this test bundle (same build folder and configuration).
func cliBinary() throws -> URL {
    let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("ddpm-cl")
    if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    for config in ["release", "debug"] {
        let url = root.appendingPathComponent(".build/\(config)/ddpm-cl")
        if FileManager.default.isExecutableFile(atPath: url.path) { return url }
    }
    throw XCTSkip("ddpm-cl is not built (run `swift build -c release`)")
}

/// Runs the binary the way a user does.
func runCLI(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
    try runProcess(try cliBinary(), arguments, environment: environment)
}

/// Runs an executable (the binary, or a launcher such as mpirun) and collects its exit status and output.
func runProcess(_ executable: URL, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    // A crash (SIGILL from a Swift trap, SIGABRT) reads as the shell shows it: 128 + the signal.
    let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    return (status, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

final class CLITests: XCTestCase {
    func run(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) { try runCLI(arguments) }

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

/// Bad input gets a one-paragraph error and a non-zero exit, never a crash trace.
final class CLIBadInputTests: XCTestCase {
    func expectError(_ arguments: [String], mentioning words: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try runCLI(arguments)
        XCTAssertNotEqual(r.status, 0, "\(arguments) should fail", file: file, line: line)
        XCTAssert(r.err.hasPrefix("error: ") || r.err.contains("Error: "), r.err, file: file, line: line)
        for w in words { XCTAssert(r.err.contains(w), "\(arguments): '\(w)' not in: \(r.err)", file: file, line: line) }
        XCTAssertFalse(r.err.contains("Fatal error") || r.err.contains("Backtrace"), r.err, file: file, line: line)
    }

    func testMissingDataFolder() throws {
        try expectError(["train", "--device", "cpu-reference", "--data", "/nonexistent/images", "--steps", "1", "--out", tmp("a")],
                        mentioning: ["/nonexistent/images"])
    }

    func testUnreadableImage() throws {
        let dir = URL(fileURLWithPath: tmp("images"))
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data("not a png".utf8).write(to: dir.appendingPathComponent("broken.png"))
        try expectError(["train", "--device", "cpu-reference", "--data", dir.path, "--steps", "1", "--out", tmp("b")],
                        mentioning: ["broken.png"])
    }

    func testUnknownBlockType() throws {
        let config = URL(fileURLWithPath: tmp("config.json"))
        try Data(#"{"down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"], "up_block_types": ["UpBlock2D", "UpBlock2D"], "block_out_channels": [32, 64]}"#.utf8).write(to: config)
        try expectError(["train", "--device", "cpu-reference", "--model", config.path, "--steps", "1", "--out", tmp("c")],
                        mentioning: ["CrossAttnDownBlock2D", "supports"])
    }

    func testCorruptCheckpoint() throws {
        let run = URL(fileURLWithPath: tmp("run"))
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        try Data(repeating: 7, count: 100).write(to: run.appendingPathComponent("checkpoint.safetensors"))
        try expectError(["train", "--device", "cpu-reference", "--resume", run.path, "--steps", "2"], mentioning: ["checkpoint.safetensors"])
    }

    func testSampleWithoutModel() throws {
        try expectError(["sample", "/nonexistent/run", "--device", "cpu-reference"], mentioning: ["not a model directory"])
    }

    private func tmp(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("ddpm-cli-\(getpid())-\(name)").path
    }
}
