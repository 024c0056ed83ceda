import DDPMCore
import Foundation

/// diffusers' HeunDiscreteScheduler (Karras et al. 2022, Algorithm 1 without churn): per noise level an
/// Euler step σ → σ', then at σ' the model again and the trapezoidal correction
/// x_σ' = x_σ + (σ' − σ)·(d + d')/2. The last step (to σ = 0) is Euler only: 2n − 1 model calls.
/// Since the Euler half put x_σ' on the line through x̂0 (d = (x_σ' − x̂0)/σ' as well), the
/// correction is x_σ' + (σ' − σ)/(2σ')·(x̂0 − x̂0'): in the model-input scale one solverUpdate over
/// the last two predictions.
public struct HeunSettings: Equatable {
    public var ramp: SigmaRamp = .timesteps
    public init(ramp: SigmaRamp = .timesteps) { self.ramp = ramp }

    /// From a HeunDiscreteScheduler scheduler_config.json (clip_sample is read with the schedule).
    public init(json: [String: Any], source: String) throws {
        ramp = try SigmaRamp(json: json, source: source)
    }
}

extension SchedulerSettings {
    /// The 2n − 1 steps of an n-step Heun run: the timesteps and σ of EulerDiscreteScheduler (final σ 0),
    /// each level after the first visited twice, as HeunDiscreteScheduler interleaves them.
    public func heunSteps(count n: Int, heun: HeunSettings) -> [SolverStep] {
        let (ts, sigmas) = eulerTimesteps(count: n, euler: EulerSettings(ramp: heun.ramp))
        let clip = clipSample && !thresholding ? Double(clipSampleRange) : 0
        var steps: [SolverStep] = []
        for k in 0..<n {
            var euler = sigmaSpaceStep(t: ts[k], sigma: sigmas[k], next: sigmas[k + 1])
            euler.clip = clip
            steps.append(euler)
            guard k + 1 < n else { break }
            let (sigma, next) = (sigmas[k], sigmas[k + 1])
            let (kx, km) = sigmaSpacePrediction(next)
            let w = (next - sigma) / (2 * next * (next * next + 1).squareRoot())
            var second = SolverStep(t: Int(ts[k + 1].rounded()), kx: kx, km: km, cx: 1, c: [-w, w], noise: 0, modelTimestep: ts[k + 1])
            second.clip = clip
            steps.append(second)
        }
        return steps
    }

    /// The σ of each Heun step's input and, last, the final σ (0): what x_σ = √(σ²+1)·x uses.
    public func heunSigmas(count n: Int, heun: HeunSettings) -> [Double] {
        let sigmas = eulerTimesteps(count: n, euler: EulerSettings(ramp: heun.ramp)).sigmas
        return [sigmas[0]] + sigmas[1..<n].flatMap { [$0, $0] } + [0]
    }
}
