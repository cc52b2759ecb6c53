import DemoServices
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP2
import NIOSSL
import Testing

@testable import RedFireGateway

/// HTTP/2 for clients on TLS listeners (ALPN `h2`), with real swift-nio-http2 clients and curl: the
/// same policy chain and forwarding as HTTP/1.1 (instances still get HTTP/1.1), limits, the attack
/// classes ending in GOAWAY and counted without disturbing other connections, and graceful shutdown.
extension BulkTraffic {
@Suite("HTTP/2", .serialized, .cleansUp, .timeLimit(.minutes(2)))
struct HTTP2Tests {
    struct Setup {
        let files: TLSListenerTests.Files
        let gateway: GatewayHarness
        let instances: [DemoInstance]
        let trust: [NIOSSLCertificate]
        var port: Int { gateway.port }
        var listener: ListenerRuntime { gateway.gateway.listeners[0] }

        func client() async throws -> HTTP2TestClient { try await HTTP2TestClient.connect(port: port, trust: trust) }

        /// A TLS connection that negotiated `h2`, for frames written by hand.
        func rawHTTP2() async throws -> TLSTestConnection {
            try await TLSTestConnection.connect(port: port, .init(serverName: "api.redfire.test", trust: trust, applicationProtocols: ["h2"]))
        }
    }

    static func start(_ configure: (inout GatewayConfig) -> Void = { _ in }) async throws -> Setup {
        let files = try TLSListenerTests.Files()
        let tls = ListenerTLSConfig(certificates: [try files.server("api", names: ["api.redfire.test"])])
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await TLSListenerTests.gateway([ListenerConfig(address: TLSListenerTests.loopback, tls: tls)], instances: instances) { config in
            config.publicMetrics = true
            configure(&config)
        }
        return Setup(files: files, gateway: gateway, instances: instances, trust: try files.trust)
    }

    @Test func streamsGoThroughTheSamePolicyChainAsHTTP1() async throws {
        let setup = try await Self.start { config in
            config.accessLog.enabled = true
            config.accessLog.path = TemporaryPath.make("redfire-h2", ".log")
            config.routes = [RouteConfig(prefix: "/api/v1/trading", service: "user_trading", methods: ["GET", "POST"])]
        }
        let client = try await setup.client()
        #expect(try await client.request(.get, "/health").status == 200)
        // Forwarded as HTTP/1.1; the service hears https, one Cookie, no Host of the client's.
        let echo = try await client.request(.get, "/api/v1/trading/_echo", fields: [.cookie: "a=1", .cookie: "b=2", .requestID: "h2-echo-1"])
        #expect(echo.status == 200)
        // The request ID changes with every response: sent as a literal, never into the HPACK table.
        #expect(echo.fields.first { $0.name == .requestID }?.indexingStrategy == .avoid)
        let report = try JSONDecoder().decode(EchoReport.self, from: Data(echo.body.utf8))
        #expect(report.headers["cookie"] == ["a=1; b=2"])
        #expect(report.headers["x-forwarded-proto"] == ["https"])
        #expect(report.headers["x-forwarded-host"] == ["api.redfire.test"])
        #expect(report.headers["host"] == ["127.0.0.1:\(setup.instances[0].port)"])
        // A body without Content-Length (DATA frames) reaches the instance whole, chunked.
        let upload = try await client.request(.post, "/api/v1/trading/_echo", body: ["first part, ", "second part"])
        let uploaded = try JSONDecoder().decode(EchoReport.self, from: Data(upload.body.utf8))
        #expect(uploaded.bodyLength == "first part, second part".utf8.count)
        #expect(uploaded.headers["transfer-encoding"] == ["chunked"])
        // The gateway's own answers are the same envelope.
        let missing = try await client.request(.get, "/nowhere")
        #expect(missing.status == 404 && missing.errorCode == "route_not_found")
        let method = try await client.request(.delete, "/api/v1/trading/orders")
        #expect(method.status == 405 && method.fields[.allow] != nil)
        // Many streams at once on one connection.
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<40 { group.addTask { try await client.request(.get, "/api/v1/trading/orders").status } }
            for try await status in group { #expect(status == 200) }
        }
        #expect(client.goAways.isEmpty)
        await client.close()
        let metrics = try await setup.client()
        let text = try await metrics.request(.get, "/metrics").body
        let h2 = text.split(separator: "\n").first { $0.hasPrefix(#"gateway_listener_connections{listener="127.0.0.1:0",protocol="h2",tls="TLSv1.3"}"#) }
        #expect((h2?.split(separator: " ").last.flatMap { Int($0) } ?? 0) >= 1, "\(h2 ?? "no h2 series")")
        await metrics.close()
        await setup.gateway.shutdown()
        let log = try String(contentsOfFile: setup.gateway.gateway.registry.state.config.accessLog.path, encoding: .utf8)
        let line = try #require(log.split(separator: "\n").first { $0.contains("h2-echo-1") })
        #expect(line.contains(#""protocol":"HTTP/2","tls":"TLSv1.3""#), "\(line)")
    }

    @Test func hundredConcurrentStreamsThroughAuthRateLimitCORSAndLimits() async throws {
        let setup = try await Self.start { config in
            config.routes = [RouteConfig(prefix: "/api/v1/trading", service: "user_trading",
                                         permissions: RoutePermissions(read: "trading:read", write: "trading:write"))]
            config.auth.jwtSecret = AuthFlowTests.secret
            config.auth.bcryptCost = 4
            config.auth.roles = ["trader": ["trading:read", "trading:write"]]
            config.auth.defaultRoles = ["trader"]
            config.dataDirectory = TemporaryPath.make("redfire-h2-auth")
            config.rateLimits.defaultPolicy = RateLimitPolicy(name: "default", count: 1000, period: .seconds(1), burst: 1000)
            config.cors.allowedOrigins = ["https://app.redfire.test"]
        }
        let client = try await setup.client()
        let json: HTTPFields = [.contentType: "application/json"]
        let credentials = #"{"username":"h2-trader","password":"correct-horse-battery"}"#
        #expect(try await client.request(.post, "/api/v1/auth/register", fields: json, body: [credentials]).status == 201)
        let login = try await client.request(.post, "/api/v1/auth/login", fields: json, body: [credentials])
        let token = try #require(((try JSONSerialization.jsonObject(with: Data(login.body.utf8))) as? [String: Any])?["access_token"] as? String)
        let authorized: HTTPFields = [.authorization: "Bearer \(token)", HTTPField.Name("Origin")!: "https://app.redfire.test"]
        // 100 streams at once (the listener's max_concurrent_streams), each authenticated, rate-limited and CORS-decorated.
        let replies = try await withThrowingTaskGroup(of: HTTP2TestClient.Reply.self) { group in
            for _ in 0..<100 { group.addTask { try await client.request(.get, "/api/v1/trading/orders", fields: authorized) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(replies.count == 100)
        #expect(replies.allSatisfy { $0.status == 200 }, "\(Set(replies.map(\.status)))")
        #expect(replies.allSatisfy { $0.fields[HTTPField.Name("Access-Control-Allow-Origin")!] == "https://app.redfire.test" })
        #expect(replies.allSatisfy { $0.fields[HTTPField.Name("RateLimit")!] != nil })
        #expect(client.goAways.isEmpty)

        // The same refusals, byte for byte, as over HTTP/1.1 (same request ID sent).
        let http1 = try await TLSTestConnection.connect(port: setup.port, .init(serverName: "api.redfire.test", trust: setup.trust))
        for (path, fields, status) in [("/api/v1/trading/orders", [("X-Request-ID", "same-envelope-401")], 401),
                                       ("/nowhere", [("X-Request-ID", "same-envelope-404")], 404),
                                       ("/api/v1/trading/orders", [("X-Request-ID", "same-envelope-431")] + (0..<120).map { ("X-Field-\($0)", "v") }, 431)] {
            var h2Fields = HTTPFields()
            for (name, value) in fields { h2Fields.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
            let overH2 = try await client.request(.get, path, fields: h2Fields)
            let overH1 = try await http1.get(path, host: "api.redfire.test", headers: fields)
            #expect(overH2.status == status && overH1.status == status)
            #expect(overH2.body == overH1.body, "\(overH2.body) vs \(overH1.body)")
            #expect(overH2.fields[.contentType] == overH1.headers.first(name: "Content-Type"))
            if status == 431 { break }  // HTTP/1.1 closes after a 431
        }
        await http1.close()
        await client.close()
        await setup.gateway.shutdown()
    }

    @Test func volatileResponseFieldsStayOutOfTheHPACKTableAndCookiesAreNeverIndexed() {
        var fields: HTTPFields = [.setCookie: "session=1", .requestID: "r1", .rateLimit: "\"default\";r=9;t=1", .contentType: "application/json"]
        HTTP2StreamGuard.setIndexing(&fields)
        #expect(fields.map(\.indexingStrategy) == [.disallow, .avoid, .avoid, .automatic])
    }

    @Test func refusesConnectAndAHostThatContradictsTheAuthority() async throws {
        let setup = try await Self.start()
        let client = try await setup.client()
        let connect = try await client.request(.connect, nil, authority: "elsewhere.example:443")
        #expect(connect.status == 501 && connect.errorCode == "not_implemented")
        let conflicting = try await client.request(.get, "/health", fields: [HTTPField.Name("Host")!: "other.example"])
        #expect(conflicting.status == 400 && conflicting.errorCode == "malformed_request")
        // The connection is still good for the next stream.
        #expect(try await client.request(.get, "/health").status == 200)
        await client.close()
        await setup.gateway.shutdown()
    }

    @Test func aStalledRequestBodyTimesOut() async throws {
        let setup = try await Self.start { $0.limits.bodyTimeout = .seconds(1) }
        let client = try await setup.client()
        let started = ContinuousClock.now
        let (_, reply) = try await client.openStream("/api/v1/trading/_echo")
        let answer = try await reply.get()
        #expect(answer.status == 408, "\(answer)")
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(try await client.request(.get, "/health").status == 200, "other streams are unaffected")
        await client.close()
        await setup.gateway.shutdown()
    }

    @Test func rapidResetEndsThatConnectionWithGoAwayAndOthersCarryOn() async throws {
        let setup = try await Self.start()
        let bystander = try await setup.client()
        #expect(try await bystander.request(.get, "/health").status == 200)
        // CVE-2023-44487: 10,000 streams opened and cancelled at once (HEADERS, then RST_STREAM CANCEL).
        let raw = try await setup.rawHTTP2()
        var bytes = Self.preface
        let request: [UInt8] = [0x82, 0x87, 0x84, 0x01, 16] + Array("api.redfire.test".utf8)
        for index in 0..<10_000 {
            let stream = UInt32(2 * index + 1)
            bytes += Self.frame(type: 0x1, flags: 0x5, stream: stream, payload: request)
            bytes += Self.frame(type: 0x3, flags: 0, stream: stream, payload: [0, 0, 0, 0x8])
        }
        try? await raw.send(bytes)
        let (closed, received) = await raw.waitForClose()
        #expect(closed)
        #expect(Self.frameTypes(received).contains(0x7), "GOAWAY was sent")
        #expect(setup.listener.http2ErrorCounts == ["rapid_reset": 1], "\(setup.listener.http2ErrorCounts)")
        #expect(try await bystander.request(.get, "/api/v1/trading/orders").status == 200, "another connection is undisturbed")
        await bystander.close()
        await setup.gateway.shutdown()
    }

    @Test func continuationFloodIsCutOff() async throws {
        let setup = try await Self.start()
        let raw = try await setup.rawHTTP2()
        var bytes = Self.preface
        bytes += Self.frame(type: 0x1, flags: 0, stream: 1, payload: [0x82, 0x87])      // HEADERS, no END_HEADERS
        for _ in 0..<64 { bytes += Self.frame(type: 0x9, flags: 0, stream: 1, payload: [0x84]) }  // CONTINUATION, never ending
        try await raw.send(bytes)
        let (closed, received) = await raw.waitForClose()
        #expect(closed)
        #expect(Self.frameTypes(received).contains(0x7), "GOAWAY was sent")
        #expect(setup.listener.http2ErrorCounts["continuation_flood"] == 1, "\(setup.listener.http2ErrorCounts)")
        await setup.gateway.shutdown()
    }

    /// Raw frames a client must not send, each ending its own connection with GOAWAY (counted), while
    /// another client's connection carries on.
    @Test(arguments: ["ping_flood", "settings_flood", "hpack_bomb", "hpack_table_abuse"])
    func abusiveConnectionsAreEndedAndCounted(attack: String) async throws {
        let setup = try await Self.start()
        let bystander = try await setup.client()
        #expect(try await bystander.request(.get, "/health").status == 200)
        let raw = try await setup.rawHTTP2()
        var bytes = Self.preface
        let request: [UInt8] = [0x82, 0x87, 0x84, 0x41, 16] + Array("api.redfire.test".utf8)
        switch attack {
        case "ping_flood":
            for index in 0..<1000 { bytes += Self.frame(type: 0x6, flags: 0, stream: 0, payload: Array(repeating: UInt8(index & 0xff), count: 8)) }
        case "settings_flood":
            for _ in 0..<1000 { bytes += Self.frame(type: 0x4, flags: 0, stream: 0, payload: []) }
        case "hpack_bomb":
            // One 4000-byte field into the dynamic table, then referenced (one byte each) until the
            // decoded list passes max_header_list_size (64 KiB).
            var block = request + [0x40, 6] + Array("x-bomb".utf8) + Self.hpackInteger(4000, prefix: 7, flags: 0) + Array(repeating: UInt8(ascii: "a"), count: 4000)
            block += Array(repeating: 0xbe, count: 40)
            bytes += Self.frame(type: 0x1, flags: 0x5, stream: 1, payload: block)
        default:
            // A dynamic table size update far beyond the 4096 bytes the gateway allows.
            bytes += Self.frame(type: 0x1, flags: 0x5, stream: 1, payload: Self.hpackInteger(1_000_000, prefix: 5, flags: 0x20) + request)
        }
        try await raw.send(bytes)
        let (closed, received) = await raw.waitForClose()
        #expect(closed, "the abusive connection is closed")
        #expect(Self.frameTypes(received).contains(0x7), "GOAWAY was sent: \(Self.frameTypes(received))")
        let expected = ["ping_flood": "control_frame_flood", "settings_flood": "control_frame_flood", "hpack_bomb": "malformed_frame",
                        "hpack_table_abuse": "malformed_frame"][attack]!
        #expect(setup.listener.http2ErrorCounts == [expected: 1], "\(setup.listener.http2ErrorCounts)")
        print("HTTP/2 \(attack): counted as \(setup.listener.http2ErrorCounts)")
        #expect(try await bystander.request(.get, "/api/v1/trading/orders").status == 200, "another connection is undisturbed")
        await bystander.close()
        await setup.gateway.shutdown()
    }

    /// HPACK's integer encoding (RFC 7541 §5.1): `prefix` bits in the first byte, with `flags` above them.
    static func hpackInteger(_ value: Int, prefix: Int, flags: UInt8) -> [UInt8] {
        let limit = (1 << prefix) - 1
        if value < limit { return [flags | UInt8(value)] }
        var bytes: [UInt8] = [flags | UInt8(limit)]
        var rest = value - limit
        while rest >= 128 {
            bytes.append(UInt8(rest % 128 + 128))
            rest /= 128
        }
        bytes.append(UInt8(rest))
        return bytes
    }

    @Test func gracefulShutdownSendsGoAwayAndLetsOpenStreamsFinish() async throws {
        let setup = try await Self.start()
        let client = try await setup.client()
        let slow = Task { try await client.request(.get, "/api/v1/trading/orders?sleep_ms=600") }
        await waitUntil("the request reached the instance") { setup.instances[0].inFlight == 1 }
        let shutdown = Task { await setup.gateway.shutdown() }
        #expect(await waitUntil("GOAWAY") { !client.goAways.isEmpty })
        #expect(try await slow.value.status == 200, "the open stream finished")
        #expect(await waitUntil("closed") { client.isClosed })
        await shutdown.value
    }

    @Test func curlSpeaksHTTP2ThroughTheGateway() async throws {
        let setup = try await Self.start()
        let curl = try ChildProcess(["/usr/bin/curl", "-s", "--http2", "--cacert", setup.files.path("ca.pem"),
                                     "--resolve", "api.redfire.test:\(setup.port):127.0.0.1",
                                     "-w", "\n%{http_version} %{http_code}", "https://api.redfire.test:\(setup.port)/api/v1/trading/orders"])
        await waitUntil("curl exits") { !curl.isRunning && curl.outputFinished }
        #expect(curl.output.hasSuffix("\n2 200"), "\(curl.output) \(curl.errorOutput)")
        await setup.gateway.shutdown()
    }

    /// A stream closes as soon as the response's end is written (both sides have ended it): that close
    /// completes the exchange; it is not the client going away. Streamed downloads (curl: the request's
    /// HEADERS carry END_STREAM) are logged with their status and bytes and no `client_closed_request`.
    @Test func aStreamClosedByItsOwnResponseIsNotAHangup() async throws {
        let log = TemporaryPath.make("redfire-h2", ".log")
        let setup = try await Self.start { config in
            config.accessLog.enabled = true
            config.accessLog.path = log
        }
        for index in 0..<3 {
            let curl = try ChildProcess(["/usr/bin/curl", "-s", "--http2", "--cacert", setup.files.path("ca.pem"),
                                         "--resolve", "api.redfire.test:\(setup.port):127.0.0.1", "-H", "X-Request-ID: h2-download-\(index)",
                                         "-o", "/dev/null", "-w", "%{http_version} %{http_code} %{size_download}",
                                         "https://api.redfire.test:\(setup.port)/api/v1/trading/_download?bytes=200000&chunk_ms=2"])
            await waitUntil("curl exits") { !curl.isRunning && curl.outputFinished }
            #expect(curl.output == "2 200 200000", "\(curl.output) \(curl.errorOutput)")
        }
        await setup.gateway.shutdown()
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        for index in 0..<3 {
            let line = try #require(lines.first { $0.contains("h2-download-\(index)") })
            #expect(line.contains(#""protocol":"HTTP/2""#) && line.contains(#""status":200"#) && line.contains(#""bytes_out":200000"#), "\(line)")
            #expect(line.contains(#""error":null"#), "a completed response is not client_closed_request: \(line)")
        }
    }

    /// README: `swift run redfire-gateway demo --tls` serves HTTPS and HTTP/2 with a certificate it makes
    /// itself; its own traffic goes over HTTP/2 too.
    @Test func demoWithTLSServesHTTPSAndHTTP2() async throws {
        let demo = try GatewayProcess(["demo", "--tls", "--no-tui", "--listen", "127.0.0.1:0", "--rate", "5"])
        await waitUntil(timeout: .seconds(30), "the demo's banner") { demo.output.contains("stop:") }
        let line = try #require(demo.output.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("gateway:") }, "\(demo.output)\n\(demo.errorOutput)")
        let url = String(try #require(line.split(separator: " ").last))
        #expect(url.hasPrefix("https://127.0.0.1:"), "\(line)")
        let access = try #require(demo.output.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("access:") }?.split(separator: " ").dropFirst().first { $0.hasPrefix("/") })
        #expect(demo.output.contains("curl -i -k --http2"), "the banner shows how to call it")
        let curl = try ChildProcess(["/usr/bin/curl", "-s", "-k", "--http2", "-w", "\n%{http_version} %{http_code}", url + "/health"])
        await waitUntil("curl exits") { !curl.isRunning && curl.outputFinished }
        #expect(curl.output.hasSuffix("\n2 200"), "\(curl.output) \(curl.errorOutput)")
        // The demo's traffic generator reaches the services through it, over HTTP/2 and TLS.
        #expect(await waitUntil(timeout: .seconds(20), "HTTP/2 traffic in the access log") {
            let log = (try? String(contentsOfFile: String(access), encoding: .utf8)) ?? ""
            return log.split(separator: "\n").contains { $0.contains(#""protocol":"HTTP/2","tls":"TLSv1.3""#) && $0.contains(#""status":200"#) && $0.contains("/api/v1/") }
        })
        demo.child.terminate()
        #expect(await demo.waitForExit() == 0)
    }

    /// The client connection preface (RFC 9113 §3.4) and an empty SETTINGS frame.
    static var preface: [UInt8] { Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + frame(type: 0x4, flags: 0, stream: 0, payload: []) }

    static func frame(type: UInt8, flags: UInt8, stream: UInt32, payload: [UInt8]) -> [UInt8] {
        let length = payload.count
        return [UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff), type, flags,
                UInt8(stream >> 24 & 0x7f), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff)] + payload
    }

    /// The types of the frames in `bytes` (the server's side: no preface).
    static func frameTypes(_ bytes: [UInt8]) -> [UInt8] {
        var types: [UInt8] = []
        var index = 0
        while index + 9 <= bytes.count {
            let length = Int(bytes[index]) << 16 | Int(bytes[index + 1]) << 8 | Int(bytes[index + 2])
            types.append(bytes[index + 3])
            index += 9 + length
        }
        return types
    }
}
}
