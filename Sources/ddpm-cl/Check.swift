import ArgumentParser
import DDPMCore
import DDPMCPU
import DDPMParity
import Foundation

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate a device: run every op's parity case against the CPU reference.",
        discussion: """
            Prints one row per case (op, shapes, normalized MSE, max abs error, pass/fail) and exits
            non-zero if any case fails, so a new GPU driver can be checked before training on it.
            With --gradients it also runs the finite-difference gradient checks (CPU reference).
            """)

    @OptionGroup var device: DeviceOptions

    @Flag(help: "Also run the finite-difference gradient checks of every gradient rule.")
    var gradients = false

    @Flag(help: "Print only failures and the summary.")
    var quiet = false

    func run() throws {
        try reportingErrors {
            let backend = try device.makeBackend()
            let reference = CPUBackend()
            print("checking \(backend.name) against \(reference.name)")
            print(pad("op", 28) + pad("inputs", 40) + pad("NMSE", 12) + pad("max |err|", 12) + "result")
            var failed = 0
            for c in ParityCases.all {
                let r = try ParityRunner.run(c, reference: reference, candidate: backend)
                if !r.passed { failed += 1 }
                if !quiet || !r.passed {
                    let shapes = c.inputs.map { $0.shape.description }.joined(separator: " ")
                    print(pad(c.op.kind.rawValue, 28) + pad(shapes, 40) + pad(String(format: "%.2e", r.nmse), 12)
                          + pad(String(format: "%.2e", r.maxAbsError), 12) + (r.passed ? "ok" : "FAIL: " + r.problems.joined(separator: "; ")))
                }
            }
            var total = ParityCases.all.count
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
