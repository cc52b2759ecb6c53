import RedFireGateway

/// The demo's upstream side: two instances of each of the five services on free loopback ports, and
/// the gateway configuration that routes to them. Used by `redfire-gateway demo` and by the tests.
public final class DemoCluster: Sendable {
    public let instances: [DemoInstance]

    private init(instances: [DemoInstance]) {
        self.instances = instances
    }

    /// Starts `perService` instances of every demo service.
    public static func start(perService: Int = 2) async throws -> DemoCluster {
        var instances: [DemoInstance] = []
        do {
            for kind in DemoServiceKind.allCases {
                for index in 1...perService {
                    instances.append(try await DemoInstance.start(service: kind, id: "\(kind.rawValue)-\(index)"))
                }
            }
        } catch {
            for instance in instances { await instance.stop() }
            throw error
        }
        return DemoCluster(instances: instances)
    }

    public func instances(of kind: DemoServiceKind) -> [DemoInstance] {
        instances.filter { $0.service == kind }
    }

    public func instance(id: String) -> DemoInstance? {
        instances.first { $0.id == id }
    }

    public func stop() async {
        for instance in instances { await instance.stop() }
    }

    /// The strategy each demo service starts with, so that every strategy is visible at once.
    public static func strategy(for kind: DemoServiceKind) -> BalancingStrategyKind {
        switch kind {
        case .userTrading: return .roundRobin
        case .vnpyCore: return .leastConnections
        case .strategyData: return .powerOfTwo
        case .gatewayAdapter: return .consistentHash
        case .monitor: return .random
        }
    }

    /// The `services:` and `routes:` of `gatewayConfig` (routes with `DemoAuth`'s permissions) as
    /// configuration-file YAML, for gateways run as
    /// separate processes (`redfire-gateway demo-services`, `scripts/cluster.sh`).
    public func servicesYAML() -> String {
        let config = gatewayConfig(listen: ListenAddress(host: "127.0.0.1", port: 0))
        var yaml = "services:\n"
        for service in config.services {
            yaml += "  \(service.name):\n    strategy: \(service.strategy.rawValue)\n"
            if service.name == DemoServiceKind.gatewayAdapter.rawValue { yaml += "    hash_key: header:X-Account-Id\n" }
            yaml += "    instances:\n"
            for instance in service.instances {
                yaml += "      - {id: \(instance.id), url: \"\(instance.url)\", weight: \(instance.weight), version: \"\(instance.version ?? "")\"}\n"
            }
            yaml += "    health_check: {interval: 1s, timeout: 1s, healthy_threshold: 2, unhealthy_threshold: 2}\n"
            yaml += "    timeouts: {response_headers: 5s}\n    retries: {attempts: 2}\n"
            yaml += "    passive_ejection: {consecutive_failures: 3, base_time: 10s}\n"
        }
        // With the demo's permissions (`DemoAuth`): AREA:read for reads, AREA:write for writes.
        yaml += "routes:\n"
        for route in config.routes {
            let area = DemoServiceKind.allCases.first { $0.rawValue == route.service }?.permissionArea ?? route.service
            yaml += "  - {prefix: \(route.prefix), service: \(route.service), permissions: {read: \"\(area):read\", write: \"\(area):write\"}}\n"
        }
        return yaml
    }

    /// A configuration routing the five prefixes to these instances, with fast health checks and
    /// retries on, so that failover is visible within a couple of seconds.
    public func gatewayConfig(listen: ListenAddress) -> GatewayConfig {
        var config = GatewayConfig()
        config.listen = listen
        config.shutdownGrace = .seconds(10)
        for kind in DemoServiceKind.allCases {
            var service = ServiceConfig(name: kind.rawValue)
            service.strategy = Self.strategy(for: kind)
            if kind == .gatewayAdapter { service.hashKey = .header("X-Account-Id") }
            service.instances = instances(of: kind).enumerated().map { index, instance in
                InstanceConfig(id: instance.id, url: UpstreamURL(host: instance.host, port: instance.port),
                               weight: kind == .userTrading && index == 1 ? 2 : 1, version: "1.0.\(index)")
            }
            service.healthCheck.interval = .seconds(1)
            service.healthCheck.jitter = .milliseconds(200)
            service.healthCheck.timeout = .seconds(1)
            service.healthCheck.healthyThreshold = 2
            service.healthCheck.unhealthyThreshold = 2
            service.timeouts.responseHeaders = .seconds(5)
            service.retries.attempts = 2
            service.passiveEjection.consecutiveFailures = 3
            service.passiveEjection.baseTime = .seconds(10)
            config.services.append(service)
            var route = RouteConfig(prefix: kind.prefix, service: kind.rawValue)
            // Quotes over WebSocket (`/api/v1/vnpy/ws/ticks`); alerts as Server-Sent Events
            // (`/api/v1/monitor/alerts/stream`), which may be quiet for a while.
            if kind == .vnpyCore { route.websocket = WebSocketRouteConfig() }
            if kind == .monitor { route.streamIdleTimeout = .seconds(300) }
            config.routes.append(route)
        }
        return config
    }
}
