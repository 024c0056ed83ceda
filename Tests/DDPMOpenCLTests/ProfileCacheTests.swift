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
    }

    func testASearchWithoutTheNewCandidatesIsNotComplete() {
        let candidates = DeviceProfile.conv3x3Candidates(kind: .cpu, vectorWidth: 16)
        XCTAssert(candidates.contains { $0?.gradRows == true }, "the search must try the row-vectorised weight gradient")
        let all = Dictionary(uniqueKeysWithValues: candidates.map { (Conv3x3Tuner.label($0), 0.01) })
        let complete = Conv3x3Tuner.Search(call: "test", seconds: all, winner: nil, speedup: 1)
        XCTAssert(complete.timed(candidates))
        let older = Conv3x3Tuner.Search(call: "test", seconds: all.filter { !$0.key.contains("along rows") }, winner: nil, speedup: 1)
        XCTAssertFalse(older.timed(candidates))
    }
}
