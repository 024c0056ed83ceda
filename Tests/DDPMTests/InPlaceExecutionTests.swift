import DDPM
import DDPMCore
import DDPMCPU
import XCTest

/// The Executor's storage that is not pooled: in-place ops (Op.inPlaceInputs) update a bound buffer,
/// placed values land in a caller's view (and move to another buffer), and a replaced op takes effect on the next run. And the
/// Trainer's gradient hook runs between the gradients and the update, on the flat gradient buffer.
final class InPlaceExecutionTests: XCTestCase {
    func testInPlaceAccumulateIntoPlacedView() throws {
        for backend in try testBackends() {
            let count = 37, offset = backend.viewAlignment
            let graph = Graph()
            let x = graph.input("x", Shape(count)), w = graph.input("w", Shape(count)), acc = graph.input("acc", Shape(count))
            let product = graph(.mul, x, w)
            let sum = graph(.accumulate(scale: 0.5, reset: true), acc, product)
            // The product is written into a view in the middle of a larger buffer.
            let sentinel: Float = 12345.5
            let big = try backend.makeBuffer([Float](repeating: sentinel, count: 2 * offset + count))
            let view = try backend.makeView(of: big, offset: offset, count: count)
            let executor = try Executor(graph: graph, outputs: [sum], backend: backend, placements: [product: view])
            let xs = (0..<count).map { Float($0) / 7 - 2 }, ws = (0..<count).map { Float($0 % 5) - 1.5 }
            let accBuffer = try backend.makeBuffer([Float](repeating: .nan, count: count))
            for (leaf, values) in [(x, xs), (w, ws)] { executor.bind(leaf, to: try backend.makeBuffer(values)) }
            executor.bind(acc, to: accBuffer)
            XCTAssertTrue(executor.buffer(sum) === accBuffer, "\(backend.name): the in-place output is its input's buffer")

            try executor.run(step: 0)                          // reset: the NaNs are dropped
            let products = zip(xs, ws).map { $0 * $1 }
            XCTAssertEqual(try backend.read(accBuffer, count: count), products.map { 0.5 * $0 }, backend.name)
            let all = try backend.read(big, count: big.count)
            XCTAssertEqual(Array(all[offset..<offset + count]), products, "\(backend.name): the placed value")
            XCTAssertEqual(Array(all[..<offset]) + Array(all[(offset + count)...]),
                           [Float](repeating: sentinel, count: 2 * offset), "\(backend.name): outside the view")

            executor.replaceOp(ofNodeProducing: sum, with: .accumulate(scale: 0.5, reset: false))
            try executor.run(step: 0)
            XCTAssertEqual(try backend.read(accBuffer, count: count), products.map { 0.5 * $0 + 0.5 * $0 }, backend.name)
        }
    }

    /// A placed value moves to another caller's buffer for later runs (what the Sampler does with x_t
    /// and its history): the next run writes there, and the first buffer keeps what it had.
    func testPlacedValueMovesToAnotherBuffer() throws {
        for backend in try testBackends() {
            let graph = Graph()
            let x = graph.input("x", Shape(5))
            let doubled = graph(.scale(2), x)
            let y = graph(.add, doubled, x)
            let (a, b) = (try backend.makeBuffer(count: 5), try backend.makeBuffer([Float](repeating: -1, count: 5)))
            let executor = try Executor(graph: graph, outputs: [y], backend: backend, placements: [y: a])
            executor.bind(x, to: try backend.makeBuffer([1, 2, 3, 4, 5]))
            try executor.run(step: 0)
            executor.place(y, in: b)
            executor.bind(x, to: try backend.makeBuffer([10, 20, 30, 40, 50]))
            try executor.run(step: 0)
            XCTAssertTrue(executor.buffer(y) === b, backend.name)
            XCTAssertEqual(try backend.read(a, count: 5), [3, 6, 9, 12, 15], "\(backend.name): the first buffer")
            XCTAssertEqual(try backend.read(b, count: 5), [30, 60, 90, 120, 150], "\(backend.name): the moved value")
        }
    }

    /// The hook sees exactly the gradients the Trainer reports, and what it writes is what AdamW uses:
    /// zeroed gradients leave every weight where it was (no weight decay; Adam's step is 0/(0 + eps)).
    func testGradientHookRunsBeforeTheUpdate() throws {
        let data = syntheticData()
        var options = tinyOptions()
        options.weightDecay = 0
        for backend in try testBackends() {
            let trainer = try Trainer(backend: backend, options: options)
            let before = try trainer.checkpoint().model
            var seen: [String: [Float]] = [:]
            let layout = trainer.flatLayout
            trainer.gradientHook = { flat in
                let values = try backend.read(flat, count: layout.count)
                for (i, name) in layout.names.enumerated() {
                    seen[name] = Array(values[layout.offsets[i]..<layout.offsets[i] + layout.shapes[i].count])
                }
                try backend.write([Float](repeating: 0, count: layout.count), to: flat)
            }
            try trainer.trainStep(batch: data.batch(step: 1, size: options.batch))
            XCTAssertEqual(seen.count, before.names.count, backend.name)
            let reported = try trainer.gradientValues()
            XCTAssert(reported.values.allSatisfy { $0.allSatisfy { $0 == 0 } }, "\(backend.name): the hook's zeros are the step's gradients")
            XCTAssert(seen.values.contains { $0.contains { $0 != 0 } }, "\(backend.name): the hook saw real gradients")
            let after = try trainer.checkpoint().model
            for name in before.names { XCTAssertEqual(after.values[name]!, before.values[name]!, "\(backend.name) \(name)") }
        }
    }
}
