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
    /// `HTTP/1.1`, `HTTP/1.0` (`HTTP/2` once streams arrive over HTTP/2).
    var protocolName = "HTTP/1.1"
    /// `TLSv1.3`, `TLSv1.2`; nil on plain HTTP.
    var tls: String?
    /// The request's trace (32 hex digits) when tracing is on.
    var traceID: String?
}

/// The access log: one JSON line per request, formatted by hand (no encoder) and queued on a
/// `BufferedLogWriter`, which writes them out in the background and drops (and counts) lines under
/// overload instead of stalling requests.
package final class AccessLog: Service, Sendable {
    let writer: BufferedLogWriter
    /// `,"node":"…"` in a cluster (`cluster.node_name`), rendered once: every node's lines can be merged.
    private let nodeField: ByteBuffer?

    package init(path: String, capacity: Int = 10_000, node: String? = nil) {
        self.writer = BufferedLogWriter(path: path, capacity: capacity)
        self.nodeField = node.map { node in
            var field = ByteBuffer(string: ",\"node\":")
            JSONString.write(node, to: &field)
            return field
        }
    }

    var path: String { writer.path }
    package var dropped: Int { writer.dropped }
    package var written: Int { writer.written }

    func record(_ entry: AccessLogEntry, status: Int, instance: String?, attempts: Int, upstream: Duration, total: Duration,
                bytesIn: Int, bytesOut: Int, errorCode: String?) {
        // Formatted in place into the writer's buffer (`appendLine`), in one reservation of at most the
        // line's bytes (`ReservedText`): the fixed text, numbers and times, and each value escaped.
        // (Added one by one: an array of the values would be allocated per line.)
        let json = ReservedText.jsonBound
        var bound = Self.fixedBound + (nodeField?.readableBytes ?? 0)
        bound += json(entry.requestID) + json(entry.traceID) + json(entry.clientIP) + json(entry.userID) + json(entry.method)
        bound += json(entry.protocolName) + json(entry.tls) + json(entry.route) + json(entry.path) + json(entry.service)
        bound += json(instance) + json(entry.rateLimit) + json(errorCode)
        // Fields are written through `inout`, not a local function capturing `text` (which costs an
        // exclusivity check per field).
        func field(_ name: StaticString, _ value: String?, _ text: inout ReservedText) {
            text.write(name)
            text.writeJSON(value)
        }
        writer.appendLine { line in
            line.writeReserved(atMost: bound) { text in
                text.write("{\"time\":\"")
                text.writeTimestamp()
                text.write(byte: UInt8(ascii: "\""))
                nodeField?.withUnsafeReadableBytes { text.write(bytes: $0) }
                field(",\"request_id\":", entry.requestID, &text)
                if let traceID = entry.traceID {
                    field(",\"trace_id\":", traceID, &text)
                }
                field(",\"client_ip\":", entry.clientIP, &text)
                field(",\"user_id\":", entry.userID, &text)
                field(",\"method\":", entry.method, &text)
                field(",\"protocol\":", entry.protocolName, &text)
                field(",\"tls\":", entry.tls, &text)
                field(",\"route\":", entry.route, &text)
                field(",\"path\":", entry.path, &text)
                text.write(",\"status\":")
                text.writeDecimal(status)
                field(",\"service\":", entry.service, &text)
                field(",\"instance\":", instance, &text)
                text.write(",\"attempts\":")
                text.writeDecimal(attempts)
                text.write(",\"upstream_ms\":")
                text.writeMilliseconds(upstream)
                text.write(",\"total_ms\":")
                text.writeMilliseconds(total)
                text.write(",\"bytes_in\":")
                text.writeDecimal(bytesIn)
                text.write(",\"bytes_out\":")
                text.writeDecimal(bytesOut)
                field(",\"rate_limit\":", entry.rateLimit, &text)
                field(",\"error\":", errorCode, &text)
                text.write("}\n")
            }
        }
    }

    /// A line's bytes besides its escaped values: names and punctuation (~230), the time, four numbers
    /// and two durations, with room to spare.
    private static let fixedBound = 320 + ReservedText.timestampBound + 4 * ReservedText.decimalBound + 2 * ReservedText.millisecondsBound

    /// Writes the queued lines every 100 ms until shutdown, then the rest.
    package func run() async throws {
        try await writer.run()
    }
}
