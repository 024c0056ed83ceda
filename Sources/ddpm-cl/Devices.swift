import ArgumentParser
import DDPMOpenCL
import Foundation

struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the OpenCL devices, GPUs first: the index is what --device takes.")

    @Flag(help: "Print JSON (one object per device) for scripts.")
    var json = false

    func run() throws {
        try reportingErrors {
            let devices = try listDevices()
            if json {
                let objects: [[String: Any]] = devices.enumerated().map { i, d in
                    ["index": i, "type": d.kind.rawValue, "name": d.name, "vendor": d.vendor, "platform": d.platform,
                     "compute_units": d.computeUnits, "clock_mhz": d.clockMHz, "global_memory_bytes": d.globalMemoryBytes,
                     "local_memory_bytes": d.localMemoryBytes, "opencl_version": d.version, "driver_version": d.driverVersion]
                }
                let data = try JSONSerialization.data(withJSONObject: objects, options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            for (i, d) in devices.enumerated() {
                let memory = String(format: "%.1f GiB", Double(d.globalMemoryBytes) / 1_073_741_824)
                let local = "\(d.localMemoryBytes / 1024) KiB local"
                print("\(i): \(d.kind.rawValue)  \(d.name)  [\(d.vendor); platform \(d.platform)]  " +
                      "\(d.computeUnits) compute units @ \(d.clockMHz) MHz, \(memory), \(local), \(d.version)")
            }
        }
    }
}
