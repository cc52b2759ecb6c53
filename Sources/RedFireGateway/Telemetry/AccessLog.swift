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
        // Formatted in place into the writer's buffer (`appendLine`). Fields are written through
        // `inout`, not a local function capturing `line` (which costs an exclusivity check per field).
        func field(_ name: StaticString, _ value: String?, _ line: inout ByteBuffer) {
            line.writeStaticString(name)
            if let value { JSONString.write(value, to: &line) } else { line.writeStaticString("null") }
        }
        writer.appendLine { line in
            line.writeStaticString("{\"time\":\"")
            DecimalText.writeTimestamp(to: &line)
            line.writeStaticString("\"")
            if let nodeField { line.writeImmutableBuffer(nodeField) }
            field(",\"request_id\":", entry.requestID, &line)
            if let traceID = entry.traceID { field(",\"trace_id\":", traceID, &line) }
            field(",\"client_ip\":", entry.clientIP, &line)
            field(",\"user_id\":", entry.userID, &line)
            field(",\"method\":", entry.method, &line)
            field(",\"protocol\":", entry.protocolName, &line)
            field(",\"tls\":", entry.tls, &line)
            field(",\"route\":", entry.route, &line)
            field(",\"path\":", entry.path, &line)
            line.writeStaticString(",\"status\":")
            DecimalText.writeDecimal(status, to: &line)
            field(",\"service\":", entry.service, &line)
            field(",\"instance\":", instance, &line)
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
            field(",\"rate_limit\":", entry.rateLimit, &line)
            field(",\"error\":", errorCode, &line)
            line.writeStaticString("}\n")
        }
    }

    /// Writes the queued lines every 100 ms until shutdown, then the rest.
    package func run() async throws {
        try await writer.run()
    }
}
