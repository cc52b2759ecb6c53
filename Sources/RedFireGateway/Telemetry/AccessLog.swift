#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOCore
import ServiceLifecycle
import Synchronization

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
            if let value { JSONString.write(value, to: &line) } else { line.writeStaticString("null") }
        }
        line.writeStaticString("{\"time\":\"")
        DecimalText.writeTimestamp(to: &line)
        line.writeStaticString("\"")
        field(",\"request_id\":", entry.requestID)
        field(",\"client_ip\":", entry.clientIP)
        field(",\"user_id\":", entry.userID)
        field(",\"method\":", entry.method)
        field(",\"route\":", entry.route)
        field(",\"path\":", entry.path)
        line.writeStaticString(",\"status\":")
        DecimalText.writeDecimal(status, to: &line)
        field(",\"service\":", entry.service)
        field(",\"instance\":", instance)
        line.writeStaticString(",\"attempts\":")
        DecimalText.writeDecimal(attempts, to: &line)
        line.writeStaticString(",\"upstream_ms\":")
        DecimalText.writeMilliseconds(upstream, to: &line)
        line.writeStaticString(",\"total_ms\":")
        DecimalText.writeMilliseconds(total, to: &line)
        line.writeStaticString(",\"bytes_in\":")
        DecimalText.writeDecimal(bytesIn, to: &line)
        line.writeStaticString(",\"bytes_out\":")
        DecimalText.writeDecimal(bytesOut, to: &line)
        field(",\"rate_limit\":", entry.rateLimit)
        field(",\"error\":", errorCode)
        line.writeStaticString("}\n")
        append(line)
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
