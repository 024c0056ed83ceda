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
