// swift-tools-version:5.9
import PackageDescription

let package = Package(
    name: "ddpm-cl",
    products: [.executable(name: "ddpm-cl", targets: ["ddpm-cl"])],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // System libraries (Debian packages installed by scripts/install-deps).
        .systemLibrary(name: "COpenCL", pkgConfig: "OpenCL",
                       providers: [.apt(["ocl-icd-opencl-dev", "opencl-headers"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CLAPACK", pkgConfig: "lapacke", providers: [.apt(["liblapacke-dev"])]),

        // Thin C layer over OpenCL: device listing, program build with log, error names.
        .target(name: "CLShim", dependencies: ["COpenCL"]),
        // Open MPI opened at run time (dlopen), so building and running without MPI needs nothing.
        .target(name: "CMPIShim", linkerSettings: [.linkedLibrary("dl")]),

        // Pure Swift engine: shapes, ops, graph, autodiff, executor, Backend protocol, Philox.
        .target(name: "DDPMCore"),
        // The reference backend: plain Swift loops, the specification of every op.
        .target(name: "DDPMCPU", dependencies: ["DDPMCore"]),
        // The parity suite (op cases, guard regions, NMSE) and finite-difference gradient checks,
        // shared by the tests and `ddpm-cl check`.
        .target(name: "DDPMParity", dependencies: ["DDPMCore", "DDPMCPU"]),
        // The OpenCL backend: one launcher per op. Kernels/*.cl are compiled into the binary
        // (Sources/DDPMOpenCL/Kernels is a link to the top-level Kernels/).
        .target(name: "DDPMOpenCL", dependencies: ["DDPMCore", "CLShim", "COpenCL"],
                resources: [.embedInCode("Kernels")]),
        // The domain: U-Net, schedules, diffusion, training, sampling, file formats.
        .target(name: "DDPM", dependencies: ["DDPMCore", "CPNG", "CZlib", "CLAPACK", "CMPIShim"]),
        .executableTarget(name: "ddpm-cl", dependencies: [
            "DDPM", "DDPMCore", "DDPMCPU", "DDPMOpenCL", "DDPMParity",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "DDPMCoreTests", dependencies: ["DDPMCore", "DDPMCPU", "DDPMParity"]),
        .testTarget(name: "DDPMOpenCLTests", dependencies: ["DDPMCore", "DDPMCPU", "DDPMOpenCL", "DDPMParity", "CLShim"]),
        .testTarget(name: "DDPMTests", dependencies: ["DDPM", "DDPMCore", "DDPMCPU", "DDPMOpenCL", "DDPMParity"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "CLITests", dependencies: []),
    ]
)
