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

    /// Karras et al. (2022) eq. 5 with ρ = 7: n noise levels from σ_max down to σ_min, in float64
    /// (diffusers' _convert_to_karras).
    static func karrasSigmas(from hi: Double, to lo: Double, count n: Int) -> [Double] {
        let rho = 7.0
        return linspace(0, 1, n).map { pow(pow(hi, 1 / rho) + $0 * (pow(lo, 1 / rho) - pow(hi, 1 / rho)), rho) }
    }

    /// diffusers' _convert_to_exponential: n noise levels equally spaced in log σ, from σ_max to σ_min.
    static func exponentialSigmas(from hi: Double, to lo: Double, count n: Int) -> [Double] {
        linspace(log(hi), log(lo), n).map { exp($0) }
    }

    /// The fractional timestep of σ by interpolating log σ over the table of σ_t (diffusers' _sigma_to_t).
    static func timestep(ofSigma sigma: Double, in table: [Float]) -> Double {
        let logSigmas = table.map { Double(logf($0)) }
        let logSigma = log(max(sigma, 1e-10))
        var low = 0
        for (i, l) in logSigmas.enumerated() where logSigma - l >= 0 { low = i }
        low = min(low, table.count - 2)
        let w = min(max((logSigmas[low] - logSigma) / (logSigmas[low] - logSigmas[low + 1]), 0), 1)
        return (1 - w) * Double(low) + w * Double(low + 1)
    }
}
