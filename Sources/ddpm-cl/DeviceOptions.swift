import ArgumentParser
import DDPMCore
import DDPMCPU
import DDPMOpenCL
import Foundation

/// `--device`, shared by every subcommand that computes.
struct DeviceOptions: ParsableArguments {
    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp(
        "Device index from `ddpm-cl devices` (0 is the fastest: GPUs are listed first), or `cpu-reference` for the plain-Swift reference backend (default: 0; under mpirun, `train` gives each rank the device of its local rank index).",
        valueName: "N|cpu-reference"))
    var device: String?

    /// The device asked for, or device 0.
    var choice: String { device ?? "0" }

    func validate() throws {
        if let device, device != "cpu-reference" && (Int(device) ?? -1) < 0 {
            throw ValidationError("--device takes a number ≥ 0 from `ddpm-cl devices` or `cpu-reference`, not '\(device)'.")
        }
    }

    /// The chosen backend. No silent fallback: a missing device is an error listing what exists.
    /// An OpenCL device runs with its cached profile (ProfileCache); GEMM shape classes that have
    /// no cached choice yet are timed on their first use and the choice is saved.
    func makeBackend() throws -> Backend {
        guard Int(choice) != nil else { return CPUBackend() }
        let info = try openCLDevice()
        let cache = ProfileCache(device: info)
        let overrides = try ProfileOverrides(environment: ProcessInfo.processInfo.environment)
        let cached = cache.load()  // read once: the choices, and which searches are still to run
        // A 3×3 search that did not time every candidate of this build for its layers (an older
        // build's) is left out by the tuner, and runs again on the first such layer.
        let convTuner = makeConv3x3Tuner(for: info, cache: cache, cached: cached?.conv3x3Searches ?? [], quiet: false)
        var profile = DeviceProfile.defaults(for: info)
        cached?.apply(to: &profile)
        if let tiles = convTuner.choice { profile.conv3x3 = tiles }
        overrides.apply(to: &profile)
        let backend = try OpenCLBackend(device: info, profile: profile)
        let pending = Set(GEMMShapeClass.allCases.filter { profile.gemm[$0.rawValue] == nil })
        if overrides.gemmTiles == nil && !pending.isEmpty {
            backend.setGEMMTuner(makeTuner(for: info, pending: pending, cache: cache, quiet: false))
        }
        if overrides.conv3x3 == nil && Conv3x3Tuner.Layers.allCases.contains(where: convTuner.pending) {
            backend.setConv3x3Tuner(convTuner)
        }
        if overrides.conv3x3 == nil { backend.setConv3x3LayerTuner(makeConv3x3LayerTuner(for: info, cache: cache, quiet: false)) }
        return backend
    }

    /// The OpenCL device --device names.
    func openCLDevice() throws -> CLDeviceInfo {
        guard let index = Int(choice) else {
            throw UserError("--device cpu-reference is the plain-Swift reference backend; this needs an OpenCL device (--device N).")
        }
        let devices = try listDevices()
        guard devices.indices.contains(index) else {
            let present = devices.enumerated().map { "  \($0.offset): \($0.element.kind.rawValue) \($0.element.name) (\($0.element.platform))" }
            throw UserError("""
                There is no OpenCL device \(index). Devices present:
                \(present.joined(separator: "\n"))
                Use --device N with one of these indices, or --device cpu-reference.
                """, exitCode: 2)
        }
        return devices[index]
    }
}

/// A tuner that saves each choice into the device's cache file as soon as it is made.
func makeTuner(for device: CLDeviceInfo, pending: Set<GEMMShapeClass>, cache: ProfileCache, quiet: Bool) -> GEMMTuner {
    let tuner = GEMMTuner(candidates: DeviceProfile.gemmCandidates(for: device), pending: pending)
    tuner.onChoice = { _, search in
        if !quiet {
            printError(String(format: "tuned GEMM %@ on %@: %@ (%.2fx the default); cached in %@",
                              search.shape.rawValue, search.call, search.winner.description, search.speedup, cache.file.path))
        }
        update(cache, of: device) { entry in
            entry.gemm[search.shape.rawValue] = search.winner
            entry.searches.removeAll { $0.shape == search.shape }
            entry.searches.append(search)
        }
    }
    return tuner
}

/// A 3×3 convolution tuner, starting from `cached` searches, that saves each search into the
/// device's cache file.
func makeConv3x3Tuner(for device: CLDeviceInfo, cache: ProfileCache, cached: [Conv3x3Tuner.Search] = [], quiet: Bool) -> Conv3x3Tuner {
    let tuner = Conv3x3Tuner(candidates: DeviceProfile.conv3x3Candidates(for: device), cached: cached)
    tuner.onChoice = { search in
        if !quiet {
            printError(String(format: "tuned 3x3 convolutions on %@ (%@ layers): %@ (%.2fx the default); cached in %@", search.call,
                              search.layers.rawValue, Conv3x3Tuner.label(search.winner), search.speedup, cache.file.path))
        }
        update(cache, of: device) { entry in
            entry.conv3x3Searches = (entry.conv3x3Searches ?? []).filter { $0.layers != search.layers } + [search]
        }
    }
    return tuner
}

/// A per-layer 3×3 tuner that saves each layer's plan into the device's cache file.
func makeConv3x3LayerTuner(for device: CLDeviceInfo, cache: ProfileCache, quiet: Bool) -> Conv3x3LayerTuner {
    let tuner = Conv3x3LayerTuner()
    tuner.onChoice = { key, plan in
        if !quiet {
            printError("tuned 3x3 layer \(key): forward and input gradient \(plan.data.rawValue), weight gradient \(plan.weightGradient.rawValue); "
                       + "cached in \(cache.file.path)")
        }
        update(cache, of: device) { entry in entry.conv3x3Layers = (entry.conv3x3Layers ?? [:]).merging([key: plan]) { $1 } }
    }
    return tuner
}

/// Reads the device's cache entry, changes it and writes it back (a failed write is reported, not fatal).
private func update(_ cache: ProfileCache, of device: CLDeviceInfo, _ change: (inout ProfileCache.Entry) -> Void) {
    var entry = cache.load() ?? ProfileCache.Entry(device: device.name, driver: device.driverVersion)
    change(&entry)
    do { try cache.save(entry) } catch { printError("could not write the tuning cache \(cache.file.path): \(error)") }
}

/// Environment variables that force parts of the device profile, for tuning experiments and
/// tests. Read here and nowhere else.
/// - `DDPM_GEMM_TILES=cpu:MRxNRxVW|gpu:TMxTNxTK`: one GEMM path and tile shape for every call (no search);
/// - `DDPM_CL_SPAN=N`: elements per work-item of the span kernels;
/// - `DDPM_CL_COLUMN_FLOATS=N`: floats of im2col scratch per chunk;
/// - `DDPM_CONV3X3=off|VWxROWSxCOB[xGCOB[xGCOV]][r][w][f]`: im2col + GEMM for 3×3 convolutions, or the
///   direct kernels' blocking (a trailing `r`: the weight gradient vectorised along rows; `w`: Winograd
///   F(4×4, 3×3) for layers of 128 channels and more; `f`: the fused F(2×2) for the others, as in the
///   3×3 search), for every layer: no per-layer plans are used or made.
struct ProfileOverrides {
    var gemmTiles: GEMMTiles?
    var conv3x3: Conv3x3Tiles??
    var spanElements: Int?
    var columnFloats: Int?

    init(environment: [String: String]) throws {
        func positive(_ name: String) throws -> Int? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            guard let value = Int(text), value > 0 else { throw UserError("\(name)=\(text): expected a positive whole number.") }
            return value
        }
        if let text = environment["DDPM_GEMM_TILES"], !text.isEmpty {
            guard let tiles = GEMMTiles(parsing: text) else {
                throw UserError("DDPM_GEMM_TILES=\(text): expected cpu:MRxNRxVW (e.g. cpu:8x32x16; MR 1-16, VW 8 or 16, NR a multiple of VW up to 64) or gpu:TMxTNxTK (e.g. gpu:64x64x16).")
            }
            gemmTiles = tiles
        }
        if let text = environment["DDPM_CONV3X3"], !text.isEmpty {
            if text.lowercased() == "off" {
                conv3x3 = .some(nil)
            } else if let tiles = Conv3x3Tiles(parsing: text) {
                conv3x3 = tiles
            } else {
                throw UserError("DDPM_CONV3X3=\(text): expected off or VWxROWSxCOB[xGCOB[xGCOV]][r][w][f] (e.g. 16x4x4x1x2, or 16x4x4x2r for the weight gradient along rows, 16x4x4x2rw with Winograd on layers of 128 channels and more, 16x4x4x2rwf with the fused F(2x2) on the others; VW 8 or 16, ROWS and COB 1-8, GCOB and GCOV 1-3 with GCOB·GCOV at most 3).")
            }
        }
        spanElements = try positive("DDPM_CL_SPAN")
        columnFloats = try positive("DDPM_CL_COLUMN_FLOATS")
    }

    func apply(to profile: inout DeviceProfile) {
        if let gemmTiles { profile.gemm = [:]; profile.defaultGEMM = gemmTiles }
        if let spanElements { profile.spanElements = spanElements }
        if let columnFloats { profile.columnFloats = columnFloats }
        if let conv3x3 { (profile.conv3x3, profile.conv3x3Layers) = (conv3x3, [:]) }  // every layer as forced
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
