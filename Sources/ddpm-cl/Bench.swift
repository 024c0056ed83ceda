import ArgumentParser
import DDPM
import DDPMCore
import DDPMOpenCL
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure training and sampling speed on a device (img/s, GFLOP/s, per-kernel time, memory, the FMA peak).",
        discussion: """
            Uses random data, so it needs no dataset. Compare devices as ratios measured in one run: shared machines are noisy.
            On an OpenCL device it ends with the device's measured multiply-add peak and the 1024^3 GEMM's share of it.
            --batch is images per training step (as in `train`), --device-batch images per sampling model evaluation
            (as in `sample`).

            Examples:
              ddpm-cl bench --device 0 --profile
              ddpm-cl bench --model cifar10 --batch 32 --device-batch 128 --json cifar10.json
            """)

    @OptionGroup var device: DeviceOptions

    @Option(help: "Model preset or diffusers config.json.")
    var model = "small"

    @Option(parsing: .unconditional, help: "Images per training step.")
    var batch = 64

    @Option(parsing: .unconditional, help: "Timed training steps (after one warm-up step); the median is reported.")
    var steps = 3

    @Option(name: .customLong("device-batch"), parsing: .unconditional, help: "Images per sampling model evaluation, as `sample --device-batch` (default 64; 0: skip sampling).")
    var deviceBatch: Int?

    @Option(name: .customLong("sample-batch"), parsing: .unconditional, help: .renamed(to: "--device-batch"))
    var oldSampleBatch: Int?

    @Flag(help: "Profile every kernel with OpenCL events and print the 20 most expensive, per training step and per sampling evaluation.")
    var profile = false

    @Option(help: "Write the figures as JSON to this file.")
    var json: String?

    func run() throws {
        try reportingErrors {
            let sampleBatch = try renamedFlag(deviceBatch, old: oldSampleBatch, from: "bench --sample-batch", to: "--device-batch", default: 64)
            let backend = try device.makeBackend()
            let probe = try SpeedProbe(backend: backend, model: try loadModelConfig(model), batch: batch)
            let trainer = probe.trainer
            print("device: \(backend.name)")
            print("model: \(model), \(trainer.parameterCount) parameters; batch \(batch); \(trainer.graph.nodes.count) graph nodes")
            print(String(format: "planned activations + gradients: %.1f MiB", Double(trainer.plannedBytes) / 1_048_576))
            try probe.warmUp()
            backend.setProfiling(profile)
            let seconds = try probe.secondsPerTrainingStep(steps: steps)
            let gflops = trainer.flopsPerStep / seconds / 1e9
            print(String(format: "train: %.3f s/step, %.1f img/s, %.1f GFLOP/s (%.1f GFLOP per step)",
                         seconds, Double(batch) / seconds, gflops, trainer.flopsPerStep / 1e9))
            var figures: [String: Any] = ["device": backend.name, "model": model, "batch": batch,
                                          "train_seconds_per_step": seconds, "train_images_per_second": Double(batch) / seconds,
                                          "train_gflops": gflops, "planned_bytes": trainer.plannedBytes]
            if profile { printKernelTimes(backend, per: "step", count: steps) }
            backend.setProfiling(false)
            if sampleBatch != 0 {
                let evaluations = 5
                let perEvaluation = try probe.secondsPerSamplingEvaluation(batch: sampleBatch, evaluations: evaluations,
                                                                           beforeTiming: { backend.setProfiling(profile) })
                let ips = Double(sampleBatch) / perEvaluation
                print(String(format: "sample: %.3f s per model evaluation of %d images = %.1f img/s per denoising step", perEvaluation, sampleBatch, ips))
                print(String(format: "        DDIM 50 steps: %.2f img/s, DDPM 1000 steps: %.3f img/s", ips / 50, ips / 1000))
                if profile { printKernelTimes(backend, per: "eval", count: evaluations) }
                backend.setProfiling(false)
                figures["sample_images_per_second_per_step"] = ips
            }
            let peak = peakResidentBytes()
            print(String(format: "peak resident memory: %.0f MiB (host; on a CPU device this includes the device buffers)", Double(peak) / 1_048_576))
            figures["peak_rss_bytes"] = peak
            // After the memory figure: the peak's 1024² operands are not the model's memory.
            if let opencl = backend as? OpenCLBackend {
                let device = try opencl.measurePeak()
                print(String(format: "device peak: FMA %.1f GFLOP/s (float%d vectors); GEMM 1024^3 %.1f GFLOP/s = %.0f%% of it",
                             device.fmaGFLOPS, device.fmaVectorWidth, device.gemmGFLOPS, 100 * device.gemmShareOfPeak))
                figures["fma_peak_gflops"] = device.fmaGFLOPS
                figures["gemm_1024_gflops"] = device.gemmGFLOPS
            }
            if let json {
                try writeAtomically(JSONSerialization.data(withJSONObject: figures, options: [.prettyPrinted, .sortedKeys]),
                                    to: URL(fileURLWithPath: json))
            }
        }
    }

    /// The 20 most expensive kernels over `count` training steps or sampling evaluations.
    private func printKernelTimes(_ backend: Backend, per unit: String, count: Int) {
        let times = backend.kernelTimes().sorted { $0.value.seconds > $1.value.seconds }
        let total = times.reduce(0) { $0 + $1.value.seconds }
        print("kernel".padding(toLength: 32, withPad: " ", startingAt: 0) + "calls/\(unit)   ms/\(unit)    share")
        for (name, t) in times.prefix(20) {
            print(name.padding(toLength: max(32, name.count), withPad: " ", startingAt: 0)
                  + String(format: " %8.1f %9.1f %7.1f%%", Double(t.calls) / Double(count),
                         t.seconds * 1000 / Double(count), 100 * t.seconds / max(total, 1e-12)))
        }
    }
}

/// The process's peak resident set size in bytes (getrusage; Linux reports kilobytes).
func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Int(usage.ru_maxrss) * 1024
}
