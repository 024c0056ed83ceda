import ArgumentParser
import DDPM
import DDPMOpenCL
import Foundation

struct Tune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Search the fastest GEMM and 3x3 convolution kernels for a device, and cache them.",
        discussion: """
            Every command that computes on an OpenCL device uses the device's cached profile; a GEMM
            shape class, a class of 3x3 layers or a 3x3 layer with no cached choice is timed on its
            first use. `tune` redoes the whole search: it runs a training step of --model with every
            candidate tile shape timed on the first large GEMM of each shape class (convolutions,
            weight-gradient sums, attention's short-k and few-row products) and every 3x3 blocking on
            the first large 3x3 layer, then a second step in which each large 3x3 layer times its
            paths (Winograd F(4x4), fused F(2x2), direct, im2col) for its own plan, then times
            training steps with the starting profile and the tuned one.
            The cache is one JSON file per device name and driver version under
            $XDG_CACHE_HOME/ddpm-cl/profiles (default ~/.cache/ddpm-cl/profiles).
            """)

    @OptionGroup var device: DeviceOptions

    @Option(help: "Model preset or diffusers config.json whose GEMMs are timed.")
    var model = "small"

    @Option(parsing: .unconditional, help: "Images per training step.")
    var batch = 64

    @Option(parsing: .unconditional, help: "Training steps per timing round of each profile (after the search; three alternated rounds).")
    var steps = 2

    func run() throws {
        try reportingErrors {
            let info = try device.openCLDevice()
            let cache = ProfileCache(device: info)
            let overrides = try ProfileOverrides(environment: ProcessInfo.processInfo.environment)
            var start = DeviceProfile.defaults(for: info)
            overrides.apply(to: &start)
            start.gemm = [:]
            print("device: \(info.name) (\(info.driverVersion)); native float vector width \(info.nativeVectorWidthFloat), \(info.computeUnits) compute units")
            print("starting profile: GEMM \(start.defaultGEMM) for every shape class; 3x3 convolutions: \(Conv3x3Tuner.label(start.conv3x3))")
            let config = try loadModelConfig(model)

            let baseline = try SpeedProbe(backend: try OpenCLBackend(device: info, profile: start), model: config, batch: batch)
            try baseline.warmUp()

            let backend = try OpenCLBackend(device: info, profile: start)
            let tuner = makeTuner(for: info, pending: Set(GEMMShapeClass.allCases), cache: cache, quiet: true)
            let convTuner = makeConv3x3Tuner(for: info, cache: cache, quiet: true)
            backend.setGEMMTuner(tuner)
            let layerTuner = makeConv3x3LayerTuner(for: info, cache: cache, quiet: true)
            if overrides.conv3x3 == nil { backend.setConv3x3Tuner(convTuner) }
            let probe = try SpeedProbe(backend: backend, model: config, batch: batch)
            // The layers' plans are timed with the blocking the 3×3 search chose: after it, in a
            // second warm-up step.
            try probe.warmUp()
            if overrides.conv3x3 == nil { backend.setConv3x3LayerTuner(layerTuner) }
            try probe.warmUp()
            backend.setGEMMTuner(nil)
            backend.setConv3x3Tuner(nil)
            backend.setConv3x3LayerTuner(nil)
            // The two profiles alternate, best of three rounds each: the machines are shared and noisy.
            var before = Double.infinity, after = Double.infinity
            for _ in 0..<3 {
                before = min(before, try baseline.secondsPerTrainingStep(steps: steps))
                after = min(after, try probe.secondsPerTrainingStep(steps: steps))
            }

            for layers in Conv3x3Tuner.Layers.allCases {
                guard let search = convTuner.searches[layers] else { continue }
                print("\n3x3 convolutions, \(layers.rawValue) layers (forward + both gradients, timed on \(search.call)): "
                      + "\(Conv3x3Tuner.label(search.winner)), " + String(format: "%.2fx the starting choice", search.speedup))
                // Padded to the longest label, never cut: Winograd's labels differ only at their ends.
                let width = search.seconds.keys.map(\.count).max() ?? 0
                for (label, seconds) in search.seconds.sorted(by: { $0.value < $1.value }) {
                    print("  " + label.padding(toLength: width + 2, withPad: " ", startingAt: 0) + String(format: "%9.3f ms", seconds * 1e3))
                }
            }

            if !layerTuner.plans.isEmpty { print("\n3x3 layers (forward and input gradient; weight gradient):") }
            for (key, plan) in layerTuner.plans.sorted(by: { $0.key < $1.key }) {
                let times = plan.seconds.sorted { $0.key < $1.key }.map { String(format: "%@ %.1f ms", $0.key, $0.value * 1e3) }
                print("  \(key): \(plan.data.rawValue); \(plan.weightGradient.rawValue)  [\(times.joined(separator: ", "))]")
            }

            for search in tuner.searches {
                print("\n\(search.shape.rawValue) (timed on \(search.call)): \(search.winner), \(String(format: "%.2f", search.speedup))x the starting choice")
                for (tiles, seconds) in search.seconds.sorted(by: { $0.value < $1.value }) {
                    print("  " + tiles.padding(toLength: 24, withPad: " ", startingAt: 0) + String(format: "%9.3f ms", seconds * 1e3))
                }
            }
            let untouched = tuner.pending.map(\.rawValue).sorted()
            if !untouched.isEmpty { print("\nnot searched (no large call in this model): \(untouched.joined(separator: ", ")); they keep \(start.defaultGEMM)") }
            print(String(format: "\ntraining step, %@ at batch %d: %.3f s with the starting profile, %.3f s tuned (%.2fx)",
                         model, batch, before, after, before / after))
            if let entry = cache.load(), overrides.conv3x3 == nil,
               let tiles = Conv3x3Tuner(candidates: DeviceProfile.conv3x3Candidates(for: info), cached: entry.conv3x3Searches ?? []).choice {
                print("3x3 convolutions from now on (this search with any other cached): \(Conv3x3Tuner.label(tiles))")
            }
            print("cached in \(cache.file.path)")
        }
    }
}
