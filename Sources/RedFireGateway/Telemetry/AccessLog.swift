#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOCore
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
    private let pending = Mutex<[ByteBuffer]>([])
    private let droppedCounter = Atomic<Int>(0)
    private let writtenCounter = Atomic<Int>(0)

    public init(path: String, capacity: Int = 10_000) {
        self.path = path
        self.capacity = capacity
    }

    public var dropped: Int { droppedCounter.load(ordering: .relaxed) }
    public var written: Int { writtenCounter.load(ordering: .relaxed) }

    func append(_ line: ByteBuffer) {
        let accepted = pending.withLock { lines in
            guard lines.count < capacity else { return false }
            lines.append(line)
            return true
        }
        if !accepted { droppedCounter.add(1, ordering: .relaxed) }
    }

    func record(_ entry: AccessLogEntry, status: Int, instance: String?, attempts: Int, upstream: Duration, total: Duration,
                bytesIn: Int, bytesOut: Int, errorCode: String?) {
        var line = ByteBuffer()
        line.reserveCapacity(384)
        func field(_ name: StaticString, _ value: String?) {
            line.writeStaticString(name)
            if let value { ErrorEnvelope.writeJSONString(value, to: &line) } else { line.writeStaticString("null") }
        }
        field("{\"time\":", Self.timestamp(Date()))
        field(",\"request_id\":", entry.requestID)
        field(",\"client_ip\":", entry.clientIP)
        field(",\"user_id\":", entry.userID)
        field(",\"method\":", entry.method)
        field(",\"route\":", entry.route)
        field(",\"path\":", entry.path)
        line.writeString(",\"status\":\(status)")
        field(",\"service\":", entry.service)
        field(",\"instance\":", instance)
        line.writeString(",\"attempts\":\(attempts),\"upstream_ms\":\(Self.milliseconds(upstream)),\"total_ms\":\(Self.milliseconds(total))")
        line.writeString(",\"bytes_in\":\(bytesIn),\"bytes_out\":\(bytesOut)")
        field(",\"rate_limit\":", entry.rateLimit)
        field(",\"error\":", errorCode)
        line.writeStaticString("}\n")
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

    /// Writes buffered lines every 100 ms until shutdown, then the rest.
    public func run() async throws {
        let handle: FileHandle
        if path == "stdout" {
            handle = FileHandle.standardOutput
        } else {
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty { try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
            if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
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
        let lines = pending.withLock { lines -> [ByteBuffer] in
            let taken = lines
            lines.removeAll(keepingCapacity: true)
            return taken
        }
        guard !lines.isEmpty else { return }
        var data = Data()
        for line in lines { data.append(contentsOf: line.readableBytesView) }
        handle.write(data)
        writtenCounter.add(lines.count, ordering: .relaxed)
    }
}
