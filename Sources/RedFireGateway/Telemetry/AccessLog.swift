#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ServiceLifecycle
import Synchronization

/// `access_log` — one JSON line per routed request.
public struct AccessLogConfig: Sendable, Equatable {
    /// `enabled` — default false.
    public var enabled = false
    /// `path` — `stdout` (default) or a file, appended to. When the console owns the terminal, `stdout`
    /// becomes `access.log` in the data directory.
    public var path = "stdout"
    /// `buffer` — lines held while the writer catches up; beyond it lines are dropped and counted, so
    /// logging never stalls a request. Default 10000.
    public var buffer = 10_000

    public init() {}
}

/// What the access log says about one request. Built from facts the gateway already has: never a
/// header value, so never `Authorization`, a cookie, an API key or a token.
struct AccessLogEntry: Sendable {
    var requestID: String
    var clientIP: String?
    var method: String
    var path: String
    var route: String?
    var service: String?
    var userID: String?
    var rateLimit: String?
}

/// The access log: requests append formatted lines to a bounded buffer (a short lock, no I/O), and a
/// background task writes them out. Under overload lines are dropped and counted (`dropped`) instead
/// of stalling requests.
public final class AccessLog: Service, Sendable {
    let path: String
    let capacity: Int
    private let pending = Mutex<[String]>([])
    private let droppedCounter = Atomic<Int>(0)
    private let writtenCounter = Atomic<Int>(0)

    public init(path: String, capacity: Int = 10_000) {
        self.path = path
        self.capacity = capacity
    }

    public var dropped: Int { droppedCounter.load(ordering: .relaxed) }
    public var written: Int { writtenCounter.load(ordering: .relaxed) }

    func append(_ line: String) {
        let accepted = pending.withLock { lines in
            guard lines.count < capacity else { return false }
            lines.append(line)
            return true
        }
        if !accepted { droppedCounter.add(1, ordering: .relaxed) }
    }

    func record(_ entry: AccessLogEntry, status: Int, instance: String?, attempts: Int, upstream: Duration, total: Duration,
                bytesIn: Int, bytesOut: Int, errorCode: String?) {
        var line = "{\"time\":"
        Self.appendJSON(Self.timestamp(Date()), to: &line)
        line += ",\"request_id\":"; Self.appendJSON(entry.requestID, to: &line)
        line += ",\"client_ip\":"; Self.appendJSON(entry.clientIP, to: &line)
        line += ",\"user_id\":"; Self.appendJSON(entry.userID, to: &line)
        line += ",\"method\":"; Self.appendJSON(entry.method, to: &line)
        line += ",\"route\":"; Self.appendJSON(entry.route, to: &line)
        line += ",\"path\":"; Self.appendJSON(entry.path, to: &line)
        line += ",\"status\":\(status)"
        line += ",\"service\":"; Self.appendJSON(entry.service, to: &line)
        line += ",\"instance\":"; Self.appendJSON(instance, to: &line)
        line += ",\"attempts\":\(attempts)"
        line += ",\"upstream_ms\":" + Self.milliseconds(upstream)
        line += ",\"total_ms\":" + Self.milliseconds(total)
        line += ",\"bytes_in\":\(bytesIn),\"bytes_out\":\(bytesOut)"
        line += ",\"rate_limit\":"; Self.appendJSON(entry.rateLimit, to: &line)
        line += ",\"error\":"; Self.appendJSON(errorCode, to: &line)
        line += "}\n"
        append(line)
    }

    static func milliseconds(_ duration: Duration) -> String {
        let micros = duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000
        return String(format: "%.3f", Double(micros) / 1000)
    }

    /// RFC 3339 UTC with milliseconds, without a shared formatter.
    static func timestamp(_ date: Date) -> String {
        let interval = date.timeIntervalSince1970
        var seconds = time_t(interval.rounded(.down))
        let millis = Int((interval - interval.rounded(.down)) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                      Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), millis)
    }

    static func appendJSON(_ text: String?, to line: inout String) {
        guard let text else { line += "null"; return }
        line += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": line += "\\\""
            case "\\": line += "\\\\"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16)
                    line += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    line.unicodeScalars.append(scalar)
                }
            }
        }
        line += "\""
    }

    /// Writes buffered lines every 100 ms until shutdown, then the rest.
    public func run() async throws {
        let handle: FileHandle
        if path == "stdout" {
            handle = FileHandle.standardOutput
        } else {
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty { try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
            if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
            guard let opened = FileHandle(forWritingAtPath: path) else { throw CocoaError(.fileWriteNoPermission) }
            opened.seekToEndOfFile()
            handle = opened
        }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            flush(to: handle)
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(100)) }
        }
        // Services stop in reverse order: the server has drained by now, so this is the last line.
        flush(to: handle)
    }

    func flush(to handle: FileHandle) {
        let lines = pending.withLock { lines -> [String] in
            let taken = lines
            lines.removeAll(keepingCapacity: true)
            return taken
        }
        guard !lines.isEmpty else { return }
        handle.write(Data(lines.joined().utf8))
        writtenCounter.add(lines.count, ordering: .relaxed)
    }
}
