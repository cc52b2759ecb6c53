import DemoServices
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing
import WSClient

@testable import RedFireGateway

/// An OTLP/HTTP receiver on loopback: keeps every `POST /v1/traces` body (protobuf) and answers 200.
final class TestCollector: Sendable {
    struct Export: Sendable {
        var contentType: String?
        var body: [UInt8]
    }

    let exports = Mutex<[Export]>([])
    private let channel: any Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    private init(channel: any Channel) { self.channel = channel }

    static func start() async throws -> TestCollector {
        let box = Mutex<TestCollector?>(nil)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Handler { box.withLock { $0 } }) }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let collector = TestCollector(channel: channel)
        box.withLock { $0 = collector }
        TestResources.register { try? await channel.close() }
        return collector
    }

    /// Every span exported so far, decoded by the OpenTelemetry project's protobuf types (Python's
    /// opentelemetry-proto, `Support/otlp-spans.py`).
    func spans() throws -> [[String: Any]] {
        try Self.decode(exports.withLock { $0 }.map(\.body))
    }

    /// OTLP trace export bodies decoded by opentelemetry-proto, their spans as JSON objects.
    static func decode(_ bodies: [[UInt8]]) throws -> [[String: Any]] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("redfire-otlp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var paths: [String] = []
        for (index, body) in bodies.enumerated() {
            let path = directory.appendingPathComponent("\(index).pb").path
            try Data(body).write(to: URL(fileURLWithPath: path))
            paths.append(path)
        }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Support/otlp-spans.py").path
        let child = try ChildProcess(["/usr/bin/env", "python3", script] + paths)
        _ = child.waitUntilExit()
        while !child.outputFinished { usleep(1000) }
        #expect(child.exitCode == 0, "\(child.errorOutput)")
        return try JSONSerialization.jsonObject(with: Data(child.output.utf8)) as? [[String: Any]] ?? []
    }

    /// Whether any export so far contains these bytes (a trace id, a span name).
    func received(_ bytes: [UInt8]) -> Bool {
        exports.withLock { $0.contains { $0.body.firstRange(of: bytes) != nil } }
    }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let collector: @Sendable () -> TestCollector?
        var contentType: String?
        var body: [UInt8] = []
        init(_ collector: @escaping @Sendable () -> TestCollector?) { self.collector = collector }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                contentType = head.headers.first(name: "content-type")
                body = []
            case .body(let buffer):
                body += buffer.readableBytesView
            case .end:
                let export = Export(contentType: contentType, body: body)
                collector()?.exports.withLock { $0.append(export) }
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Type": "application/x-protobuf", "Content-Length": "0"]))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}

@Suite("Tracing", .serialized, .cleansUp, .timeLimit(.minutes(2)))
struct TracingTests {
    static let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
    static let parentID = "00f067aa0ba902b7"

    /// A `traceparent`'s four parts (version, trace id, parent id, flags); a missing or malformed value
    /// fails the test here rather than crashing it on an index.
    static func traceparentParts(_ value: String?) throws -> [String] {
        let value = try #require(value, "no traceparent")
        let parts = value.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        try #require(parts.count == 4, "\(value)")
        return parts
    }

    static func gateway(_ instances: [DemoInstance], collectorPort: Int, configure: (inout GatewayConfig) -> Void = { _ in }) async throws -> GatewayHarness {
        var config = GatewayConfig()
        config.services = [serviceConfig("user_trading", instances)]
        config.routes = [RouteConfig(prefix: "/api/v1/trading", service: "user_trading")]
        traced(&config, collectorPort: collectorPort)
        configure(&config)
        let harness = try await GatewayHarness.start(config)
        await waitUntil("checked") { harness.registry.state.services[0].members.allSatisfy { $0.runtime.health == .healthy } }
        return harness
    }

    /// Tracing on, exporting to the test collector every 50 ms, sampling `ratio` of new traces.
    static func traced(_ config: inout GatewayConfig, collectorPort: Int, ratio: Double = 1) {
        config.tracing.enabled = true
        config.tracing.endpoint = "http://127.0.0.1:\(collectorPort)/v1/traces"
        config.tracing.sampleRatio = ratio
        config.tracing.exportInterval = .milliseconds(50)
    }

    static func bytes(hex: String) -> [UInt8] {
        var result: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            result.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return result
    }

    @Test("A trusted traceparent is continued: the instance's parent is the gateway's client span, and the spans reach the collector")
    func continuedTrace() async throws {
        let collector = try await TestCollector.start()
        let instances = try await startInstances(.userTrading, count: 1)
        let logPath = TemporaryPath.make("redfire-trace", ".log")
        let harness = try await Self.gateway(instances, collectorPort: collector.port) { config in
            config.tracing.trustIncoming = .always
            config.accessLog.enabled = true
            config.accessLog.path = logPath
        }
        defer { Task { await harness.shutdown() } }
        let report = try await harness.echo("/api/v1/trading/_echo", headers: [("traceparent", "00-\(Self.traceID)-\(Self.parentID)-01"),
                                                                             ("tracestate", "vendor=1")])
        let parts = try Self.traceparentParts(report.headers["traceparent"]?.first)
        #expect(parts[1] == Self.traceID, "\(parts)")
        #expect(parts[2] != Self.parentID, "the instance's parent is the gateway's span, not the client's")
        #expect(parts[3] == "01")
        #expect(await waitUntil("spans exported") {
            collector.received(Self.bytes(hex: Self.traceID)) && collector.received(Self.bytes(hex: parts[2]))
                && collector.received(Array("upstream user_trading".utf8)) && collector.received(Array("GET /api/v1/trading".utf8))
        })
        #expect(collector.exports.withLock { $0.first?.contentType } == "application/x-protobuf")
        // The access log line carries the trace id next to the request id.
        #expect(await waitUntil("logged") { ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").contains(#""trace_id":"\#(Self.traceID)""#) })
        #expect(await waitUntil("exports counted") {
            let metrics = (try? await harness.send("/metrics").body) ?? ""
            return metrics.split(separator: "\n").contains { $0.hasPrefix("gateway_tracing_spans_exported_total ") && !$0.hasSuffix(" 0") }
        })
    }

    @Test("One request with one retry: a server span and two client spans under it, the failed one marked, and the instance's parent is the second")
    func retryIsVisible() async throws {
        let collector = try await TestCollector.start()
        let instances = try await startInstances(.userTrading, count: 1)
        var service = serviceConfig("user_trading", instances)
        service.instances.insert(InstanceConfig(id: "dead", url: UpstreamURL(host: "127.0.0.1", port: 1)), at: 0)
        service.healthCheck.enabled = false
        service.retries.attempts = 2
        var config = GatewayConfig()
        config.services = [service]
        config.routes = [RouteConfig(prefix: "/api/v1/trading", service: "user_trading")]
        Self.traced(&config, collectorPort: collector.port)
        let harness = try await GatewayHarness.start(config)
        defer { Task { await harness.shutdown() } }
        var parents: Set<String> = []
        for _ in 0..<4 {
            let report = try await harness.echo("/api/v1/trading/_echo")
            if let traceparent = report.headers["traceparent"]?.first { parents.insert(try Self.traceparentParts(traceparent)[2]) }
        }
        var retried: (server: [String: Any], clients: [[String: Any]])?
        await waitUntil("a retried request's spans exported") {
            guard let spans = try? collector.spans() else { return false }
            for server in spans where server["kind"] as? Int == 2 {
                let clients = spans.filter { $0["kind"] as? Int == 3 && $0["parent_span_id"] as? String == server["span_id"] as? String }
                if clients.count == 2 { retried = (server, clients); return true }
            }
            return false
        }
        let (server, clients) = try #require(retried)
        #expect(server["name"] as? String == "GET /api/v1/trading")
        #expect(server["service"] as? String == "redfire-gateway")
        let attributes = try #require(server["attributes"] as? [String: Any])
        #expect(attributes["http.route"] as? String == "/api/v1/trading")
        #expect(attributes["url.path"] as? String == "/api/v1/trading/_echo")
        #expect(attributes["http.response.status_code"] as? Int == 200)
        #expect(attributes["gateway.request_id"] is String)
        #expect(clients.allSatisfy { $0["trace_id"] as? String == server["trace_id"] as? String && $0["name"] as? String == "upstream user_trading" })
        let byAttempt = Dictionary(uniqueKeysWithValues: clients.map { (($0["attributes"] as? [String: Any])?["gateway.attempt"] as? Int ?? 0, $0) })
        let first = try #require(byAttempt[1]), second = try #require(byAttempt[2])
        #expect((first["attributes"] as? [String: Any])?["gateway.instance"] as? String == "dead")
        #expect(first["status"] as? Int == 2, "the failed attempt is an error")
        #expect((second["attributes"] as? [String: Any])?["http.response.status_code"] as? Int == 200)
        #expect(["new", "pooled"].contains((second["attributes"] as? [String: Any])?["gateway.connection"] as? String ?? "-"), "connect or pooled")
        #expect(parents.contains(second["span_id"] as? String ?? "-"), "the instance's traceparent names the second attempt's span")
    }

    @Test("An untrusted or malformed traceparent starts a new trace and never reaches the instance")
    func untrustedTrace() async throws {
        let collector = try await TestCollector.start()
        let instances = try await startInstances(.userTrading, count: 1)
        let harness = try await Self.gateway(instances, collectorPort: collector.port)   // trust_incoming: trusted_proxies, none configured
        defer { Task { await harness.shutdown() } }
        for sent in ["00-\(Self.traceID)-\(Self.parentID)-01", "00-xyz-garbage", "ff-" + String(repeating: "0", count: 32) + "-" + String(repeating: "0", count: 16) + "-01"] {
            let report = try await harness.echo("/api/v1/trading/_echo", headers: [("traceparent", sent), ("tracestate", "vendor=secret")])
            let traceparent = try #require(report.headers["traceparent"]?.first)
            #expect(!traceparent.contains(Self.traceID), "\(sent) → \(traceparent)")
            #expect(traceparent.split(separator: "-").count == 4)
            #expect(report.headers["tracestate"] == nil, "the client's tracestate does not pass")
        }
    }

    @Test("With the collector down, requests are unaffected")
    func collectorDown() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        // Port 1: nothing listens there, every export fails.
        let harness = try await Self.gateway(instances, collectorPort: 1)
        let started = ContinuousClock.now
        for _ in 0..<50 { #expect(try await harness.send("/api/v1/trading/orders").status == 200) }
        #expect(ContinuousClock.now - started < .seconds(5), "no request waits for the exporter")
        // What could not be sent is counted.
        #expect(await waitUntil("drops counted") {
            let metrics = (try? await harness.send("/metrics").body) ?? ""
            return metrics.split(separator: "\n").contains { $0.hasPrefix("gateway_tracing_spans_dropped_total ") && !$0.hasSuffix(" 0") }
        })
        // And the gateway stops without waiting long for it.
        let stopping = ContinuousClock.now
        await harness.shutdown()
        #expect(ContinuousClock.now - stopping < .seconds(8))
    }
    @Test("Unsampled requests reach the instance with a traceparent of their own (flags 00) and export nothing; a trusted unsampled parent is continued with its tracestate")
    func unsampled() async throws {
        let collector = try await TestCollector.start()
        let instances = try await startInstances(.userTrading, count: 1)
        let logPath = TemporaryPath.make("redfire-trace", ".log")
        let harness = try await Self.gateway(instances, collectorPort: collector.port) { config in
            config.tracing.sampleRatio = 0
            config.tracing.trustIncoming = .always
            config.accessLog.enabled = true
            config.accessLog.path = logPath
        }
        defer { Task { await harness.shutdown() } }
        var traceIDs: Set<String> = []
        for _ in 0..<20 {
            let report = try await harness.echo("/api/v1/trading/_echo")
            let parts = try Self.traceparentParts(report.headers["traceparent"]?.first)
            #expect(parts[0] == "00" && parts[1].count == 32 && parts[2].count == 16 && parts[3] == "00", "\(parts)")
            traceIDs.insert(parts[1])
        }
        #expect(traceIDs.count == 20, "every request starts a trace of its own")
        // The console's route detail keeps the slowest of them, each with its trace id and request id.
        let slowest = try #require(harness.gateway.snapshot(windowSeconds: 60).routes.first { $0.name == "/api/v1/trading" }?.slowest)
        #expect(slowest.count == SlowRequests.capacity)
        #expect(slowest.allSatisfy { traceIDs.contains($0.traceID ?? "-") && !$0.requestID.isEmpty && $0.path == "/api/v1/trading/_echo" })
        #expect(zip(slowest, slowest.dropFirst()).allSatisfy { $0.micros >= $1.micros }, "slowest first")
        // The access log names each one.
        let first = try #require(traceIDs.first)
        #expect(await waitUntil("logged") { ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").contains(#""trace_id":"\#(first)""#) })
        // A trusted parent that is not sampled: same trace, a new parent id, flags 00, its tracestate on.
        let continued = try await harness.echo("/api/v1/trading/_echo", headers: [("traceparent", "00-\(Self.traceID)-\(Self.parentID)-00"),
                                                                                ("tracestate", "vendor=1")])
        let parts = try Self.traceparentParts(continued.headers["traceparent"]?.first)
        #expect(parts[1] == Self.traceID && parts[2] != Self.parentID && parts[3] == "00")
        #expect(continued.headers["tracestate"] == ["vendor=1"])
        // A trusted sampled parent is recorded — and is all the collector ever receives.
        _ = try await harness.echo("/api/v1/trading/_echo", headers: [("traceparent", "00-\(Self.traceID)-\(Self.parentID)-01")])
        var spans: [[String: Any]] = []
        await waitUntil("the sampled request's spans exported") { spans = (try? collector.spans()) ?? []; return spans.count >= 2 }
        #expect(spans.count == 2 && spans.allSatisfy { $0["trace_id"] as? String == Self.traceID }, "\(spans)")
    }

    @Test("The real gateway honours OTEL_TRACES_SAMPLER (over sample_ratio) and OTEL_SERVICE_NAME, and every request it samples is exported — none sampled twice")
    func environmentSampler() async throws {
        let collector = try await TestCollector.start()
        let instances = try await startInstances(.userTrading, count: 1)
        let yaml = "listen: 127.0.0.1:0\nservices:\n  user_trading:\n    instances:\n      - {id: user_trading-1, url: \"http://127.0.0.1:\(instances[0].port)\"}\n"
            + "routes:\n  - {prefix: /api/v1/trading, service: user_trading}\n"
            + "tracing: {enabled: true, endpoint: \"http://127.0.0.1:\(collector.port)/v1/traces\", sample_ratio: 0, export_interval: 50ms}\n"
        let process = try GatewayProcess(["serve", "--config", try CommandLineTests.writeConfig(yaml)],
                                         environment: ["OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5", "OTEL_SERVICE_NAME": "edge-eu"])
        let port = try await process.listeningPort()
        var sampled: Set<String> = []
        let count = 200
        for _ in 0..<count {
            let reply = try await RawHTTP.send(port: port, target: "/api/v1/trading/_echo")
            let report = try JSONDecoder().decode(EchoReport.self, from: Data(reply.body.utf8))
            let parts = try Self.traceparentParts(report.headers["traceparent"]?.first)
            if parts[3] == "01" { sampled.insert(parts[1]) }
        }
        #expect((60...140).contains(sampled.count), "\(sampled.count) of \(count) sampled at 0.5")
        var servers: [[String: Any]] = []
        await waitUntil("every sampled request exported") {
            servers = ((try? collector.spans()) ?? []).filter { $0["kind"] as? Int == 2 }
            return servers.count >= sampled.count
        }
        #expect(Set(servers.compactMap { $0["trace_id"] as? String }) == sampled, "exactly the sampled requests, each once")
        #expect(servers.allSatisfy { $0["service"] as? String == "edge-eu" })
        kill(process.pid, SIGTERM)
        #expect(await process.waitForExit() == 0)
    }

    @Test("A sampled request's span has events for its policy stages — authentication (token cache miss, then hit) and the rate-limit decision — with outcomes and durations")
    func policyStages() async throws {
        let collector = try await TestCollector.start()
        let instances = try await startInstances(.vnpyCore, count: 1)
        var route = RouteConfig(prefix: "/api/v1/vnpy", service: "vnpy_core", permissions: RoutePermissions(read: "vnpy:read"))
        route.rateLimit = RateLimitPolicy(name: "route", count: 100, period: .seconds(60), burst: 100)
        var config = GatewayConfig()
        config.services = [serviceConfig("vnpy_core", instances)]
        config.routes = [route]
        config.dataDirectory = TemporaryPath.make("redfire-trace")
        config.auth.jwtSecret = AuthFlowTests.secret
        config.auth.bcryptCost = 4
        config.auth.roles = ["trader": ["vnpy:read"]]
        config.auth.defaultRoles = ["trader"]
        Self.traced(&config, collectorPort: collector.port)
        let harness = try await GatewayHarness.start(config)
        defer { Task { await harness.shutdown() } }
        let credentials = ByteBuffer(string: #"{"username":"ana","password":"correct-horse-battery"}"#)
        _ = try await harness.send(.POST, "/api/v1/auth/register", headers: [("Content-Type", "application/json")], body: credentials)
        let login = try await harness.send(.POST, "/api/v1/auth/login", headers: [("Content-Type", "application/json")], body: credentials)
        let token = try #require(try login.json()["access_token"] as? String)
        for _ in 0..<2 { #expect(try await harness.send("/api/v1/vnpy/ticks", headers: [("Authorization", "Bearer \(token)")]).status == 200) }
        #expect(try await harness.send("/api/v1/vnpy/ticks").status == 401)
        var servers: [[String: Any]] = []
        await waitUntil("the three requests' spans exported") {
            servers = ((try? collector.spans()) ?? []).filter { $0["name"] as? String == "GET /api/v1/vnpy" }
            return servers.count == 3
        }
        // Missing spans fail the test here rather than crash the run on an index below.
        try #require(servers.count == 3, "\(servers.count) server spans exported")
        servers.sort { ($0["start_ns"] as? Int ?? 0) < ($1["start_ns"] as? Int ?? 0) }
        func events(_ span: [String: Any]) -> [String: [String: Any]] {
            Dictionary(((span["events"] as? [[String: Any]]) ?? []).map { ($0["name"] as? String ?? "", $0["attributes"] as? [String: Any] ?? [:]) }) { first, _ in first }
        }
        let caches = servers.prefix(2).map { ($0["attributes"] as? [String: Any])?["gateway.auth.token_cache"] as? String }
        #expect(caches == ["miss", "hit"])
        for span in servers.prefix(2) {
            let stages = events(span)
            #expect(stages["gateway.authenticate"]?["gateway.outcome"] as? String == "allowed")
            #expect(stages["gateway.authenticate"]?["gateway.duration_us"] is Int)
            #expect(stages["gateway.rate_limit"]?["gateway.outcome"] as? String == "allowed")
        }
        #expect(events(servers[2])["gateway.authenticate"]?["gateway.outcome"] as? String == "unauthorized")
        #expect(events(servers[2])["gateway.rate_limit"] == nil, "refused before the rate limit")
    }

    @Test("Over either upstream transport the instance gets exactly one traceparent, the gateway's, sampled or not", arguments: [UpstreamTransportKind.nio, .asyncHTTPClient])
    func bothTransports(_ transport: UpstreamTransportKind) async throws {
        let collector = try await TestCollector.start()
        let instances = try await startInstances(.userTrading, count: 1)
        for ratio in [0.0, 1.0] {
            let harness = try await Self.gateway(instances, collectorPort: collector.port) { config in
                config.upstreamTransport = transport
                config.tracing.sampleRatio = ratio
            }
            let report = try await harness.echo("/api/v1/trading/_echo", headers: [("traceparent", "00-\(Self.traceID)-\(Self.parentID)-01"),
                                                                                 ("tracestate", "vendor=1")])
            let fields = try #require(report.headers["traceparent"])
            #expect(fields.count == 1, "\(fields)")
            let parts = try Self.traceparentParts(fields.first)
            #expect(parts[1] != Self.traceID && parts[3] == (ratio == 1 ? "01" : "00"), "\(parts)")
            #expect(report.headers["tracestate"] == nil)
            await harness.shutdown()
        }
    }

    @Test("sample_errors: an unsampled request that fails is recorded afterwards — its server span and a client span per attempt, with the ids the access log and the instances have")
    func errorsSampled() async throws {
        let collector = try await TestCollector.start()
        var service = ServiceConfig(name: "user_trading")
        service.instances = [InstanceConfig(id: "dead-1", url: UpstreamURL(host: "127.0.0.1", port: 1)),
                             InstanceConfig(id: "dead-2", url: UpstreamURL(host: "127.0.0.1", port: 2))]
        service.healthCheck.enabled = false
        service.retries.attempts = 2
        let instances = try await startInstances(.userTrading, count: 1)
        var config = GatewayConfig()
        var live = serviceConfig("live", instances)
        live.healthCheck.enabled = false   // the instance fails on purpose below; its answer must reach the gateway
        config.services = [service, live]
        config.routes = [RouteConfig(prefix: "/api/v1/trading", service: "user_trading"), RouteConfig(prefix: "/api/v1/live", service: "live")]
        Self.traced(&config, collectorPort: collector.port, ratio: 0)
        config.tracing.sampleErrors = true
        let logPath = TemporaryPath.make("redfire-trace", ".log")
        config.accessLog.enabled = true
        config.accessLog.path = logPath
        let harness = try await GatewayHarness.start(config)
        defer { Task { await harness.shutdown() } }
        // Answered fine: not recorded.
        for _ in 0..<5 { #expect(try await harness.send("/api/v1/live/orders").status == 200) }
        let failed = try await harness.send("/api/v1/trading/orders")
        #expect(failed.status == 502)
        var spans: [[String: Any]] = []
        await waitUntil("the failed request's spans exported") { spans = (try? collector.spans()) ?? []; return spans.count >= 3 }
        #expect(spans.count == 3, "only the failed request is recorded: \(spans.map { $0["name"] ?? "" })")
        let server = try #require(spans.first { $0["kind"] as? Int == 2 })
        let attributes = try #require(server["attributes"] as? [String: Any])
        #expect(server["name"] as? String == "GET /api/v1/trading")
        #expect(server["status"] as? Int == 2)
        #expect(attributes["http.response.status_code"] as? Int == 502)
        #expect(attributes["gateway.sampled"] as? String == "error")
        #expect(attributes["url.path"] as? String == "/api/v1/trading/orders")
        // The same trace id as the request's access log line (and what the instances would have received).
        let traceID = try #require(server["trace_id"] as? String)
        #expect(await waitUntil("logged") { ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").contains(#""trace_id":"\#(traceID)""#) })
        let clients = spans.filter { $0["kind"] as? Int == 3 }
        #expect(clients.count == 2 && clients.allSatisfy { $0["parent_span_id"] as? String == server["span_id"] as? String && $0["status"] as? Int == 2 })
        #expect(Set(clients.compactMap { ($0["attributes"] as? [String: Any])?["gateway.instance"] as? String }) == ["dead-1", "dead-2"])
        for span in spans {
            let start = try #require(span["start_ns"] as? Int), end = try #require(span["end_ns"] as? Int)
            #expect(start > 0 && end >= start, "recorded at the times it happened")
        }
        // An instance that answers 500: recorded too, its client span with the status and the connection.
        instances[0].setBehaviour(.failing)
        #expect(try await harness.send("/api/v1/live/orders").status == 500)
        var answered: [[String: Any]] = []
        await waitUntil("the 500's spans exported") {
            answered = ((try? collector.spans()) ?? []).filter { $0["name"] as? String == "upstream live" }
            return !answered.isEmpty
        }
        let attempt = try #require(answered.first?["attributes"] as? [String: Any])
        #expect(attempt["http.response.status_code"] as? Int == 500 && answered.first?["status"] as? Int == 2)
        #expect(["new", "pooled"].contains(attempt["gateway.connection"] as? String ?? "-"))
    }

    @Test("A WebSocket's span lasts as long as the stream and ends with one close event; an event stream's likewise")
    func streamSpans() async throws {
        let collector = try await TestCollector.start()
        let vnpy = try await startInstances(.vnpyCore, count: 1)
        let monitor = try await startInstances(.monitor, count: 1)
        var websocketRoute = RouteConfig(prefix: "/api/v1/vnpy", service: "vnpy_core")
        websocketRoute.websocket = WebSocketRouteConfig()
        var config = GatewayConfig()
        config.services = [serviceConfig("vnpy_core", vnpy), serviceConfig("monitor", monitor)]
        config.routes = [websocketRoute, RouteConfig(prefix: "/api/v1/monitor", service: "monitor")]
        Self.traced(&config, collectorPort: collector.port)
        let harness = try await GatewayHarness.start(config)
        defer { Task { await harness.shutdown() } }
        await waitUntil("instances checked") { harness.registry.state.services.allSatisfy { $0.members.allSatisfy { $0.runtime.health == .healthy } } }
        let session = try await withWebSocket(port: harness.port, path: "/api/v1/vnpy/_ws_echo") { inbound, outbound in
            var iterator = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
            var replies: [WebSocketMessage] = []
            for index in 0..<3 {
                try await outbound.write(.text("m\(index)"))
                replies.append(try #require(await iterator.next()))
            }
            try await Task.sleep(for: .milliseconds(200))   // the span must cover the stream's life, not the handshake
            try await outbound.close(.normalClosure, reason: nil)
            return replies
        }
        #expect(session.messages.count == 3)
        let events = await ReceivedEvents.read(port: harness.port, path: "/api/v1/monitor/_events?interval_ms=20&count=3")
        #expect(events.events.count == 3)
        var spans: [[String: Any]] = []
        await waitUntil("both streams' spans exported") {
            spans = (try? collector.spans()) ?? []
            return spans.contains { $0["name"] as? String == "GET /api/v1/vnpy" } && spans.contains { $0["name"] as? String == "GET /api/v1/monitor" }
        }
        let websocket = try #require(spans.first { $0["name"] as? String == "GET /api/v1/vnpy" })
        let closes = try #require(websocket["events"] as? [[String: Any]])
        #expect(closes.count == 1 && closes.first?["name"] as? String == "websocket.close")
        let close = try #require(closes.first?["attributes"] as? [String: Any])
        #expect(close["websocket.close_code"] as? Int == 1000)
        #expect(close["gateway.messages_in"] as? Int == 3 && close["gateway.messages_out"] as? Int == 3)
        #expect((websocket["attributes"] as? [String: Any])?["http.response.status_code"] as? Int == 101)
        let lasted = (websocket["end_ns"] as? Int ?? 0) - (websocket["start_ns"] as? Int ?? 0)
        #expect(lasted >= 200_000_000, "the span lasted \(lasted) ns")
        let stream = try #require(spans.first { $0["name"] as? String == "GET /api/v1/monitor" })
        let streamEvents = try #require(stream["events"] as? [[String: Any]])
        #expect(streamEvents.count == 1 && streamEvents.first?["name"] as? String == "event_stream.close")
        let streamClose = try #require(streamEvents.first?["attributes"] as? [String: Any])
        #expect(streamClose["gateway.close_code"] as? Int == 1000 && streamClose["gateway.events"] as? Int == 3)
    }
}

@Suite("Trace context")
struct TraceContextTests {
    @Test("traceparent: version 00 parsed and written back; every malformed shape refused (W3C Trace Context §3.2)")
    func parsing() throws {
        let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let context = try #require(TraceContext(traceparent: value))
        #expect(context.sampled && context.traceparent == value && context.traceIDHex == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(TraceContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")?.sampled == false)
        // Flags other than sampled are ignored; a later version may carry more after a dash.
        #expect(TraceContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03")?.sampled == true)
        #expect(TraceContext(traceparent: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future") != nil)
        for bad in [
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",      // uppercase
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",      // version ff
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",      // zero trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",      // zero parent id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",    // version 00 with more
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",     // later version, no dash
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",       // short trace id
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "", "00-xyz-garbage",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01, 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            #expect(TraceContext(traceparent: bad) == nil, "\(bad)")
        }
    }

    @Test("Ids from the generator are distinct and never zero; the sampler keeps its ratio and follows a parent when parent-based")
    func idsAndSampling() {
        let ids = TraceIDGenerator(seed: 0)
        var seen = Set<UInt64>()
        for _ in 0..<10_000 { seen.insert(ids.next()) }
        #expect(seen.count == 10_000 && !seen.contains(0))
        let sampler = TraceSampler.parentBasedRatio(0.1)
        let sampled = (0..<20_000).filter { _ in sampler.samples(traceIDLow: ids.next(), parent: nil) }.count
        #expect((1_600...2_400).contains(sampled), "\(sampled) of 20,000 at 10 %")
        let parent = TraceContext(traceIDHigh: 1, traceIDLow: .max, spanID: 1, sampled: true)
        #expect(sampler.samples(traceIDLow: .max, parent: parent))
        #expect(!sampler.samples(traceIDLow: 0, parent: TraceContext(traceIDHigh: 1, traceIDLow: 0, spanID: 1, sampled: false)))
        // Not parent-based: the trace id decides.
        let ratio = try! #require(TraceSampler(name: "traceidratio", argument: "0.5"))
        #expect(!ratio.samples(traceIDLow: .max, parent: parent) && ratio.samples(traceIDLow: 0, parent: parent))
    }

    @Test("OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG win over sample_ratio, as the OpenTelemetry SDKs read them; unsupported values fall back")
    func samplerFromEnvironment() {
        var config = TracingConfig()
        config.sampleRatio = 0.2
        let logger = Logger(label: "test")
        #expect(RequestTracing.sampler(config: config, environment: [:], logger: logger) == .parentBasedRatio(0.2))
        #expect(RequestTracing.sampler(config: TracingConfig(), environment: [:], logger: logger) == .parentBasedRatio(0.01))
        #expect(RequestTracing.sampler(config: config, environment: ["OTEL_TRACES_SAMPLER": "always_off"], logger: logger) == TraceSampler(root: .never, parentBased: false))
        #expect(RequestTracing.sampler(config: config, environment: ["OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"],
                                       logger: logger) == .parentBasedRatio(0.5))
        #expect(RequestTracing.sampler(config: config, environment: ["OTEL_TRACES_SAMPLER": "traceidratio"], logger: logger) == TraceSampler(root: .ratio(1), parentBased: false))
        #expect(RequestTracing.sampler(config: config, environment: ["OTEL_TRACES_SAMPLER": "xray"], logger: logger) == .parentBasedRatio(0.2))
        #expect(RequestTracing.sampler(config: config, environment: ["OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"], logger: logger) == .parentBasedRatio(0.2))
    }
}

@Suite("Slow requests")
struct SlowRequestsTests {
    static func request(_ micros: UInt64, _ id: String = "r") -> GatewaySnapshot.SlowRequest {
        GatewaySnapshot.SlowRequest(micros: micros, status: 200, method: "GET", path: "/p", requestID: id)
    }

    @Test("Keeps the slowest of the last minute, slowest first; a faster request does not displace them; stale ones make room")
    func keepsTheSlowest() {
        let slow = SlowRequests()
        for micros in 1...20 { slow.offer(micros: UInt64(micros * 100), second: 10) { Self.request(UInt64(micros * 100), "r\(micros)") } }
        var kept = slow.recent(now: 10)
        #expect(kept.map(\.micros) == (13...20).reversed().map { UInt64($0 * 100) })
        slow.offer(micros: 50, second: 11) { Self.request(50) }
        #expect(slow.recent(now: 11).count == SlowRequests.capacity && !slow.recent(now: 11).contains { $0.micros == 50 })
        // A minute later the old ones are gone and any request is among the slowest again.
        slow.offer(micros: 50, second: 70) { Self.request(50, "new") }
        kept = slow.recent(now: 70)
        #expect(kept.map(\.requestID) == ["new"])
        #expect(slow.recent(now: 75).first?.secondsAgo == 5)
    }
}

@Suite("OTLP encoding")
struct OTLPEncodingTests {
    @Test("Spans encoded by the gateway decode with the OpenTelemetry project's own protobuf types, every field as written")
    func decodes() throws {
        var server = RecordedSpan(traceIDHigh: 0x4bf9_2f35_77b3_4da6, traceIDLow: 0xa3ce_929d_0e0e_4736, spanID: 0x00f0_67aa_0ba9_02b7, parentSpanID: 0x1122_3344_5566_7788,
                                  traceState: "vendor=1,other=ü", name: "GET /api/v1/trading", kind: .server, start: 1_700_000_000_000_000_000,
                                  end: 1_700_000_000_250_000_000, status: .error)
        server.attributes = ["http.route": "/api/v1/trading", "http.response.status_code": .int(502), "gateway.flag": .bool(true),
                             "gateway.negative": .int(-3), "gateway.long": .string(String(repeating: "x", count: 300))]
        server.events = [RecordedSpan.Event(name: "websocket.close", time: 1_700_000_000_200_000_000, attributes: ["websocket.close_code": .int(1000)])]
        var client = RecordedSpan(traceIDHigh: server.traceIDHigh, traceIDLow: server.traceIDLow, spanID: 42, parentSpanID: server.spanID,
                                  name: "upstream user_trading", kind: .client, start: server.start + 1_000, end: server.end - 1_000)
        client.attributes = ["gateway.attempt": .int(1)]
        let body = OTLPEncoding.exportRequest([server, client], resource: ["service.name": "edge"], scope: "redfire-gateway", scopeVersion: "1.0")
        let spans = try TestCollector.decode([Array(body.readableBytesView)])
        #expect(spans.count == 2)
        let first = try #require(spans.first), second = try #require(spans.last)
        #expect(first["trace_id"] as? String == "4bf92f3577b34da6a3ce929d0e0e4736" && first["span_id"] as? String == "00f067aa0ba902b7")
        #expect(first["parent_span_id"] as? String == "1122334455667788")
        #expect(first["name"] as? String == "GET /api/v1/trading" && first["kind"] as? Int == 2 && first["status"] as? Int == 2)
        #expect(first["start_ns"] as? Int == 1_700_000_000_000_000_000 && first["end_ns"] as? Int == 1_700_000_000_250_000_000)
        #expect(first["service"] as? String == "edge")
        let attributes = try #require(first["attributes"] as? [String: Any])
        #expect(attributes["http.route"] as? String == "/api/v1/trading" && attributes["http.response.status_code"] as? Int == 502)
        #expect(attributes["gateway.flag"] as? Bool == true && attributes["gateway.negative"] as? Int == -3)
        #expect((attributes["gateway.long"] as? String)?.count == 300)
        let events = try #require(first["events"] as? [[String: Any]])
        #expect(events.first?["name"] as? String == "websocket.close" && (events.first?["attributes"] as? [String: Any])?["websocket.close_code"] as? Int == 1000)
        #expect(second["kind"] as? Int == 3 && second["span_id"] as? String == "000000000000002a" && second["parent_span_id"] as? String == "00f067aa0ba902b7")
        #expect(second["status"] as? Int == 0)
    }
}
