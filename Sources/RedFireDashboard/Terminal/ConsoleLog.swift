import Foundation
import Logging
import ServiceLifecycle
import RedFireGateway

/// Where logs go while the console owns the terminal: every line to a file (its path is shown in the
/// footer), warnings and errors also to the events pane. Nothing is written to the screen. Lines go
/// through the gateway's `BufferedLogWriter` (as the access log's do): whichever thread logs — an event
/// loop during an outage — only queues the line. Run it as a service, and `close()` it after the last
/// log line to write what is still queued.
public final class ConsoleLogSink: Service, Sendable {
    public let events: EventLog
    private let writer: BufferedLogWriter

    public var path: String { writer.path }

    /// Opens (appending) or creates the log file now, so a bad path is an error at start; its
    /// directory is created if missing.
    public init(path: String, events: EventLog) throws {
        self.events = events
        self.writer = BufferedLogWriter(path: path)
        try writer.open()
    }

    func write(level: Logger.Level, label: String, message: String, metadata: String) {
        writer.append(timestamped: "\(level) \(label): \(message)\(metadata)")
        if level >= .warning {
            events.append(GatewayEvent(at: Date(), kind: .log, message: "\(level): \(message)"))
        }
    }

    public func run() async throws {
        try await writer.run()
    }

    /// Writes what is still queued and closes the file.
    public func close() {
        writer.close()
    }
}

/// A swift-log handler writing to a `ConsoleLogSink`.
public struct ConsoleLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    let label: String
    let sink: ConsoleLogSink

    public init(label: String, sink: ConsoleLogSink, level: Logger.Level) {
        self.label = label
        self.sink = sink
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let text = merged.isEmpty ? "" : " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        sink.write(level: event.level, label: label, message: "\(event.message)", metadata: text)
    }
}
