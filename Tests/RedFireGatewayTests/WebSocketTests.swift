import DemoServices
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NIOWebSocket
import Synchronization
import Testing
import WSClient
import WSCompression

@testable import RedFireGateway

typealias WebSocketTests = BulkTraffic.WebSocketTests

/// A WebSocket client's view of one connection through the gateway: what it received and how it ended.
struct WebSocketSession {
    var messages: [WebSocketMessage] = []
    var close: WebSocketCloseFrame?
    var closeCode: UInt16? { close.map { UInt16(webSocketErrorCode: $0.closeCode) } }
}

/// Opens a WebSocket to the gateway with swift-websocket's client and runs `body` on it.
@discardableResult
func withWebSocket(port: Int, path: String, headers: HTTPFields = [:], deflate: Bool = false, autoPing: AutoPingSetup = .disabled,
                   _ body: @escaping @Sendable (WebSocketInboundStream, WebSocketOutboundWriter) async throws -> [WebSocketMessage]) async throws -> WebSocketSession {
    let received = Mutex<[WebSocketMessage]>([])
    var configuration = WebSocketClientConfiguration(maxFrameSize: 16 << 20, additionalHeaders: headers,
                                                     extensions: deflate ? [.perMessageDeflate(maxDecompressedFrameSize: 16 << 20)] : [])
    configuration.closeTimeout = .seconds(5)
    configuration.autoPing = autoPing
    var logger = Logger(label: "test.websocket")
    logger.logLevel = .critical
    let close = try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)\(path)", configuration: configuration, logger: logger) { inbound, outbound, _ in
        let messages = try await body(inbound, outbound)
        received.withLock { $0 = messages }
    }
    return WebSocketSession(messages: received.withLock { $0 }, close: close)
}

/// Reads messages until the stream ends (the gateway or the instance closed it).
func readAll(_ inbound: WebSocketInboundStream) async throws -> [WebSocketMessage] {
    var messages: [WebSocketMessage] = []
    for try await message in inbound.messages(maxSize: 16 << 20) { messages.append(message) }
    return messages
}

extension BulkTraffic {
@Suite("WebSocket", .serialized, .cleansUp, .timeLimit(.minutes(2)))
struct WebSocketTests {
    static func gateway(_ instances: [DemoInstance], websocket: WebSocketRouteConfig? = WebSocketRouteConfig(),
                        configure: (inout GatewayConfig) -> Void = { _ in }) async throws -> GatewayHarness {
        var route = RouteConfig(prefix: "/api/v1/vnpy", service: "vnpy_core")
        route.websocket = websocket
        var config = GatewayConfig()
        config.services = [serviceConfig("vnpy_core", instances)]
        config.routes = [route, RouteConfig(prefix: "/api/v1/plain", service: "vnpy_core")]
        configure(&config)
        let harness = try await GatewayHarness.start(config)
        await waitUntil("instances checked") { harness.registry.state.services[0].members.allSatisfy { $0.runtime.health == .healthy } }
        return harness
    }

    @Test("Text and binary messages of 1 B to 8 MB, and a fragmented one, come back unchanged through the gateway")
    func echo() async throws {
        let instances = try await startInstances(.vnpyCore, count: 1)
        var websocket = WebSocketRouteConfig()
        websocket.maxClientMessage = 16 << 20
        let harness = try await Self.gateway(instances, websocket: websocket)
        defer { Task { await harness.shutdown() } }
        let sizes = [1, 125, 126, 65_535, 65_536, 1 << 20, 8_000_000]
        let session = try await withWebSocket(port: harness.port, path: "/api/v1/vnpy/_ws_echo") { inbound, outbound in
            var iterator = inbound.messages(maxSize: 16 << 20).makeAsyncIterator()
            var replies: [WebSocketMessage] = []
            for size in sizes {
                var binary = ByteBuffer()
                binary.writeBytes((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 13) })
                try await outbound.write(.binary(binary))
                replies.append(try #require(await iterator.next()))
                try await outbound.write(.text(String(repeating: "x", count: size)))
                replies.append(try #require(await iterator.next()))
            }
            // One message in three fragments.
            try await outbound.withTextMessageWriter { write in
                try await write("frag-")
                try await write("ment-")
                try await write("ed")
            }
            replies.append(try #require(await iterator.next()))
            try await outbound.close(.normalClosure, reason: "done")
            return replies
        }
        #expect(session.messages.count == sizes.count * 2 + 1)
        for (index, size) in sizes.enumerated() {
            guard case .binary(let buffer) = session.messages[index * 2] else { Issue.record("message \(index * 2) is not binary"); continue }
            #expect(buffer.readableBytes == size)
            #expect(Array(buffer.readableBytesView) == (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 13) })
            #expect(session.messages[index * 2 + 1] == .text(String(repeating: "x", count: size)))
        }
        #expect(session.messages.last == .text("frag-ment-ed"))
        #expect(session.closeCode == 1000)
        let telemetry = harness.registry.state.routes.first { $0.name == "/api/v1/vnpy" }!.metrics.streams
        await waitUntil("the stream is counted closed") { telemetry.openCount == 0 && telemetry.totals().closes.values.reduce(0, +) == 1 }
        let totals = telemetry.totals()
        #expect(totals.messagesIn == sizes.count * 2 + 1)
        #expect(totals.messagesOut == sizes.count * 2 + 1)
        #expect(totals.closes[.init(kind: .websocket, code: 1000)] == 1)
        let metrics = try await harness.send("/metrics").body
        #expect(metrics.contains(#"gateway_streams_closed_total{route="/api/v1/vnpy",service="vnpy_core",kind="websocket",code="1000"} 1"#))
        #expect(metrics.contains(#"gateway_stream_messages_total{service="vnpy_core",instance="vnpy_core-1",direction="in"} 15"#))
        #expect(metrics.contains(#"gateway_streams_open{route="/api/v1/vnpy",service="vnpy_core",kind="websocket"} 0"#))
    }

    @Test("Subprotocols and permessage-deflate are negotiated end to end; compressed frames cross the gateway compressed")
    func negotiation() async throws {
        let instances = try await startInstances(.vnpyCore, count: 1)
        let harness = try await Self.gateway(instances)
        defer { Task { await harness.shutdown() } }
        let text = String(repeating: "tick rb2501 3652 ", count: 6_000)
        let session = try await withWebSocket(port: harness.port, path: "/api/v1/vnpy/_ws_info",
                                              headers: [HTTPField.Name("Sec-WebSocket-Protocol")!: "quotes.v2, quotes.v1"], deflate: true) { inbound, outbound in
            var iterator = inbound.messages(maxSize: 16 << 20).makeAsyncIterator()
            let info = try #require(await iterator.next())
            try await outbound.write(.text(text))
            let echo = try #require(await iterator.next())
            try await outbound.close(.normalClosure, reason: nil)
            return [info, echo]
        }
        guard case .text(let infoText) = try #require(session.messages.first) else { Issue.record("no info"); return }
        let info = try #require(try JSONSerialization.jsonObject(with: Data(infoText.utf8)) as? [String: String])
        #expect(info["protocol"] == "quotes.v2")
        #expect(info["header.sec-websocket-protocol"] == "quotes.v2, quotes.v1")
        #expect(info["header.sec-websocket-extensions"]?.contains("permessage-deflate") == true)
        #expect(session.messages.last == .text(text))
        // ~100 KB of text each way; compressed, a small fraction of it crossed the gateway.
        let totals = harness.registry.state.routes.first { $0.name == "/api/v1/vnpy" }!.metrics.streams.totals()
        #expect(totals.bytesIn > 0 && totals.bytesIn < text.utf8.count / 10, "client → instance bytes on the wire: \(totals.bytesIn)")
        #expect(totals.bytesOut > 0 && totals.bytesOut < text.utf8.count / 10, "instance → client bytes on the wire: \(totals.bytesOut)")
    }

    @Test("Upgrades are refused before reaching an instance: route without websocket, foreign origin, malformed or wrong version")
    func refusals() async throws {
        let instances = try await startInstances(.vnpyCore, count: 1)
        let harness = try await Self.gateway(instances) { config in config.cors.allowedOrigins = ["https://app.redfire.example"] }
        defer { Task { await harness.shutdown() } }
        let upgrade = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]
        func send(_ path: String, _ headers: [(String, String)]) async throws -> GatewayHarness.Reply {
            try await RawHTTP.send(port: harness.port, target: path, headers: headers)
        }
        let plain = try await send("/api/v1/plain/_ws_echo", upgrade)
        #expect(plain.status == 400)
        #expect(plain.body.contains("websocket_not_allowed"))
        let foreign = try await send("/api/v1/vnpy/_ws_echo", upgrade + [("Origin", "https://evil.example")])
        #expect(foreign.status == 403)
        #expect(foreign.body.contains("origin_not_allowed"))
        let version = try await send("/api/v1/vnpy/_ws_echo", upgrade.filter { $0.0 != "Sec-WebSocket-Version" } + [("Sec-WebSocket-Version", "8")])
        #expect(version.status == 426)
        #expect(version.headers["sec-websocket-version"] == ["13"])
        let noKey = try await send("/api/v1/vnpy/_ws_echo", upgrade.filter { $0.0 != "Sec-WebSocket-Key" })
        #expect(noKey.status == 400)
        #expect(noKey.body.contains("invalid_upgrade"))
        #expect(instances[0].upgradeAttempts == 0)
        // An allowed origin, and the gateway's own host name, pass.
        for origin in ["https://app.redfire.example", "http://127.0.0.1:\(harness.port)", "https://127.0.0.1"] {
            let request = "GET /api/v1/vnpy/_ws_echo HTTP/1.1\r\nHost: 127.0.0.1:\(harness.port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: \(origin)\r\n\r\n"
            let reply = try await RawHTTP.exchange(port: harness.port, bytes: Array(request.utf8), timeoutSeconds: 2)
            #expect(reply.status == 101, "origin \(origin)")
            #expect(reply.headers["sec-websocket-accept"] == ["s3pPLMBiTxaQ9kYGzzhZRbK+xOo="])
        }
        #expect(instances[0].upgradeAttempts == 3)
    }

    @Test("wss:// end to end: a TLS listener in front, an https:// instance behind (both verified), over either upstream transport", arguments: UpstreamTransportKind.allCases)
    func tlsBothWays(transport: UpstreamTransportKind) async throws {
        let files = try TLSListenerTests.Files()
        let instance = try await UpstreamTLSTests.secureInstance(files, id: "vnpy_core-1")
        var listenerTLS = ListenerTLSConfig(certificates: [try files.server("api", names: ["api.redfire.test"])])
        listenerTLS.hsts = nil
        var route = RouteConfig(prefix: "/api/v1/vnpy", service: "vnpy_core")
        route.websocket = WebSocketRouteConfig()
        var service = serviceConfig("vnpy_core", [instance])
        service.tls = UpstreamTLSConfig(ca: files.path("ca.pem"))
        var config = GatewayConfig()
        config.upstreamTransport = transport
        config.listeners = [ListenerConfig(address: TLSListenerTests.loopback, tls: listenerTLS)]
        config.services = [service]
        config.routes = [route]
        let harness = try await GatewayHarness.start(config)
        defer { Task { await harness.shutdown() } }
        var clientTLS = TLSConfiguration.makeClientConfiguration()
        clientTLS.trustRoots = .certificates(try files.trust)
        var logger = Logger(label: "test.websocket")
        logger.logLevel = .critical
        let received = Mutex<[WebSocketMessage]>([])
        let close = try await WebSocketClient.connect(url: "wss://127.0.0.1:\(harness.port)/api/v1/vnpy/_ws_echo",
                                                      configuration: .init(sniHostname: "api.redfire.test"), tlsConfiguration: clientTLS,
                                                      logger: logger) { inbound, outbound, _ in
            try await outbound.write(.text("over TLS both ways"))
            var iterator = inbound.messages(maxSize: 1 << 16).makeAsyncIterator()
            let reply = try #require(await iterator.next())
            received.withLock { $0 = [reply] }
            try await outbound.close(.normalClosure, reason: nil)
        }
        #expect(received.withLock { $0 } == [.text("over TLS both ways")])
        #expect(close.map { UInt16(webSocketErrorCode: $0.closeCode) } == 1000)
    }

    @Test("A message over the route's limit closes the stream: 1009 to the client")
    func messageTooBig() async throws {
        let instances = try await startInstances(.vnpyCore, count: 1)
        var websocket = WebSocketRouteConfig()
        websocket.maxClientMessage = 1024
        let harness = try await Self.gateway(instances, websocket: websocket)
        defer { Task { await harness.shutdown() } }
        let session = try await withWebSocket(port: harness.port, path: "/api/v1/vnpy/_ws_echo") { inbound, outbound in
            try await outbound.write(.text(String(repeating: "a", count: 1000)))
            var iterator = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
            let small = try #require(await iterator.next())
            try await outbound.write(.text(String(repeating: "b", count: 2000)))
            var rest: [WebSocketMessage] = [small]
            while let message = try await iterator.next() { rest.append(message) }
            return rest
        }
        #expect(session.messages == [.text(String(repeating: "a", count: 1000))])
        #expect(session.closeCode == 1009)
    }

    /// A gateway with auth: `/api/v1/vnpy` relays WebSockets to a `vnpy:read` holder (the trader role).
    static func authGateway(_ instances: [DemoInstance], accessTokenTTL: Duration) async throws
        -> (harness: GatewayHarness, token: @Sendable (String, String?) async throws -> String) {
        var route = RouteConfig(prefix: "/api/v1/vnpy", service: "vnpy_core", permissions: RoutePermissions(read: "vnpy:read"))
        route.websocket = WebSocketRouteConfig()
        var config = GatewayConfig()
        config.services = [serviceConfig("vnpy_core", instances)]
        config.routes = [route]
        config.dataDirectory = TemporaryPath.make("redfire-ws")
        config.auth.jwtSecret = AuthFlowTests.secret
        config.auth.bcryptCost = 4
        config.auth.accessTokenTTL = accessTokenTTL
        config.auth.roles = ["trader": ["vnpy:read"], "viewer": ["trading:read"]]
        config.auth.defaultRoles = ["trader"]
        config.auth.maxCredentialFailures = 100_000
        let harness = try await GatewayHarness.start(config)
        let databasePath = config.auth.databasePath(dataDirectory: config.dataDirectory)
        return (harness, { user, role in
            let credentials = #"{"username":"\#(user)","password":"correct-horse-battery"}"#
            _ = try await harness.send(.POST, "/api/v1/auth/register", headers: [("Content-Type", "application/json")], body: ByteBuffer(string: credentials))
            if let role {
                let store = try UserStore(path: databasePath, bcryptCost: 4)
                try await store.revoke(user, role: "trader")
                try await store.grant(user, role: role)
            }
            let login = try await harness.send(.POST, "/api/v1/auth/login", headers: [("Content-Type", "application/json")], body: ByteBuffer(string: credentials))
            return try #require(try login.json()["access_token"] as? String)
        })
    }

    @Test("With auth: no token, a bad token or a missing permission is refused before the instance; a browser's bearer subprotocol works and leaves the list; an expired token closes the stream with 1008")
    func authentication() async throws {
        let instances = try await startInstances(.vnpyCore, count: 1)
        let (harness, token) = try await Self.authGateway(instances, accessTokenTTL: .seconds(3))
        defer { Task { await harness.shutdown() } }
        let trader = try await token("tina", nil)
        let viewer = try await token("vera", "viewer")
        let upgrade = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]
        #expect(try await RawHTTP.send(port: harness.port, target: "/api/v1/vnpy/_ws_echo", headers: upgrade).status == 401)
        #expect(try await RawHTTP.send(port: harness.port, target: "/api/v1/vnpy/_ws_echo", headers: upgrade + [("Authorization", "Bearer forged.token.x")]).status == 401)
        #expect(try await RawHTTP.send(port: harness.port, target: "/api/v1/vnpy/_ws_echo", headers: upgrade + [("Authorization", "Bearer \(viewer)")]).status == 403)
        #expect(instances[0].upgradeAttempts == 0)

        // A browser's way: the token as a subprotocol; the instance sees the real subprotocol only, and
        // the verified identity instead of the token. The token expires 3 s after login: 1008.
        let session = try await withWebSocket(port: harness.port, path: "/api/v1/vnpy/_ws_info",
                                              headers: [HTTPField.Name("Sec-WebSocket-Protocol")!: "bearer.\(trader), quotes.v1"]) { inbound, _ in
            try await readAll(inbound)
        }
        guard case .text(let infoText) = try #require(session.messages.first) else { Issue.record("no info"); return }
        let info = try #require(try JSONSerialization.jsonObject(with: Data(infoText.utf8)) as? [String: String])
        #expect(info["protocol"] == "quotes.v1")
        #expect(info["header.sec-websocket-protocol"] == "quotes.v1")
        #expect(info["header.authorization"] == nil)
        #expect(info["header.x-user-name"] == "tina")
        #expect(session.closeCode == 1008)
        #expect(session.close?.reason == "token expired")
    }

    @Test("Logging out (revoking the session) closes the session's open streams with 1008 within seconds")
    func revocation() async throws {
        let instances = try await startInstances(.vnpyCore, count: 1)
        let (harness, token) = try await Self.authGateway(instances, accessTokenTTL: .seconds(900))
        defer { Task { await harness.shutdown() } }
        let access = try await token("tina", nil)
        let opened = ContinuousClock.now
        let session = try await withWebSocket(port: harness.port, path: "/api/v1/vnpy/ws/ticks?interval_ms=100",
                                              headers: [.authorization: "Bearer \(access)"]) { inbound, _ in
            var iterator = inbound.messages(maxSize: 1 << 16).makeAsyncIterator()
            let first = try #require(await iterator.next())
            let logout = try await harness.send(.POST, "/api/v1/auth/logout", headers: [("Authorization", "Bearer \(access)"), ("Content-Type", "application/json")],
                                                body: ByteBuffer(string: "{}"))
            #expect(logout.status == 204)
            var rest = [first]
            while let message = try await iterator.next() { rest.append(message) }
            return rest
        }
        #expect(session.closeCode == 1008)
        #expect(session.close?.reason == "authorization revoked")
        #expect(ContinuousClock.now - opened < .seconds(5))
    }

    @Test("Upgrades count against the route's rate limit: past the burst, 429 before the instance")
    func rateLimited() async throws {
        let instances = try await startInstances(.vnpyCore, count: 1)
        let harness = try await Self.gateway(instances) { config in
            config.routes[0].rateLimit = RateLimitPolicy(name: "route", count: 1, period: .seconds(60), burst: 2)
        }
        defer { Task { await harness.shutdown() } }
        let request = "GET /api/v1/vnpy/_ws_echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        var statuses: [Int] = []
        for _ in 0..<3 { statuses.append(try await RawHTTP.exchange(port: harness.port, bytes: Array(request.utf8), timeoutSeconds: 2).status) }
        #expect(statuses == [101, 101, 429])
        #expect(instances[0].upgradeAttempts == 2)
    }

    @Test("Pings and pongs pass end to end (the instance answers, not the gateway) and count as traffic")
    func pingPong() async throws {
        let instances = try await startInstances(.vnpyCore, count: 1)
        var websocket = WebSocketRouteConfig()
        websocket.idleTimeout = .milliseconds(700)
        let harness = try await Self.gateway(instances, websocket: websocket)
        defer { Task { await harness.shutdown() } }
        // The client pings every 200 ms and gives up (close 1001 "Ping timeout") when a pong does not come
        // back; nothing else crosses the stream for 2 s, three times the idle timeout. The stream ends
        // with the client's own 1000 — neither the gateway's idle close nor the client's ping timeout.
        // (The client handles pongs while its inbound stream is read.)
        try await withWebSocket(port: harness.port, path: "/api/v1/vnpy/_ws_echo", autoPing: .enabled(timePeriod: .milliseconds(200))) { inbound, outbound in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { _ = try await readAll(inbound) }
                try await Task.sleep(for: .seconds(2))
                try await outbound.close(.normalClosure, reason: "done")
                try await group.waitForAll()
            }
            return []
        }
        let telemetry = harness.registry.state.routes.first { $0.name == "/api/v1/vnpy" }!.metrics.streams
        #expect(await waitUntil("counted") { telemetry.openCount == 0 })
        #expect(telemetry.totals().closes == [.init(kind: .websocket, code: 1000): 1])
        let durations = telemetry.totals()
        #expect(durations.durationSumSeconds >= 2)
    }

    @Test("A stream with no frames either way for idle_timeout is closed with 1001")
    func idleTimeout() async throws {
        let instances = try await startInstances(.vnpyCore, count: 1)
        var websocket = WebSocketRouteConfig()
        websocket.idleTimeout = .milliseconds(300)
        let harness = try await Self.gateway(instances, websocket: websocket)
        defer { Task { await harness.shutdown() } }
        let started = ContinuousClock.now
        let session = try await withWebSocket(port: harness.port, path: "/api/v1/vnpy/_ws_echo") { inbound, _ in try await readAll(inbound) }
        #expect(session.closeCode == 1001)
        #expect(session.close?.reason == "idle timeout")
        #expect(ContinuousClock.now - started < .seconds(5))
    }
}
}
