import Foundation
import RedFireDashboard
import RedFireGateway

/// Deterministic snapshots shaped like the demo: five services, two instances each (or more), routes
/// with traffic, events. Dates are fixed so frames are byte-for-byte reproducible.
enum Fixtures {
    static let takenAt = Date(timeIntervalSince1970: 1_795_000_000)  // a fixed instant

    enum Scenario: String, CaseIterable {
        case healthy, degraded, draining
    }

    static let services: [(String, BalancingStrategyKind, String)] = [
        ("user_trading", .roundRobin, "/api/v1/trading"),
        ("vnpy_core", .leastConnections, "/api/v1/vnpy"),
        ("strategy_data", .powerOfTwo, "/api/v1/strategy"),
        ("gateway_adapter", .consistentHash, "/api/v1/gateway"),
        ("monitor", .random, "/api/v1/monitor"),
    ]

    static func histogram(center: UInt64, count: Int) -> LatencyHistogram {
        var histogram = LatencyHistogram()
        for index in 0..<count {
            // A skewed spread around `center`: most requests near it, a tail up to 8×.
            let factor = [0.6, 0.8, 0.9, 1.0, 1.0, 1.1, 1.2, 1.5, 2.5, 8.0][index % 10]
            histogram.record(micros: UInt64(Double(center) * factor))
        }
        return histogram
    }

    static func figures(requests: Int, seconds: Int = 60, errors: Int = 0, status4xx: Int = 0, limited: Int = 0, latency: LatencyHistogram) -> GatewaySnapshot.Figures {
        var figures = GatewaySnapshot.Figures()
        figures.requests = requests
        figures.windowSeconds = seconds
        figures.requestsPerSecond = Double(requests) / Double(seconds)
        figures.status5xx = errors
        figures.status4xx = status4xx + limited
        figures.rateLimited = limited
        figures.status2xx = requests - errors - status4xx - limited
        figures.p50 = latency.quantile(0.5)
        figures.p90 = latency.quantile(0.9)
        figures.p99 = latency.quantile(0.99)
        figures.p999 = latency.quantile(0.999)
        figures.max = latency.count > 0 ? latency.maxMicros : nil
        figures.meanMicros = latency.count > 0 ? Double(latency.sumMicros) / Double(latency.count) : nil
        return figures
    }

    static func series(_ seed: Int, level: Int) -> [Int] {
        (0..<60).map { level + ((($0 + seed) * 7919) % 11) - 5 }.map { max(0, $0) }
    }

    static func snapshot(_ scenario: Scenario, instancesPerService: Int = 2, routeCount: Int = 5) -> GatewaySnapshot {
        var services: [GatewaySnapshot.Service] = []
        for (serviceIndex, (name, strategy, _)) in Self.services.enumerated() {
            var instances: [GatewaySnapshot.Instance] = []
            for number in 1...instancesPerService {
                let latency = histogram(center: UInt64(1200 + 700 * serviceIndex + 300 * number), count: 600)
                var instance = GatewaySnapshot.Instance(
                    id: "\(name)-\(number)", service: name, address: "http://127.0.0.1:\(9100 + serviceIndex * 10 + number)",
                    state: .healthy, weight: number == 2 && serviceIndex == 0 ? 2 : 1, inFlight: number % 2,
                    figures: figures(requests: 600, latency: latency),
                    recentChecks: [.init(passed: true, reason: "HTTP 200", age: .milliseconds(800 + 100 * number))],
                    requestsLastMinute: 600, meanMicrosLastMinute: Double(1200 + 700 * serviceIndex + 300 * number))
                switch (scenario, name, number) {
                case (.degraded, "vnpy_core", _):
                    instance.state = .unhealthy
                    instance.health = .unhealthy
                    instance.eligible = false
                    instance.inFlight = 0
                    instance.figures = figures(requests: 40, errors: 38, latency: histogram(center: 30_000, count: 40))
                    instance.recentChecks = [.init(passed: false, reason: "connection refused", age: .milliseconds(400))]
                case (.degraded, "strategy_data", 1):
                    instance.state = .ejected
                    instance.eligible = false
                    instance.ejectedFor = .milliseconds(12_300)
                    instance.figures = figures(requests: 300, errors: 25, latency: latency)
                case (.degraded, "monitor", 2):
                    instance.leaseExpiresIn = .milliseconds(2_400)
                case (.draining, "user_trading", 2):
                    instance.state = .draining
                    instance.eligible = false
                    instance.inFlight = 3
                case (.draining, "vnpy_core", 1):
                    instance.state = .drained
                    instance.eligible = false
                    instance.inFlight = 0
                case (_, "vnpy_core", 2):
                    // Tick subscriptions (WebSockets) held on the instance that stays.
                    instance.streams = .init(open: 12, messagesInPerSecond: 0.5, messagesOutPerSecond: 48)
                    instance.inFlight += 12
                default: break
                }
                instances.append(instance)
            }
            var latency = LatencyHistogram()
            var requests = 0, errors = 0
            for instance in instances {
                requests += instance.figures.requests
                errors += instance.figures.status5xx
            }
            latency.merge(histogram(center: UInt64(1500 + 700 * serviceIndex), count: requests))
            services.append(GatewaySnapshot.Service(
                name: name, strategy: strategy, panic: false,
                figures: figures(requests: requests, errors: errors, latency: latency), latency: latency, instances: instances))
        }
        var routes: [GatewaySnapshot.Route] = []
        for index in 0..<routeCount {
            let (service, _, prefix) = Self.services[index % Self.services.count]
            let suffix = index < Self.services.count ? "" : "/v\(index / Self.services.count + 1)"
            let serviceFigures = services[index % services.count].figures
            let limited = scenario == .degraded && index == 0 ? 90 : 0
            let latency = services[index % services.count].latency
            var route = GatewaySnapshot.Route(
                name: prefix + suffix, prefix: prefix + suffix, service: service,
                figures: figures(requests: serviceFigures.requests + limited + (index == 1 ? 12 : 0), errors: serviceFigures.status5xx, status4xx: index == 1 ? 12 : 0,
                                 limited: limited, latency: latency),
                latency: latency, requestsSeries: series(index, level: 20),
                rateLimitedSeries: limited > 0 ? series(index + 3, level: 2) : Array(repeating: 0, count: 60))
            if service == "vnpy_core", index < Self.services.count { route.streams = .init(open: 12, messagesInPerSecond: 0.5, messagesOutPerSecond: 48) }
            if index == 0 {
                route.slowest = [
                    .init(micros: 412_300, status: 502, method: "POST", path: "/api/v1/trading/orders", requestID: "req-7f3a91c2e4b5d6a8",
                          traceID: "4bf92f3577b34da6a3ce929d0e0e4736", instance: "user_trading-2", secondsAgo: 12),
                    .init(micros: 88_100, status: 200, method: "GET", path: "/api/v1/trading/positions", requestID: "req-1b2c3d4e5f607182",
                          traceID: "0af7651916cd43dd8448eb211c80319c", instance: "user_trading-1", secondsAgo: 40),
                ]
            }
            routes.append(route)
        }
        var gatewayLatency = LatencyHistogram()
        for service in services { gatewayLatency.merge(service.latency) }
        let total = routes.reduce(0) { $0 + $1.figures.requests }
        let errors = routes.reduce(0) { $0 + $1.figures.status5xx }
        let limited = routes.reduce(0) { $0 + $1.figures.rateLimited }
        var events: [GatewayEvent] = [
            GatewayEvent(at: takenAt.addingTimeInterval(-300), kind: .health, service: "user_trading", instance: "user_trading-1", message: "user_trading-1 unknown → healthy (HTTP 200)"),
            GatewayEvent(at: takenAt.addingTimeInterval(-240), kind: .strategy, service: "vnpy_core", message: "vnpy_core strategy round_robin → least_connections by console"),
        ]
        switch scenario {
        case .healthy: break
        case .degraded:
            events.append(GatewayEvent(at: takenAt.addingTimeInterval(-20), kind: .health, service: "vnpy_core", instance: "vnpy_core-1", message: "vnpy_core-1 healthy → unhealthy (connection refused)"))
            events.append(GatewayEvent(at: takenAt.addingTimeInterval(-18), kind: .health, service: "vnpy_core", instance: "vnpy_core-2", message: "vnpy_core-2 healthy → unhealthy (connection refused)"))
            events.append(GatewayEvent(at: takenAt.addingTimeInterval(-5), kind: .ejection, service: "strategy_data", instance: "strategy_data-1", message: "strategy_data-1 ejected for 30s after 5 consecutive failures"))
        case .draining:
            events.append(GatewayEvent(at: takenAt.addingTimeInterval(-30), kind: .drain, service: "vnpy_core", instance: "vnpy_core-1", message: "vnpy_core-1 draining (0 in flight) by console"))
            events.append(GatewayEvent(at: takenAt.addingTimeInterval(-4), kind: .drain, service: "user_trading", instance: "user_trading-2", message: "user_trading-2 draining (3 in flight) by admin-api"))
        }
        return GatewaySnapshot(
            takenAt: takenAt, uptime: .seconds(3725), generation: 42, configVersion: 3, listen: "127.0.0.1:8080", windowSeconds: 60,
            gateway: figures(requests: total, errors: errors, limited: limited, latency: gatewayLatency),
            openConnections: 57, lastReloadFailed: scenario == .degraded, services: services, routes: routes,
            rateLimitedSeries: scenario == .degraded ? series(2, level: 2) : Array(repeating: 0, count: 60),
            topLimitedKeys: scenario == .degraded ? [.init(key: "203.0.113.7", rejections: 61), .init(key: "user:4411", rejections: 29)] : [],
            events: events)
    }

    static func view(_ configure: (inout ViewState) -> Void = { _ in }) -> ViewState {
        var view = ViewState()
        view.now = takenAt
        view.utcOffsetSeconds = 0
        view.logPath = "/var/log/redfire/gateway.log"
        configure(&view)
        return view
    }

    static let theme = Theme(name: "default-dark", styles: [:])
}
