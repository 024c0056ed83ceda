import DDPM
import DDPMCore
import DDPMCPU
import DDPMOpenCL
import Foundation
import XCTest

/// The host's resident memory of this process in bytes (/proc/self/statm).
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    return (fields.count > 1 ? Int(fields[1]) ?? 0 : 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// Many backend lifecycles and thousands of steps keep host memory and device buffers flat.
final class LeakTests: XCTestCase {
    /// Bounds: a leaked device buffer is caught exactly by the live-buffer count; host memory may
    /// move by the allocator's slack, well under 8 MiB (a leaked 64 KiB buffer per step over 300
    /// steps would be 19 MiB).
    let stepGrowthBound = 8 << 20
    let lifecycleGrowthBound = 24 << 20

    func testOpenCLLifecyclesReleaseEverything() throws {
        guard let device = (try? CLDevices.all())?.first else {
            if ProcessInfo.processInfo.environment["DDPM_REQUIRE_CL"] == "1" { XCTFail("DDPM_REQUIRE_CL=1 but no OpenCL device") }
            throw XCTSkip("no OpenCL device")
        }
        let baseline = OpenCLBackend.liveBuffers
        let batch = syntheticData().images.prefix(2 * 64).map { $0 }
        var options = tinyOptions()
        options.batch = 2
        var rss: [Int] = []
        for _ in 0..<6 {
            try autoreleasepool {
                let backend = try OpenCLBackend(device: device)
                let trainer = try Trainer(backend: backend, options: options)
                for _ in 0..<3 { try trainer.trainStep(batch: Array(batch)) }
                _ = try trainer.readLossAndGradientNorm()
                _ = try trainer.checkpoint()
                let sampler = try Sampler(backend: backend, config: options.model, weights: try trainer.emaWeights(),
                                          settings: options.schedulerSettings, batch: 2)
                _ = try sampler.sample(count: 2, seed: 0, sampler: .ddpm, steps: 2)
            }
            XCTAssertEqual(OpenCLBackend.liveBuffers.count, baseline.count, "device buffers outlive their backend")
            XCTAssertEqual(OpenCLBackend.liveBuffers.bytes, baseline.bytes)
            rss.append(residentBytes())
        }
        print("leak: OpenCL lifecycles, resident MiB after each: \(rss.map { $0 >> 20 })")
        XCTAssertLessThan(rss.last! - rss[2], lifecycleGrowthBound, "host memory grows with backend lifecycles: \(rss.map { $0 >> 20 }) MiB")
    }

    func testThousandsOfStepsKeepMemoryFlat() throws {
        var backends: [Backend] = [CPUBackend()]
        if let device = (try? CLDevices.all())?.first { backends.append(try OpenCLBackend(device: device)) }
        var options = tinyOptions()
        options.batch = 1
        let image = Array(syntheticData().images.prefix(64))
        for backend in backends {
            // `make test` runs 300 CPU and 100 OpenCL steps (on the shared 2-core machine, under load,
            // 1000 + 200 took 2.5 minutes); DDPM_LEAK_STEPS=N runs N of each for a long check.
            let long = Int(ProcessInfo.processInfo.environment["DDPM_LEAK_STEPS"] ?? "")
            let steps = long ?? (backend is CPUBackend ? 300 : 100)
            let trainer = try Trainer(backend: backend, options: options)
            // Scratch buffers are made at the first steps; after that nothing may be allocated.
            for _ in 0..<3 { try trainer.trainStep(batch: image) }
            let buffersBefore = OpenCLBackend.liveBuffers
            var marks: [Int] = []
            for step in 1...steps {
                try trainer.trainStep(batch: image)
                if step % 50 == 0 { _ = try trainer.readLossAndGradientNorm() }
                if step == steps / 4 || step == steps { try backend.synchronize(); marks.append(residentBytes()) }
            }
            XCTAssertEqual(OpenCLBackend.liveBuffers.count, buffersBefore.count, "\(backend.name): steps allocate device buffers")
            print("leak: \(backend.name) \(steps) steps, resident MiB at 1/4 and at the end: \(marks.map { $0 >> 20 })")
            XCTAssertLessThan(marks[1] - marks[0], stepGrowthBound, "\(backend.name): host memory grows with steps")
        }
    }
}

/// Linux has no autorelease pool; this keeps the lifecycle's objects in one scope.
@inline(__always) func autoreleasepool<T>(_ body: () throws -> T) rethrows -> T { try body() }
