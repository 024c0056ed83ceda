import Foundation

/// The OpenCL C sources: Kernels/*.cl embedded in the binary at build time (SwiftPM's
/// `.embedInCode`), or read from DDPM_CL_KERNELS=<dir> while iterating on a kernel.
public enum KernelSources {
    /// Every kernel file by name. A new file in Kernels/ is embedded by the build and must be named
    /// here too (a test compares this list with the folder).
    private static let files: [String: [UInt8]] = [
        "attention.cl": PackageResources.attention_cl,
        "classifier.cl": PackageResources.classifier_cl,
        "conv3x3.cl": PackageResources.conv3x3_cl,
        "diffusion.cl": PackageResources.diffusion_cl,
        "elementwise.cl": PackageResources.elementwise_cl,
        "embedding.cl": PackageResources.embedding_cl,
        "fma_peak.cl": PackageResources.fma_peak_cl,
        "gemm.cl": PackageResources.gemm_cl,
        "group_norm.cl": PackageResources.group_norm_cl,
        "im2col.cl": PackageResources.im2col_cl,
        "optimizer.cl": PackageResources.optimizer_cl,
        "philox.cl": PackageResources.philox_cl,
        "pooling.cl": PackageResources.pooling_cl,
        "prelude.cl": PackageResources.prelude_cl,
        "silu.cl": PackageResources.silu_cl,
        "softmax.cl": PackageResources.softmax_cl,
        "vlb_term.cl": PackageResources.vlb_term_cl,
        "winograd.cl": PackageResources.winograd_cl,
        "winograd2x2.cl": PackageResources.winograd2x2_cl,
    ]

    public static var directoryOverride: String? {
        ProcessInfo.processInfo.environment["DDPM_CL_KERNELS"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The names of every embedded kernel file, e.g. "group_norm.cl".
    public static var embeddedFileNames: [String] { files.keys.sorted() }

    /// The embedded text of one file (as it was at build time).
    public static func embedded(_ file: String) -> String? {
        files[file].map { String(decoding: $0, as: UTF8.self) }
    }

    public static func source(_ file: String) throws -> String {
        if let directory = directoryOverride {
            let url = URL(fileURLWithPath: directory).appendingPathComponent(file)
            guard let text = try? String(contentsOf: url, encoding: .utf8) else {
                throw CLError(call: "reading \(url.path) (DDPM_CL_KERNELS)", code: -30, log: "")
            }
            return text
        }
        guard let text = embedded(file) else { preconditionFailure("no embedded kernel file \(file)") }
        return text
    }

    /// prelude.cl, then `file`, with #line markers so that driver logs name the right file and line.
    public static func withPrelude(_ file: String, after extra: [String] = []) throws -> String {
        try (["prelude.cl"] + extra + [file]).map { "#line 1 \"\($0)\"\n" + (try source($0)) }.joined(separator: "\n")
    }
}
