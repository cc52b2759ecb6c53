import Foundation

/// `services.NAME` — one upstream service.
public struct ServiceConfig: Sendable, Equatable {
    public var name: String
    /// `strategy` — default `round_robin`.
    public var strategy: BalancingStrategyKind = .roundRobin
    /// `hash_key` — for `consistent_hash`: `client_ip` or `header:NAME`. Default `client_ip`.
    public var hashKey: HashKey = .clientIP
    /// `panic_routing` — when no instance is healthy, spread over all non-drained instances instead of
    /// answering 503. Default `false`; when it happens, the service's state says `panic`.
    public var panicRouting: Bool = false
    /// `max_in_flight` — requests in flight to the service at most; more are shed at once with 503
    /// `service_busy` and `Retry-After`, to protect a struggling service. Default no limit.
    public var maxInFlight: Int?
    /// `instances` — the instances known from the file; more may register at runtime.
    public var instances: [InstanceConfig] = []
    public var healthCheck = HealthCheckConfig()
    public var timeouts = TimeoutConfig()
    public var retries = RetryConfig()
    public var passiveEjection = PassiveEjectionConfig()
    /// `tls` — TLS to the service's `https://` instances (CA, server name, client certificate).
    public var tls: UpstreamTLSConfig?

    public init(name: String) {
        self.name = name
    }
}

/// The balancing strategies a service can use; switchable at runtime.
public enum BalancingStrategyKind: String, Sendable, CaseIterable, Codable {
    case roundRobin = "round_robin"
    case random
    case leastConnections = "least_connections"
    case powerOfTwo = "power_of_two"
    case consistentHash = "consistent_hash"
}

/// What `consistent_hash` hashes on.
public enum HashKey: Sendable, Hashable, CustomStringConvertible {
    /// The client address (the TCP peer).
    case clientIP
    /// The value of a request header; requests without it are balanced at random.
    case header(String)

    init?(parsing text: String) {
        if text == "client_ip" { self = .clientIP; return }
        if text.hasPrefix("header:") {
            let name = text.dropFirst("header:".count).trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else { return nil }
            self = .header(name)
            return
        }
        return nil
    }

    public var description: String {
        switch self {
        case .clientIP: return "client_ip"
        case .header(let name): return "header:\(name)"
        }
    }
}

/// `services.NAME.instances[i]`.
public struct InstanceConfig: Sendable, Equatable {
    /// `id` — unique across the gateway. Default `SERVICE-N` (1-based position).
    public var id: String
    /// `url` — `http://HOST:PORT` or `https://HOST:PORT` (no path).
    public var url: UpstreamURL
    /// `weight` — relative share of traffic, 1...1000. Default `1`.
    public var weight: Int = 1
    /// `version` — the instance's API version (e.g. `1.4.2`), matched by routes' `version`. Default none.
    public var version: String?
    /// `metadata` — free key/value pairs shown in the admin API.
    public var metadata: [String: String] = [:]

    public init(id: String, url: UpstreamURL, weight: Int = 1, version: String? = nil, metadata: [String: String] = [:]) {
        self.id = id
        self.url = url
        self.weight = weight
        self.version = version
        self.metadata = metadata
    }
}

/// An upstream base address: scheme, host and port.
public struct UpstreamURL: Sendable, Hashable, CustomStringConvertible {
    public var scheme: String
    public var host: String
    public var port: Int

    public init(scheme: String = "http", host: String, port: Int) {
        self.scheme = scheme
        self.host = host
        self.port = port
    }

    /// Parses `http://HOST:PORT` or `https://HOST:PORT` (port defaults by scheme); paths are refused.
    public init?(parsing text: String) {
        let scheme: String
        var rest: Substring
        if text.hasPrefix("http://") { scheme = "http"; rest = text.dropFirst(7) }
        else if text.hasPrefix("https://") { scheme = "https"; rest = text.dropFirst(8) }
        else { return nil }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains("/"), !rest.contains("?"), !rest.contains("#"), !rest.contains("@") else { return nil }
        var host: Substring
        var port = scheme == "https" ? 443 : 80
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let value = Int(after.dropFirst()) else { return nil }
                port = value
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[rest.startIndex..<colon]
            guard let value = Int(rest[rest.index(after: colon)...]) else { return nil }
            port = value
        } else {
            host = rest
        }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }
        self.init(scheme: scheme, host: String(host), port: port)
    }

    /// The authority as written in a request target (`host:port`, `[v6]:port`).
    public var authority: String { host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]:\(port)" : "\(host):\(port)" }
    public var description: String { "\(scheme)://\(authority)" }
}

/// `services.NAME.health_check` — active health checking.
public struct HealthCheckConfig: Sendable, Equatable {
    /// `enabled` — default `true`. When off, instances are considered healthy unless passively ejected.
    public var enabled = true
    /// `path` — default `/health`.
    public var path = "/health"
    /// `interval` — time between checks of one instance. Default `5s`.
    public var interval: Duration = .seconds(5)
    /// `jitter` — each wait is lengthened by a random amount up to this. Default `500ms`.
    public var jitter: Duration = .milliseconds(500)
    /// `timeout` — a check that takes longer fails. Default `1s`.
    public var timeout: Duration = .seconds(1)
    /// `expected_status` — statuses that count as passing: a code, a `200-399` range or a list. Default `200-399`.
    public var expectedStatus: [ClosedRange<Int>] = [200...399]
    /// `healthy_threshold` — consecutive passes to become healthy. Default `2`.
    public var healthyThreshold = 2
    /// `unhealthy_threshold` — consecutive failures to become unhealthy. Default `3`.
    public var unhealthyThreshold = 3

    public init() {}

    func accepts(status: Int) -> Bool { expectedStatus.contains { $0.contains(status) } }
}

/// `services.NAME.timeouts`.
public struct TimeoutConfig: Sendable, Hashable {
    /// `connect` — establishing a TCP connection to an instance. Default `1s`.
    public var connect: Duration = .seconds(1)
    /// `response_headers` — from sending the request until the response headers arrive. Default `15s`.
    public var responseHeaders: Duration = .seconds(15)
    /// `idle` — longest silence while reading the upstream's response body. Default `60s`.
    public var idle: Duration = .seconds(60)

    public init() {}
}

/// `services.NAME.retries` — off by default.
public struct RetryConfig: Sendable, Equatable {
    /// `attempts` — total tries per request including the first; `1` disables retries. Default `1`.
    public var attempts = 1
    /// `budget_ratio` — retries may add at most this fraction to the service's request rate. Default `0.2`.
    public var budgetRatio = 0.2
    /// `min_retries` — retries always available in reserve at low traffic. Default `10`.
    public var minRetries = 10

    public init() {}
}

/// `services.NAME.passive_ejection` — take an instance out after consecutive failures on real traffic.
public struct PassiveEjectionConfig: Sendable, Equatable {
    /// `enabled` — default `true`.
    public var enabled = true
    /// `consecutive_failures` — connect failures or 5xx in a row that eject. Default `5`.
    public var consecutiveFailures = 5
    /// `base_time` — first ejection length; doubles with each repeated ejection. Default `30s`.
    public var baseTime: Duration = .seconds(30)
    /// `max_time` — ceiling on one ejection. Default `5m`.
    public var maxTime: Duration = .seconds(300)

    public init() {}
}

public enum UpstreamTransportKind: String, Sendable, CaseIterable {
    case nio
    case asyncHTTPClient = "async_http_client"
}
