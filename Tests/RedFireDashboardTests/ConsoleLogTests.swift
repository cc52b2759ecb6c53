import Foundation
import Logging
import RedFireGateway
import Testing

@testable import RedFireDashboard

@Suite("Console log file")
struct ConsoleLogTests {
    /// While the dashboard owns the terminal, log lines go to the file: queued by whoever logs (no file
    /// I/O on that thread), written by the sink's service or on close; warnings also reach the events pane.
    @Test func linesAreQueuedThenWrittenWithTimeLevelAndLabel() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("redfire-console-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/gateway.log"
        let events = EventLog(capacity: 10)
        let sink = try ConsoleLogSink(path: path, events: events)
        #expect(FileManager.default.fileExists(atPath: path), "the file is created at start, so a bad path fails early")
        let logger = Logger(label: "redfire.test") { label in ConsoleLogHandler(label: label, sink: sink, level: .info) }
        logger.info("listening", metadata: ["port": "8080"])
        logger.warning("instance ejected")
        logger.debug("below the level")
        #expect(try String(contentsOfFile: path, encoding: .utf8).isEmpty, "nothing is written on the logging thread")
        sink.close()
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2, "\(lines)")
        #expect(lines.first?.hasSuffix(" info redfire.test: listening port=8080") == true, "\(lines)")
        #expect(lines.last?.hasSuffix(" warning redfire.test: instance ejected") == true, "\(lines)")
        // RFC 3339 UTC with milliseconds, e.g. 2026-11-29T15:00:00.123Z.
        #expect(lines.allSatisfy { $0.count > 24 && $0.dropFirst(23).hasPrefix("Z ") && $0.dropFirst(10).hasPrefix("T") }, "\(lines)")
        #expect(events.recent().map(\.message) == ["warning: instance ejected"])
    }

    @Test func anUnwritablePathIsAnErrorAtStart() {
        #expect(throws: (any Error).self) { try ConsoleLogSink(path: "/proc/redfire-no-such-dir/gateway.log", events: EventLog()) }
    }
}
