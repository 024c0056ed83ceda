import DDPM
import Foundation
import XCTest

/// ddpm-cl's hand-written TensorBoard event encoder against a file written by TensorBoard's own
/// RecordWriter from its protobuf classes (scripts/make-tensorboard-fixture), and its CRC32C.
final class TensorBoardTests: XCTestCase {
    func testEventsMatchTensorBoardsWriterByteForByte() throws {
        let expected = try Data(contentsOf: try fixture("tensorboard").appendingPathComponent("events.out.tfevents.1764600000.fixture"))
        let image = Data((0..<300).map { UInt8(($0 * 7) % 256) })
        var ours = TensorBoard.record(TensorBoard.fileVersionEvent(wallTime: 1764600000.25))
        ours.append(TensorBoard.record(TensorBoard.summaryEvent(wallTime: 1764600001.5, step: 10, values: [
            .scalar(tag: "loss", value: 0.0755), .scalar(tag: "lr", value: 1e-3), .scalar(tag: "grad_norm", value: 0.366),
            .scalar(tag: "images_per_second", value: 15.8)])))
        ours.append(TensorBoard.record(TensorBoard.summaryEvent(wallTime: 1764600002.75, step: 123456, values: [
            .scalar(tag: "fid", value: 16.09), .scalar(tag: "kid", value: -0.00359)])))
        ours.append(TensorBoard.record(TensorBoard.summaryEvent(wallTime: 1764600003.0, step: 200, values: [
            .image(tag: "samples", png: image, height: 70, width: 138, channels: 1)])))
        XCTAssertEqual(ours.count, expected.count)
        if let first = zip(ours, expected).enumerated().first(where: { $0.element.0 != $0.element.1 }) {
            XCTFail("the event files differ first at byte \(first.offset)")
        }
    }

    /// CRC32C's check value (RFC 3720 B.4: "123456789" → 0xE3069283, 32 zero bytes → 0x8A9136AA) and
    /// TFRecord's framing: each CRC in the fixture is the masked CRC32C of what it guards.
    func testCRC32CAndRecordFraming() throws {
        XCTAssertEqual(TensorBoard.crc32c(Data("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(TensorBoard.crc32c(Data(count: 32)), 0x8A91_36AA)
        let file = try Data(contentsOf: try fixture("tensorboard").appendingPathComponent("events.out.tfevents.1764600000.fixture"))
        func u32(_ at: Int) -> UInt32 { file[at..<at + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) } }
        var offset = 0, records = 0
        while offset < file.count {
            let length = Int(file[offset..<offset + 8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
            XCTAssertEqual(u32(offset + 8), TensorBoard.maskedCRC32C(file[offset..<offset + 8]))
            let data = file[offset + 12..<offset + 12 + length]
            XCTAssertEqual(u32(offset + 12 + length), TensorBoard.maskedCRC32C(Data(data)))
            offset += 16 + length
            records += 1
        }
        XCTAssertEqual(offset, file.count)
        XCTAssertEqual(records, 4)
    }

    /// A training run writes an event file with the scalars and sample grids (read back record by record).
    func testWriterFlushesWholeRecords() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ddpm-tb-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let writer = TensorBoardWriter(directory: dir)
        writer.add(step: 1, [.scalar(tag: "loss", value: 1)])
        try writer.flush()
        let once = try Data(contentsOf: writer.url)
        writer.add(step: 2, [.scalar(tag: "loss", value: 0.5)])
        try writer.flush()
        let twice = try Data(contentsOf: writer.url)
        XCTAssertEqual(twice.prefix(once.count), once)
        XCTAssertGreaterThan(twice.count, once.count)
        XCTAssert(writer.url.lastPathComponent.hasPrefix("events.out.tfevents."))
    }
}
