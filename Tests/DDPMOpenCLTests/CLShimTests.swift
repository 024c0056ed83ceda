import DDPMOpenCL
import Foundation
import XCTest

final class CLShimTests: XCTestCase {
    func testDevicesAreListedGPUsFirst() throws {
        _ = try requireOpenCLDevice()
        let devices = try CLDevices.all()
        XCTAssertFalse(devices.isEmpty)
        for d in devices {
            XCTAssertFalse(d.name.isEmpty)
            XCTAssert(d.version.hasPrefix("OpenCL"), d.version)
            XCTAssertGreaterThan(d.computeUnits, 0)
            XCTAssertGreaterThan(d.globalMemoryBytes, 0)
        }
        let kinds = devices.map(\.kind)
        if let firstCPU = kinds.firstIndex(of: .cpu) { XCTAssertFalse(kinds[firstCPU...].contains(.gpu)) }
    }

    /// A tiny saxpy built from source, run, and checked against Swift.
    func testSaxpyKernel() throws {
        let context = try CLContext(device: try requireOpenCLDevice())
        let program = try context.buildProgram(source: """
            kernel void saxpy(global float *y, global const float *x, float a, int n) {
                int i = get_global_id(0);
                if (i < n) y[i] = a * x[i] + y[i];
            }
            """, options: "", file: "saxpy.cl")
        let kernel = try program.kernel("saxpy")
        let n = 1000
        let x = (0..<n).map { Float($0) * 0.5 }, y = (0..<n).map { Float($0 % 7) }
        let xb = try context.makeBuffer(bytes: n * 4), yb = try context.makeBuffer(bytes: n * 4)
        try x.withUnsafeBytes { try context.write(xb, from: $0.baseAddress!, bytes: $0.count) }
        try y.withUnsafeBytes { try context.write(yb, from: $0.baseAddress!, bytes: $0.count) }
        try kernel.setArguments([.buffer(yb), .buffer(xb), .float(2.5), .int(n)])
        try context.launch(kernel, global: [1024], local: [64])
        var out = [Float](repeating: 0, count: n)
        try out.withUnsafeMutableBytes { try context.read(yb, into: $0.baseAddress!, bytes: $0.count) }
        for i in 0..<n { XCTAssertEqual(out[i], 2.5 * x[i] + y[i], accuracy: 1e-4) }
    }

    /// A compile error surfaces the CL error name, the file, the line and the driver's log.
    func testCompileErrorShowsTheLog() throws {
        let context = try CLContext(device: try requireOpenCLDevice())
        XCTAssertThrowsError(try context.buildProgram(source: "#line 1 \"broken.cl\"\nkernel void f(global float *x) {\n  x[0] = undefined_name;\n}\n",
                                                      options: "", file: "broken.cl")) { error in
            let text = "\(error)"
            XCTAssert(text.contains("CL_BUILD_PROGRAM_FAILURE"), text)
            XCTAssert(text.contains("broken.cl"), text)
            XCTAssert(text.contains("undefined_name"), text)
            XCTAssert(text.contains(":2:"), "the log should name line 2: \(text)")
        }
    }

    /// The embedded kernels are exactly Kernels/*.cl (a new file must be named in KernelSources.files).
    func testEmbeddedKernelsAreFresh() throws {
        let directory = packageRoot.appendingPathComponent("Kernels")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".cl") }.sorted()
        XCTAssertEqual(files, KernelSources.embeddedFileNames, "name every Kernels/*.cl file in KernelSources.files")
        for f in files {
            let text = try String(contentsOf: directory.appendingPathComponent(f), encoding: .utf8)
            XCTAssertEqual(KernelSources.embedded(f), text, "\(f): the embedded copy differs from the file")
        }
    }
}
