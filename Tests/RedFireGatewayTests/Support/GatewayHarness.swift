import AsyncHTTPClient
import DemoServices
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization
import Testing

@testable import RedFireGateway

/// A real gateway on an ephemeral loopback port, run in a ServiceGroup like the CLI runs it, with a real
/// HTTP client pointed at it.
final class GatewayHarness: Sendable {
    let gateway: Gateway
    let port: Int
    let client: HTTPClient
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    static let quietLogger: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = ProcessInfo.processInfo.environment["TEST_LOG"] == "1" ? .warning : .critical
        return logger
    }()

    private init(gateway: Gateway, port: Int, group: ServiceGroup, task: Task<Void, any Error>) {
        self.gateway = gateway
        self.port = port
        self.group = group
        self.task = task
        self.client = Self.sharedClient
    }

    /// One client for every harness, alive for the whole test process: a test that ends by throwing
    /// leaves nothing that must be shut down (an `HTTPClient` dropped without `shutdown()` stops the
    /// process, and every other test's result with it).
    static let sharedClient: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5)), decompression: .disabled)
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        configuration.tracing.tracer = nil
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    static func start(_ config: GatewayConfig, configPath: String? = nil, logger: Logger = quietLogger) async throws -> GatewayHarness {
        var config = config
        config.listen = ListenAddress(host: "127.0.0.1", port: 0)
        let gateway = try Gateway(config: config, configPath: configPath, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [gateway], logger: logger))
        let task = Task { try await group.run() }
        let port: Int
        do {
            port = try await gateway.waitUntilListening()
        } catch {
            await group.triggerGracefulShutdown()
            throw error
        }
        let harness = GatewayHarness(gateway: gateway, port: port, group: group, task: task)
        TestResources.register { await harness.shutdown() }
        return harness
    }

    var registry: ServiceRegistry { gateway.registry }
    var control: GatewayControl { gateway.control }
    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Graceful shutdown; a gateway still running 30 s later is cancelled (its connections closed), so
    /// a test that left a connection busy fails on its own expectations instead of hanging the run.
    func shutdown() async {
        await group.triggerGracefulShutdown()
        let task = self.task
        let watchdog = Task {
            try await Task.sleep(for: .seconds(30))
            task.cancel()
        }
        _ = try? await task.value
        watchdog.cancel()
    }

    struct Reply: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: String

        var instance: String? { headers.first(name: "X-Demo-Instance") }

        func json() throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] ?? [:]
        }

        var errorCode: String? {
            ((try? json())?["error"] as? [String: Any])?["code"] as? String
        }
    }

    func send(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: ByteBuffer? = nil, timeout: TimeAmount = .seconds(30)) async throws -> Reply {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(body) }
        let response = try await client.execute(request, timeout: timeout)
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers, body: String(buffer: bytes))
    }

    func send(_ path: String, headers: [(String, String)] = [], timeout: TimeAmount = .seconds(30)) async throws -> Reply {
        try await send(.GET, path, headers: headers, timeout: timeout)
    }

    func echo(_ path: String, headers: [(String, String)] = []) async throws -> EchoReport {
        try await echo(.GET, path, headers: headers)
    }

    func echo(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: ByteBuffer? = nil) async throws -> EchoReport {
        let reply = try await send(method, path, headers: headers, body: body)
        #expect(reply.status == 200, "echo answered \(reply.status): \(reply.body)")
        return try JSONDecoder().decode(EchoReport.self, from: Data(reply.body.utf8))
    }
}

/// Waits for a condition, polling; fails the test with `message` if it does not hold within `timeout`.
@discardableResult
func waitUntil(timeout: Duration = .seconds(10), _ message: @autoclosure () -> String = "condition", _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    let holds = try await condition()
    #expect(holds, "timed out waiting for \(message())")
    return holds
}

/// Config for one service over the given demo instances, with fast health checks. The timeout is
/// generous: instances that stop refuse at once, and a short timeout would take healthy instances out
/// whenever the machine is loaded (every test then sees 503s that have nothing to do with it).
func serviceConfig(_ name: String, _ instances: [DemoInstance], weights: [Int]? = nil, strategy: BalancingStrategyKind = .roundRobin) -> ServiceConfig {
    var service = ServiceConfig(name: name)
    service.strategy = strategy
    service.instances = instances.enumerated().map { index, instance in
        InstanceConfig(id: instance.id, url: UpstreamURL(scheme: instance.tls ? "https" : "http", host: "127.0.0.1", port: instance.port),
                       weight: weights?[index] ?? 1)
    }
    service.healthCheck.interval = .milliseconds(100)
    service.healthCheck.jitter = .milliseconds(20)
    service.healthCheck.timeout = .seconds(2)
    service.healthCheck.healthyThreshold = 2
    service.healthCheck.unhealthyThreshold = 2
    return service
}

func startInstances(_ kind: DemoServiceKind, count: Int, prefix: String? = nil) async throws -> [DemoInstance] {
    var result: [DemoInstance] = []
    for index in 1...count {
        let instance = try await DemoInstance.start(service: kind, id: "\(prefix ?? kind.rawValue)-\(index)")
        TestResources.register { await instance.stop() }
        result.append(instance)
    }
    return result
}

func stopAll(_ instances: [DemoInstance]) async {
    for instance in instances { await instance.stop() }
}

/// A gateway with one route `/api/v1/trading` → service `user_trading` over `instances`.
func tradingGateway(_ instances: [DemoInstance], transport: UpstreamTransportKind = .nio, configure: (inout ServiceConfig) -> Void = { _ in },
                    routes: [RouteConfig]? = nil, logger: Logger = GatewayHarness.quietLogger) async throws -> GatewayHarness {
    var service = serviceConfig("user_trading", instances)
    configure(&service)
    var config = GatewayConfig()
    config.upstreamTransport = transport
    config.services = [service]
    config.routes = routes ?? [RouteConfig(prefix: "/api/v1/trading", service: "user_trading")]
    let harness = try await GatewayHarness.start(config, logger: logger)
    // Wait for the first health checks so that tests start from a known state.
    if service.healthCheck.enabled {
        await waitUntil("all instances checked") {
            harness.registry.state.services[0].members.allSatisfy { $0.runtime.health != .unknown }
        }
    }
    return harness
}

/// A gateway with one route `/api/v1/trading` → service `user_trading` over one instance at
/// `127.0.0.1:port` — a raw test server doing what a demo instance never does — without health checks.
func rawInstanceGateway(port: Int, id: String, transport: UpstreamTransportKind = .nio,
                        service configureService: (inout ServiceConfig) -> Void = { _ in },
                        gateway configureGateway: (inout GatewayConfig) -> Void = { _ in },
                        logger: Logger = GatewayHarness.quietLogger) async throws -> GatewayHarness {
    var service = ServiceConfig(name: "user_trading")
    service.instances = [InstanceConfig(id: id, url: UpstreamURL(host: "127.0.0.1", port: port))]
    service.healthCheck.enabled = false
    configureService(&service)
    var config = GatewayConfig()
    config.services = [service]
    config.routes = [RouteConfig(prefix: "/api/v1/trading", service: "user_trading")]
    config.upstreamTransport = transport
    configureGateway(&config)
    return try await GatewayHarness.start(config, logger: logger)
}

/// Keeps what a gateway logs (the first 200 lines at `level` and above) in memory, so that a test can
/// show it when it fails.
final class CapturedLog: Sendable {
    private let lines = Mutex<[String]>([])
    let level: Logger.Level

    init(level: Logger.Level = .warning) {
        self.level = level
    }

    var logger: Logger {
        var logger = Logger(label: "captured") { _ in Handler(log: self) }
        logger.logLevel = level
        return logger
    }

    var text: String { lines.withLock { $0.joined(separator: "\n") } }

    struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let fields = (event.metadata ?? [:]).merging(metadata) { fromEvent, _ in fromEvent }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            let line = "\(event.level) \(event.message) \(fields.joined(separator: " "))"
            log.lines.withLock { if $0.count < 200 { $0.append(line) } }
        }
    }
}
