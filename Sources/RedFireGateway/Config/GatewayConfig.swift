import Foundation

/// The whole gateway configuration, as loaded from YAML. Every key and its default is documented in
/// `docs/configuration.md`; the defaults below are the single source of those values.
public struct GatewayConfig: Sendable, Equatable {
    /// `listen` — address the gateway accepts clients on. Default `0.0.0.0:8080`.
    public var listen: ListenAddress = ListenAddress(host: "0.0.0.0", port: 8080)
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

/// `auth` — where users live and what their roles allow.
public struct AuthConfig: Sendable, Equatable {
    /// `auth.database` — the SQLite file of users and roles. Default `auth.sqlite` in the data directory.
    public var database: String?
    /// `auth.bcrypt_cost` — bcrypt work factor for password hashes, 4–31. Default 12.
    public var bcryptCost = 12
    /// `auth.roles` — role name → permissions (`area:action`, e.g. `trading:read`). A user's
    /// permissions are the union of their roles'.
    public var roles: [String: [String]] = [:]
    /// `auth.jwt_secret` (or the contents of `auth.jwt_secret_file`) — the HS256 signing secret of
    /// access tokens, at least 32 bytes. Without one the auth endpoints are off.
    public var jwtSecret: String?
    /// `auth.key_id` — the `kid` of the signing key. Default `k1`.
    public var keyID = "k1"
    /// `auth.signing_key` — an RS256, ES256, EdDSA (or HS256) key instead of `jwt_secret`.
    public var signingKey: JWTKeyConfig?
    /// `auth.verification_keys` — more keys whose tokens are accepted (previous keys during a rotation).
    public var verificationKeys: [JWTKeyConfig] = []
    /// `auth.external_issuers` — identity providers whose tokens are accepted, verified by their JWKS.
    public var externalIssuers: [ExternalIssuerConfig] = []
    /// `auth.issuer` / `auth.audience` — `iss` and `aud` of access tokens, checked on every token.
    public var issuer = "redfire-gateway"
    public var audience = "redfire-api"
    /// `auth.access_token_ttl` — default 15 minutes.
    public var accessTokenTTL: Duration = .seconds(900)
    /// `auth.refresh_token_ttl` — default 30 days.
    public var refreshTokenTTL: Duration = .seconds(30 * 86_400)
    /// `auth.leeway` — clock skew tolerated on `exp` and `nbf`. Default 30 s.
    public var leeway: Duration = .seconds(30)
    /// `auth.max_token_lifetime` — an access token (the gateway's or an external issuer's) whose `exp`
    /// is further away than this is refused: a token valid for years is a leaked or forged one waiting
    /// to be used. Default 24 hours (at least `access_token_ttl`).
    public var maxTokenLifetime: Duration = .seconds(86_400)
    /// `auth.registration` — whether `POST /api/v1/auth/register` is open. Default true.
    public var registration = true
    /// `auth.default_roles` — roles a self-registered user gets. Default none.
    public var defaultRoles: [String] = []
    /// `auth.max_login_failures` — failed logins for one username before lockouts start (four times as
    /// many for one client address). Default 5.
    public var maxLoginFailures = 5
    /// `auth.max_credential_failures` — requests from one client address presenting an invalid bearer
    /// token or API key before that address is locked out (429 `too_many_attempts`, lockouts as for
    /// logins). Default 20.
    public var maxCredentialFailures = 20
    /// `auth.lockout` / `auth.max_lockout` — the first lockout, doubled with each further failure up to
    /// the maximum. Defaults 1 s and 15 min.
    public var lockout: Duration = .seconds(1)
    public var maxLockout: Duration = .seconds(900)
    /// `auth.public_paths` — exact paths of routes that need no credentials, compared with the
    /// normalized request path. The gateway's own login, register, refresh, probes and API description
    /// are public whatever this says; listing them documents it.
    public var publicPaths: [String] = AuthConfig.defaultPublicPaths
    /// `auth.gateway_token_key_file` — PEM file of the P-256 key that signs `X-Gateway-Token`. Default
    /// `gateway-token-key.pem` in the data directory, created on first start.
    public var gatewayTokenKeyFile: String?
    /// `auth.gateway_token_ttl` — lifetime of an `X-Gateway-Token`. Default 60 s.
    public var gatewayTokenTTL: Duration = .seconds(60)

    public static let defaultPublicPaths = [
        "/api/v1/auth/login", "/api/v1/auth/register", "/api/v1/auth/refresh", "/health", "/ready", "/gateway/docs", "/gateway/openapi.json",
        "/gateway/jwks.json",
    ]

    public init() {}

    /// The key file path for a configuration whose data directory is `dataDirectory`; nil keeps the key
    /// in memory only (no data directory).
    public func gatewayTokenKeyPath(dataDirectory: String?) -> String? {
        gatewayTokenKeyFile ?? dataDirectory.map { ($0 as NSString).appendingPathComponent("gateway-token-key.pem") }
    }

    /// Whether the gateway authenticates (a signing secret or key is configured).
    public var isEnabled: Bool { jwtSecret != nil || signingKey != nil }

    /// The signing key: `signing_key`, else `jwt_secret` as HS256 under `key_id`.
    public var effectiveSigningKey: JWTKeyConfig? {
        signingKey ?? jwtSecret.map { JWTKeyConfig(keyID: keyID, algorithm: .hs256, material: $0) }
    }

    /// The permissions granted by `roles` (unknown roles grant nothing).
    public func permissions(of roles: [String]) -> [String] {
        Set(roles.flatMap { self.roles[$0] ?? [] }).sorted()
    }

    /// The database path for a configuration whose data directory is `dataDirectory`.
    public func databasePath(dataDirectory: String?) -> String {
        database ?? ((dataDirectory ?? "data") as NSString).appendingPathComponent("auth.sqlite")
    }
}

public enum UpstreamTransportKind: String, Sendable, CaseIterable {
    case nio
    case asyncHTTPClient = "async_http_client"
}

/// `limits` — what a request may be at most; beyond, the gateway answers 414, 431 or 413 itself.
public struct RequestLimitsConfig: Sendable, Equatable {
    /// `max_uri_length` — bytes of the request target. Default 8192.
    public var maxURILength = 8192
    /// `max_header_bytes` — bytes of all header names and values together. Default 32768.
    public var maxHeaderBytes = 32_768
    /// `max_header_count` — header fields. Default 100.
    public var maxHeaderCount = 100
    /// `max_body_size` — bytes of a request body declared by `Content-Length`; a route may set its own.
    /// Default 10 MB.
    public var maxBodySize = 10 * 1024 * 1024
    /// `header_timeout` — time a client has to send a complete request header section, counted from
    /// the connection's start or the first byte of a later request; then 408 and close (slowloris).
    /// Default 10s.
    public var headerTimeout: Duration = .seconds(10)
    /// `idle_timeout` — a keep-alive connection with no request in progress is closed after this.
    /// Default 60s.
    public var idleTimeout: Duration = .seconds(60)
    /// `body_timeout` — the longest a client may pause while sending a request body (between two reads,
    /// from the head or the `100 Continue`); then 408 and close. Default 60s.
    public var bodyTimeout: Duration = .seconds(60)
    /// `connection_buffer` — bytes the gateway holds in memory per connection and direction before it
    /// stops reading from the sender: a response waiting for a slow client, a request body waiting for
    /// a slow instance (Envoy's `per_connection_buffer_limit_bytes`). Default 64 KiB.
    public var connectionBuffer = 64 * 1024
    /// `min_body_rate` — bytes per second a request body must average once it has been sent for 10 s
    /// (time the gateway holds reads off is not counted); below it, 408 and close — a body trickled a
    /// byte every few seconds never trips `body_timeout`. 0 turns it off. Default 1024.
    public var minBodyRate = 1024

    public init() {}
}

/// `rate_limits` — GCRA limits per client (API key, else user, else client address).
public struct RateLimitConfig: Sendable, Equatable {
    /// `rate_limits.default` — applies to every routed request unless a role policy does. Default none.
    public var defaultPolicy: RateLimitPolicy?
    /// `rate_limits.roles` — role → policy, replacing the default for callers with the role.
    public var rolePolicies: [String: RateLimitPolicy] = [:]
    /// `rate_limits.headers` — `ietf` (default), `ietf_and_legacy` (adds `X-RateLimit-*`) or `none`.
    public var headers: HeaderStyle = .ietf

    public enum HeaderStyle: String, Sendable, CaseIterable {
        case ietf
        case ietfAndLegacy = "ietf_and_legacy"
        case none
    }

    public init() {}
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

    public init(name: String) {
        self.name = name
    }
}

/// `services.NAME.instances[i]`.
public struct InstanceConfig: Sendable, Equatable {
    /// `id` — unique across the gateway. Default `SERVICE-N` (1-based position).
    public var id: String
    /// `url` — `http://HOST:PORT` (no path).
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

/// `routes[i]` — a path prefix served by a service.
public struct RouteConfig: Sendable, Equatable {
    /// `prefix` — matched on whole path segments. Required.
    public var prefix: String
    /// `service` — name of a service in `services`. Required.
    public var service: String
    /// `methods` — allowed methods; default all.
    public var methods: [String]?
    /// `strip_prefix` — remove the prefix before forwarding. Default `false`: the upstream sees the full path.
    public var stripPrefix = false
    /// `version` — only instances whose `version` starts with this (on dot boundaries). Default any.
    public var version: String?
    /// `name` — label used in metrics and the console. Default the prefix.
    public var name: String
    /// `permissions` — what a caller needs, per method group. With `auth` configured, a route without
    /// permissions is refused to everyone except on `auth.public_paths`. Needs `auth`.
    public var permissions: RoutePermissions?
    /// `max_body_size` — this route's body limit, instead of `limits.max_body_size`.
    public var maxBodySize: Int?
    /// `rate_limit` — a limit for this route, per client, on top of the default or role limit.
    public var rateLimit: RateLimitPolicy?
    /// `forward_authorization` — pass the client's `Authorization` and `X-API-Key` to the service.
    /// Default `false`: the service gets the verified identity instead.
    public var forwardAuthorization = false
    /// `cors` — who decides CORS for this route: `gateway` (default: the service's `Access-Control-*`
    /// fields are removed and the gateway's `cors` decision is sent) or `service` (explicit opt-in: the
    /// service's fields pass unchanged, the gateway adds none, and preflights — which never carry
    /// credentials — are forwarded to the service without authentication).
    public var corsByService = false

    public init(prefix: String, service: String, methods: [String]? = nil, stripPrefix: Bool = false, version: String? = nil, name: String? = nil,
                permissions: RoutePermissions? = nil, forwardAuthorization: Bool = false) {
        self.prefix = prefix
        self.service = service
        self.methods = methods
        self.stripPrefix = stripPrefix
        self.version = version
        self.name = name ?? prefix
        self.permissions = permissions
        self.forwardAuthorization = forwardAuthorization
    }
}

/// `routes[i].permissions` — the permission each method group needs; a group without one is refused.
public struct RoutePermissions: Sendable, Equatable {
    /// `read` — for GET, HEAD and OPTIONS.
    public var read: String?
    /// `write` — for every other method.
    public var write: String?

    public init(read: String? = nil, write: String? = nil) {
        self.read = read
        self.write = write
    }

    /// Whether `method` belongs to the read group (safe methods that only read, RFC 9110 §9.2.1).
    public static func isRead(_ method: String) -> Bool {
        method == "GET" || method == "HEAD" || method == "OPTIONS"
    }
}


/// `client_headers` — which client-supplied request fields are removed before forwarding, on top of the
/// fixed rules (hop-by-hop fields; every spelling of `X-User-*` and `X-Gateway-*`).
public struct ClientHeadersConfig: Sendable, Equatable {
    /// `strip` — further field names to remove (case, `-`, `_` and `.` alike). Default none.
    public var strip: [String] = []
    /// `keep` — names of the built-in list (`ClientHeaderFilter.builtIn`) to pass after all. Default none.
    public var keep: [String] = []

    public init() {}
}
