import DistillRuntime
import DistillWire
import Foundation
import Testing

/// Issue 12, item 10: the learner's and `distill train`'s TensorBoard event files.
@Suite("TensorBoard event file writer")
struct EventFileWriterTests {
    static func scratch() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("events-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test func writesTheVersionThenOneEventPerRowLeavingOutUnmeasuredValues() throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let now = Date(timeIntervalSince1970: 1_765_000_000)
        let writer = try EventFileWriter(directory: directory, now: now)
        #expect(writer.file.lastPathComponent.hasPrefix("events.out.tfevents.1765000000."))
        writer.append(step: 10, scalars: [("a", 1.25), ("b", .nan), ("c", 0)], now: now)
        writer.append(step: 20, scalars: [("b", .infinity)], now: now)  // nothing measured: no event
        writer.append(step: 30, scalars: [("b", 1e-3)], now: now.addingTimeInterval(1))
        let events = try EventFileWriter.events(in: writer.file)
        #expect(
            events == [
                TensorBoardEvent(wallTime: 1_765_000_000, step: 0, content: .fileVersion("brain.Event:2")),
                TensorBoardEvent(
                    wallTime: 1_765_000_000, step: 10,
                    content: .scalars([.init(tag: "a", value: 1.25), .init(tag: "c", value: 0)])),
                TensorBoardEvent(wallTime: 1_765_000_001, step: 30, content: .scalars([.init(tag: "b", value: 1e-3)])),
            ])
    }

    @Test func aSecondWriterInTheSameSecondGetsItsOwnFile() throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let now = Date(timeIntervalSince1970: 1_765_000_000)
        let first = try EventFileWriter(directory: directory, now: now)
        let second = try EventFileWriter(directory: directory, now: now)
        #expect(first.file != second.file)
        #expect(EventFileWriter.files(in: directory) == [first.file, second.file])
    }

    @Test func aCorruptFileIsAnErrorNamingIt() throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("events.out.tfevents.1.host")
        try Data("not an event file at all".utf8).write(to: file)
        let error = #expect(throws: RuntimeError.self) { try EventFileWriter.events(in: file) }
        #expect(error?.description.contains(file.path) == true)
        #expect(error?.code == .invalidRecord)
    }

    @Test func theLearnersScalarsAreEveryNumericColumnOfMetricsCSV() {
        let row = MetricsRow(
            seconds: 1, envSteps: 2, updates: 3, version: 4, stepsPerSecond: 5, studentReturn: 6, teacherReturn: 7,
            klPerEpisode: 8, episodeReturn: 9, meanLag: 10, maxLag: 11, actorsAlive: 12, teacherID: "t", rejected: 13)
        let numeric = MetricsRow.header.split(separator: ",").map(String.init).filter { $0 != "teacher_id" }
        #expect(row.scalars.map(\.tag) == numeric)
        #expect(row.scalars.map(\.value) == (1...13).map(Double.init))
        // The values are the CSV's cells: what metrics.csv prints, TensorBoard shows.
        let printed = MetricsRow(
            seconds: 1.23456, envSteps: 2, updates: 3, version: 4, stepsPerSecond: 5.55, studentReturn: 1 / 3,
            teacherReturn: .nan, klPerEpisode: 8, episodeReturn: 9, meanLag: 10, maxLag: 11, actorsAlive: 12,
            teacherID: "a,\"b", rejected: 13)
        #expect(printed.scalars[0].value == 1.235)
        #expect(printed.scalars[4].value == 5.5 || printed.scalars[4].value == 5.6)
        #expect(printed.scalars[5].value == 0.333333)
        #expect(printed.scalars[6].value.isNaN)
        #expect(printed.scalars.count == 13)
    }
}
