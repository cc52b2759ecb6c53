import DemoServices
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing

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
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "0"]))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}

@Suite("Tracing", .serialized, .cleansUp, .timeLimit(.minutes(2)))
struct TracingTests {
    static let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
    static let parentID = "00f067aa0ba902b7"

    static func gateway(_ instances: [DemoInstance], collectorPort: Int, configure: (inout GatewayConfig) -> Void = { _ in }) async throws -> GatewayHarness {
        var config = GatewayConfig()
        config.services = [serviceConfig("user_trading", instances)]
        config.routes = [RouteConfig(prefix: "/api/v1/trading", service: "user_trading")]
        config.tracing.enabled = true
        config.tracing.endpoint = "http://127.0.0.1:\(collectorPort)/v1/traces"
        config.tracing.sampleRatio = 1
        config.tracing.exportInterval = .milliseconds(50)
        configure(&config)
        let harness = try await GatewayHarness.start(config)
        await waitUntil("checked") { harness.registry.state.services[0].members.allSatisfy { $0.runtime.health == .healthy } }
        return harness
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
        let harness = try await Self.gateway(instances, collectorPort: collector.port) { $0.tracing.trustIncoming = .always }
        defer { Task { await harness.shutdown() } }
        let report = try await harness.echo("/api/v1/trading/_echo", headers: [("traceparent", "00-\(Self.traceID)-\(Self.parentID)-01"),
                                                                             ("tracestate", "vendor=1")])
        let traceparent = try #require(report.headers["traceparent"]?.first)
        let parts = traceparent.split(separator: "-").map(String.init)
        #expect(parts.count == 4 && parts[1] == Self.traceID, "\(traceparent)")
        #expect(parts[2] != Self.parentID, "the instance's parent is the gateway's span, not the client's")
        #expect(parts[3] == "01")
        #expect(await waitUntil("spans exported") {
            collector.received(Self.bytes(hex: Self.traceID)) && collector.received(Self.bytes(hex: parts[2]))
                && collector.received(Array("upstream user_trading".utf8)) && collector.received(Array("GET /api/v1/trading".utf8))
        })
        #expect(collector.exports.withLock { $0.first?.contentType } == "application/x-protobuf")
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
        // And the gateway stops without waiting long for it.
        let stopping = ContinuousClock.now
        await harness.shutdown()
        #expect(ContinuousClock.now - stopping < .seconds(8))
    }
}
