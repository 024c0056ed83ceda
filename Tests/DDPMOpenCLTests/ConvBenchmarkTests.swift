import DDPMCore
import DDPMOpenCL
import Foundation
import XCTest

/// Not a test: times the 3×3 convolutions of `small` at batch 64 one pass at a time (forward, input
/// gradient, weight gradient), to see which kernel falls behind. Opt-in (DDPM_BENCH_CONV=1); the
/// blocking comes from DDPM_CONV3X3 as in the CLI (VWxROWSxCOB[xGCOB[xGCOV]][r][w]) or the device's default;
/// DDPM_BENCH_CONV_LAYERS picks other layers as CINxCOUTxSIZE,... (`cifar10`'s: 128x128x32,256x256x16,
/// 256x256x8,512x256x8,256x256x4,512x256x4); DDPM_BENCH_CONV_PROFILE=1 adds each pass's kernel times (ms);
/// DDPM_BENCH_WINOGRAD_CHUNK sets the Winograd chunk (floats), DDPM_BENCH_WINOGRAD_MIN_CHANNELS its
/// channel threshold (`winogradMinChannels`).
final class ConvBenchmarkTests: XCTestCase {
    func testBenchmark() throws {
        let environment = ProcessInfo.processInfo.environment
        guard environment["DDPM_BENCH_CONV"] == "1" else { throw XCTSkip("benchmark: set DDPM_BENCH_CONV=1") }
        let device = try requireOpenCLDevice()
        var profile = DeviceProfile.defaults(for: device)
        // The GEMM tiles the CLI's runs chose on this device, if cached, so that im2col + GEMM is timed
        // as the model runs it.
        profile.gemm = ProfileCache(device: device).load()?.gemm ?? [:]
        if let text = environment["DDPM_CONV3X3"] { profile.conv3x3 = try XCTUnwrap(Conv3x3Tiles(parsing: text), "DDPM_CONV3X3=\(text)") }
        let backend = try OpenCLBackend(device: device, profile: profile)
        if let text = environment["DDPM_BENCH_WINOGRAD_CHUNK"] { backend.winogradChunkFloats = try XCTUnwrap(Int(text)) }
        if let text = environment["DDPM_BENCH_WINOGRAD_MIN_CHANNELS"] { backend.winogradMinChannels = try XCTUnwrap(Int(text)) }
        print("conv benchmark on \(device.name), \(profile.conv3x3.map { "\($0)" } ?? "im2col + GEMM"), "
              + "GEMM tiles \(profile.gemm.isEmpty ? "untuned" : "from the profile cache")")
        let batch = Int(environment["DDPM_BENCH_CONV_BATCH"] ?? "64")!
        // (input channels, output channels, size): the stride-1 3×3 layers of `small`.
        var layers = [(32, 32, 32), (96, 32, 32), (64, 64, 16), (128, 64, 16), (64, 64, 8), (128, 64, 8)]
        if let text = environment["DDPM_BENCH_CONV_LAYERS"] {
            layers = try text.split(separator: ",").map { item in
                let v = item.split(separator: "x").compactMap { Int($0) }
                guard v.count == 3 else { throw XCTSkip("DDPM_BENCH_CONV_LAYERS: \(item) is not CINxCOUTxSIZE") }
                return (v[0], v[1], v[2])
            }
        }
        let c = Conv2D(kernel: 3, padding: 1)
        for (ci, co, s) in layers {
            let xs = Shape(batch, ci, s, s), ws = Shape(co, ci, 3, 3), ys = Shape(batch, co, s, s)
            func buffer(_ shape: Shape) throws -> TensorRef {
                TensorRef(try backend.makeBuffer((0..<shape.count).map { Float(($0 * 7919) % 1000) / 1000 - 0.5 }), shape)
            }
            let x = try buffer(xs), w = try buffer(ws), b = try buffer(Shape(co)), y = try buffer(ys)
            let dx = try buffer(xs), dw = try buffer(ws)
            let passes: [(String, Op, [TensorRef], TensorRef)] = [
                ("forward", .conv2d(c), [x, w, b], y),
                ("input gradient", .conv2dBackwardInput(c, height: s, width: s), [y, w], dx),
                ("weight gradient", .conv2dBackwardWeight(c), [y, x], dw),
            ]
            let flops = 2.0 * Double(batch * s * s * ci * co * 9)
            var line = "\(ci)->\(co) at \(s)x\(s):"
            for (name, op, inputs, output) in passes {
                try backend.run(op, inputs: inputs, outputs: [output], step: 0)
                try backend.synchronize()
                var best = Double.infinity
                for _ in 0..<7 {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    try backend.run(op, inputs: inputs, outputs: [output], step: 0)
                    try backend.synchronize()
                    best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                }
                line += String(format: "  %@ %.2f ms %.0f GFLOP/s", name, best * 1e3, flops / best / 1e9)
                if environment["DDPM_BENCH_CONV_PROFILE"] == "1" {  // one more run, kernel by kernel
                    backend.setProfiling(true)
                    try backend.run(op, inputs: inputs, outputs: [output], step: 0)
                    let times = backend.kernelTimes().filter { $0.value.seconds > 0 }.sorted { $0.value.seconds > $1.value.seconds }
                    line += " [" + times.map { String(format: "%@ %.2f", $0.key, $0.value.seconds * 1e3) }.joined(separator: ", ") + "]"
                    backend.setProfiling(false)
                }
            }
            print(line)
        }
    }
}
