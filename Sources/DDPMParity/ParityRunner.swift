import DDPMCore

/// The outcome of one parity case.
public struct ParityResult {
    public let testCase: ParityCase
    /// Worst normalized MSE over the outputs.
    public let nmse: Double
    public let maxAbsError: Double
    /// Empty when the case passed; otherwise what went wrong (NaN, guard overwritten, tolerance).
    public let problems: [String]
    public var passed: Bool { problems.isEmpty }
}

/// Runs parity cases: the same seeded inputs on a reference and a candidate backend, outputs
/// compared by NaN/Inf first, then guard regions (sentinels after every output), then NMSE.
public enum ParityRunner {
    /// Floats after each output that must keep their sentinel value.
    public static let guardCount = 67
    public static let sentinel: Float = 12345.5

    public static func run(_ c: ParityCase, reference: Backend, candidate: Backend) throws -> ParityResult {
        let expected = try outputs(of: c, on: reference)
        let actual = try outputs(of: c, on: candidate)
        var problems: [String] = []
        var worst = 0.0, maxAbs = 0.0
        for (index, (e, a)) in zip(expected, actual).enumerated() {
            let used = e.count - guardCount
            if a[..<used].contains(where: { !$0.isFinite }) && !e[..<used].contains(where: { !$0.isFinite }) {
                problems.append("output \(index): NaN or Inf where the reference is finite")
            }
            if e[..<used].contains(where: { !$0.isFinite }) { problems.append("output \(index): the reference is not finite") }
            if a[used...].contains(where: { $0 != sentinel }) { problems.append("output \(index): wrote past its end (guard region changed)") }
            if e[used...].contains(where: { $0 != sentinel }) { problems.append("output \(index): the reference wrote past its end") }
            var diff = 0.0, norm = 0.0
            for i in 0..<used {
                let d = Double(a[i]) - Double(e[i])
                diff += d * d
                norm += Double(e[i]) * Double(e[i])
                maxAbs = max(maxAbs, abs(d))
            }
            let nmse = norm > 0 ? diff / norm : diff
            worst = max(worst, nmse.isNaN ? .infinity : nmse)
        }
        if !(worst <= c.tolerance) {
            problems.append("NMSE \(worst) exceeds \(c.tolerance)")
        }
        return ParityResult(testCase: c, nmse: worst, maxAbsError: maxAbs, problems: problems)
    }

    /// The outputs of one case on one backend, each followed by its guard region. An in-place op's
    /// outputs are the very buffers of the inputs they overwrite (aliased, as the Executor runs them).
    static func outputs(of c: ParityCase, on backend: Backend) throws -> [[Float]] {
        var random = TestRandom(seed: c.seed)
        let inputValues = c.inputs.map { $0.fill.values($0.shape, &random) }
        let guardValues = [Float](repeating: sentinel, count: guardCount)
        let aliased = c.op.inPlaceInputs ?? []
        let inputs = try zip(c.inputs, inputValues).enumerated().map { index, pair in
            TensorRef(try backend.makeBuffer(pair.1 + (aliased.contains(index) ? guardValues : [])), pair.0.shape)
        }
        let outputShapes = c.op.outputShapes(c.inputs.map(\.shape))
        let outputs = try outputShapes.enumerated().map { index, shape in
            index < aliased.count ? inputs[aliased[index]]
                : TensorRef(try backend.makeBuffer([Float](repeating: -777, count: shape.count) + guardValues), shape)
        }
        try backend.run(c.op, inputs: inputs, outputs: outputs, step: c.step)
        try backend.synchronize()
        return try outputs.map { try backend.read($0.buffer, count: $0.shape.count + guardCount) }
    }
}
