import AsyncHTTPClient
import DemoServices
import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import RedFireGateway

@Suite("Access log", .cleansUp, .timeLimit(.minutes(2)))
struct AccessLogTests {
    @Test func oneLinePerRequestWithEveryFieldAndNoSecret() async throws {
        let trading = try await startInstances(.userTrading, count: 1)
        let directory = TemporaryPath.make("redfire-access")
        var config = GatewayConfig()
        config.services = [serviceConfig("user_trading", trading)]
        config.routes = [RouteConfig(prefix: "/api/v1/trading", service: "user_trading", permissions: RoutePermissions(read: "trading:read", write: "trading:write"))]
        config.dataDirectory = directory
        config.auth.jwtSecret = AuthFlowTests.secret
        config.auth.bcryptCost = 4
        config.auth.roles = ["trader": ["trading:read", "trading:write"]]
        config.auth.defaultRoles = ["trader"]
        config.rateLimits.defaultPolicy = RateLimitPolicy(name: "default", count: 100, period: .seconds(1), burst: 100)
        config.accessLog.enabled = true
        config.accessLog.path = directory + "/access.log"
        let logged = try await GatewayHarness.start(config)
        let json = [("Content-Type", "application/json")]
        _ = try await logged.send(.POST, "/api/v1/auth/register", headers: json, body: ByteBuffer(string: #"{"username":"alice","password":"correct-horse-battery"}"#))
        let login = try await logged.send(.POST, "/api/v1/auth/login", headers: json, body: ByteBuffer(string: #"{"username":"alice","password":"correct-horse-battery"}"#))
        let token = try #require(try login.json()["access_token"] as? String)
        let me = try await logged.send("/api/v1/auth/me", headers: [("Authorization", "Bearer \(token)")]).json()
        let secrets = [token, "session=cookie-secret-42", "rf_0123456789ab_apikeysecret", "password-in-query-99", "correct-horse-battery"]
        let reply = try await logged.send(.POST, "/api/v1/trading/orders?password=password-in-query-99",
                                          headers: [("Authorization", "Bearer \(token)"), ("Cookie", "session=cookie-secret-42"), ("X-Request-ID", "access-log-test-1")],
                                          body: ByteBuffer(string: #"{"password":"correct-horse-battery"}"#))
        #expect(reply.status == 201)
        _ = try await logged.send("/api/v1/trading/orders", headers: [("X-API-Key", "rf_0123456789ab_apikeysecret"), ("X-Request-ID", "access-log-test-2")])
        _ = try await logged.send("/nowhere", headers: [("X-Request-ID", "access-log-test-3")])
        _ = try await logged.send("/health", headers: [("X-Request-ID", "access-log-test-4")])
        _ = try await logged.send("/api/v1/trading/a%2fb", headers: [("X-Request-ID", "access-log-test-5")])
        // Refused at the connection, before a request exists: a head the gateway rejects, a line the parser rejects.
        let framing = try await RawHTTP.exchange(port: logged.port, bytes: Array(("POST /api/v1/trading/orders?password=password-in-query-99 HTTP/1.1\r\n"
            + "Host: x\r\nX-Request-ID: access-log-test-6\r\nTransfer-Encoding: xchunked\r\n\r\n").utf8))
        #expect(framing.status == 400)
        let garbage = try await RawHTTP.exchange(port: logged.port, bytes: Array("GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n".utf8))
        #expect(garbage.status == 400)
        await logged.shutdown()
        await stopAll(trading)

        let text = try String(contentsOfFile: directory + "/access.log", encoding: .utf8)
        for secret in secrets { #expect(!text.contains(secret), "the access log never contains \(secret.prefix(12))…") }
        let lines = text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let order = try #require(lines.first { $0["request_id"] as? String == "access-log-test-1" })
        let fields = ["time", "request_id", "client_ip", "user_id", "method", "protocol", "tls", "route", "path", "status", "service", "instance", "attempts",
                      "upstream_ms", "total_ms", "bytes_in", "bytes_out", "rate_limit", "error"]
        #expect(Set(order.keys) == Set(fields), "\(order.keys.sorted())")
        #expect(order["user_id"] as? String == me["id"] as? String)
        #expect(order["protocol"] as? String == "HTTP/1.1" && order["tls"] is NSNull, "plain HTTP/1.1: \(order)")
        #expect(order["method"] as? String == "POST" && order["path"] as? String == "/api/v1/trading/orders")
        #expect(order["route"] as? String == "/api/v1/trading" && order["service"] as? String == "user_trading")
        #expect(order["instance"] as? String == "user_trading-1" && order["attempts"] as? Int == 1)
        #expect(order["status"] as? Int == 201 && order["client_ip"] as? String == "127.0.0.1" && order["rate_limit"] as? String == "allowed")
        #expect(order["bytes_in"] as? Int == 36 && (order["total_ms"] as? Double ?? -1) >= (order["upstream_ms"] as? Double ?? 0))
        #expect(order["error"] is NSNull)
        let refused = try #require(lines.first { $0["request_id"] as? String == "access-log-test-2" })
        #expect(refused["status"] as? Int == 401 && refused["error"] as? String == "invalid_api_key")
        let unrouted = try #require(lines.first { $0["request_id"] as? String == "access-log-test-3" })
        #expect(unrouted["status"] as? Int == 404 && unrouted["error"] as? String == "route_not_found" && unrouted["route"] is NSNull)
        // The gateway's own endpoints and early refusals are logged too.
        let health = try #require(lines.first { $0["request_id"] as? String == "access-log-test-4" })
        #expect(health["status"] as? Int == 200 && health["path"] as? String == "/health" && health["service"] is NSNull)
        let badPath = try #require(lines.first { $0["request_id"] as? String == "access-log-test-5" })
        #expect(badPath["status"] as? Int == 400 && badPath["error"] as? String == "invalid_path")
        #expect(lines.contains { $0["path"] as? String == "/api/v1/auth/login" && $0["status"] as? Int == 200 && $0["method"] as? String == "POST" })
        let badFraming = try #require(lines.first { $0["request_id"] as? String == "access-log-test-6" })
        #expect(badFraming["status"] as? Int == 400 && badFraming["error"] as? String == "malformed_request")
        #expect(badFraming["method"] as? String == "POST" && badFraming["path"] as? String == "/api/v1/trading/orders" && badFraming["client_ip"] as? String == "127.0.0.1")
        let unparsable = try #require(lines.first { $0["request_id"] as? String == garbage.headers.first(name: "X-Request-ID") })
        #expect(unparsable["status"] as? Int == 400 && unparsable["method"] as? String == "-" && unparsable["error"] as? String == "malformed_request")
    }

    @Test func jsonStringsTimestampsAndDurationsAreWrittenExactly() throws {
        for text in ["plain", "quote \" and \\ backslash", "line\nbreak\ttab\r", "bell\u{07}nul\u{00}", "café ✓ 日本", ""] {
            var buffer = ByteBuffer()
            JSONString.write(text, to: &buffer)
            let decoded = try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView), options: [.fragmentsAllowed]) as? String
            #expect(decoded == text, "\(String(buffer: buffer))")
        }
        var line = ByteBuffer()
        DecimalText.writeTimestamp(to: &line)
        let stamp = String(buffer: line)
        #expect(stamp.wholeMatch(of: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/) != nil, "\(stamp)")
        for (duration, text) in [(Duration.microseconds(1_530), "1.530"), (.zero, "0.000"), (.seconds(12), "12000.000"), (.microseconds(7), "0.007")] {
            var buffer = ByteBuffer()
            DecimalText.writeMilliseconds(duration, to: &buffer)
            #expect(String(buffer: buffer) == text)
        }
    }

    /// Every value of a line escaped at its worst (control characters, quotes, backslashes, non-ASCII)
    /// still fits the line's reservation and reads back exactly; numbers at their extremes too.
    @Test func aLineOfWorstCaseValuesIsValidJSON() throws {
        let path = TemporaryPath.make("redfire-worst", ".log")
        let log = AccessLog(path: path, node: "node \"a\"\u{01}")
        try log.writer.open()
        let nasty = String(repeating: "\u{01}\"\\é\n", count: 40)
        var entry = AccessLogEntry(requestID: nasty, clientIP: nasty, method: nasty, path: nasty, route: nasty, service: nasty, userID: nasty,
                                   rateLimit: nasty)
        entry.protocolName = nasty
        entry.tls = nasty
        entry.traceID = nasty
        log.record(entry, status: Int.min, instance: nasty, attempts: Int.max, upstream: .seconds(Int64.max / 2_000_000), total: .zero,
                   bytesIn: -1, bytesOut: 0, errorCode: nasty)
        log.writer.close()
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let line = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        for name in ["request_id", "trace_id", "client_ip", "user_id", "method", "protocol", "tls", "route", "path", "service", "instance",
                     "rate_limit", "error"] {
            #expect(line[name] as? String == nasty, "\(name)")
        }
        #expect(line["node"] as? String == "node \"a\"\u{01}")
        #expect((line["status"] as? NSNumber)?.int64Value == Int64.min && (line["attempts"] as? NSNumber)?.int64Value == Int64.max)
        #expect(line["bytes_in"] as? Int == -1 && line["total_ms"] as? Double == 0)
    }

    /// Lines reach the file whole and in order across flushes; a write the file refuses (`/dev/full`:
    /// no space) drops those lines and counts them — the gateway goes on.
    @Test func linesReachTheFileInOrderAndARefusedWriteIsCounted() throws {
        let path = TemporaryPath.make("redfire-lines", ".log")
        let writer = BufferedLogWriter(path: path, capacity: 1_000)
        try writer.open()
        for index in 0..<300 { writer.append(timestamped: "line \(index)") }
        writer.flush()
        for index in 300..<310 { writer.append(timestamped: "line \(index)") }
        writer.close()
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 310)
        #expect(lines.enumerated().allSatisfy { $0.element.hasSuffix(" line \($0.offset)") })
        #expect(writer.written == 310 && writer.dropped == 0)

        let full = BufferedLogWriter(path: "/dev/full")
        try full.open()
        full.append(timestamped: "lost")
        full.append(timestamped: "lost too")
        full.flush()
        #expect(full.dropped == 2 && full.written == 0)
        full.close()
    }

    @Test func aFullBufferDropsAndCountsInsteadOfBlocking() {
        let log = AccessLog(path: "/dev/null", capacity: 100)
        let entry = AccessLogEntry(requestID: "r", clientIP: nil, method: "GET", path: "/", route: nil, service: nil, userID: nil, rateLimit: nil)
        for _ in 0..<150 {
            log.record(entry, status: 200, instance: nil, attempts: 0, upstream: .zero, total: .zero, bytesIn: 0, bytesOut: 0, errorCode: nil)
        }
        #expect(log.dropped == 50)
    }
}
