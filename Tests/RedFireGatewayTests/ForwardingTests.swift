import AsyncHTTPClient
import DemoServices
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import RedFireGateway

@Suite("Forwarding", .cleansUp, .timeLimit(.minutes(2)))
struct ForwardingTests {
    @Test(arguments: UpstreamTransportKind.allCases)
    func hopByHopHeadersNeverReachTheUpstreamAndForwardingHeadersDo(_ transport: UpstreamTransportKind) async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await tradingGateway(instances, transport: transport)
        let report = try await gateway.echo(.POST, "/api/v1/trading/_echo", headers: [
            ("Connection", "keep-alive, X-Private-Hop"),
            ("X-Private-Hop", "secret"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers"),
            ("Trailer", "X-Checksum"),
            ("Upgrade", "websocket"),
            ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
            ("X-Forwarded-For", "203.0.113.7"),
            ("X-Request-ID", "client-trace-123"),
            ("X-Custom", "kept"),
            ("Cookie", "a=1"),
            ("Cookie", "b=2"),
        ], body: ByteBuffer(string: "hello"))
        for name in ["connection", "x-private-hop", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "proxy-authorization", "transfer-encoding"] {
            #expect(report.headers[name] == nil, "\(name) reached the upstream")
        }
        #expect(report.headers["x-custom"] == ["kept"])
        #expect(report.headers["cookie"] == ["a=1; b=2"], "one Cookie line upstream (RFC 6265 §5.4)")
        #expect(report.headers["content-length"] == ["5"])
        #expect(report.headers["x-forwarded-for"] == ["127.0.0.1"], "a forwarding claim from an untrusted peer is replaced by the peer")
        #expect(report.headers["x-real-ip"] == ["127.0.0.1"])
        #expect(report.headers["x-forwarded-proto"] == ["http"])
        #expect(report.headers["x-forwarded-host"] == ["127.0.0.1:\(gateway.port)"])
        #expect(report.headers["x-request-id"] == ["client-trace-123"])
        #expect(report.headers["x-gateway-service"] == ["api-gateway"])
        #expect(report.bodyLength == 5)
        #expect(report.method == "POST")
        await gateway.shutdown()
        await stopAll(instances)
    }

    /// A request that declares an empty body (`Content-Length: 0`) has no body stream at the gateway: the
    /// instance gets the declared length and nothing after it, and the next request follows on its own.
    @Test(arguments: UpstreamTransportKind.allCases)
    func anEmptyDeclaredBodyIsForwardedAsEmpty(_ transport: UpstreamTransportKind) async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await tradingGateway(instances, transport: transport)
        for _ in 0..<2 {
            let report = try await gateway.echo(.POST, "/api/v1/trading/_echo", headers: [("Content-Length", "0")], body: ByteBuffer())
            #expect(report.method == "POST")
            #expect(report.headers["content-length"] == ["0"])
            #expect(report.headers["transfer-encoding"] == nil)
            #expect(report.bodyLength == 0)
        }
        let after = try await gateway.echo(.POST, "/api/v1/trading/_echo", body: ByteBuffer(string: "next"))
        #expect(after.bodyLength == 4 && after.headers["content-length"] == ["4"])
        await gateway.shutdown()
        await stopAll(instances)
    }

    /// A response to HEAD declares a length but has no body: the gateway must neither wait for one from
    /// the instance nor send one to the client, and both connections stay usable for the next request.
    @Test(arguments: UpstreamTransportKind.allCases)
    func headResponsesHaveNoBodyAndConnectionsStayUsable(_ transport: UpstreamTransportKind) async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await tradingGateway(instances, transport: transport)
        for _ in 0..<3 {
            let started = ContinuousClock.now
            let head = try await gateway.send(.HEAD, "/api/v1/trading/_download?bytes=1000")
            #expect(head.status == 200)
            #expect(head.headers.first(name: "Content-Length") == "1000")
            #expect(head.body.isEmpty)
            // Waiting for the announced body would last the service's idle timeout (60 s); 10 s leaves a
            // loaded machine room (one CI run took 2.06 s here while the suite's servers were starting).
            #expect(ContinuousClock.now - started < .seconds(10), "answered without waiting for a body")
            let get = try await gateway.send("/api/v1/trading/orders")
            #expect(get.status == 200 && get.instance == "user_trading-1")
        }
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test(arguments: UpstreamTransportKind.allCases)
    func aForwardedStatusLineCarriesItsReasonPhrase(transport: UpstreamTransportKind) async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await tradingGateway(instances, transport: transport)
        let connection = try await RawConnection(port: gateway.port)
        try await connection.write("GET /api/v1/trading/orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let (closed, bytes) = try await connection.waitForClose()
        #expect(closed && bytes.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(bytes.prefix(40))")
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test func getWithoutBodyReachesUpstreamWithoutBodyOrTransferEncoding() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await tradingGateway(instances)
        let report = try await gateway.echo("/api/v1/trading/_echo")
        #expect(report.headers["transfer-encoding"] == nil)
        #expect(report.headers["content-length"] == nil)
        #expect(report.bodyLength == 0)
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test func requestIDIsKeptWhenWellFormedAndGeneratedOtherwise() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await tradingGateway(instances)
        let kept = try await gateway.send("/api/v1/trading/orders", headers: [("X-Request-ID", "abc-123")])
        #expect(kept.headers.first(name: "X-Request-ID") == "abc-123")
        let replaced = try await gateway.send("/api/v1/trading/orders", headers: [("X-Request-ID", "bad id\"{}")])
        let generated = try #require(replaced.headers.first(name: "X-Request-ID"))
        #expect(generated != "bad id\"{}")
        #expect(generated.count == 32)
        let other = try await gateway.send("/api/v1/trading/orders")
        #expect(other.headers.first(name: "X-Request-ID") != generated)
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test(arguments: UpstreamTransportKind.allCases)
    func responsesPassThroughUnchanged(_ transport: UpstreamTransportKind) async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await tradingGateway(instances, transport: transport)
        let reply = try await gateway.send("/api/v1/trading/orders?status=418")
        #expect(reply.status == 418)
        #expect(reply.headers.first(name: "X-Demo-Instance") == "user_trading-1")
        #expect(try reply.json()["path"] as? String == "/api/v1/trading/orders")
        // An upstream redirect is passed to the client, never followed.
        let redirect = try await gateway.send("/api/v1/trading/orders?status=302")
        #expect(redirect.status == 302)
        await gateway.shutdown()
        await stopAll(instances)
    }

    /// Bodies of the gateway's own errors never carry addresses, ports or internal error text.
    static func expectClean(_ reply: GatewayHarness.Reply, ports: [Int]) {
        #expect(!reply.body.contains("127.0.0.1"))
        for port in ports { #expect(!reply.body.contains(String(port))) }
        #expect(!reply.body.lowercased().contains("error:"))
        #expect(!reply.body.contains("NIO"))
        #expect(!reply.body.contains("HTTPClient"))
        #expect(reply.headers.first(name: "Content-Type") == "application/json")
        #expect(reply.headers.first(name: "X-Request-ID") != nil)
    }

    @Test func allInstancesDownAnswers503FastWithRetryAfter() async throws {
        let instances = try await startInstances(.userTrading, count: 2)
        let gateway = try await tradingGateway(instances)
        let ports = instances.map(\.port)
        await stopAll(instances)
        await waitUntil("both unhealthy") { gateway.registry.state.services[0].eligible.isEmpty }
        // Five on a warm connection: the answer must not wait for anything (no connect attempt, whose
        // timeout is 1 s, no timer). A wait would show in every sample, so the fastest one proves its
        // absence while a loaded 2-core machine's scheduling noise (other suites run in parallel, a
        // debug build) stays out; the median gets a looser bound.
        var durations: [Duration] = []
        var reply = try await gateway.send("/health")
        for _ in 0..<5 {
            let started = ContinuousClock.now
            reply = try await gateway.send("/api/v1/trading/orders")
            durations.append(ContinuousClock.now - started)
            #expect(reply.status == 503)
            #expect(reply.errorCode == "upstream_unavailable")
            #expect(reply.headers.first(name: "Retry-After") == "1")
        }
        let sorted = durations.sorted()
        #expect(sorted[0] < .milliseconds(400), "503 took at least \(sorted[0]) (\(durations))")
        #expect(sorted[2] < .milliseconds(800), "503 median \(sorted[2]) (\(durations))")
        Self.expectClean(reply, ports: ports)
        await gateway.shutdown()
        // Stopped instances hold their ports (refusing) only while they live.
        withExtendedLifetime(instances) {}
    }

    @Test(arguments: UpstreamTransportKind.allCases)
    func hungUpstreamAnswers504AfterTheResponseTimeout(_ transport: UpstreamTransportKind) async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await tradingGateway(instances, transport: transport) { $0.timeouts.responseHeaders = .milliseconds(300) }
        let started = ContinuousClock.now
        let reply = try await gateway.send("/api/v1/trading/orders?sleep_ms=3000")
        let elapsed = ContinuousClock.now - started
        #expect(reply.status == 504)
        #expect(reply.errorCode == "upstream_timeout")
        #expect(elapsed >= .milliseconds(300) && elapsed < .milliseconds(2500), "504 after \(elapsed), not the instance's 3 s")
        Self.expectClean(reply, ports: instances.map(\.port))
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test(arguments: UpstreamTransportKind.allCases)
    func refusedConnectionAnswers502(_ transport: UpstreamTransportKind) async throws {
        // A port that refuses: bind, note it, close it.
        let instances = try await startInstances(.userTrading, count: 1)
        let port = instances[0].port
        await instances[0].stop()
        let gateway = try await tradingGateway(instances, transport: transport) { $0.healthCheck.enabled = false }
        let reply = try await gateway.send("/api/v1/trading/orders")
        #expect(reply.status == 502)
        #expect(reply.errorCode == "bad_gateway")
        Self.expectClean(reply, ports: [port])
        await gateway.shutdown()
        // The stopped instance holds its port (refusing) only while it lives: released earlier, another
        // test's server could be given the port and answer.
        await stopAll(instances)
    }

    @Test(arguments: UpstreamTransportKind.allCases)
    func garbageFromUpstreamAnswers502(_ transport: UpstreamTransportKind) async throws {
        let garbage = try await GarbageServer.start()
        let gateway = try await rawInstanceGateway(port: garbage.port, id: "garbage", transport: transport)
        let reply = try await gateway.send("/api/v1/trading/orders")
        #expect(reply.status == 502)
        Self.expectClean(reply, ports: [garbage.port])
        await gateway.shutdown()
        try await garbage.close()
    }

    @Test(arguments: UpstreamTransportKind.allCases)
    func retriesMoveIdempotentRequestsToAnotherInstance(_ transport: UpstreamTransportKind) async throws {
        let instances = try await startInstances(.userTrading, count: 2)
        let gateway = try await tradingGateway(instances, transport: transport) {
            $0.healthCheck.enabled = false
            $0.passiveEjection.enabled = false
            $0.retries.attempts = 2
        }
        await instances[0].stop()
        for _ in 0..<6 {
            let reply = try await gateway.send("/api/v1/trading/orders")
            #expect(reply.status == 200)
            #expect(reply.instance == "user_trading-2")
        }
        // A POST without Idempotency-Key is never retried; with one, it is (nothing was sent).
        var statuses: [Int] = []
        for _ in 0..<4 { statuses.append(try await gateway.send(.POST, "/api/v1/trading/orders").status) }
        #expect(statuses.filter { $0 == 502 }.count == 2, "\(statuses)")
        #expect(statuses.filter { $0 == 201 }.count == 2, "\(statuses)")
        for _ in 0..<4 {
            #expect(try await gateway.send(.POST, "/api/v1/trading/orders", headers: [("Idempotency-Key", UUID().uuidString)]).status == 201)
        }
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test func passiveEjectionRemovesAFailingInstance() async throws {
        let instances = try await startInstances(.userTrading, count: 2)
        let gateway = try await tradingGateway(instances) {
            $0.healthCheck.enabled = false
            $0.passiveEjection.consecutiveFailures = 3
            // Long enough that a loaded machine cannot finish the ejection before it is checked.
            $0.passiveEjection.baseTime = .seconds(5)
        }
        instances[0].setBehaviour(.failing)
        var failures = 0
        for _ in 0..<10 where try await gateway.send("/api/v1/trading/orders").status == 500 { failures += 1 }
        #expect(failures == 3)
        let runtime = try #require(gateway.registry.runtime(id: "user_trading-1"))
        #expect(runtime.state == .ejected)
        instances[0].setBehaviour(.normal)
        await waitUntil("ejection ends") { runtime.state != .ejected }
        // The ejection's end and the snapshot rebuild happen in the same maintenance tick.
        await waitUntil("both eligible again") { gateway.registry.state.services[0].eligible.count == 2 }
        #expect(gateway.registry.events.recent().contains { $0.kind == .ejection })
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test func panicRoutingSpreadsOverUnhealthyInstancesWhenConfigured() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await tradingGateway(instances) {
            $0.panicRouting = true
            $0.healthCheck.path = "/does-not-exist?status=500"
        }
        await waitUntil("panic") { gateway.registry.state.services[0].panic }
        #expect(try await gateway.send("/api/v1/trading/orders").status == 200)
        await gateway.shutdown()
        await stopAll(instances)
    }

    /// An instance that closes every connection right after a complete response, without saying
    /// `Connection: close`: pooled connections go stale between requests, and no request fails for it
    /// (the NIO transport retries a bodiless idempotent request once on a fresh connection when a
    /// kept-alive one turns out closed; AsyncHTTPClient does not, and fails such a request now and then).
    @Test(arguments: [UpstreamTransportKind.nio])
    func instanceClosingKeptAliveConnectionsFailsNoRequest(_ transport: UpstreamTransportKind) async throws {
        let server = try await ScriptedServer.start {
            ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok", close: true)
        }
        let gateway = try await rawInstanceGateway(port: server.port, id: "scripted", transport: transport)
        for _ in 0..<30 {
            let reply = try await gateway.send("/api/v1/trading/orders")
            #expect(reply.status == 200 && reply.body == "ok", "\(reply.status) \(reply.body)")
        }
        await gateway.shutdown()
        try await server.close()
    }

    /// An instance that promises 1000 bytes and closes after 100: the client's response ends early (its
    /// connection closes — a truncated body is never passed off as complete) and nothing stays in flight.
    @Test(arguments: UpstreamTransportKind.allCases)
    func instanceDyingMidBodyTruncatesTheResponseAndReleasesTheRequest(_ transport: UpstreamTransportKind) async throws {
        let server = try await ScriptedServer.start {
            ("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + String(repeating: "x", count: 100), close: true)
        }
        let gateway = try await rawInstanceGateway(port: server.port, id: "scripted", transport: transport)
        let connection = try await RawConnection(port: gateway.port)
        try await connection.write("GET /api/v1/trading/orders HTTP/1.1\r\nHost: x\r\n\r\n")
        let (closed, bytes) = try await connection.waitForClose(timeoutSeconds: 5)
        #expect(closed, "the client connection is closed: the response cannot complete")
        #expect(bytes.hasPrefix("HTTP/1.1 200") && bytes.utf8.count < 1000)
        let runtime = try #require(gateway.registry.runtime(id: "scripted"))
        await waitUntil("nothing in flight") { runtime.inFlight == 0 }
        await gateway.shutdown()
        try await server.close()
    }

    /// What an instance's response loses on the way to the client: hop-by-hop fields (and those its
    /// `Connection` lists), `Server`, its own `X-Request-ID` (the request's is sent); the rest — its
    /// `Date` included — arrives as sent.
    @Test(arguments: UpstreamTransportKind.allCases)
    func responseHeadersLoseHopByHopFieldsAndKeepTheOriginsDate(_ transport: UpstreamTransportKind) async throws {
        let server = try await ScriptedServer.start {
            ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Internal\r\nX-Internal: secret\r\nKeep-Alive: timeout=5\r\n"
                + "Server: nginx/1.22.1\r\nX-Request-ID: upstream-made\r\nDate: Tue, 01 Jan 2030 00:00:00 GMT\r\n"
                + "Proxy-Authenticate: Basic\r\nX-Custom: kept\r\n\r\nok", close: false)
        }
        let gateway = try await rawInstanceGateway(port: server.port, id: "scripted", transport: transport)
        let reply = try await RawHTTP.exchange(port: gateway.port, bytes: Array(
            "GET /api/v1/trading/orders HTTP/1.1\r\nHost: x\r\nX-Request-ID: trace-7\r\nConnection: close\r\n\r\n".utf8))
        #expect(reply.status == 200 && reply.body == "ok")
        for name in ["X-Internal", "Keep-Alive", "Server", "Proxy-Authenticate"] {
            #expect(reply.headers[name].isEmpty, "\(name) is not passed on")
        }
        #expect(reply.headers["X-Request-ID"] == ["trace-7"])
        #expect(reply.headers["Date"] == ["Tue, 01 Jan 2030 00:00:00 GMT"])
        #expect(reply.headers["X-Custom"] == ["kept"])
        await gateway.shutdown()
        try await server.close()
    }

    /// The service's `idle` timeout closes a kept-alive connection nobody uses — not before it passed.
    @Test(arguments: [UpstreamTransportKind.nio])
    func keptAliveConnectionsCloseAfterTheIdleTimeout(_ transport: UpstreamTransportKind) async throws {
        let server = try await ScriptedServer.start {
            ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", close: false)
        }
        let gateway = try await rawInstanceGateway(port: server.port, id: "scripted", transport: transport, service: { $0.timeouts.idle = .milliseconds(400) })
        let reply = try await gateway.send("/api/v1/trading/orders")
        #expect(reply.status == 200)
        await waitUntil(timeout: .seconds(5), "the idle connection closed") { server.connectionsClosed == 1 }
        // Measured by the server's own clock readings: from its reply to the close it saw.
        let (replied, closed) = (try #require(server.lastReplyAt), try #require(server.lastCloseAt))
        #expect(closed - replied >= .milliseconds(400) && closed - replied < .seconds(3), "closed \(closed - replied) after the reply")
        await gateway.shutdown()
        try await server.close()
    }

    /// An instance that sends part of a body and then falls silent is given up after the `idle`
    /// timeout: the client's connection closes without a complete response, nothing stays in flight.
    @Test(arguments: [UpstreamTransportKind.nio])
    func instanceFallingSilentMidBodyIsGivenUpAfterTheIdleTimeout(_ transport: UpstreamTransportKind) async throws {
        let server = try await ScriptedServer.start {
            ("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + String(repeating: "x", count: 100), close: false)
        }
        let gateway = try await rawInstanceGateway(port: server.port, id: "scripted", transport: transport, service: { $0.timeouts.idle = .milliseconds(300) })
        let connection = try await RawConnection(port: gateway.port)
        let sent = ContinuousClock.now
        try await connection.write("GET /api/v1/trading/orders HTTP/1.1\r\nHost: x\r\n\r\n")
        let (closed, bytes) = try await connection.waitForClose(timeoutSeconds: 5)
        let elapsed = ContinuousClock.now - sent
        #expect(closed && bytes.hasPrefix("HTTP/1.1 200") && bytes.utf8.count < 1000)
        #expect(elapsed >= .milliseconds(300) && elapsed < .seconds(3), "given up after \(elapsed)")
        let runtime = try #require(gateway.registry.runtime(id: "scripted"))
        await waitUntil("nothing in flight") { runtime.inFlight == 0 }
        await gateway.shutdown()
        try await server.close()
    }
}

/// Raw HTTP/1.1 instances for what a well-behaved one never does, one request per read.
final class ScriptedServer: Sendable {
    let channel: any Channel
    var port: Int { channel.localAddress!.port! }
    private let closed: Counter
    /// Connections the gateway (or the server) has closed so far.
    var connectionsClosed: Int { closed.value.withLock { $0.count } }
    /// When the server last wrote a reply, and last saw a connection close.
    var lastReplyAt: ContinuousClock.Instant? { closed.value.withLock { $0.replied } }
    var lastCloseAt: ContinuousClock.Instant? { closed.value.withLock { $0.closed } }

    final class Counter: Sendable {
        let value = Mutex<(count: Int, replied: ContinuousClock.Instant?, closed: ContinuousClock.Instant?)>((0, nil, nil))
    }

    /// `reply` gives the bytes to answer each request with and whether to close the connection after.
    static func start(_ reply: @escaping @Sendable () -> (String, close: Bool)) async throws -> ScriptedServer {
        let closed = Counter()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.closeFuture.whenComplete { _ in closed.value.withLock { $0.count += 1; $0.closed = .now } }
                return channel.pipeline.addHandler(Handler(reply: reply, counter: closed))
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return ScriptedServer(channel: channel, closed: closed)
    }

    private init(channel: any Channel, closed: Counter) {
        self.channel = channel
        self.closed = closed
    }

    func close() async throws { try await channel.close() }

    final class Handler: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let reply: @Sendable () -> (String, close: Bool)
        let counter: Counter
        init(reply: @escaping @Sendable () -> (String, close: Bool), counter: Counter) {
            self.reply = reply
            self.counter = counter
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let (bytes, close) = reply()
            counter.value.withLock { $0.replied = .now }
            context.writeAndFlush(NIOAny(ByteBuffer(string: bytes)), promise: nil)
            if close { context.close(promise: nil) }
        }
    }
}

/// A TCP server that answers every connection with bytes that are not HTTP.
final class GarbageServer: Sendable {
    let channel: any Channel
    var port: Int { channel.localAddress!.port! }

    private init(channel: any Channel) { self.channel = channel }

    static func start() async throws -> GarbageServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.pipeline.addHandler(GarbageHandler())
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return GarbageServer(channel: channel)
    }

    func close() async throws { try await channel.close() }

    final class GarbageHandler: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.writeAndFlush(NIOAny(ByteBuffer(string: "SSH-2.0-OpenSSH_9.2\r\n\u{0}\u{1}garbage\r\n\r\n")), promise: nil)
            context.close(promise: nil)
        }
    }
}

/// Client-supplied claims about the client, the original request or the user never reach a service,
/// in any spelling (`-`, `_`, `.`, any case); the gateway states the client's address itself.
@Suite("Header hygiene", .cleansUp, .timeLimit(.minutes(2)))
struct HeaderHygieneTests {
    static func normalized(_ name: String) -> String { ClientHeadersConfig.normalize(name) }

    @Test func forwardingAndIdentityClaimsFromClientsNeverReachTheService() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await tradingGateway(instances)
        // One request per spelling (the list in three spellings is more fields than one request may carry).
        let spellings: [(String) -> String] = [
            { $0 },
            { $0.replacingOccurrences(of: "-", with: "_").lowercased() },
            { $0.replacingOccurrences(of: "-", with: ".").uppercased() },
        ]
        for spell in spellings {
            var sent = ClientHeadersConfig.builtIn.map { (spell($0), "forged") }
            sent += ["X-User-Id", "X-User-Roles", "X-Gateway-Token", "X-Gateway-Service"].map { (spell($0), "forged") }
            sent.append(("X-Forwarded-For", "203.0.113.66"))
            sent.append(("X-Custom", "kept"))
            let report = try await gateway.echo("/api/v1/trading/_echo", headers: sent)
            let forged = report.headers.filter { _, values in values.contains { $0.contains("forged") || $0.contains("203.0.113.66") } }
            #expect(forged.isEmpty, "reached the service: \(forged.keys.sorted())")
            #expect(report.headers["x-real-ip"] == ["127.0.0.1"] && report.headers["x-forwarded-for"] == ["127.0.0.1"])
            #expect(report.headers["x-custom"] == ["kept"])
        }
        await gateway.shutdown()
        await stopAll(instances)
    }

    /// `client_headers` adds names to the list and takes built-in ones out; a trusted proxy's
    /// `X-Forwarded-For` is kept and the peer appended, and `X-Real-IP` names the client it vouches for.
    @Test func theListIsConfigurableAndATrustedProxysForwardingIsKept() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        var service = serviceConfig("user_trading", instances)
        service.healthCheck.enabled = false
        var config = GatewayConfig()
        config.services = [service]
        config.routes = [RouteConfig(prefix: "/api/v1/trading", service: "user_trading")]
        config.trustedProxies = [CIDR(parsing: "127.0.0.1/32")!]
        config.clientHeaders.strip = ["X-Debug-As"]
        config.clientHeaders.keep = ["X-HTTP-Method-Override"]
        let gateway = try await GatewayHarness.start(config)
        let report = try await gateway.echo("/api/v1/trading/_echo", headers: [("X-Debug_As", "admin"), ("X-HTTP-Method-Override", "PATCH"),
                                                                                ("X-Forwarded-For", "203.0.113.66"), ("X-Real-IP", "10.9.9.9")])
        #expect(report.headers["x-debug_as"] == nil && report.headers["x-debug-as"] == nil)
        #expect(report.headers["x-http-method-override"] == ["PATCH"])
        #expect(report.headers["x-forwarded-for"] == ["203.0.113.66, 127.0.0.1"])
        #expect(report.headers["x-real-ip"] == ["203.0.113.66"])
        await gateway.shutdown()
        await stopAll(instances)

        let yaml = try CommandLineTests.writeConfig(ConfigTests.minimalYAML + "\nclient_headers:\n  strip: [\"bad name\"]\n  keep: [X-Custom]\n")
        #expect(throws: ConfigError.self) { try GatewayConfig.load(path: yaml) }
        do {
            _ = try GatewayConfig.load(path: yaml)
        } catch let error as ConfigError {
            #expect(error.problems.map(\.path) == ["client_headers.strip", "client_headers.keep"], "\(error)")
        }
    }
}
