import DemoServices
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOPosix
import NIOWebSocket
import Synchronization
import Testing
import WSClient

@testable import RedFireGateway

typealias WebSocketLifecycleTests = BulkTraffic.WebSocketLifecycleTests

/// Many tick subscriptions (`…/ws/ticks`) held at once, as a trading terminal holds them: each remembers
/// the instance that served it and how it ended; `stop()` makes every client close its stream.
final class TickStreams: Sendable {
    struct Outcome: Sendable {
        var instance: String?
        var ticks = 0
        var closeCode: UInt16?
        var error: String?
    }

    private final class Shared: Sendable {
        let outcomes: Mutex<[Outcome]>
        let stopping = Mutex(false)
        init(count: Int) { outcomes = Mutex(Array(repeating: Outcome(), count: count)) }
    }

    private let shared: Shared
    private let tasks: [Task<Void, Never>]

    init(port: Int, path: String = "/api/v1/vnpy/ws/ticks?interval_ms=100", count: Int) {
        let shared = Shared(count: count)
        self.shared = shared
        self.tasks = (0..<count).map { index in
            Task {
                do {
                    let session = try await withWebSocket(port: port, path: path) { inbound, outbound in
                        var closing = false
                        for try await message in inbound.messages(maxSize: 1 << 20) {
                            guard case .text(let text) = message else { continue }
                            let instance = (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])?["instance"] as? String
                            shared.outcomes.withLock { outcomes in
                                if outcomes[index].instance == nil { outcomes[index].instance = instance }
                                outcomes[index].ticks += 1
                            }
                            if !closing, shared.stopping.withLock({ $0 }) {
                                closing = true
                                try await outbound.close(.normalClosure, reason: "done")
                            }
                        }
                        return []
                    }
                    shared.outcomes.withLock { $0[index].closeCode = session.closeCode }
                } catch {
                    shared.outcomes.withLock { $0[index].error = "\(error)" }
                }
            }
        }
    }

    var outcomes: [Outcome] { shared.outcomes.withLock { $0 } }

    /// Every stream has had its first tick.
    func waitUntilOpen() async -> Bool {
        await waitUntil(timeout: .seconds(30), "streams open") { outcomes.allSatisfy { $0.instance != nil || $0.error != nil } }
    }

    func stop() async {
        shared.stopping.withLock { $0 = true }
        for task in tasks { await task.value }
    }

    func finish() async {
        for task in tasks { await task.value }
    }
}

extension BulkTraffic {
@Suite("WebSocket lifecycle", .serialized, .cleansUp, .timeLimit(.minutes(3)))
struct WebSocketLifecycleTests {
    @Test("Drain with 100 open streams: new upgrades go to the other instance at once; at the deadline every old stream gets 1001, none ends without a close frame")
    func drainDeadline() async throws {
        let instances = try await startInstances(.vnpyCore, count: 2)
        let harness = try await WebSocketTests.gateway(instances)
        defer { Task { await harness.shutdown() } }
        let streams = TickStreams(port: harness.port, count: 100)
        #expect(await streams.waitUntilOpen())
        let onFirst = streams.outcomes.filter { $0.instance == "vnpy_core-1" }.count
        #expect(onFirst > 20 && onFirst < 80, "round robin spreads the streams: \(onFirst) on vnpy_core-1")
        let runtime = try #require(harness.registry.runtime(id: "vnpy_core-1"))
        #expect(runtime.streams.count == onFirst)
        #expect(runtime.metrics.streams.open(.websocket) == onFirst)

        try harness.control.drain(service: "vnpy_core", instance: "vnpy_core-1", deadline: .seconds(1), actor: "test")
        // New subscriptions go elsewhere at once; the old ones stay until the deadline.
        let late = TickStreams(port: harness.port, count: 10)
        #expect(await late.waitUntilOpen())
        #expect(late.outcomes.allSatisfy { $0.instance == "vnpy_core-2" })
        #expect(streams.outcomes.allSatisfy { $0.closeCode == nil })
        await waitUntil(timeout: .seconds(10), "drained streams closed") {
            streams.outcomes.filter { $0.instance == "vnpy_core-1" }.allSatisfy { $0.closeCode != nil }
        }
        let drained = streams.outcomes.filter { $0.instance == "vnpy_core-1" }
        #expect(drained.allSatisfy { $0.closeCode == 1001 }, "\(drained.map(\.closeCode))")
        // The other instance's streams were not touched.
        #expect(streams.outcomes.filter { $0.instance == "vnpy_core-2" }.allSatisfy { $0.closeCode == nil })
        await streams.stop()
        await late.stop()
        #expect(streams.outcomes.allSatisfy { $0.closeCode != nil && $0.error == nil }, "every stream ended with a close frame")
        #expect(streams.outcomes.filter { $0.instance == "vnpy_core-2" }.allSatisfy { $0.closeCode == 1000 })
        await waitUntil("streams counted closed") { runtime.streams.count == 0 && runtime.metrics.streams.openCount == 0 }
        #expect(runtime.metrics.streams.totals().closes[.init(kind: .websocket, code: 1001)] == onFirst)
        #expect(harness.registry.events.recent().contains { $0.message.contains("open stream") })
    }

    @Test("Ten configuration reloads with 100 open streams: every stream survives and keeps ticking")
    func reloadKeepsStreams() async throws {
        let instances = try await startInstances(.vnpyCore, count: 2)
        var yaml = "listen: 127.0.0.1:0\nservices:\n  vnpy_core:\n    health_check: {interval: 100ms, jitter: 10ms, healthy_threshold: 1}\n    instances:\n"
        for instance in instances { yaml += "      - {id: \(instance.id), url: \"http://127.0.0.1:\(instance.port)\"}\n" }
        yaml += "routes:\n  - {prefix: /api/v1/vnpy, service: vnpy_core, websocket: {idle_timeout: 1m}}\n"
        let path = try CommandLineTests.writeConfig(yaml)
        let harness = try await GatewayHarness.start(try GatewayConfig.load(path: path), configPath: path)
        defer { Task { await harness.shutdown() } }
        await waitUntil("healthy") { harness.registry.state.services[0].members.allSatisfy { $0.runtime.health == .healthy } }
        let streams = TickStreams(port: harness.port, count: 100)
        #expect(await streams.waitUntilOpen())
        for round in 0..<10 {
            // Each reload changes something (the idle timeout), so a new snapshot is published.
            try yaml.replacingOccurrences(of: "idle_timeout: 1m", with: "idle_timeout: \(61 + round)s").write(toFile: path, atomically: true, encoding: .utf8)
            #expect(harness.control.reload(actor: "test").applied)
        }
        let before = streams.outcomes.map(\.ticks)
        await waitUntil("every stream ticks after the reloads") { zip(streams.outcomes, before).allSatisfy { $0.ticks > $1 } }
        #expect(streams.outcomes.allSatisfy { $0.closeCode == nil && $0.error == nil })
        await streams.stop()
        #expect(streams.outcomes.allSatisfy { $0.closeCode == 1000 })
    }

    @Test("Shutdown: every client gets close 1001 within the grace, and the gateway stops")
    func shutdown() async throws {
        let instances = try await startInstances(.vnpyCore, count: 1)
        let harness = try await WebSocketTests.gateway(instances)
        let streams = TickStreams(port: harness.port, count: 20)
        #expect(await streams.waitUntilOpen())
        let started = ContinuousClock.now
        await harness.shutdown()
        await streams.finish()
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(streams.outcomes.allSatisfy { $0.closeCode == 1001 }, "\(streams.outcomes.map(\.closeCode))")
    }

    @Test("SIGTERM: every client of the real gateway gets close 1001, and the process exits 0")
    func sigterm() async throws {
        let instances = try await startInstances(.vnpyCore, count: 1)
        let yaml = "listen: 127.0.0.1:0\nshutdown_grace: 10s\nservices:\n  vnpy_core:\n    instances:\n      - {id: vnpy_core-1, url: \"http://127.0.0.1:\(instances[0].port)\"}\n"
            + "routes:\n  - {prefix: /api/v1/vnpy, service: vnpy_core, websocket: true}\n"
        let path = try CommandLineTests.writeConfig(yaml)
        let process = try GatewayProcess(["serve", "--config", path])
        let port = try await process.listeningPort()
        let streams = TickStreams(port: port, count: 10)
        #expect(await streams.waitUntilOpen())
        kill(process.pid, SIGTERM)
        await streams.finish()
        #expect(streams.outcomes.allSatisfy { $0.closeCode == 1001 }, "\(streams.outcomes.map(\.closeCode))")
        #expect(await process.waitForExit(timeout: .seconds(15)) == 0)
    }

    @Test("An instance that dies without a closing handshake: the client gets close 1014 at once")
    func instanceDeath() async throws {
        let server = try await AbruptWebSocketServer.start()
        let harness = try await rawInstanceGateway(port: server.port, id: "abrupt", gateway: { config in
            config.routes[0].websocket = WebSocketRouteConfig()
        })
        defer { Task { await harness.shutdown(); try? await server.channel.close() } }
        let started = ContinuousClock.now
        let session = try await withWebSocket(port: harness.port, path: "/api/v1/trading/ws") { inbound, _ in try await readAll(inbound) }
        #expect(session.closeCode == 1014)
        #expect(ContinuousClock.now - started < .seconds(3))
    }
}
}

/// An instance that accepts every WebSocket upgrade, then drops the connection 100 ms later without a
/// close frame (a crash, as the client's side of the gateway sees it).
struct AbruptWebSocketServer {
    let channel: any Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    static func start() async throws -> AbruptWebSocketServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Handler()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return AbruptWebSocketServer(channel: channel)
    }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        var received = ""

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            received += String(buffer: unwrapInboundIn(data))
            guard received.contains("\r\n\r\n") else { return }
            let key = received.split(separator: "\r\n").first { $0.lowercased().hasPrefix("sec-websocket-key:") }
                .map { $0.dropFirst("sec-websocket-key:".count).trimmingCharacters(in: .whitespaces) } ?? ""
            let accept = WebSocketUpgrade.expectedAccept(for: key)
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(accept)\r\n\r\n")), promise: nil)
            received = ""
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(100)) { context.close(promise: nil) }
        }
    }
}
