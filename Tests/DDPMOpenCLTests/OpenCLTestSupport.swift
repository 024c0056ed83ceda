import DDPMOpenCL
import Foundation
import XCTest

/// The first OpenCL device (GPUs first), or a skip with a clear message when there is none —
/// unless DDPM_REQUIRE_CL=1 (CI), where the absence is a failure.
func requireOpenCLDevice() throws -> CLDeviceInfo {
    let required = ProcessInfo.processInfo.environment["DDPM_REQUIRE_CL"] == "1"
    let devices: [CLDeviceInfo]
    do { devices = try CLDevices.all() } catch {
        if required { XCTFail("DDPM_REQUIRE_CL=1 but OpenCL failed: \(error)") }
        throw XCTSkip("no OpenCL platform (\(error)); install pocl-opencl-icd to run the OpenCL tests")
    }
    guard let device = devices.first else {
        if required { XCTFail("DDPM_REQUIRE_CL=1 but no OpenCL device was found") }
        throw XCTSkip("no OpenCL device; install pocl-opencl-icd to run the OpenCL tests")
    }
    return device
}

private var sharedBackends: [String: OpenCLBackend] = [:]

/// One backend per profile for the whole test process (kernel builds are cached per program).
/// Without a profile: the device's default profile.
func requireOpenCLBackend(_ named: (name: String, profile: DeviceProfile)? = nil) throws -> OpenCLBackend {
    let key = named?.name ?? "default"
    if let b = sharedBackends[key] { return b }
    let b = try OpenCLBackend(device: try requireOpenCLDevice(), profile: named?.profile)
    sharedBackends[key] = b
    return b
}

/// The package root, found from this file's path.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
