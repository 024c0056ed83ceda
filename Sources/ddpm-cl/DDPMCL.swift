import ArgumentParser

@main
struct DDPMCL: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ddpm-cl",
        abstract: "Train and sample denoising diffusion models (DDPM) on any OpenCL device.",
        discussion: """
            Start with `ddpm-cl devices` to see what can run the model, `ddpm-cl check` to validate a
            device against the CPU reference, then `ddpm-cl train` and `ddpm-cl sample`.
            Every subcommand takes --device N (an index from `ddpm-cl devices`, GPUs first) or
            --device cpu-reference (the slow, plain-Swift reference backend).
            """,
        subcommands: [Devices.self, Check.self, Train.self, Sample.self, Eval.self, Bench.self, Tune.self, FID.self, Classifier.self])
}
