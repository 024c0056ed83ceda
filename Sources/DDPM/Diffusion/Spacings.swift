import Foundation

/// numpy's arange and linspace for float64, operation for operation, so timestep lists match
/// numpy's to the bit (Swift's stride(from:to:by:) differs: it fuses a multiply-add).
public enum Spacings {
    /// np.arange(start, stop, step): length ⌈(stop − start)/step⌉; values start + i·Δ with
    /// Δ = (start + step) − start, as numpy's DOUBLE_fill (no fused multiply-add).
    public static func arange(_ start: Double, _ stop: Double, _ step: Double) -> [Double] {
        let length = Int(((stop - start) / step).rounded(.up))
        guard length > 0 else { return [] }
        let delta = (start + step) - start
        return (0..<length).map { i in i == 0 ? start : start + Double(i) * delta }
    }

    /// np.linspace(start, stop, n) (endpoint): i·((stop − start)/(n − 1)) + start, the last value stop.
    public static func linspace(_ start: Double, _ stop: Double, _ n: Int) -> [Double] {
        guard n > 1 else { return n == 1 ? [start] : [] }
        let step = (stop - start) / Double(n - 1)
        return (0..<n).map { i in i == n - 1 ? stop : Double(i) * step + start }
    }

    /// np.round: half to even.
    public static func roundHalfEven(_ x: Double) -> Int { Int(x.rounded(.toNearestOrEven)) }
}
