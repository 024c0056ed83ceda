import DDPMCore
import DDPMCPU
import DDPMParity
import XCTest

/// Finite-difference checks of every gradient rule on the CPU reference, and the coverage test.
final class GradientCheckTests: XCTestCase {
    func testEveryGradientRuleAgreesWithFiniteDifferences() throws {
        let backend = CPUBackend()
        for c in GradientChecks.all {
            let result = try GradientChecks.run(c, backend: backend)
            XCTAssert(result.passed, "\(c): relative error \(result.relativeError) > \(GradientChecks.tolerance)")
        }
    }

    /// Every op has a parity row; every op with a gradient rule has a gradient check (whether an op
    /// has one is read off the rule, on the parity rows' ops: every kind has one). Prints the lists
    /// like ggml's "operations without tests".
    func testCoverageOfEveryOp() {
        let withParity = Set(ParityCases.all.map(\.op.kind))
        let withGradient = Set(GradientChecks.all.map(\.op.kind))
        let missingParity = OpKind.allCases.filter { !withParity.contains($0) }
        let differentiable = Set(ParityCases.all.map(\.op).filter(\.isDifferentiable).map(\.kind))
        let missingGradient = OpKind.allCases.filter { differentiable.contains($0) && !withGradient.contains($0) }
        XCTAssertFalse(differentiable.isEmpty)
        XCTAssertEqual(missingParity, [], "ops without a parity case (\(missingParity.count)): \(missingParity)")
        XCTAssertEqual(missingGradient, [], "ops without a gradient check (\(missingGradient.count)): \(missingGradient)")
    }

    /// A wrong gradient rule must fail the check (the check itself can fail).
    func testGradientCheckCatchesAWrongRule() throws {
        // scale(2)'s gradient evaluated as if it were scale(-2): compare against finite differences of scale(2).
        let right = try GradientChecks.run(GradientCheckCase(.scale(2), [(Shape(5), .normal(scale: 1))]), backend: CPUBackend())
        XCTAssert(right.passed)
        let wrong = try GradientChecks.run(GradientCheckCase(.scale(2), [(Shape(5), .normal(scale: 1))]), backend: FlippedScaleBackend())
        XCTAssertFalse(wrong.passed, "a sign error in a gradient was not caught (error \(wrong.relativeError))")
    }
}

/// A CPU backend whose scale op negates its factor whenever it is applied to a gradient (the second
/// application in the graph): a deliberately wrong gradient rule.
private final class FlippedScaleBackend: ForwardingBackend {
    var scaleCalls = 0
    override func run(_ op: Op, inputs: [TensorRef], outputs: [TensorRef], step: UInt32) throws {
        if case .scale(let f) = op, f == 2, inputs[0].shape.count == 5 {
            scaleCalls += 1
            // The forward scale(2) runs first, then scale(count) of the loss, then the backward scale(2).
            let backward = scaleCalls % 2 == 0
            return try reference.run(.scale(backward ? -f : f), inputs: inputs, outputs: outputs, step: step)
        }
        try reference.run(op, inputs: inputs, outputs: outputs, step: step)
    }
}
