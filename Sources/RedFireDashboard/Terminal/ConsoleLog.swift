import Foundation
import Logging
import RedFireGateway
import Synchronization

/// Where logs go while the console owns the terminal: every line to a file (its path is shown in the
/// footer), warnings and errors also to the events pane. Nothing is written to the screen.
public final class ConsoleLogSink: Sendable {
    public let path: String
    public let events: EventLog
    private let file: Mutex<FileHandle?>

    /// Opens (appending) or creates the log file; its directory is created if missing.
    public init(path: String, events: EventLog) throws {
        self.path = path
        self.events = events
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
            }
        }
        let handle = try FileHandle(forWritingTo: url)
        handle.seekToEndOfFile()
        self.file = Mutex(handle)
    }

    func write(level: Logger.Level, label: String, message: String, metadata: String) {
        let now = Date()
        let line = "\(ISO8601DateFormatter.string(from: now, timeZone: .current, formatOptions: [.withInternetDateTime])) \(level) \(label): \(message)\(metadata)\n"
        file.withLock { $0?.write(Data(line.utf8)) }
        if level >= .warning {
            events.append(GatewayEvent(at: now, kind: .log, message: "\(level): \(message)"))
        }
    }

    public func close() {
        file.withLock {
            try? $0?.close()
            $0 = nil
        }
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
