import ArgumentParser
import DDPMCore
import DDPMCPU
import DDPMOpenCL

/// `--device`, shared by every subcommand that computes.
struct DeviceOptions: ParsableArguments {
    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp(
        "Device index from `ddpm-cl devices` (0 is the fastest: GPUs are listed first), or `cpu-reference` for the plain-Swift reference backend.",
        valueName: "N|cpu-reference"))
    var device: String = "0"

    func validate() throws {
        if device != "cpu-reference" && (Int(device) ?? -1) < 0 {
            throw ValidationError("--device takes a number ≥ 0 from `ddpm-cl devices` or `cpu-reference`, not '\(device)'.")
        }
    }

    /// The chosen backend. No silent fallback: a missing device is an error listing what exists.
    func makeBackend() throws -> Backend {
        guard let index = Int(device) else { return CPUBackend() }
        let devices = try listDevices()
        guard devices.indices.contains(index) else {
            let present = devices.enumerated().map { "  \($0.offset): \($0.element.kind.rawValue) \($0.element.name) (\($0.element.platform))" }
            throw UserError("""
                There is no OpenCL device \(index). Devices present:
                \(present.joined(separator: "\n"))
                Use --device N with one of these indices, or --device cpu-reference.
                """, exitCode: 2)
        }
        return try OpenCLBackend(device: devices[index])
    }
}

/// All OpenCL devices, or a user error saying how to get one.
func listDevices() throws -> [CLDeviceInfo] {
    let devices: [CLDeviceInfo]
    do { devices = try CLDevices.all() } catch let error as CLError {
        throw noOpenCL(reason: error.name)
    }
    if devices.isEmpty { throw noOpenCL(reason: "no devices on any platform") }
    return devices
}

private func noOpenCL(reason: String) -> UserError {
    UserError("""
        No OpenCL device was found (\(reason)). Install an OpenCL driver: on Debian or Ubuntu \
        `apt-get install pocl-opencl-icd` gives a CPU device (or run `make deps`); for a GPU install its \
        vendor's OpenCL ICD. Without OpenCL you can still use --device cpu-reference (slow).
        """, exitCode: 2)
}
