import DDPMCore
import XCTest

final class PhiloxTests: XCTestCase {
    /// Known-answer vectors of Random123's philox4x32-10 (kat_vectors).
    func testKnownAnswers() {
        func check(_ c: (UInt32, UInt32, UInt32, UInt32), _ k: (UInt32, UInt32), _ expected: [UInt32]) {
            let r = Philox.block(seed: UInt64(k.0) | UInt64(k.1) << 32, counter: c)
            XCTAssertEqual([r.0, r.1, r.2, r.3], expected)
        }
        check((0, 0, 0, 0), (0, 0), [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8])
        check((0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff), (0xffff_ffff, 0xffff_ffff),
              [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd])
        check((0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344), (0xa409_3822, 0x299f_31d0),
              [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1])
    }

    /// The hand-written log/sqrt/sincos stay close to libm, and the normals look standard normal.
    func testNormalTransform() {
        var worstLog: Float = 0
        for i in 1..<10_000 {
            let u = Float(i) / 10_000
            worstLog = max(worstLog, abs(Philox.logPositive(u) - logf(u)) / max(1, abs(logf(u))))
        }
        XCTAssertLessThan(worstLog, 1e-6)
        var sum = 0.0, squares = 0.0, fourth = 0.0
        let count = 200_000
        for i in 0..<count {
            let z = Double(Philox.normal(seed: 99, index: i, image: 3, step: 4, stream: 1))
            sum += z; squares += z * z; fourth += z * z * z * z
        }
        let mean = sum / Double(count), variance = squares / Double(count) - mean * mean
        XCTAssertEqual(mean, 0, accuracy: 0.01)
        XCTAssertEqual(variance, 1, accuracy: 0.015)
        XCTAssertEqual(fourth / Double(count), 3, accuracy: 0.08)  // kurtosis of a normal
    }

    func testStreamsDiffer() {
        let a = Philox.normal(seed: 1, index: 0, image: 0, step: 0, stream: 1)
        let b = Philox.normal(seed: 1, index: 0, image: 0, step: 0, stream: 2)
        let c = Philox.normal(seed: 2, index: 0, image: 0, step: 0, stream: 1)
        XCTAssertNotEqual(a, b)
        XCTAssertNotEqual(a, c)
    }
}
