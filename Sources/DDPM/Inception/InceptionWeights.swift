import DDPMCore
import Foundation

/// The weights of pytorch-fid's FID Inception from a safetensors file (`--inception FILE`), with
/// each BatchNorm folded into its conv: w' = w·γ/√(σ²+ε), b' = β − μ·γ/√(σ²+ε), in double.
///
/// The file holds, for every BasicConv2d <module> of InceptionV3.architecture (pytorch-fid's
/// state-dict names, float32 or any dtype readSafetensors converts):
///   <module>.conv.weight [out, in, kh, kw], <module>.bn.weight [out], <module>.bn.bias [out],
///   <module>.bn.running_mean [out], <module>.bn.running_var [out].
/// Other tensors (fc.*, num_batches_tracked) are ignored. scripts/convert-inception writes it from
/// pytorch-fid's pt_inception-2015-12-05-6726825d.pth.
public struct InceptionWeights {
    /// Folded parameters by graph name ("<module>.weight", "<module>.bias").
    public var values: [String: [Float]]
    /// FNV-1a of the folded weights' bits: names cached features of these weights.
    public var fingerprint: String

    static let howToMake = "Make it from pytorch-fid's weights with `scripts/convert-inception pt_inception-2015-12-05-6726825d.pth FILE` "
        + "(that script needs Python with torch; ddpm-cl itself does not)."

    /// The raw tensors the file must hold, in architecture order, with their shapes.
    public static var fileTensors: [(name: String, shape: Shape)] {
        InceptionV3.architecture.flatMap { l -> [(name: String, shape: Shape)] in
            [("\(l.name).conv.weight", l.weightShape)]
                + ["weight", "bias", "running_mean", "running_var"].map { ("\(l.name).bn.\($0)", Shape(l.outChannels)) }
        }
    }

    public static func read(_ url: URL) throws -> InceptionWeights {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw UserError("no Inception weights at \(url.path). " + howToMake)
        }
        let file: SafeTensors
        do { file = try readSafetensors(url) } catch let e as UserError {
            throw UserError("\(e.message) " + howToMake)
        }
        return try fold(file.tensors, source: url.path)
    }

    /// Checks every tensor's presence and shape, then folds the batch norms.
    public static func fold(_ tensors: [String: SafeTensors.Entry], source: String) throws -> InceptionWeights {
        for (name, shape) in fileTensors {
            guard let t = tensors[name] else {
                throw UserError("\(source) is not pytorch-fid's FID Inception: it has no tensor \(name). " + howToMake)
            }
            guard t.shape == shape.dims else {
                throw UserError("\(source): \(name) has shape \(t.shape), but the FID Inception's is \(shape.dims). " + howToMake)
            }
            guard t.values.allSatisfy({ $0.isFinite }) else {
                throw UserError("\(source): \(name) holds NaN or infinite values. " + howToMake)
            }
        }
        var values: [String: [Float]] = [:]
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for layer in InceptionV3.architecture {
            func raw(_ suffix: String) -> [Float] { tensors["\(layer.name).\(suffix)"]!.values }
            let w = raw("conv.weight"), gamma = raw("bn.weight"), beta = raw("bn.bias")
            let mean = raw("bn.running_mean"), variance = raw("bn.running_var")
            guard variance.allSatisfy({ Double($0) + InceptionV3.batchNormEps > 0 }) else {
                throw UserError("\(source): \(layer.name).bn.running_var has values ≤ −ε, which no batch norm has. " + howToMake)
            }
            let per = w.count / layer.outChannels
            var folded = [Float](repeating: 0, count: w.count), bias = [Float](repeating: 0, count: layer.outChannels)
            for o in 0..<layer.outChannels {
                let k = Double(gamma[o]) / (Double(variance[o]) + InceptionV3.batchNormEps).squareRoot()
                for i in 0..<per { folded[o * per + i] = Float(Double(w[o * per + i]) * k) }
                bias[o] = Float(Double(beta[o]) - Double(mean[o]) * k)
            }
            values["\(layer.name).weight"] = folded
            values["\(layer.name).bias"] = bias
            for v in folded + bias { hash = (hash ^ UInt64(v.bitPattern)) &* 0x100_0000_01B3 }
        }
        return InceptionWeights(values: values, fingerprint: "inception-" + String(hash, radix: 16))
    }
}
