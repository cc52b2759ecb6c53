import Foundation

/// JSON shapes of the admin API (keys are snake_case on the wire).
struct ServiceView: Codable, Sendable {
    var name: String
    var strategy: String
    var hashKey: String
    var panic: Bool
    var eligibleInstances: Int
    var requestsPerSecond: Double
    var errorRatio: Double
    var p99Ms: Double?
    var instances: [InstanceView]
}

struct InstanceView: Codable, Sendable {
    var id: String
    var url: String
    var state: String
    var health: String
    var weight: Int
    var version: String?
    var metadata: [String: String]
    var inFlight: Int
    var dispatched: Int
    var requestsPerSecond: Double
    var errorRatio: Double
    var p99Ms: Double?
    var ejectedForMs: Int?
    var leaseExpiresInMs: Int?
    /// While draining with a deadline: time left until the instance counts as drained anyway.
    var drainDeadlineInMs: Int?
    var lastChecks: [CheckView]
    /// In a cluster, when the nodes disagree: what each node alive says of the instance.
    var healthByNode: [String: String]?
}

struct CheckView: Codable, Sendable {
    var passed: Bool
    var reason: String
    var ageMs: Int
}

struct RouteView: Codable, Sendable {
    var name: String
    var prefix: String
    var service: String
    var methods: [String]?
    var stripPrefix: Bool
    var version: String?
}

struct WindowView: Codable, Sendable {
    var requests: Int
    var requestsPerSecond: Double
    var status2xx: Int
    var status3xx: Int
    var status4xx: Int
    var status5xx: Int
    var unauthorized: Int
    var forbidden: Int
    var rateLimited: Int
    var upstreamErrors: Int
    var upstreamTimeouts: Int
    var upstreamTruncated: Int
    var bytesIn: Int
    var bytesOut: Int
    var latencyMs: LatencyView
    var addedLatencyMs: LatencyView

    enum CodingKeys: String, CodingKey {
        case requests, requestsPerSecond, unauthorized, forbidden, rateLimited, upstreamErrors, upstreamTimeouts, upstreamTruncated, bytesIn, bytesOut, latencyMs, addedLatencyMs
        case status2xx = "status_2xx", status3xx = "status_3xx", status4xx = "status_4xx", status5xx = "status_5xx"
    }
}

struct LatencyView: Codable, Sendable {
    var p50: Double?
    var p90: Double?
    var p99: Double?
    var p999: Double?
    var max: Double?
}

struct StatsView: Codable, Sendable {
    var window: String
    var windowSeconds: Int
    var generation: Int
    var gateway: WindowView
    var routes: [String: WindowView]
    var services: [String: WindowView]
    var instances: [String: WindowView]
}

struct AuditView: Codable, Sendable {
    var at: String
    var actor: String
    var action: String
    var target: String
    var result: String
}

struct EventView: Codable, Sendable {
    var at: String
    var kind: String
    var service: String?
    var instance: String?
    var message: String
}

struct RegisterBody: Codable, Sendable {
    var id: String
    var url: String
    var weight: Int?
    var version: String?
    var metadata: [String: String]?
    var leaseTtl: String?
}

struct StrategyBody: Codable, Sendable {
    var strategy: String
}

struct DrainBody: Codable, Sendable {
    var deadline: String?
}

extension LatencyView {
    init(_ histogram: LatencyHistogram) {
        func ms(_ q: Double) -> Double? { histogram.quantile(q).map { Double($0) / 1000 } }
        self.init(p50: ms(0.5), p90: ms(0.9), p99: ms(0.99), p999: ms(0.999), max: histogram.count > 0 ? Double(histogram.maxMicros) / 1000 : nil)
    }
}

extension WindowView {
    init(_ window: MetricWindow) {
        let c = window.counters
        self.init(requests: c.requests, requestsPerSecond: window.requestsPerSecond, status2xx: c.status2xx, status3xx: c.status3xx,
                  status4xx: c.status4xx, status5xx: c.status5xx, unauthorized: c.unauthorized, forbidden: c.forbidden,
                  rateLimited: c.rateLimited, upstreamErrors: c.upstreamErrors, upstreamTimeouts: c.upstreamTimeouts,
                  upstreamTruncated: c.upstreamTruncated, bytesIn: c.bytesIn, bytesOut: c.bytesOut, latencyMs: LatencyView(window.latency), addedLatencyMs: LatencyView(window.addedLatency))
    }
}

struct ProblemView: Codable, Sendable {
    var path: String
    var line: Int?
    var message: String
}

struct ReloadView: Codable, Sendable {
    var applied: Bool
    var generation: Int
    var problems: [ProblemView]
    var restartRequired: [String]
}

/// `GET /gateway`: the running gateway — the address it is bound to (the port `--listen …:0` chose),
/// open client connections, uptime and the routing generation.
struct GatewayInfoView: Codable, Sendable {
    var listen: String
    var port: Int
    var openConnections: Int
    var uptimeSeconds: Int
    var generation: Int
}

/// `GET /gateway/cluster`.
struct ClusterView: Encodable, Sendable {
    struct Store: Encodable, Sendable {
        var url: String
        var reachable: Bool
        var unreachableSince: Date?
        var lastError: String?
    }

    var enabled: Bool
    /// This node's name.
    var node: String?
    var store: Store?
    /// Nodes whose last heartbeat is younger than the timeout, this one included.
    var nodes: [ClusterNode] = []
    /// Nodes seen within the last hour that stopped sending heartbeats (killed, cut off).
    var departed: [ClusterNode] = []
    /// When this node last read the list from the store.
    var readAt: Date?
    /// The cluster's last housekeeping run: which node, when.
    var housekeeping: ClusterMembership.HouseKeeping?
}

/// `GET /gateway/audit`: oldest first.
struct AuditListView: Encodable, Sendable {
    /// `node` (this gateway's own trail), `cluster` (every node's, from the store), or `node (cluster
    /// store unreachable)`.
    var scope: String
    var entries: [AuditView]
}
