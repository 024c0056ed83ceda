import DDPM
import DDPMCore
import DDPMCPU
import Foundation
import XCTest

/// Data parallel without MPI: K ranks as threads (ThreadReducer) on the CPU reference. K shards of a
/// global batch must train like one process with the whole batch (the MPI test in CLITests runs
/// the same through mpirun and PoCL).
final class DataParallelTests: XCTestCase {
    /// Runs `steps` steps on `ranks` threads, each with its own Trainer; returns every rank's checkpoint
    /// and the loss after each step.
    func train(ranks: Int, options: TrainingOptions, steps: Int) throws -> [(checkpoint: Checkpoint, losses: [Float])] {
        let data = syntheticData()
        let reducers = ThreadGroup(size: ranks).reducers()
        var results = [(checkpoint: Checkpoint, losses: [Float])?](repeating: nil, count: ranks)
        var failures: [Error] = []
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: ranks) { rank in
            do {
                let parallel = ranks > 1 ? DataParallel(reducer: reducers[rank]) : nil
                let trainer = try Trainer(backend: CPUBackend(), options: options, parallel: parallel)
                let shard = parallel?.shard(ofBatch: options.batch) ?? 0..<options.batch
                var losses: [Float] = []
                for step in 1...steps {
                    try trainer.trainStep(batch: data.batch(step: step, size: options.batch, images: shard))
                    losses.append(try trainer.readLossAndGradientNorm().loss)
                }
                let checkpoint = try trainer.checkpoint()
                lock.lock(); results[rank] = (checkpoint, losses); lock.unlock()
            } catch {
                lock.lock(); failures.append(error); lock.unlock()
            }
        }
        if let failure = failures.first { throw failure }
        return results.map { $0! }
    }

    /// 2 ranks with global batch 4 (dropout on, so its masks must follow the global image index too)
    /// match 1 process with batch 4: the same loss curve and weights, within float32 round-off from
    /// summing the batch in two halves; and the two ranks hold bit-identical weights.
    func testTwoRanksMatchOneProcess() throws {
        var options = tinyOptions(dropout: 0.1)
        options.warmupSteps = 0
        let one = try train(ranks: 1, options: options, steps: 3)[0]
        let two = try train(ranks: 2, options: options, steps: 3)
        XCTAssertEqual(two[0].losses, two[1].losses, "every rank logs the same averaged loss")
        for name in two[0].checkpoint.model.values.keys {
            XCTAssertEqual(two[0].checkpoint.model.values[name]!, two[1].checkpoint.model.values[name]!, "ranks drifted apart in \(name)")
        }
        for (a, b) in zip(one.losses, two[0].losses) {
            // The 1-process loss is one double sum over 4 images; 2 ranks add two float halves: ≤ a few ulp.
            XCTAssertEqual(a, b, accuracy: 1e-6 * max(1, abs(a)))
        }
        for (name, w) in one.checkpoint.model.values {
            let w2 = two[0].checkpoint.model.values[name]!
            let worst = zip(w, w2).map { abs($0 - $1) }.max()!
            // Gradients differ by round-off (~1e-7 relative), which AdamW passes on; a wrong shard, noise
            // or mask would move weights by ~lr per step. Attention's key bias has an exactly-zero
            // gradient: its round-off becomes Adam steps of up to lr either way, bounded by 2·lr·steps.
            let bound = name.hasSuffix("to_k.bias") ? 2 * options.learningRate * 3 : 1e-5
            XCTAssertLessThanOrEqual(worst, bound, "weight \(name)")
        }
    }

    /// A batch that does not split evenly over the ranks is refused before anything is built.
    func testUnevenBatchIsRefused() throws {
        var options = tinyOptions()
        options.batch = 5
        let reducer = ThreadGroup(size: 2).reducers()[0]
        XCTAssertThrowsError(try Trainer(backend: CPUBackend(), options: options, parallel: DataParallel(reducer: reducer))) { error in
            XCTAssert("\(error)".contains("does not split evenly over 2 ranks"), "\(error)")
        }
    }

    /// The shards of a batch are its images, in order: together they are the whole batch.
    func testShardsTileTheBatch() {
        let data = syntheticData()
        let reducers = ThreadGroup(size: 3).reducers()
        let whole = data.batch(step: 5, size: 6)
        let pieces = reducers.flatMap { data.batch(step: 5, size: 6, images: DataParallel(reducer: $0).shard(ofBatch: 6)) }
        XCTAssertEqual(pieces, whole)
    }
}
