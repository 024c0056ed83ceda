import DDPM
import Foundation
import XCTest

/// FID and KID against pytorch-fid's and torch-fidelity's own formulas (scripts/make-fid-fixtures).
final class FrechetDistanceTests: XCTestCase {
    struct Expected: Decodable {
        struct Case: Decodable { let fid: Double; let mmd2: Double; let rows_a: Int; let rows_b: Int; let dimension: Int }
        let cases: [String: Case]
    }

    func features(_ url: URL) throws -> FeatureMatrix {
        let array = try readNPY(url)
        XCTAssertEqual(array.shape.count, 2)
        return FeatureMatrix(rows: array.shape[0], dimension: array.shape[1], floats: array.values)
    }

    func loadCases() throws -> [(String, Expected.Case, FeatureMatrix, FeatureMatrix)] {
        let root = try fixture("fid")
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: root.appendingPathComponent("expected.json")))
        XCTAssertEqual(expected.cases.count, 3)
        return try expected.cases.keys.sorted().map { name in
            let dir = root.appendingPathComponent(name)
            return (name, expected.cases[name]!, try features(dir.appendingPathComponent("a.npy")),
                    try features(dir.appendingPathComponent("b.npy")))
        }
    }

    func testFrechetDistanceMatchesPytorchFID() throws {
        for (name, expected, a, b) in try loadCases() {
            XCTAssertEqual(a.rows, expected.rows_a)
            XCTAssertEqual(b.dimension, expected.dimension)
            let fid = try FrechetDistance.between(GaussianStatistics(a), GaussianStatistics(b))
            let relative = abs(fid - expected.fid) / abs(expected.fid)
            print("FID \(name): ours \(fid), pytorch-fid \(expected.fid), relative difference \(relative)")
            XCTAssertLessThanOrEqual(relative, 1e-6, "\(name): ours \(fid), pytorch-fid \(expected.fid)")
            // Symmetric in its arguments.
            let back = try FrechetDistance.between(GaussianStatistics(b), GaussianStatistics(a))
            XCTAssertLessThanOrEqual(abs(back - fid) / fid, 1e-9, name)
        }
    }

    func testUnbiasedMMDMatchesTorchFidelity() throws {
        for (name, expected, a, b) in try loadCases() {
            let m = min(a.rows, b.rows)
            let x = a.selecting(Array(0..<m)), y = b.selecting(Array(0..<m))
            let mmd = KernelInceptionDistance.unbiasedMMDSquared(x, y)
            print("MMD² \(name): ours \(mmd), torch-fidelity \(expected.mmd2), relative difference \(abs(mmd - expected.mmd2) / abs(expected.mmd2))")
            XCTAssertLessThanOrEqual(abs(mmd - expected.mmd2) / abs(expected.mmd2), 1e-6,
                                     "\(name): ours \(mmd), torch-fidelity \(expected.mmd2)")
            // Subsets as large as both sets are the whole sets in another order: same value every time.
            let kid = try KernelInceptionDistance.compute(x, y, subsets: 3, subsetSize: 10_000, seed: 4)
            XCTAssertEqual(kid.subsetSize, m)
            XCTAssertLessThanOrEqual(abs(kid.mean - expected.mmd2) / abs(expected.mmd2), 1e-6, name)
            XCTAssertLessThanOrEqual(kid.standardDeviation, 1e-9 * abs(expected.mmd2) + 1e-12, name)
        }
    }

    func testIdenticalSetsHaveZeroDistance() throws {
        let (_, _, a, _) = try loadCases()[0]
        let s = try GaussianStatistics(a)
        XCTAssertEqual(try FrechetDistance.between(s, s), 0, accuracy: 1e-9)
    }

    func testKIDSubsetsVaryWithTheSeedAndSeparateDistributions() throws {
        let cases = try loadCases()
        let shifted = cases.first { $0.0 == "shifted" }!, same = cases.first { $0.0 == "same" }!
        let k1 = try KernelInceptionDistance.compute(shifted.2, shifted.3, subsets: 10, subsetSize: 50, seed: 1)
        let k2 = try KernelInceptionDistance.compute(shifted.2, shifted.3, subsets: 10, subsetSize: 50, seed: 2)
        XCTAssertNotEqual(k1.mean, k2.mean)
        XCTAssertGreaterThan(k1.standardDeviation, 0)
        let floor = try KernelInceptionDistance.compute(same.2, same.3, subsets: 10, subsetSize: 50, seed: 1)
        XCTAssertGreaterThan(k1.mean, 10 * abs(floor.mean))
    }

    func testBadInputIsAnErrorNotACrash() throws {
        let a = FeatureMatrix(rows: 3, dimension: 2, values: [1, 2, 3, 4, 5, .nan])
        XCTAssertThrowsError(try FrechetDistance.between(GaussianStatistics(a), GaussianStatistics(a)))
        let one = FeatureMatrix(rows: 1, dimension: 2, values: [1, 2])
        XCTAssertThrowsError(try GaussianStatistics(one))
        let other = FeatureMatrix(rows: 3, dimension: 3, values: Array(repeating: 1, count: 9))
        XCTAssertThrowsError(try KernelInceptionDistance.compute(a, other))
        XCTAssertThrowsError(try FrechetDistance.between(GaussianStatistics(other),
                                                         GaussianStatistics(FeatureMatrix(rows: 3, dimension: 2, values: [1, 2, 3, 4, 5, 7]))))
    }
}
