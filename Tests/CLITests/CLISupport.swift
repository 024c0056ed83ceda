import Foundation
import XCTest

/// The repository root (three levels above this file).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The diffusers DDPMPipeline fixture (an 8×8 gray tiny U-Net), copied to a fresh folder.
func copyOfTinyPipeline(_ name: String) throws -> URL {
    let source = repositoryRoot.appendingPathComponent("Tests/DDPMTests/Fixtures/pipeline-tiny")
    let target = scratchFolder(name)
    try? FileManager.default.removeItem(at: target)
    try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
    for item in ["model_index.json", "unet", "scheduler"] {
        try FileManager.default.copyItem(at: source.appendingPathComponent(item), to: target.appendingPathComponent(item))
    }
    return target
}

/// A fresh, empty path under the temporary directory, unique to this test process.
func scratchFolder(_ name: String) -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("ddpm-cli-\(getpid())-\(name)")
    try? FileManager.default.removeItem(at: url)
    return url
}

/// Reads, edits and writes a JSON object file.
func editJSON(_ url: URL, _ edit: (inout [String: Any]) -> Void) throws {
    var object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    edit(&object)
    try JSONSerialization.data(withJSONObject: object, options: [.fragmentsAllowed]).write(to: url)
}

/// A safetensors file split into its header object and its data bytes, and put back together.
struct SafetensorsParts {
    var header: [String: Any]
    var data: Data

    init(_ url: URL) throws {
        let bytes = try Data(contentsOf: url)
        let length = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        header = try JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<(8 + length))) as! [String: Any]
        data = bytes.subdata(in: (8 + length)..<bytes.count)
    }

    var metadata: [String: String] {
        get { header["__metadata__"] as? [String: String] ?? [:] }
        set { header["__metadata__"] = newValue }
    }

    func write(to url: URL, rawHeader: String? = nil) throws {
        var text = try rawHeader ?? String(decoding: JSONSerialization.data(withJSONObject: header), as: UTF8.self)
        text += String(repeating: " ", count: (8 - text.utf8.count % 8) % 8)
        var out = Data()
        withUnsafeBytes(of: UInt64(text.utf8.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(Data(text.utf8))
        out.append(data)
        try out.write(to: url)
    }
}

/// A minimal float32 .npy file.
func npyData(shape: [Int], values: [Float], trailing: Int = 0) -> Data {
    let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    var dict = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
    dict += String(repeating: " ", count: (64 - (10 + dict.utf8.count + 1) % 64) % 64) + "\n"
    var data = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(dict.utf8.count & 0xFF), UInt8(dict.utf8.count >> 8)])
    data.append(Data(dict.utf8))
    for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
    data.append(Data(repeating: 0, count: trailing))
    return data
}

/// Runs the binary and asserts a clear user error: non-zero exit, "error: …" on stderr naming
/// every word in `words`, no crash trace, and within `seconds`.
@discardableResult
func expectUserError(_ arguments: [String], mentioning words: [String], seconds: Double = 60, environment: [String: String] = [:],
                     file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let start = Date()
    let r = try runCLI(arguments, environment: environment)
    let elapsed = Date().timeIntervalSince(start)
    XCTAssertNotEqual(r.status, 0, "\(arguments) should fail: \(r.out)", file: file, line: line)
    XCTAssert(r.status < 128, "\(arguments) died of a signal (status \(r.status)): \(r.err)", file: file, line: line)
    XCTAssert(r.err.hasPrefix("error: ") || r.err.contains("Error: "), "\(arguments): \(r.err)", file: file, line: line)
    for w in words { XCTAssert(r.err.contains(w), "\(arguments): '\(w)' not in: \(r.err)", file: file, line: line) }
    XCTAssertFalse(r.err.contains("Fatal error") || r.err.contains("Backtrace") || r.err.contains("crashed"), r.err, file: file, line: line)
    XCTAssertLessThan(elapsed, seconds, "\(arguments) took \(elapsed) s", file: file, line: line)
    return r.err
}
