import Foundation

/// The whole gateway configuration, as loaded from YAML. Every key and its default is documented in
/// `docs/configuration.md`; the defaults below are the single source of those values.
public struct GatewayConfig: Sendable, Equatable {
    /// `listeners` — the addresses the gateway accepts clients on, plain or TLS; the first is the primary
    /// one (`--listen` overrides its address). Default one plain listener on `0.0.0.0:8080`.
    public var listeners: [ListenerConfig] = [ListenerConfig(address: ListenAddress(host: "0.0.0.0", port: 8080))]
    /// `listen` — the primary listener's address (the short form of one plain listener).
    public var listen: ListenAddress {
        get { listeners[0].address }
        set { listeners[0].address = newValue }
    }
    /// `shutdown_grace` — how long in-flight requests may run after SIGTERM/SIGINT. Default `30s`.
    public var shutdownGrace: Duration = .seconds(30)
    /// `services` — upstream services by name, in file order.
    public var services: [ServiceConfig] = []
    /// `routes` — path prefixes mapped to services, in file order.
    public var routes: [RouteConfig] = []
    /// `admin.token` — bearer token for `/gateway/*`. Default none: the admin API answers 403.
    public var adminToken: String?
    /// `data_dir` — where the gateway keeps state across restarts (operator decisions). Default `data/`
    /// next to the configuration file; none when the configuration did not come from a file.
    public var dataDirectory: String?
    /// `telemetry.retention` — how far back per-route/service/instance metrics go. Default `15m`.
    public var telemetryRetention: Duration = .seconds(900)
    /// `telemetry.public_metrics` — `/metrics` without a token. Default: only when the gateway listens
    /// on a loopback address (the series name every route, service and instance).
    public var publicMetrics: Bool?
    /// `telemetry.metrics_token` — a bearer token for scrapers (at least 16 characters); `admin.token`
    /// is accepted too. Default none.
    public var metricsToken: String?

    /// Whether `/metrics` answers without a token (see `publicMetrics`).
    public var metricsArePublic: Bool {
        if let publicMetrics { return publicMetrics }
        let host = listen.host.lowercased()
        return host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
    /// `cluster` — several gateways sharing one PostgreSQL. Default none: state stays in this process.
    public var cluster = ClusterConfig()
    /// `console` — the operations console's settings (read at start).
    public var console = ConsoleConfig()
    /// `auth` — the user store and roles.
    public var auth = AuthConfig()
    /// `rate_limits` — the default and per-role limits (per-route ones are on the routes).
    public var rateLimits = RateLimitConfig()
    /// `limits` — request size limits answered by the gateway itself.
    public var limits = RequestLimitsConfig()
    /// `access_log` — one JSON line per routed request.
    public var accessLog = AccessLogConfig()
    /// `tracing` — W3C Trace Context and spans over OTLP/HTTP. Read at start.
    public var tracing = TracingConfig()
    /// `cors` — browser origins allowed to call the API. Default none (no CORS fields at all).
    public var cors = CORSConfig()
    /// `trusted_proxies` — CIDRs whose `X-Forwarded-For` is believed. Default none: the client is the TCP peer.
    public var trustedProxies: [CIDR] = []
    /// `client_headers` — request fields a client may never send to a service (see `ClientHeaderFilter`).
    public var clientHeaders = ClientHeadersConfig()
    /// `server_names` — host names the gateway answers as. An absolute-form request target
    /// (`GET http://host/path`) naming another host is refused with 421. Default none: only loopback
    /// names and the listen address are accepted in absolute form. Lower-case, without port.
    public var serverNames: [String] = []
    /// `merge_slashes` — normalize `//a///b` to `/a/b` before routing. Default true; with false, empty
    /// segments are kept and the service sees them.
    public var mergeSlashes = true
    /// `upstream_transport` — how requests reach instances: `nio` (default; connections pooled per event
    /// loop) or `async_http_client`. Read at start.
    public var upstreamTransport: UpstreamTransportKind = .nio
    /// `event_loop_threads` — threads serving connections. Default: one per core.
    public var eventLoopThreads: Int?

    public init() {}

    public func service(named name: String) -> ServiceConfig? {
        services.first { $0.name == name }
    }
}

/// `console` — how the operations console looks and behaves. Command-line flags override these.
public struct ConsoleConfig: Sendable, Equatable {
    /// `console.theme` — a shipped theme's name or a path to a theme file. Default `default-dark`.
    public var theme: String = "default-dark"
    /// `console.refresh_rate` — data refreshes per second, 1–30. Default 4.
    public var refreshRate: Double = 4
    /// `console.log_file` — where logs go while the console owns the terminal. Default
    /// `gateway.log` in the data directory.
    public var logFile: String?
    /// `console.read_only` — show everything, bind no action keys. Default false.
    public var readOnly = false
    /// `console.drain_deadline` — a drain started in the console ends at this deadline: the instance
    /// counts as drained and its open WebSockets and event streams are closed. `0s`: no deadline.
    /// Default `30s`.
    public var drainDeadline: Duration? = .seconds(30)

    public init() {}
}

/// A `HOST:PORT` pair (`[::1]:8080` for IPv6).
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`, `[V6]:PORT` or `:PORT` (all interfaces).
    public init?(parsing text: String) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[text.startIndex..<colon])
        guard let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { host = "0.0.0.0" }
        guard !host.contains(" ") else { return nil }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// `access_log` — one JSON line per routed request.
public struct AccessLogConfig: Sendable, Equatable {
    /// `enabled` — default false.
    public var enabled = false
    /// `path` — `stdout` (default) or a file, appended to. When the console owns the terminal, `stdout`
    /// becomes `access.log` in the data directory.
    public var path = "stdout"
    /// `buffer` — lines held while the writer catches up; beyond it lines are dropped and counted, so
    /// logging never stalls a request. Default 10000.
    public var buffer = 10_000

    public init() {}
}
