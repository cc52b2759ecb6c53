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
        line.writeStaticString("{\"time\":\"")
        Self.writeTimestamp(to: &line)
        line.writeStaticString("\"")
        field(",\"request_id\":", entry.requestID)
        field(",\"client_ip\":", entry.clientIP)
        field(",\"user_id\":", entry.userID)
        field(",\"method\":", entry.method)
        field(",\"route\":", entry.route)
        field(",\"path\":", entry.path)
        line.writeStaticString(",\"status\":")
        Self.writeDecimal(status, to: &line)
        field(",\"service\":", entry.service)
        field(",\"instance\":", instance)
        line.writeStaticString(",\"attempts\":")
        Self.writeDecimal(attempts, to: &line)
        line.writeStaticString(",\"upstream_ms\":")
        Self.writeMilliseconds(upstream, to: &line)
        line.writeStaticString(",\"total_ms\":")
        Self.writeMilliseconds(total, to: &line)
        line.writeStaticString(",\"bytes_in\":")
        Self.writeDecimal(bytesIn, to: &line)
        line.writeStaticString(",\"bytes_out\":")
        Self.writeDecimal(bytesOut, to: &line)
        field(",\"rate_limit\":", entry.rateLimit)
        field(",\"error\":", errorCode)
        line.writeStaticString("}\n")
        append(line)
    }

    /// `12.345`: milliseconds with three decimals, written without Foundation formatting.
    static func writeMilliseconds(_ duration: Duration, to buffer: inout ByteBuffer) {
        let micros = max(0, duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000)
        writeDecimal(Int(micros / 1000), to: &buffer)
        buffer.writeInteger(UInt8(ascii: "."))
        writeDigits(Int(micros % 1000), count: 3, to: &buffer)
    }

    static func writeDecimal(_ value: Int, to buffer: inout ByteBuffer) {
        if value < 0 {
            buffer.writeInteger(UInt8(ascii: "-"))
            writeDecimal(-value, to: &buffer)
            return
        }
        var digits = 1
        var rest = value / 10
        while rest > 0 { digits += 1; rest /= 10 }
        writeDigits(value, count: digits, to: &buffer)
    }

    /// `value` as exactly `count` decimal digits, zero-padded.
    static func writeDigits(_ value: Int, count: Int, to buffer: inout ByteBuffer) {
        var value = value
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { bytes in
            for index in stride(from: count - 1, through: 0, by: -1) {
                bytes[index] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
            }
            return count
        }
    }

    /// RFC 3339 UTC with milliseconds (`2026-11-27T07:30:12.345Z`), from the system clock, written
    /// digit by digit (no formatter, no String).
    static func writeTimestamp(to buffer: inout ByteBuffer) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        writeDigits(Int(parts.tm_year) + 1900, count: 4, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "-"))
        writeDigits(Int(parts.tm_mon) + 1, count: 2, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "-"))
        writeDigits(Int(parts.tm_mday), count: 2, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "T"))
        writeDigits(Int(parts.tm_hour), count: 2, to: &buffer)
        buffer.writeInteger(UInt8(ascii: ":"))
        writeDigits(Int(parts.tm_min), count: 2, to: &buffer)
        buffer.writeInteger(UInt8(ascii: ":"))
        writeDigits(Int(parts.tm_sec), count: 2, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "."))
        writeDigits(Int(now.tv_nsec / 1_000_000), count: 3, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "Z"))
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
