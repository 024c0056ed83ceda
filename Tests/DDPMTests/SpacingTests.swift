import DDPM
import Foundation
import XCTest

/// Every timestep spacing against numpy's values (diffusers' set_timesteps, 1000 training steps)
/// for every step count 1…1000 (Fixtures/spacing, written by scripts/make-fixtures).
final class SpacingTests: XCTestCase {
    /// numpy's lists for n = 1…1000, decoded from the fixture's lengths and deltas.
    func numpyLists(_ spacing: String) throws -> [[Int]] {
        let dir = try fixture("spacing")
        let lengths = try readNPY(dir.appendingPathComponent("\(spacing)-lengths.npy")).values.map { Int($0) }
        let deltas = try readNPY(dir.appendingPathComponent("\(spacing)-deltas.npy.gz")).values.map { Int($0) }
        XCTAssertEqual(lengths.count, 1000)
        var lists: [[Int]] = [], at = 0
        for length in lengths {
            var previous = 1000, list: [Int] = []
            for d in deltas[at..<at + length] { previous += d; list.append(previous) }
            lists.append(list)
            at += length
        }
        XCTAssertEqual(at, deltas.count, "\(spacing): the fixture has values left over")
        return lists
    }

    func testEverySpacingMatchesNumpyForEveryStepCount() throws {
        for spacing in SchedulerSettings.Spacing.allCases {
            var settings = SchedulerSettings(schedule: NoiseSchedule(kind: .linear))
            settings.spacing = spacing
            var mismatches: [String] = []
            for (index, expected) in try numpyLists(spacing.rawValue).enumerated() {
                let n = index + 1
                var numpy = expected
                if spacing == .trailing && numpy.count == n + 1 {
                    // numpy's arange makes one value too many here, which rounds to t = −1 (an invalid
                    // timestep diffusers then evaluates); we return the n valid ones.
                    XCTAssertEqual(numpy.last, -1, "trailing n=\(n): the extra value is not −1")
                    numpy.removeLast()
                }
                let ours = settings.timesteps(count: n)
                if ours != numpy { mismatches.append("n=\(n): ours \(ours.prefix(6))… numpy \(numpy.prefix(6))…") }
                XCTAssert(ours.allSatisfy { (0..<1000).contains($0) }, "\(spacing) n=\(n) has a timestep outside 0…999")
            }
            XCTAssert(mismatches.isEmpty, "\(spacing): \(mismatches.count) step counts differ from numpy: \(mismatches.prefix(5))")
        }
    }

    /// The regressions the review found: a tie at n = 27 (numpy 499, exact arithmetic 500) and a
    /// t = −1 from trailing at 3 steps.
    func testKnownCases() {
        var s = SchedulerSettings(schedule: NoiseSchedule(kind: .linear))
        s.spacing = .linspace
        XCTAssertEqual(s.timesteps(count: 27)[13], 499)
        s.spacing = .trailing
        XCTAssertEqual(s.timesteps(count: 3), [999, 666, 332])
        XCTAssertEqual(s.timesteps(count: 61).count, 61)
    }
}
