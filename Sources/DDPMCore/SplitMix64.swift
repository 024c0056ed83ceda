import Foundation

/// SplitMix64 (Steele et al.): host-side randomness for weight initialisation, data order and test
/// inputs. Device-side noise uses Philox.
public struct SplitMix64 {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }
    /// A standard normal (Box–Muller in double, one draw per call).
    public mutating func normal() -> Float {
        let u = 1 - uniform(), v = uniform()
        return Float((-2 * log(u)).squareRoot() * cos(2 * Double.pi * v))
    }
    /// A Fisher–Yates shuffle of 0..<count.
    public mutating func permutation(_ count: Int) -> [Int] {
        var p = Array(0..<count)
        for i in stride(from: count - 1, to: 0, by: -1) { p.swapAt(i, Int(next() % UInt64(i + 1))) }
        return p
    }
}
