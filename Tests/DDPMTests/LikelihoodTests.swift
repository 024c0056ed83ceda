import DDPM
import DDPMCore
import Foundation
import XCTest

/// The variational bound on a case with a closed-form answer: a model that knows x₀ exactly.
final class LikelihoodTests: XCTestCase {
    /// ε̂ = (x_t − √ᾱ x₀)/√(1−ᾱ): the exact noise, because it is told the data.
    struct Oracle: NoisePredictor {
        let data: [Float]
        let alphasCumprod: [Float]
        func predictNoise(_ x: [Float], t: Int) throws -> [Float] {
            let a = Double(alphasCumprod[t])
            return zip(x, data).map { Float((Double($0) - a.squareRoot() * Double($1)) / (1 - a).squareRoot()) }
        }
    }

    func testOracleBoundIsPriorPlusDecoder() throws {
        let settings = SchedulerSettings(schedule: NoiseSchedule(kind: .linear, timesteps: 100, betaStart: 1e-3, betaEnd: 0.1))
        // Pixels on the 256-level grid, including both edges.
        let pixels: [Float] = [0, 255, 128, 7, 250, 64, 191, 0].map { $0 / 127.5 - 1 }
        let oracle = Oracle(data: pixels, alphasCumprod: settings.schedule.alphasCumprod)
        let result = try VariationalBound(settings: settings).evaluate(images: pixels, count: 2, model: oracle, seed: 3)

        // Closed form: every KL term vanishes (the model's mean and variance are the posterior's),
        // the prior is KL(N(√ᾱ_T x, 1−ᾱ_T) ‖ N(0,1)), the decoder a discretised N(x, β̃_1).
        let acp = settings.schedule.alphasCumprod.map(Double.init)
        let aT = acp.last!
        let beta1 = 1 - acp[1] / acp[0]
        let sigma = (beta1 * (1 - acp[0]) / (1 - acp[1])).squareRoot()
        func phi(_ v: Double) -> Double { 0.5 * (1 + erf(v / 2.0.squareRoot())) }
        var prior = 0.0, decoder = 0.0
        for p in pixels.map(Double.init) {
            prior += 0.5 * (-1 - log(1 - aT) + (1 - aT) + aT * p * p)
            let edge = p < -0.999 || p > 0.999
            decoder -= log(edge ? phi(1 / 255 / sigma) : phi(1 / 255 / sigma) - phi(-1 / 255 / sigma))
        }
        let scale = Double(pixels.count) * log(2.0)
        XCTAssertEqual(result.priorBitsPerDim, prior / scale, accuracy: 1e-9)
        XCTAssertEqual(result.decoderBitsPerDim, decoder / scale, accuracy: 1e-6)
        XCTAssertEqual(result.diffusionBitsPerDim, 0, accuracy: 1e-6)
        XCTAssertEqual(result.bitsPerDim, (prior + decoder) / scale, accuracy: 1e-6)
    }

    /// ε̂ = exact noise + δ (and optionally a variance weight v): x̂₀ is off by √((1−ᾱ)/ᾱ)·δ everywhere,
    /// the same for every pixel, so each KL term has a closed form independent of the data.
    struct OffsetOracle: NoisePredictor {
        let data: [Float]
        let alphasCumprod: [Float]
        let delta: Double
        var v: Float?
        func predictNoise(_ x: [Float], t: Int) throws -> [Float] {
            let a = Double(alphasCumprod[t])
            return zip(x, data).map { Float((Double($0) - a.squareRoot() * Double($1)) / (1 - a).squareRoot() + delta) }
        }
        func predictNoiseAndVariance(_ x: [Float], t: Int) throws -> (noise: [Float], variance: [Float]?) {
            (try predictNoise(x, t: t), v.map { [Float](repeating: $0, count: x.count) })
        }
    }

    /// Interior pixels (no x̂₀ clipping with this schedule and δ) for the closed-form KL tests.
    let interior: [Float] = [0.25, -0.25, 0.1, -0.05, 0.2, 0, -0.15, 0.3]
    let offsetSchedule = NoiseSchedule(kind: .linear, timesteps: 100, betaStart: 1e-3, betaEnd: 0.1)

    /// Σ_{t≥1} of the closed-form KL in bits per dimension: the means differ by c0·√((1−ᾱ)/ᾱ)·δ and
    /// the variances are β̃ (posterior) and σ² (model):
    ///   KL = ½(−1 + ln σ² − ln β̃ + β̃/σ² + Δ²/σ²).
    func closedFormDiffusion(delta: Double, logModelVariance: (Int, Double, Double) -> Double) -> Double {
        let acp = offsetSchedule.alphasCumprod.map(Double.init)
        var sum = 0.0
        for t in 1..<acp.count {
            let a = acp[t], aPrev = acp[t - 1], beta = 1 - a / aPrev
            let c0 = aPrev.squareRoot() * beta / (1 - a)
            let tilde = beta * (1 - aPrev) / (1 - a)
            let mean = c0 * ((1 - a) / a).squareRoot() * delta
            let lv = logModelVariance(t, log(beta), log(tilde))
            sum += 0.5 * (-1 + lv - log(tilde) + tilde / exp(lv) + mean * mean / exp(lv))
        }
        return sum / log(2.0)
    }

    /// The KL terms are computed, not assumed zero: an oracle off by δ in ε pays the closed-form KL,
    /// with the fixed_small variance (means differ) and fixed_large (variances differ too).
    func testKLTermsMatchTheClosedForm() throws {
        let delta = 0.05
        for variance in [SchedulerSettings.Variance.fixedSmall, .fixedLarge] {
            var settings = SchedulerSettings(schedule: offsetSchedule)
            settings.variance = variance
            let model = OffsetOracle(data: interior, alphasCumprod: offsetSchedule.alphasCumprod, delta: delta)
            let result = try VariationalBound(settings: settings).evaluate(images: interior, count: 2, model: model, seed: 1)
            let expected = closedFormDiffusion(delta: delta) { _, logBeta, logTilde in variance == .fixedLarge ? logBeta : logTilde }
            XCTAssertGreaterThan(expected, 0.01)
            // float32 x_t and ε̂ round-off only: 1e-6 relative.
            XCTAssertEqual(result.diffusionBitsPerDim, expected, accuracy: 1e-6 * expected, "\(variance)")
            XCTAssertTrue(result.exact)
        }
    }

    /// With learned_range the bound uses the model's own variance (improved-diffusion's
    /// p_mean_variance): v = 1 is log σ² = log β, v = −1 is log β̃, v = 0 halfway in log space.
    func testLearnedVarianceUsesTheModelsVariance() throws {
        var settings = SchedulerSettings(schedule: offsetSchedule)
        settings.variance = .learnedRange
        for v: Float in [1, -1, 0] {
            let model = OffsetOracle(data: interior, alphasCumprod: offsetSchedule.alphasCumprod, delta: 0.05, v: v)
            let result = try VariationalBound(settings: settings).evaluate(images: interior, count: 2, model: model, seed: 1)
            let f = (Double(v) + 1) / 2
            let expected = closedFormDiffusion(delta: 0.05) { _, logBeta, logTilde in f * logBeta + (1 - f) * logTilde }
            XCTAssertEqual(result.diffusionBitsPerDim, expected, accuracy: 1e-6 * expected, "v = \(v)")
        }
    }

    /// The strided estimate is unbiased: averaged over many seeds it is the exact bound (the old
    /// "every S-th term × S" was biased low by the large early terms it skipped), every single
    /// estimate lies within a few standard errors, and it costs about K + T/S evaluations.
    func testStridedEstimateIsUnbiasedWithAStandardError() throws {
        let settings = SchedulerSettings(schedule: offsetSchedule)
        let model = OffsetOracle(data: interior, alphasCumprod: offsetSchedule.alphasCumprod, delta: 0.05)
        let bound = VariationalBound(settings: settings)
        let exact = try bound.evaluate(images: interior, count: 2, model: model, seed: 0).diffusionBitsPerDim
        var estimates: [Double] = []
        var errors: [Double] = []
        for seed in 0..<200 as Range<UInt64> {
            let r = try bound.evaluate(images: interior, count: 2, model: model, seed: seed, stride: 10, exactTerms: 5)
            XCTAssertFalse(r.exact)
            XCTAssertEqual(r.evaluatedTerms, 15)   // 5 exact + 2 in each of 5 strata (4 × 20 and 15 timesteps)
            XCTAssertGreaterThan(r.standardError, 0)
            estimates.append(r.diffusionBitsPerDim)
            errors.append(r.standardError)
        }
        let mean = estimates.reduce(0, +) / Double(estimates.count)
        let typicalError = errors.reduce(0, +) / Double(errors.count)
        XCTAssertEqual(mean, exact, accuracy: 4 * typicalError / Double(estimates.count).squareRoot(), "biased: mean \(mean) vs exact \(exact)")
        XCTAssertLessThan(estimates.map { abs($0 - exact) }.max()!, 5 * typicalError)
    }

    /// A model that predicts no noise at all pays a large KL.
    func testAWrongModelPaysForIt() throws {
        struct Zero: NoisePredictor { func predictNoise(_ x: [Float], t: Int) throws -> [Float] { [Float](repeating: 0, count: x.count) } }
        let settings = SchedulerSettings(schedule: NoiseSchedule(kind: .linear, timesteps: 50, betaStart: 1e-3, betaEnd: 0.2))
        let pixels: [Float] = [0.5, -0.5, 0.25, 0]
        let result = try VariationalBound(settings: settings).evaluate(images: pixels, count: 1, model: Zero(), seed: 1)
        XCTAssertGreaterThan(result.diffusionBitsPerDim, 1)
    }

    func testGaussianKL() {
        XCTAssertEqual(gaussianKL(mean1: 0, logVar1: 0, mean2: 0, logVar2: 0), 0)
        XCTAssertEqual(gaussianKL(mean1: 1, logVar1: 0, mean2: 0, logVar2: 0), 0.5, accuracy: 1e-12)
        XCTAssertEqual(gaussianKL(mean1: 0, logVar1: log(4), mean2: 0, logVar2: 0), 0.5 * (-1 - log(4) + 4), accuracy: 1e-12)
    }
}
