import Foundation

/// How the GEMM computes one call: the CPU path (packed panels, register-blocked micro-kernel of
/// mr×nr outputs in vectors of vw floats) or the GPU path (local-memory tiles of tm×tn, tk deep,
/// 16×16 work-items). Kernels/gemm.cl is built once per distinct value.
public struct GEMMTiles: Codable, Hashable, Sendable, CustomStringConvertible {
    public enum Variant: String, Codable, Sendable { case cpu, gpu }
    public var variant: Variant
    public var mr = 4, nr = 24, vw = 8
    public var tm = 64, tn = 64, tk = 16

    public init(variant: Variant, mr: Int = 4, nr: Int = 24, vw: Int = 8, tm: Int = 64, tn: Int = 64, tk: Int = 16) {
        (self.variant, self.mr, self.nr, self.vw, self.tm, self.tn, self.tk) = (variant, mr, nr, vw, tm, tn, tk)
    }

    public static func cpu(mr: Int, nr: Int, vw: Int) -> GEMMTiles { GEMMTiles(variant: .cpu, mr: mr, nr: nr, vw: vw) }
    public static func gpu(tm: Int, tn: Int, tk: Int) -> GEMMTiles { GEMMTiles(variant: .gpu, tm: tm, tn: tn, tk: tk) }

    public var description: String {
        switch variant {
        case .cpu: return "cpu \(mr)x\(nr) float\(vw)"
        case .gpu: return "gpu tiles \(tm)x\(tn)x\(tk)"
        }
    }

    /// Reads "cpu:MRxNRxVW" or "gpu:TMxTNxTK" (the form `description` names), e.g. "cpu:8x32x16".
    public init?(parsing text: String) {
        let parts = text.lowercased().split(separator: ":")
        guard parts.count == 2, let variant = Variant(rawValue: String(parts[0])) else { return nil }
        let numbers = parts[1].split(separator: "x").compactMap { Int($0) }
        guard numbers.count == 3 else { return nil }
        switch variant {
        case .cpu: self = .cpu(mr: numbers[0], nr: numbers[1], vw: numbers[2])
        case .gpu: self = .gpu(tm: numbers[0], tn: numbers[1], tk: numbers[2])
        }
        if problem != nil { return nil }
    }

    /// Build options for Kernels/gemm.cl.
    var buildOptions: String {
        switch variant {
        case .cpu: return "-DMR=\(mr) -DNR=\(nr) -DVW=\(vw)"
        case .gpu: return "-DTM=\(tm) -DTN=\(tn) -DTK=\(tk)"
        }
    }

    /// Why these tiles cannot be built, or nil when they can.
    public var problem: String? {
        switch variant {
        case .cpu:
            guard (1...16).contains(mr) else { return "mr=\(mr): expected 1...16" }
            guard [8, 16].contains(vw) else { return "vw=\(vw): expected 8 or 16" }
            guard nr % vw == 0, nr % 8 == 0, (8...64).contains(nr) else { return "nr=\(nr): expected a multiple of vw=\(vw) in 8...64" }
        case .gpu:
            for (name, v) in [("tm", tm), ("tn", tn)] where !(v % 16 == 0 && (16...128).contains(v)) {
                return "\(name)=\(v): expected a multiple of 16 in 16...128"
            }
            guard [4, 8, 16, 32].contains(tk) else { return "tk=\(tk): expected 4, 8, 16 or 32" }
        }
        return nil
    }
}

/// The direct 3×3 convolution's blocking (Kernels/conv3x3.cl): rows × vw output pixels × cob output
/// channels per work-item, rows·cob vector accumulators.
/// The weight gradient's work-item owns gradCob channels (input channels along output-channel
/// vectors, output channels along rows) in 9·gradCob·gradCov vector accumulators.
public struct Conv3x3Tiles: Codable, Hashable, Sendable, CustomStringConvertible {
    public var vw: Int, rows: Int, cob: Int, gradCob: Int
    /// The weight gradient's kernel: vectorised along image rows (`conv3x3_grad_weight_rows`, for
    /// widths that are a multiple of `vw`) or along output channels (`conv3x3_grad_weight`, after a
    /// channels-last copy of dy; also the fallback for other widths).
    public var gradRows: Bool
    /// Output-channel vectors per work-item of the channels-last weight gradient: per pixel it loads
    /// gradCov dy vectors and 9·gradCob broadcast x values for 9·gradCob·gradCov FMAs (1×2 on
    /// AVX-512: 18 FMAs per 11 loads, against 27 per 28 at 3×1).
    public var gradCov: Int
    /// Layers of at least 128 channels in and out: forward pass and input gradient of planes from
    /// 8×8 up, and the weight gradient from 16×16 up, through Winograd F(4×4, 3×3)
    /// (Kernels/winograd.cl) instead of the direct kernel; the other layers as above.
    public var winograd: Bool
    /// The other layers whose planes are at least 15 wide (8 tiles along a row): forward pass and input
    /// gradient through the fused Winograd F(2×2, 3×3) kernel (Kernels/winograd2x2.cl) instead of the
    /// direct kernel.
    public var winograd2x2: Bool
    public init(vw: Int, rows: Int, cob: Int, gradCob: Int? = nil, gradRows: Bool = false, gradCov: Int = 1, winograd: Bool = false,
                winograd2x2: Bool = false) {
        (self.vw, self.rows, self.cob, self.gradRows, self.gradCov, self.winograd) = (vw, rows, cob, gradRows, gradCov, winograd)
        self.winograd2x2 = winograd2x2
        self.gradCob = gradCob ?? (vw >= 16 ? 3 : 1)
    }
    // Profiles cached before gradRows, gradCov, winograd or winograd2x2 existed decode as the
    // channels-last weight gradient with one vector and no Winograd.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(vw: try c.decode(Int.self, forKey: .vw), rows: try c.decode(Int.self, forKey: .rows),
                  cob: try c.decode(Int.self, forKey: .cob), gradCob: try c.decode(Int.self, forKey: .gradCob),
                  gradRows: try c.decodeIfPresent(Bool.self, forKey: .gradRows) ?? false,
                  gradCov: try c.decodeIfPresent(Int.self, forKey: .gradCov) ?? 1,
                  winograd: try c.decodeIfPresent(Bool.self, forKey: .winograd) ?? false,
                  winograd2x2: try c.decodeIfPresent(Bool.self, forKey: .winograd2x2) ?? false)
    }
    public var description: String {
        let vectors = gradCov > 1 && !gradRows ? "x\(gradCov)" : ""
        let direct = "direct 3x3 \(rows) rows x float\(vw) x \(cob) channels (weight gradient \(gradCob)\(vectors)\(gradRows ? " along rows" : ""))"
        let fused = winograd2x2 ? "fused Winograd F(2x2,3x3), else " + direct : direct
        return winograd ? "Winograd F(4x4,3x3), else " + fused : fused
    }
    /// Reads "VWxROWSxCOB[xGCOB[xGCOV]][r][w][f]" (a trailing r: the weight gradient along rows; w:
    /// Winograd F(4×4); f: fused Winograd F(2×2)), e.g. "16x4x4x1x2" or "16x4x4x2rwf"; nil when
    /// malformed or out of range.
    public init?(parsing text: String) {
        var lower = Substring(text.lowercased())
        let winograd2x2 = lower.hasSuffix("f")
        lower = lower.dropLast(winograd2x2 ? 1 : 0)
        let winograd = lower.hasSuffix("w")
        lower = lower.dropLast(winograd ? 1 : 0)
        let rows = lower.hasSuffix("r")
        let parts = lower.dropLast(rows ? 1 : 0).split(separator: "x", omittingEmptySubsequences: false)
        let numbers = parts.compactMap { Int($0) }
        guard numbers.count == parts.count, (3...5).contains(numbers.count) else { return nil }
        self.init(vw: numbers[0], rows: numbers[1], cob: numbers[2], gradCob: numbers.count > 3 ? numbers[3] : nil, gradRows: rows,
                  gradCov: numbers.count > 4 ? numbers[4] : 1, winograd: winograd, winograd2x2: winograd2x2)
        if problem != nil { return nil }
    }
    var buildOptions: String { "-DVW=\(vw) -DROWS=\(rows) -DCOB=\(cob) -DGCOB=\(gradCob) -DGCOV=\(gradCov)" }
    public var problem: String? {
        guard [8, 16].contains(vw) else { return "vw=\(vw): expected 8 or 16" }
        guard (1...8).contains(rows), (1...8).contains(cob) else { return "rows=\(rows), cob=\(cob): expected 1...8 each" }
        guard (1...3).contains(gradCob), (1...3).contains(gradCov), gradCob * gradCov <= 3 else {
            return "gradCob=\(gradCob), gradCov=\(gradCov): expected 1...3 each, with at most 27 accumulators (gradCob·gradCov ≤ 3)"
        }
        return nil
    }
}

/// The kinds of GEMM call the U-Net makes, each tuned on its own: the best tile shape for a
/// conv-shaped product is not the best for attention's short-k products or a weight gradient's
/// long sum over the batch.
public enum GEMMShapeClass: String, Codable, CaseIterable, Sendable {
    /// Weight gradients: C = Σ_b A[b]·B[b] (sumOverBatch).
    case reduction
    /// k < 64: attention's QᵀK, 1×1 convolutions on few channels.
    case shortK
    /// m < 16: attention's V·Pᵀ per head, narrow layers.
    case fewRows
    /// Everything else: convolutions through im2col, linear layers.
    case general

    public init(m: Int, n: Int, k: Int, sumOverBatch: Bool) {
        if sumOverBatch { self = .reduction }
        else if k < 64 { self = .shortK }
        else if m < 16 { self = .fewRows }
        else { self = .general }
    }
}

/// Kernel variants and work sizes for one device. It starts from the device's facts
/// (`defaults(for:)`); the GEMM tiles of each shape class are then chosen by a timing search
/// (GEMMTuner) and cached per device name and driver version (ProfileCache).
public struct DeviceProfile: Codable, Equatable, Sendable {
    /// GEMM tiles per shape class (keys: GEMMShapeClass raw values). A class without an entry
    /// uses `defaultGEMM` (and is searched on first use when tuning is on).
    public var gemm: [String: GEMMTiles] = [:]
    public var defaultGEMM: GEMMTiles
    /// Elements per work-item for the span kernels (elementwise.cl, silu.cl).
    public var spanElements: Int
    /// Floats of im2col scratch per image chunk.
    public var columnFloats: Int
    /// Work-group size for kernels that loop per item.
    public var loopLocal: Int
    /// 3×3 stride-1 convolutions padded by 1 (most of a U-Net), forward and input gradient: a direct
    /// kernel with this blocking, or nil for im2col + GEMM (GPUs: their tiled GEMM is the fast path).
    public var conv3x3: Conv3x3Tiles?
    /// The 3×3 layers' own plans, keyed by `Conv3x3LayerPlan.key`: where a layer has one, it decides
    /// the path over `conv3x3`'s flags.
    public var conv3x3Layers: [String: Conv3x3LayerPlan] = [:]

    public func tiles(for shape: GEMMShapeClass) -> GEMMTiles { gemm[shape.rawValue] ?? defaultGEMM }

    /// The starting point on a device, from its facts alone:
    /// - CPUs (PoCL): the register-blocked GEMM with vectors of the native SIMD width (float16 on
    ///   AVX-512: measured there, float8 code reaches half the FMA peak), work-items that each move
    ///   a few thousand elements, cache-sized im2col chunks (4 MiB).
    /// - GPUs: the local-memory tiled GEMM, one element per work-item, large im2col chunks (256 MiB)
    ///   so every launch has plenty of work-items.
    public static func defaults(for device: CLDeviceInfo) -> DeviceProfile {
        device.kind == .gpu ? gpu() : cpu(vectorWidth: device.nativeVectorWidthFloat)
    }

    public static func cpu(vectorWidth: Int) -> DeviceProfile {
        let wide = vectorWidth >= 16
        let tiles: GEMMTiles = wide ? .cpu(mr: 8, nr: 32, vw: 16) : .cpu(mr: 4, nr: 24, vw: 8)
        return DeviceProfile(defaultGEMM: tiles, spanElements: 4096, columnFloats: 1 << 20, loopLocal: 4,
                             conv3x3: wide ? Conv3x3Tiles(vw: 16, rows: 4, cob: 4, gradCob: 1, gradCov: 2) : Conv3x3Tiles(vw: 8, rows: 3, cob: 3, gradCob: 1))
    }

    public static func gpu() -> DeviceProfile {
        DeviceProfile(defaultGEMM: .gpu(tm: 64, tn: 64, tk: 16), spanElements: 1, columnFloats: 64 << 20, loopLocal: 64)
    }

    /// The GEMM tiles the timing search tries on a device.
    /// CPUs: accumulators plus B vectors plus one broadcast must fit the vector registers (16 with
    /// AVX2, 32 with AVX-512); 4×24 float8 was the best shape on a Zen 3 (AVX2), and float16 shapes
    /// only pay where the native width is 16.
    /// GPUs: square and tall tiles of 32–128, 8 or 16 deep (local memory ≤ 16 KiB per group).
    public static func gemmCandidates(for device: CLDeviceInfo) -> [GEMMTiles] {
        gemmCandidates(kind: device.kind, vectorWidth: device.nativeVectorWidthFloat)
    }

    public static func gemmCandidates(kind: CLDeviceInfo.Kind, vectorWidth: Int) -> [GEMMTiles] {
        if kind == .gpu {
            return [.gpu(tm: 64, tn: 64, tk: 16), .gpu(tm: 32, tn: 32, tk: 16), .gpu(tm: 64, tn: 64, tk: 8),
                    .gpu(tm: 128, tn: 64, tk: 8), .gpu(tm: 64, tn: 128, tk: 8), .gpu(tm: 128, tn: 128, tk: 8)]
        }
        var list: [GEMMTiles] = [.cpu(mr: 4, nr: 24, vw: 8), .cpu(mr: 6, nr: 16, vw: 8)]
        if vectorWidth >= 16 {
            list += [.cpu(mr: 8, nr: 32, vw: 16), .cpu(mr: 12, nr: 32, vw: 16), .cpu(mr: 8, nr: 48, vw: 16),
                     .cpu(mr: 6, nr: 64, vw: 16), .cpu(mr: 4, nr: 64, vw: 16)]
        }
        return list
    }

    /// The 3×3 convolution choices the timing search tries on a device (nil: im2col + GEMM). The
    /// direct kernels are for CPUs (work-groups of one item); a GPU keeps its tiled GEMM.
    /// Registers: rows·cob accumulators + cob weights + 1 input vector, and 9·gradCob·gradCov +
    /// gradCov (+ gradCob along rows) for the weight gradient, within 32 (AVX-512) or 16 (AVX2)
    /// vector registers.
    public static func conv3x3Candidates(for device: CLDeviceInfo) -> [Conv3x3Tiles?] {
        conv3x3Candidates(kind: device.kind, vectorWidth: device.nativeVectorWidthFloat)
    }

    public static func conv3x3Candidates(kind: CLDeviceInfo.Kind, vectorWidth: Int) -> [Conv3x3Tiles?] {
        if kind == .gpu { return [nil] }
        var list: [Conv3x3Tiles?] = [nil, Conv3x3Tiles(vw: 8, rows: 3, cob: 3, gradCob: 1), Conv3x3Tiles(vw: 8, rows: 4, cob: 2, gradCob: 1),
                                     Conv3x3Tiles(vw: 8, rows: 3, cob: 3, gradCob: 1, gradRows: true),
                                     // Winograd: the blocking then matters only for weight gradients under 16×16.
                                     Conv3x3Tiles(vw: 8, rows: 3, cob: 3, gradCob: 1, winograd: true),
                                     Conv3x3Tiles(vw: 8, rows: 3, cob: 3, gradCob: 1, gradRows: true, winograd: true),
                                     // Fused F(2×2); with F(4×4) as well, the search sets it (searchConv3x3).
                                     Conv3x3Tiles(vw: 8, rows: 3, cob: 3, gradCob: 1, gradRows: true, winograd2x2: true)]
        if vectorWidth >= 16 {
            list += [Conv3x3Tiles(vw: 16, rows: 4, cob: 4, gradCob: 3), Conv3x3Tiles(vw: 16, rows: 8, cob: 2, gradCob: 3),
                     Conv3x3Tiles(vw: 16, rows: 4, cob: 6, gradCob: 2),
                     // Along rows GCOB 2, not 3: the column-strip kernel keeps two dy rows per channel in
                     // registers as well, and 3 spills 32 registers (262–270 against 424–449 GFLOP/s).
                     Conv3x3Tiles(vw: 16, rows: 4, cob: 4, gradCob: 2, gradRows: true), Conv3x3Tiles(vw: 16, rows: 4, cob: 4, gradCob: 1, gradCov: 2),
                     Conv3x3Tiles(vw: 16, rows: 4, cob: 4, gradCob: 2, gradRows: true, winograd: true),
                     Conv3x3Tiles(vw: 16, rows: 4, cob: 4, gradCob: 1, gradCov: 2, winograd: true),
                     Conv3x3Tiles(vw: 16, rows: 4, cob: 4, gradCob: 2, gradRows: true, winograd2x2: true)]
        }
        return list
    }

    /// The profiles the parity suite runs on any device: both CPU micro-kernel widths and the GPU
    /// path, whatever the device is, so that every kernel variant is checked on CI's PoCL.
    public static var parityProfiles: [(name: String, profile: DeviceProfile)] {
        [("cpu float8", cpu(vectorWidth: 8)), ("cpu float16", cpu(vectorWidth: 16)), ("gpu", gpu())]
    }
}
