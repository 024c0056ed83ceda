import DDPM
import DDPMCore
import DDPMCPU
import DDPMOpenCL
import XCTest

/// Sampling through Winograd with the sampler's weights kept transformed and packed across model
/// evaluations (Backend.markConstant) draws the very images that transforming them at every
/// evaluation draws, and the CPU reference's.
final class ConstantWeightsSamplingTests: XCTestCase {
    func testCachedWinogradWeightsSampleTheSameImages() throws {
        guard let device = try sharedOpenCL()?.device else { throw XCTSkip("no OpenCL device") }
        let config = ModelPreset.tiny.config  // its 8×8 level goes through Winograd once the threshold is 1
        let net = UNet(config: config, batch: 1)
        var weights = Weights(graph: net.graph)
        weights.initialize(seed: 4)
        let settings = SchedulerSettings(schedule: NoiseSchedule(kind: .linear, timesteps: 100))
        var profile = DeviceProfile.cpu(vectorWidth: 16)
        profile.conv3x3?.winograd = true
        var images: [[Float]] = []
        for budget in [1 << 30, 0] {
            let cl = try OpenCLBackend(device: device, profile: profile)
            cl.winogradMinChannels = 1
            cl.constantCacheBudgetBytes = budget
            cl.setProfiling(true)
            let sampler = try Sampler(backend: cl, config: config, weights: weights, settings: settings, batch: 2)
            images.append(try sampler.sample(count: 2, seed: 11, sampler: .ddim(eta: 0), steps: 4))
            let transforms = cl.kernelTimes()["winograd_weights"]?.calls ?? 0
            if budget > 0 {
                XCTAssertGreaterThan(cl.constantCacheBytes, 0, "nothing was kept")
                XCTAssertGreaterThan(transforms, 0)
                XCTAssertLessThanOrEqual(transforms * 4, (cl.kernelTimes()["winograd_output"]?.calls ?? 0), "weights transformed at every evaluation")
            } else {
                XCTAssertEqual(cl.constantCacheBytes, 0)
            }
        }
        XCTAssertEqual(images[0], images[1], "kept and fresh transformed weights gave other images")
        let reference = try Sampler(backend: CPUBackend(), config: config, weights: weights, settings: settings, batch: 2)
            .sample(count: 2, seed: 11, sampler: .ddim(eta: 0), steps: 4)
        XCTAssertLessThan(nmse(images[0], reference), 1e-8, "Winograd sampling disagrees with the reference")
    }
}
