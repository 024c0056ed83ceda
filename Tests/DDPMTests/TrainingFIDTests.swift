import DDPM
import DDPMCore
import DDPMCPU
import Foundation
import XCTest

/// `train --fid-every`: one evaluation of a tiny model's samples against a reference, fid.csv and fid.png.
final class TrainingFIDTests: XCTestCase {
    func testEvaluationWritesAndRestoresRows() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ddpm-trainingfid-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = ModelPreset.tiny.config
        let config = ClassifierConfig(sampleSize: 8, inChannels: 1, classNames: ["a", "b"], blockOutChannels: [8, 16],
                                      layersPerBlock: 1, normNumGroups: 4)
        var cw = Weights(graph: EncoderClassifier(config: config, batch: 1).graph)
        cw.initialize(seed: 1)
        let classifier = TrainedClassifier(config: config, weights: cw, heldOutAccuracy: 0.5, heldOutDescription: "-",
                                           trainingDescription: "-", steps: 0)
        var r = SplitMix64(seed: 2)
        let reference = dir.appendingPathComponent("ref.npy")
        try writeNPY(uint8: (0..<(40 * 64)).map { _ in UInt8(r.next() % 256) }, shape: [40, 1, 8, 8], to: reference)
        let backend = CPUBackend()
        let fid = try TrainingFID(backend: backend, classifier: classifier, reference: .npy(reference), referenceCount: 40,
                                  samples: 6, steps: 2, kidSubsets: 2)
        var weights = Weights(graph: UNet(config: model, batch: 1).graph)
        weights.initialize(seed: 3)
        let row = try fid.evaluate(step: 7, trainingSeconds: 12.5, backend: backend, config: model, weights: weights, scheduler: SchedulerSettings(schedule: NoiseSchedule(kind: .linear, timesteps: 1000)))
        XCTAssert(row.fid.isFinite && row.fid > 0, "\(row)")
        let run = RunDirectory(dir)
        try fid.write(to: run)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("fid.png").path))
        let again = try TrainingFID(backend: backend, classifier: classifier, reference: .npy(reference), referenceCount: 40,
                                    samples: 6, steps: 2, kidSubsets: 2)
        again.restore(from: run, upTo: 7)
        XCTAssertEqual(again.rows.map(\.step), [7])
        XCTAssertEqual(again.rows[0].fid, row.fid, accuracy: 1e-9 * row.fid)
        XCTAssertEqual(again.rows[0].trainingSeconds, 12.5, "the training time of the row is kept")
        again.restore(from: run, upTo: 6)
        XCTAssertEqual(again.rows.count, 1, "rows after the resumed step are dropped")
        // A model whose images the classifier cannot read is refused with a message.
        XCTAssertThrowsError(try fid.evaluate(step: 8, trainingSeconds: 0, backend: backend, config: ModelPreset.small.config,
                                              weights: weights, scheduler: SchedulerSettings(schedule: NoiseSchedule(kind: .linear, timesteps: 1000))))
    }
}
