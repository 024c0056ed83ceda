import DDPMOpenCL
import Foundation
import XCTest

/// Cached profiles written by older builds still load, and a 3×3 search that did not time a
/// candidate of this build is recognised (so it runs again).
final class ProfileCacheTests: XCTestCase {
    func testTilesCachedBeforeTheRowWeightGradientDecodeAsChannelsLast() throws {
        let old = #"{"vw": 16, "rows": 4, "cob": 4, "gradCob": 3}"#
        let tiles = try JSONDecoder().decode(Conv3x3Tiles.self, from: Data(old.utf8))
        XCTAssertEqual(tiles, Conv3x3Tiles(vw: 16, rows: 4, cob: 4, gradCob: 3, gradRows: false))
        let rows = Conv3x3Tiles(vw: 8, rows: 3, cob: 3, gradCob: 1, gradRows: true)
        XCTAssertEqual(try JSONDecoder().decode(Conv3x3Tiles.self, from: JSONEncoder().encode(rows)), rows)
        let vectors = Conv3x3Tiles(vw: 16, rows: 4, cob: 4, gradCob: 1, gradCov: 2)
        XCTAssertEqual(try JSONDecoder().decode(Conv3x3Tiles.self, from: JSONEncoder().encode(vectors)), vectors)
        XCTAssertEqual(tiles.gradCov, 1, "older profiles had one output-channel vector per work-item")
    }

    func testConv3x3TilesParseTheirShortForm() {
        XCTAssertEqual(Conv3x3Tiles(parsing: "16x4x4x1x2"), Conv3x3Tiles(vw: 16, rows: 4, cob: 4, gradCob: 1, gradCov: 2))
        XCTAssertEqual(Conv3x3Tiles(parsing: "16x4x4x3R"), Conv3x3Tiles(vw: 16, rows: 4, cob: 4, gradCob: 3, gradRows: true))
        XCTAssertEqual(Conv3x3Tiles(parsing: "8x3x3"), Conv3x3Tiles(vw: 8, rows: 3, cob: 3))
        XCTAssertEqual(Conv3x3Tiles(parsing: "16x4x4x2rw"), Conv3x3Tiles(vw: 16, rows: 4, cob: 4, gradCob: 2, gradRows: true, winograd: true))
        XCTAssertEqual(Conv3x3Tiles(parsing: "8x3x3x1W"), Conv3x3Tiles(vw: 8, rows: 3, cob: 3, gradCob: 1, winograd: true))
        XCTAssertEqual(Conv3x3Tiles(parsing: "16x4x4x2rwf"),
                       Conv3x3Tiles(vw: 16, rows: 4, cob: 4, gradCob: 2, gradRows: true, winograd: true, winograd2x2: true))
        XCTAssertEqual(Conv3x3Tiles(parsing: "8x3x3x1F"), Conv3x3Tiles(vw: 8, rows: 3, cob: 3, gradCob: 1, winograd2x2: true))
        for bad in ["16x4x4x3x2", "12x4x4", "16x4", "16xx4x4", "16x4x4x1x2x1", "r", "16x4x4x2wr", "16x4x4x2fw", "w", "f"] {
            XCTAssertNil(Conv3x3Tiles(parsing: bad), bad)
        }
    }

    func testASearchWithoutTheNewCandidatesIsNotComplete() {
        let candidates = DeviceProfile.conv3x3Candidates(kind: .cpu, vectorWidth: 16)
        XCTAssert(candidates.contains { $0?.gradRows == true }, "the search must try the row-vectorised weight gradient")
        let all = Dictionary(uniqueKeysWithValues: candidates.map { (Conv3x3Tuner.label($0), 0.01) })
        let complete = Conv3x3Tuner.Search(call: "test", seconds: all, winner: nil, speedup: 1, layers: .winograd)
        XCTAssert(complete.timed(candidates))
        let older = Conv3x3Tuner.Search(call: "test", seconds: all.filter { !$0.key.contains("along rows") }, winner: nil, speedup: 1, layers: .winograd)
        XCTAssertFalse(older.timed(candidates))
        XCTAssert(candidates.contains { $0?.winograd == true }, "the search must try Winograd")
        let beforeWinograd = Conv3x3Tuner.Search(call: "test", seconds: all.filter { !$0.key.contains("Winograd") }, winner: nil, speedup: 1, layers: .winograd)
        XCTAssertFalse(beforeWinograd.timed(candidates), "a profile cached before Winograd existed is searched again")
        let narrower = Conv3x3Tuner.Search(call: "test", seconds: all.filter { !$0.key.hasPrefix("Winograd F(4x4") },
                                            winner: nil, speedup: 1, layers: .narrower)
        XCTAssert(narrower.timed(candidates), "F(4x4) is not timed on layers it does not apply to")
        let tuner = Conv3x3Tuner(candidates: candidates, cached: [older, narrower])
        XCTAssert(tuner.pending(.winograd) && !tuner.pending(.narrower), "the incomplete cached search runs again")
    }

    /// Each class of layers' search and the layers' plans survive a round trip through the cache file; a file from before
    /// the classes (one `conv3x3` search) still gives its GEMM choices and has its 3×3 search redone.
    func testTheCacheKeepsOneConv3x3SearchPerClassOfLayers() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ddpm-cl-cache-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let device = try requireOpenCLDevice()
        let cache = ProfileCache(device: device, directory: directory)
        let fused = Conv3x3Tiles(vw: 8, rows: 3, cob: 3, gradCob: 1, gradRows: true, winograd2x2: true)
        let searches = [Conv3x3Tuner.Search(call: "a", seconds: ["x": 1], winner: fused, speedup: 1.4, layers: .narrower),
                        Conv3x3Tuner.Search(call: "b", seconds: ["y": 2], winner: nil, speedup: 1, layers: .winograd)]
        var saved = ProfileCache.Entry(device: device.name, driver: device.driverVersion, conv3x3Searches: searches)
        let plan = Conv3x3LayerPlan(data: .winograd2x2, weightGradient: .winograd4, seconds: ["data winograd2x2": 0.01])
        saved.conv3x3Layers = ["32->32 at 32x32, 8x3x3x1x1r": plan]
        try cache.save(saved)
        var profile = DeviceProfile.cpu(vectorWidth: 8)
        cache.load()?.apply(to: &profile)
        XCTAssertEqual(profile.conv3x3Layers, ["32->32 at 32x32, 8x3x3x1x1r": plan])
        let loaded = try XCTUnwrap(cache.load()?.conv3x3Searches)
        XCTAssertEqual(loaded.map(\.layers), [.narrower, .winograd])
        XCTAssertEqual(loaded.map(\.winner), [fused, nil])
        let old = #"{"device": "d", "driver": "v", "gemm": {"general": {"variant": "cpu", "mr": 6, "nr": 16, "vw": 8, "tm": 64, "tn": 64, "tk": 16}}, "#
            + #""searches": [], "conv3x3": {"call": "c", "seconds": {}, "winner": null, "speedup": 1}}"#
        try Data(old.utf8).write(to: cache.file)
        let entry = try XCTUnwrap(cache.load(), "an older file loads")
        XCTAssertEqual(entry.gemm.keys.sorted(), ["general"])
        XCTAssertNil(entry.conv3x3Searches)
    }
}
