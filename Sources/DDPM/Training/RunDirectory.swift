import DDPMCore
import Foundation

/// A run directory that other tools can open:
///   checkpoint.safetensors   resumable state (see Checkpoint)
///   pipeline/                diffusers DDPMPipeline layout (EMA weights): DDPMPipeline.from_pretrained(path)
///   log.csv, loss.png        step, loss, lr, grad norm, img/s; a plot of the smoothed loss
///   samples/step-N.png       grids from fixed noise during training
public struct RunDirectory {
    public let url: URL
    public init(_ url: URL) { self.url = url }

    public var checkpoint: URL { url.appendingPathComponent(Checkpoint.fileName) }
    public var pipeline: URL { url.appendingPathComponent("pipeline") }
    public var log: URL { url.appendingPathComponent("log.csv") }
    public var lossPlot: URL { url.appendingPathComponent("loss.png") }
    public var samples: URL { url.appendingPathComponent("samples") }

    /// Writes the diffusers pipeline: model_index.json, unet/ (config + EMA weights), scheduler/.
    public func writePipeline(config: UNetConfig, weights: Weights, scheduler: SchedulerSettings, classes: ClassLabels? = nil) throws {
        try Self.writePipeline(at: pipeline, config: config, weights: weights, scheduler: scheduler, classes: classes)
    }

    /// A class-conditional model also gets class_labels.json (its class names and null class).
    public static func writePipeline(at dir: URL, config: UNetConfig, weights: Weights, scheduler: SchedulerSettings,
                                     classes: ClassLabels? = nil) throws {
        if let classes { try classes.write(to: dir.appendingPathComponent(ClassLabels.fileName)) }
        let index: [String: Any] = ["_class_name": "DDPMPipeline", "_diffusers_version": "0.42.1",
                                    "scheduler": ["diffusers", "DDPMScheduler"], "unet": ["diffusers", "UNet2DModel"]]
        try writeAtomically(JSONSerialization.data(withJSONObject: index, options: [.prettyPrinted, .sortedKeys]),
                            to: dir.appendingPathComponent("model_index.json"))
        try writeAtomically(config.jsonData(), to: dir.appendingPathComponent("unet/config.json"))
        try writeSafetensors(weights.entries(), metadata: ["format": "pt"],
                             to: dir.appendingPathComponent("unet/diffusion_pytorch_model.safetensors"))
        try writeAtomically(JSONSerialization.data(withJSONObject: scheduler.json, options: [.prettyPrinted, .sortedKeys]),
                            to: dir.appendingPathComponent("scheduler/scheduler_config.json"))
    }

    /// The newest run under `runs/` (by checkpoint time), for `ddpm-cl sample` without a directory.
    public static func newest(under root: URL) -> URL? {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: root.path) else { return nil }
        return names.compactMap { name -> (URL, Date)? in
            let dir = root.appendingPathComponent(name)
            let marker = dir.appendingPathComponent("pipeline/unet/diffusion_pytorch_model.safetensors")
            guard let date = (try? fm.attributesOfItem(atPath: marker.path))?[.modificationDate] as? Date else { return nil }
            return (dir, date)
        }.max { $0.1 < $1.1 }?.0
    }
}

/// log.csv rows and the loss plot made from them.
public struct TrainingLog {
    public struct Row {
        public var step: Int; public var loss: Float; public var lr: Float; public var gradNorm: Float; public var imagesPerSecond: Double
        /// FID and KID when they were measured at this step (`train --fid-every`), else empty in log.csv.
        public var fid: Double? = nil, kid: Double? = nil
    }
    public private(set) var rows: [Row] = []
    let url: URL
    let plot: URL

    /// Reads an existing log (when resuming) and keeps the rows up to `step`.
    public init(directory: RunDirectory, keepingUpTo step: Int) {
        url = directory.log
        plot = directory.lossPlot
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return }
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: ",").map(String.init)
            guard f.count >= 5, let s = Int(f[0]), s <= step, let l = Float(f[1]), let lr = Float(f[2]),
                  let g = Float(f[3]), let ips = Double(f[4]) else { continue }
            // Logs written before the fid and kid columns have five.
            rows.append(Row(step: s, loss: l, lr: lr, gradNorm: g, imagesPerSecond: ips,
                            fid: f.count > 5 ? Double(f[5]) : nil, kid: f.count > 6 ? Double(f[6]) : nil))
        }
    }

    public mutating func append(_ row: Row) { rows.append(row) }

    /// Records FID and KID on the row of `step` (the session logs every FID step).
    public mutating func setFID(_ fid: Double, kid: Double, step: Int) {
        guard let i = rows.lastIndex(where: { $0.step == step }) else { return }
        (rows[i].fid, rows[i].kid) = (fid, kid)
    }

    public func write() throws {
        // fid and kid are appended as the last columns, so readers of the first five keep working.
        var text = "step,loss,lr,grad_norm,images_per_second,fid,kid\n"
        for r in rows {
            text += "\(r.step),\(r.loss),\(r.lr),\(r.gradNorm),\(String(format: "%.2f", r.imagesPerSecond)),\(r.fid.map { "\($0)" } ?? ""),\(r.kid.map { "\($0)" } ?? "")\n"
        }
        try writeAtomically(Data(text.utf8), to: url)
        try writePNG(renderLossPlot(steps: rows.map(\.step), losses: rows.map(\.loss)), to: plot)
    }
}
