import DDPMCore
import DDPMCPU
import DDPMOpenCL
import DDPMParity
import XCTest

/// Every parity case: CPU reference vs OpenCL, forward and backward ops, with guard regions,
/// under every device profile (the CPU ones with float8 and float16 micro-kernels, and the GPU one:
/// its local-memory kernels are proved correct on PoCL, so CI checks them without a GPU).
final class ParityTests: XCTestCase {
    func testEveryOpMatchesTheReferenceUnderEveryProfile() throws {
        _ = try requireOpenCLDevice()  // a skip without OpenCL, a failure under DDPM_REQUIRE_CL=1
        let cpu = CPUBackend()
        for named in DeviceProfile.parityProfiles {
            let cl = try requireOpenCLBackend(named)
            var failures: [String] = []
            for c in ParityCases.all {
                let r = try ParityRunner.run(c, reference: cpu, candidate: cl)
                if !r.passed { failures.append("\(c.details): \(r.problems.joined(separator: "; ")) (max abs \(r.maxAbsError))") }
            }
            XCTAssertEqual(failures, [], "profile \(named.name): \(failures.count) of \(ParityCases.all.count) parity cases failed")
        }
    }

    /// Every blocking the 3×3 convolution search may pick passes the convolution parity cases, with
    /// the weight gradient summed in one chunk of images (the default chunk holds these small
    /// batches whole) and in several.
    func testEveryConv3x3CandidateMatchesTheReference() throws {
        let device = try requireOpenCLDevice()
        let cpu = CPUBackend()
        let cases = ParityCases.all.filter { [.conv2d, .conv2dBackwardInput, .conv2dBackwardWeight].contains($0.op.kind) }
        // The candidates of a 16-wide CPU include the 8-wide ones; any device runs them all.
        for tiles in DeviceProfile.conv3x3Candidates(kind: .cpu, vectorWidth: 16).compactMap({ $0 }) {
            var profile = DeviceProfile.cpu(vectorWidth: tiles.vw)
            profile.conv3x3 = tiles
            let cl = try OpenCLBackend(device: device, profile: profile)
            for chunkPixels in [cl.conv3x3GradientChunkPixels, 256] {
                cl.conv3x3GradientChunkPixels = chunkPixels
                for c in cases {
                    let r = try ParityRunner.run(c, reference: cpu, candidate: cl)
                    XCTAssert(r.passed, "\(tiles), chunks of \(chunkPixels) pixels, \(c.details): \(r.problems)")
                }
            }
        }
    }

    /// Winograd F(4×4, 3×3) passes the convolution cases (forward, input and weight gradient) on the
    /// 8- and 16-wide CPU blockings, with the batch in one chunk and one image per chunk; the cases of
    /// 9×9, 11×35 and 16×16 planes take it (partial tiles and partial groups of tiles along a row
    /// included), the others the direct kernel or im2col.
    func testWinogradMatchesTheReference() throws {
        let device = try requireOpenCLDevice()
        let cpu = CPUBackend()
        let cases = ParityCases.all.filter { [.conv2d, .conv2dBackwardInput, .conv2dBackwardWeight].contains($0.op.kind) }
        for vw in [8, 16] {
            var profile = DeviceProfile.cpu(vectorWidth: vw)
            profile.conv3x3?.winograd = true
            let cl = try OpenCLBackend(device: device, profile: profile)
            cl.winogradGradWeightMinPlane = OpenCLBackend.winogradMinPlane
            cl.winogradMinChannels = 1  // the cases have a few channels
            for chunkFloats in [cl.winogradChunkFloats, 1] {
                cl.winogradChunkFloats = chunkFloats
                cl.setProfiling(true)
                for c in cases {
                    let r = try ParityRunner.run(c, reference: cpu, candidate: cl)
                    XCTAssert(r.passed, "float\(vw) Winograd, chunks of \(chunkFloats) floats, \(c.details): \(r.problems)")
                }
                // forward and input gradient of the three cases, each run on the reference's inputs and with guards
                XCTAssertGreaterThanOrEqual(cl.kernelTimes()["winograd_output"]?.calls ?? 0, 6, "float\(vw): Winograd was not used")
                // and the weight gradient of the same three, which ends in one transform each
                XCTAssertGreaterThanOrEqual(cl.kernelTimes()["winograd_gradient_weights"]?.calls ?? 0, 3,
                                            "float\(vw): the Winograd weight gradient was not used")
                cl.setProfiling(false)
            }
        }
    }

    /// The fused Winograd F(2×2, 3×3) passes the convolution cases on the 8- and 16-wide CPU
    /// blockings (1 band × 8 channels and 2 bands × 6 channels per accumulator block); the cases of
    /// planes at least 15 wide (11×35, 5×16, 4×16, 16×16: partial bands of tiles, odd heights and
    /// widths, rows of fewer tiles than a 16-float vector) take it for the forward pass and the input
    /// gradient, with and without the epilogue, and one of 3 bands with 7 and 4 channels (a last
    /// pair short of a band, partial channel blocks).
    func testWinograd2x2MatchesTheReference() throws {
        let device = try requireOpenCLDevice()
        let cpu = CPUBackend()
        let c = Conv2D(kernel: 3, padding: 1)
        let odd = [ParityCase(.conv2d(c), [(Shape(1, 4, 5, 16), .normal(scale: 1)), (Shape(7, 4, 3, 3), .normal(scale: 1)), (Shape(7), .normal(scale: 1))]),
                   ParityCase(.conv2dBackwardInput(c, height: 5, width: 16), [(Shape(1, 7, 5, 16), .normal(scale: 1)), (Shape(7, 4, 3, 3), .normal(scale: 1))])]
        let cases = ParityCases.all.filter { [.conv2d, .conv2dBackwardInput, .conv2dBackwardWeight].contains($0.op.kind) } + odd
        for vw in [8, 16] {
            var profile = DeviceProfile.cpu(vectorWidth: vw)
            profile.conv3x3?.winograd2x2 = true
            let cl = try OpenCLBackend(device: device, profile: profile)
            cl.setProfiling(true)
            for c in cases {
                let r = try ParityRunner.run(c, reference: cpu, candidate: cl)
                XCTAssert(r.passed, "float\(vw) fused Winograd F(2x2), \(c.details): \(r.problems)")
            }
            // 5 cases × (forward, input gradient) + their epilogue cases, each run at least once
            XCTAssertGreaterThanOrEqual(cl.kernelTimes()["winograd2_forward"]?.calls ?? 0, 14, "float\(vw): F(2x2) was not used")
            cl.setProfiling(false)
        }
    }

    /// im2col + GEMM puts a chunk of images side by side in one GEMM; the convolution cases pass with
    /// every image its own chunk, with chunks of two to six images (the last one partial where the
    /// batch does not divide), and whole, on the 8- and 16-wide CPU profiles and the GPU one.
    func testIm2colChunksOfImagesMatchTheReference() throws {
        let device = try requireOpenCLDevice()
        let cpu = CPUBackend()
        let cases = ParityCases.all.filter { [.conv2d, .conv2dBackwardInput, .conv2dBackwardWeight].contains($0.op.kind) }
        for named in DeviceProfile.parityProfiles {
            for budget in [1, 2000, 5000, 1 << 20] {
                var profile = named.profile
                profile.conv3x3 = nil  // every 3×3 layer through im2col too
                profile.columnFloats = budget
                let cl = try OpenCLBackend(device: device, profile: profile)
                for c in cases {
                    let r = try ParityRunner.run(c, reference: cpu, candidate: cl)
                    XCTAssert(r.passed, "\(named.name), column budget \(budget) floats, \(c.details): \(r.problems)")
                }
            }
        }
    }

    /// im2col's columns padded to whole GEMM panels (GEMM.inPlaceWidth): on both CPU profiles the
    /// forward pass and the input gradient of a 600-column convolution pass, and their GEMMs read B in
    /// place (no B packing at all). The weight gradient's B is colᵀ, which is packed.
    func testIm2colColumnsArePaddedForTheGEMMToReadInPlace() throws {
        let device = try requireOpenCLDevice()
        let cpu = CPUBackend()
        let c = Conv2D(kernel: 3, stride: 2, padding: 1)
        let x = Shape(1, 8, 40, 60), w = Shape(16, 8, 3, 3), dy = Shape(1, 16, 20, 30)
        let cases = [ParityCase(.conv2d(c), [(x, .normal(scale: 1)), (w, .normal(scale: 1)), (Shape(16), .normal(scale: 1))]),
                     ParityCase(.conv2dBackwardInput(c, height: 40, width: 60), [(dy, .normal(scale: 1)), (w, .normal(scale: 1))])]
        for vw in [8, 16] {
            let cl = try OpenCLBackend(device: device, profile: .cpu(vectorWidth: vw))
            for one in cases {
                cl.setProfiling(true)
                let r = try ParityRunner.run(one, reference: cpu, candidate: cl)
                XCTAssert(r.passed, "float\(vw), \(one.details): \(r.problems)")
                let times = cl.kernelTimes()
                XCTAssertGreaterThan(times.filter { $0.key.hasSuffix("gemm_micro") }.count, 0, "float\(vw), \(one.details): no GEMM")
                XCTAssertEqual(times.keys.filter { $0.hasSuffix("gemm_pack_b") }, [], "float\(vw), \(one.details): B was packed")
                cl.setProfiling(false)
            }
        }
    }

    /// The search skips a first layer of 3 input channels however large it is, and small layers.
    func testConv3x3SearchWaitsForARepresentativeLayer() {
        XCTAssertFalse(OpenCLBackend.isConv3x3TuningLayer(inputChannels: 3, flops: 1.13e8))  // cifar10's conv_in at batch 16
        XCTAssertFalse(OpenCLBackend.isConv3x3TuningLayer(inputChannels: 128, flops: 1e7))
        XCTAssertTrue(OpenCLBackend.isConv3x3TuningLayer(inputChannels: 128, flops: 4.8e9))
    }

    /// The 3×3 search runs once, on the first large layer, picks one of its candidates, and that
    /// layer's own output is still right; the layer's plan is made once, after it, with the winner's
    /// blocking (not under each blocking tried).
    func testConv3x3TunerChoosesOnceAndKeepsTheOutputRight() throws {
        let device = try requireOpenCLDevice()
        let cl = try OpenCLBackend(device: device, profile: .cpu(vectorWidth: 16))
        let candidates: [Conv3x3Tiles?] = [nil, Conv3x3Tiles(vw: 8, rows: 3, cob: 3, gradCob: 1)]
        let tuner = Conv3x3Tuner(candidates: candidates)
        var reported = 0
        tuner.onChoice = { _ in reported += 1 }
        cl.setConv3x3Tuner(tuner)
        let layerTuner = Conv3x3LayerTuner()
        var planned: [String] = []
        layerTuner.onChoice = { key, _ in planned.append(key) }
        cl.setConv3x3LayerTuner(layerTuner)
        let layer = ParityCase(.conv2d(Conv2D(kernel: 3, padding: 1)), [(Shape(4, 32, 32, 32), .normal(scale: 1)),
                                                                        (Shape(32, 32, 3, 3), .normal(scale: 0.1)), (Shape(32), .normal(scale: 1))])
        for _ in 0..<2 {
            let r = try ParityRunner.run(layer, reference: CPUBackend(), candidate: cl)
            XCTAssert(r.passed, "\(r.problems)")
        }
        XCTAssertEqual(reported, 1)
        let search = try XCTUnwrap(tuner.searches[.narrower])
        XCTAssertEqual(search.seconds.count, 3, "the starting blocking and both candidates: \(search.seconds)")
        XCTAssert(([DeviceProfile.cpu(vectorWidth: 16).conv3x3] + candidates).contains(search.winner))
        XCTAssertEqual(cl.profile.conv3x3, search.winner)
        let expected = search.winner.map { [Conv3x3LayerPlan.key(channels: (32, 32), h: 32, width: 32, tiles: $0)] } ?? []
        XCTAssertEqual(planned, expected, "im2col (nil) makes no plans; a blocking makes one, with itself")
    }

    /// A search on a layer too small for Winograd skips its candidates and waits; the first layer of
    /// 128 channels searches again with them, and both layers' outputs are right.
    func testConv3x3TunerWaitsForALayerWinogradAppliesTo() throws {
        let device = try requireOpenCLDevice()
        let cl = try OpenCLBackend(device: device, profile: .cpu(vectorWidth: 16))
        let direct = Conv3x3Tiles(vw: 16, rows: 4, cob: 4, gradCob: 2, gradRows: true)
        var winograd = direct
        winograd.winograd = true
        let tuner = Conv3x3Tuner(candidates: [direct, winograd])
        var searches: [Conv3x3Tuner.Search] = []
        tuner.onChoice = { searches.append($0) }
        cl.setConv3x3Tuner(tuner)
        func layer(channels: Int, size: Int, batch: Int) -> ParityCase {
            ParityCase(.conv2d(Conv2D(kernel: 3, padding: 1)), [(Shape(batch, channels, size, size), .normal(scale: 1)),
                                                                (Shape(channels, channels, 3, 3), .normal(scale: 0.05)), (Shape(channels), .normal(scale: 1))])
        }
        let small = try ParityRunner.run(layer(channels: 32, size: 32, batch: 4), reference: CPUBackend(), candidate: cl)
        XCTAssert(small.passed, "\(small.problems)")
        XCTAssertEqual(searches.count, 1)
        XCTAssertNil(searches.first?.seconds[Conv3x3Tuner.label(winograd)], "Winograd timed on 32 channels")
        XCTAssert(tuner.pending(.winograd) && !tuner.pending(.narrower))
        let large = try ParityRunner.run(layer(channels: 128, size: 16, batch: 1), reference: CPUBackend(), candidate: cl)
        XCTAssert(large.passed, "\(large.problems)")
        XCTAssertEqual(searches.count, 2)
        XCTAssertNotNil(searches.last?.seconds[Conv3x3Tuner.label(winograd)], "Winograd not timed on 128 channels")
        XCTAssertFalse(tuner.pending(.winograd))
        XCTAssertEqual(searches.map(\.layers), [.narrower, .winograd])
        XCTAssertEqual(cl.profile.conv3x3, tuner.choice, "the backend runs the two searches' choice")
        let again = try ParityRunner.run(layer(channels: 32, size: 32, batch: 4), reference: CPUBackend(), candidate: cl)
        XCTAssert(again.passed, "\(again.problems)")
        XCTAssertEqual(searches.count, 2, "each class of layers is searched once")
    }

    /// A layer's plan routes each pass to its method whatever the profile's flags (F(4×4) on 16
    /// channels, far under its flag's 128; the weight gradient through F(4×4) on an 8×8 plane), and
    /// every combination matches the reference, forward, input gradient and weight gradient.
    func testConv3x3LayerPlansRunEachPassTheirWayAndMatchTheReference() throws {
        let device = try requireOpenCLDevice()
        let cpu = CPUBackend()
        let c = Conv2D(kernel: 3, padding: 1)
        let kernels: [Conv3x3LayerPlan.Method: (data: String, weightGradient: String?)] = [
            .winograd4: ("winograd_output", "winograd_gradient_weights"), .winograd2x2: ("winograd2_forward", nil),
            .direct: ("conv3x3_direct", "conv3x3_grad_weight"), .im2col: ("im2col", "im2col")]
        for (size, ci, co) in [(16, 16, 24), (8, 24, 16)] {
            let x = Shape(2, ci, size, size), w = Shape(co, ci, 3, 3), dy = Shape(2, co, size, size)
            let cases = [ParityCase(.conv2d(c), [(x, .normal(scale: 1)), (w, .normal(scale: 0.2)), (Shape(co), .normal(scale: 1))]),
                         ParityCase(.conv2dBackwardInput(c, height: size, width: size), [(dy, .normal(scale: 1)), (w, .normal(scale: 0.2))]),
                         ParityCase(.conv2dBackwardWeight(c), [(dy, .normal(scale: 1)), (x, .normal(scale: 1))])]
            for data in Conv3x3LayerPlan.Method.allCases where data != .winograd2x2 || size >= 15 {
                for weightGradient in [Conv3x3LayerPlan.Method.winograd4, .direct, .im2col] {
                    var profile = DeviceProfile.cpu(vectorWidth: 8)
                    let tiles = try XCTUnwrap(profile.conv3x3)
                    XCTAssertFalse(tiles.winograd || tiles.winograd2x2, "the flags alone would not take these paths")
                    profile.conv3x3Layers = [Conv3x3LayerPlan.key(channels: (ci, co), h: size, width: size, tiles: tiles):
                                                Conv3x3LayerPlan(data: data, weightGradient: weightGradient)]
                    let cl = try OpenCLBackend(device: device, profile: profile)
                    cl.setProfiling(true)
                    for one in cases {
                        let r = try ParityRunner.run(one, reference: cpu, candidate: cl)
                        XCTAssert(r.passed, "\(ci)->\(co) at \(size)x\(size), plan \(data)/\(weightGradient), \(one.details): \(r.problems)")
                    }
                    let times = cl.kernelTimes()
                    let ran = { (name: String) in times.keys.contains { $0 == name || $0.hasPrefix(name + "_") } }
                    XCTAssert(ran(kernels[data]!.data), "\(size)x\(size): data \(data) did not run \(kernels[data]!.data): \(times.keys.sorted())")
                    XCTAssert(ran(kernels[weightGradient]!.weightGradient!),
                              "\(size)x\(size): weight gradient \(weightGradient) did not run: \(times.keys.sorted())")
                    if data != .im2col && weightGradient != .im2col { XCTAssertFalse(ran("im2col"), "\(times.keys.sorted())") }
                    cl.setProfiling(false)
                }
            }
        }
    }

    /// Each large 3×3 layer is timed once per blocking, with every method that can run it; the
    /// plan is kept (and reported) and the layer's own output is still right.
    func testConv3x3LayerTunerPlansEachLayerOnce() throws {
        let device = try requireOpenCLDevice()
        let cl = try OpenCLBackend(device: device, profile: .cpu(vectorWidth: 8))
        let tuner = Conv3x3LayerTuner()
        var reported: [String] = []
        tuner.onChoice = { key, _ in reported.append(key) }
        cl.setConv3x3LayerTuner(tuner)
        let layer = ParityCase(.conv2d(Conv2D(kernel: 3, padding: 1)), [(Shape(4, 32, 32, 32), .normal(scale: 1)),
                                                                        (Shape(32, 32, 3, 3), .normal(scale: 0.1)), (Shape(32), .normal(scale: 1))])
        for _ in 0..<2 {
            let r = try ParityRunner.run(layer, reference: CPUBackend(), candidate: cl)
            XCTAssert(r.passed, "\(r.problems)")
        }
        let key = Conv3x3LayerPlan.key(channels: (32, 32), h: 32, width: 32, tiles: try XCTUnwrap(cl.profile.conv3x3))
        XCTAssertEqual(reported, [key])
        let plan = try XCTUnwrap(tuner.plans[key])
        XCTAssertEqual(plan.seconds.keys.sorted(), ["data direct", "data im2col", "data winograd2x2", "data winograd4",
                                                    "weight gradient direct", "weight gradient im2col", "weight gradient winograd4"])
        XCTAssertEqual(plan.seconds.filter { $0.key.hasPrefix("data") }.min { $0.value < $1.value }?.key, "data " + plan.data.rawValue)
        XCTAssertEqual(cl.profile.conv3x3Layers, [key: plan])
    }

    /// With a search on each class of layers, the narrower layers' winner decides all but F(4×4), which
    /// the Winograd layers' search decides (a 128-channel search turning the fused flag off must not
    /// take it from 32-channel layers where it won); with one search, its winner stands.
    func testConv3x3SearchesOnBothClassesOfLayersCombine() {
        let direct = Conv3x3Tiles(vw: 8, rows: 3, cob: 3, gradCob: 1, gradRows: true)
        var fused = direct, f4 = direct, both = direct
        fused.winograd2x2 = true
        f4.winograd = true
        (both.winograd, both.winograd2x2) = (true, true)
        func search(_ winner: Conv3x3Tiles?, _ layers: Conv3x3Tuner.Layers) -> Conv3x3Tuner.Search {
            Conv3x3Tuner.Search(call: "test", seconds: [:], winner: winner, speedup: 1, layers: layers)
        }
        XCTAssertNil(Conv3x3Tuner.combined([:]) as Conv3x3Tiles??)
        XCTAssertEqual(Conv3x3Tuner.combined([.winograd: search(f4, .winograd)]), .some(f4))
        XCTAssertEqual(Conv3x3Tuner.combined([.narrower: search(fused, .narrower)]), .some(fused))
        XCTAssertEqual(Conv3x3Tuner.combined([.winograd: search(f4, .winograd), .narrower: search(fused, .narrower)]), .some(both))
        XCTAssertEqual(Conv3x3Tuner.combined([.winograd: search(both, .winograd), .narrower: search(direct, .narrower)]), .some(f4))
        XCTAssertEqual(Conv3x3Tuner.combined([.winograd: search(nil, .winograd), .narrower: search(fused, .narrower)]), .some(fused))
        XCTAssertEqual(Conv3x3Tuner.combined([.winograd: search(both, .winograd), .narrower: search(nil, .narrower)]), .some(f4),
                       "im2col won the narrower layers: F(4x4) kept, without the fused flag")
        XCTAssertEqual(Conv3x3Tuner.combined([.winograd: search(nil, .winograd), .narrower: search(nil, .narrower)]), .some(nil))
    }

    /// A winner with F(4×4) takes the fused F(2×2) flag exactly when the fastest fused candidate
    /// (without F(4×4)) beat the fastest plain one on the search's layer; other winners keep theirs.
    func testConv3x3SearchSetsTheFusedFlagOfAWinogradWinner() {
        let direct = Conv3x3Tiles(vw: 16, rows: 4, cob: 4, gradCob: 2, gradRows: true)
        var winograd = direct, fused = direct, both = direct
        winograd.winograd = true
        fused.winograd2x2 = true
        (both.winograd, both.winograd2x2) = (true, true)
        let faster: [(Conv3x3Tiles?, Double)] = [(winograd, 1.0), (fused, 2.0), (direct, 3.0), (nil, 2.5)]
        XCTAssertEqual(Conv3x3Tuner.settingFusedFlag(of: winograd, times: faster), both)
        let slower: [(Conv3x3Tiles?, Double)] = [(both, 1.0), (fused, 2.6), (direct, 3.0), (nil, 2.5)]
        XCTAssertEqual(Conv3x3Tuner.settingFusedFlag(of: both, times: slower), winograd, "im2col (nil) counts as a plain candidate")
        XCTAssertEqual(Conv3x3Tuner.settingFusedFlag(of: fused, times: slower), fused)
        XCTAssertEqual(Conv3x3Tuner.settingFusedFlag(of: direct, times: faster), direct)
        XCTAssertNil(Conv3x3Tuner.settingFusedFlag(of: nil, times: faster))
    }

    /// Every kernel file is exercised by parity cases of the ops it implements (gemm.cl has GEMMTests,
    /// philox.cl the bit-identity test below; fma_peak.cl implements no op: DevicePeakTests checks its
    /// sums). A new .cl file must be added here with its ops.
    func testEveryKernelFileHasParityCases() {
        let families: [String: [OpKind]] = [
            "im2col.cl": [.conv2d, .conv2dBackwardInput, .conv2dBackwardWeight],
            "conv3x3.cl": [.conv2d, .conv2dBackwardInput, .conv2dBackwardWeight],
            "winograd.cl": [.conv2d, .conv2dBackwardInput],
            "winograd2x2.cl": [.conv2d, .conv2dBackwardInput],
            "elementwise.cl": [.add, .mul, .scale, .addChannels, .sumToChannels, .concatChannels, .sliceChannels,
                               .sliceChannelsBackward, .upsampleNearest2x, .upsampleNearest2xBackward, .reshape, .linear],
            "group_norm.cl": [.groupNorm, .groupNormBackward],
            "silu.cl": [.silu, .siluBackward],
            "softmax.cl": [.softmax, .softmaxBackward],
            "attention.cl": [.attention, .attentionBackward],
            "diffusion.cl": [.timestepEmbedding, .dropout, .mse, .mseBackward, .qSample, .samplerStep, .solverUpdate, .dynamicThreshold],
            "optimizer.cl": [.gradNorm, .adamStep, .emaUpdate, .accumulate],
            "gemm.cl": [.matmul, .linear, .conv2d],
            "philox.cl": [.qSample, .dropout, .samplerStep, .solverUpdate],
            "prelude.cl": [.add, .concatChannels, .groupNorm, .softmax, .conv2d],
            "classifier.cl": [.globalAveragePool, .globalAveragePoolBackward, .crossEntropy, .crossEntropyBackward],
            "embedding.cl": [.embedding, .embeddingBackward],
            "vlb_term.cl": [.vlbTerm, .vlbTermBackward],
            "pooling.cl": [.relu, .maxPool2d, .averagePool2d, .resizeBilinear],
            "fma_peak.cl": [],
        ]
        XCTAssertEqual(Set(KernelSources.embeddedFileNames), Set(families.keys), "kernel files without a parity family")
        let covered = Set(ParityCases.all.map(\.op.kind))
        for (file, ops) in families {
            for op in ops { XCTAssert(covered.contains(op), "\(file): \(op) has no parity case") }
        }
    }

    /// The Philox normals of philox.cl are bit-identical to the Swift ones.
    func testPhiloxNormalsAreBitIdentical() throws {
        let cl = try requireOpenCLBackend()
        let count = 10_001
        let out = try cl.philoxNormals(count: count, seed: 0xDEAD_BEEF_1234, image: 5, step: 17, stream: 3)
        let expected = (0..<count).map { Philox.normal(seed: 0xDEAD_BEEF_1234, index: $0, image: 5, step: 17, stream: 3) }
        let mismatches = zip(out, expected).filter { $0.0.bitPattern != $0.1.bitPattern }.count
        XCTAssertEqual(mismatches, 0, "first: \(out.prefix(4)) vs \(expected.prefix(4))")
    }

    /// The parity check itself fails when a backend is wrong (the suite can fail).
    func testParityCatchesAWrongKernel() throws {
        let cpu = CPUBackend()
        let c = ParityCase(.silu, [(Shape(3, 5), .normal(scale: 1))])
        let r = try ParityRunner.run(c, reference: cpu, candidate: WrongSiluBackend())
        XCTAssertFalse(r.passed)
        let overrun = try ParityRunner.run(c, reference: cpu, candidate: OverrunBackend())
        XCTAssert(overrun.problems.contains { $0.contains("past its end") }, "\(overrun.problems)")
    }
}

/// silu computed as x·sigmoid(2x): close, but wrong.
private final class WrongSiluBackend: ForwardingBackend {
    override func run(_ op: Op, inputs: [TensorRef], outputs: [TensorRef], step: UInt32) throws {
        let x = try read(inputs[0].buffer, count: inputs[0].shape.count)
        try write(x.map { $0 / (1 + exp(-2 * $0)) }, to: outputs[0].buffer)
    }
}

/// Writes one element past the end of its output.
private final class OverrunBackend: ForwardingBackend {
    override func run(_ op: Op, inputs: [TensorRef], outputs: [TensorRef], step: UInt32) throws {
        try reference.run(op, inputs: inputs, outputs: outputs, step: step)
        var y = try read(outputs[0].buffer, count: outputs[0].shape.count + 1)
        y[y.count - 1] = 0
        try write(y, to: outputs[0].buffer)
    }
}
