import ArgumentParser
import DDPMCore
import DDPMCPU
import DDPMOpenCL
import DDPMParity
import Foundation

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate a device: run every op's parity case against the CPU reference.",
        discussion: """
            Prints one row per case (op, shapes, normalized MSE, max abs error, pass/fail) and exits
            non-zero if any case fails, so a new GPU driver can be checked before training on it.
            With --gradients it also runs the finite-difference gradient checks (CPU reference).
            An OpenCL device is checked with the profile it trains with (its cached tuning); with
            --all-profiles also with the CPU profiles (float8 and float16 micro-kernels, direct 3×3
            convolutions) and the GPU profile (local-memory tiled GEMM, im2col), whatever the device.
            """)

    @OptionGroup var device: DeviceOptions

    @Flag(help: "Also run the finite-difference gradient checks of every gradient rule.")
    var gradients = false

    @Flag(help: "Print only failures and the summary.")
    var quiet = false

    @Flag(name: .customLong("all-profiles"), help: "Also check every kernel variant: the CPU and GPU device profiles.")
    var allProfiles = false

    func run() throws {
        try reportingErrors {
            var backends: [(String, Backend)] = [("", try device.makeBackend())]
            if allProfiles, Int(device.choice) != nil {
                let info = try device.openCLDevice()
                for named in DeviceProfile.parityProfiles {
                    backends.append((" (profile \(named.name))", try OpenCLBackend(device: info, profile: named.profile)))
                }
            }
            let reference = CPUBackend()
            var failed = 0, total = 0
            for (label, backend) in backends {
                print("checking \(backend.name)\(label) against \(reference.name)")
                print(pad("op", 28) + pad("inputs", 40) + pad("NMSE", 12) + pad("max |err|", 12) + "result")
                for c in ParityCases.all {
                    let r = try ParityRunner.run(c, reference: reference, candidate: backend)
                    total += 1
                    if !r.passed { failed += 1 }
                    if !quiet || !r.passed {
                        let shapes = c.inputs.map { $0.shape.description }.joined(separator: " ")
                        print(pad(c.op.kind.rawValue, 28) + pad(shapes, 40) + pad(String(format: "%.2e", r.nmse), 12)
                              + pad(String(format: "%.2e", r.maxAbsError), 12) + (r.passed ? "ok" : "FAIL: " + r.problems.joined(separator: "; ")))
                    }
                }
            }
            if gradients {
                for c in GradientChecks.all {
                    let r = try GradientChecks.run(c, backend: reference)
                    total += 1
                    if !r.passed { failed += 1 }
                    if !quiet || !r.passed {
                        print(pad("grad " + c.op.kind.rawValue, 28) + pad(c.inputs.map { $0.shape.description }.joined(separator: " "), 40)
                              + pad(String(format: "%.2e", r.relativeError), 24) + (r.passed ? "ok" : "FAIL"))
                    }
                }
            }
            print("\(total - failed) passed, \(failed) failed")
            if failed > 0 { throw ExitCode(1) }
        }
    }

    private func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
    }
}
