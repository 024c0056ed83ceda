import Foundation

/// The per-step scalars of AdamW, computed once on the host in double precision (as torch does
/// in Python floats) and shared by every backend so that all of them apply the same numbers.
public struct AdamCoefficients {
    public let decay: Float            // 1 − lr·weight_decay
    public let oneMinusBeta1: Float
    public let oneMinusBeta2: Float
    public let stepSize: Float         // lr / (1 − β1^t)
    public let biasCorrection2Sqrt: Float  // √(1 − β2^t)

    public init(_ a: Adam) {
        let t = Double(a.step)
        decay = Float(1 - Double(a.learningRate) * Double(a.weightDecay))
        oneMinusBeta1 = Float(1 - Double(a.beta1))
        oneMinusBeta2 = Float(1 - Double(a.beta2))
        stepSize = Float(Double(a.learningRate) / (1 - pow(Double(a.beta1), t)))
        biasCorrection2Sqrt = Float((1 - pow(Double(a.beta2), t)).squareRoot())
    }
}
