import Foundation

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
    /// `websocket` — WebSocket upgrades are relayed to the service (`WebSocketRouteConfig`). Default off.
    public var websocket: WebSocketRouteConfig?
    /// `stream_idle_timeout` — the longest silence of an instance while this route's response body
    /// streams (Server-Sent Events, long downloads), instead of the service's `timeouts.idle`.
    public var streamIdleTimeout: Duration?

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
    /// `keep` — names of the built-in list (`builtIn`) to pass after all. Default none.
    public var keep: [String] = []

    /// The built-in list: address claims (`X-Real-IP` family, RFC 7239 `Forwarded`, other
    /// `X-Forwarded-*` the gateway does not set), identity claims of authenticating proxies
    /// (`X-Forwarded-User`, `Remote-User`, `X-Auth-Request-*`), and request rewrites some frameworks
    /// honour (`X-Original-URL`, `X-Rewrite-URL`, `X-HTTP-Method-Override`).
    static let builtIn = [
        "X-Real-IP", "True-Client-IP", "X-Client-IP", "X-Cluster-Client-IP", "CF-Connecting-IP", "Fastly-Client-IP",
        "X-Originating-IP", "X-Remote-IP", "X-Remote-Addr", "Forwarded", "X-Forwarded", "X-Forwarded-Port",
        "X-Forwarded-Prefix", "X-Forwarded-Server", "X-Forwarded-Scheme", "X-Forwarded-Ssl", "X-Url-Scheme", "Front-End-Https",
        "X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Forwarded-Preferred-Username", "X-Forwarded-Access-Token",
        "X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Groups", "X-Auth-Request-Preferred-Username",
        "X-Auth-Request-Access-Token", "Remote-User", "X-Remote-User", "X-Authenticated-User", "X-Original-URL",
        "X-Original-URI", "X-Rewrite-URL", "X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override",
    ]

    /// Lower case, `_` and `.` read as `-`.
    static func normalize(_ name: String) -> String {
        String(decoding: name.utf8.map { byte in
            switch byte {
            case UInt8(ascii: "_"), UInt8(ascii: "."): UInt8(ascii: "-")
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): byte | 0x20
            default: byte
            }
        }, as: UTF8.self)
    }

    public init() {}
}

/// `cors` — which browser origins may call the API (Fetch standard, CORS protocol).
public struct CORSConfig: Sendable, Equatable {
    /// `allowed_origins` — exact origins (`https://app.redfire.example`), or patterns with one `*` for a
    /// single subdomain label (`https://*.redfire.example`). `null` only if listed.
    public var allowedOrigins: [String] = []
    public var allowedMethods: [String] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    public var allowedHeaders: [String] = ["Authorization", "Content-Type", "X-API-Key", "X-Request-ID", "Idempotency-Key"]
    public var exposeHeaders: [String] = ["X-Request-ID", "Retry-After", "RateLimit", "RateLimit-Policy"]
    /// `allow_credentials` — let the browser send cookies / HTTP auth. Default false.
    public var allowCredentials = false
    /// `max_age` — how long a browser may cache a preflight answer. Default 10 minutes.
    public var maxAge: Duration = .seconds(600)

    public init() {}

    public var isEnabled: Bool { !allowedOrigins.isEmpty }

    /// Whether `origin` is allowed: an exact entry, or a `scheme://*.domain` pattern matching exactly
    /// one extra label (so `https://app.redfire.example.evil.com` never matches `https://*.redfire.example`).
    public func allows(_ origin: String) -> Bool {
        for entry in allowedOrigins {
            if entry == origin { return true }
            guard let star = entry.firstIndex(of: "*") else { continue }
            let prefix = entry[..<star], suffix = entry[entry.index(after: star)...]
            guard origin.count > prefix.count + suffix.count, origin.hasPrefix(prefix), origin.hasSuffix(suffix) else { continue }
            let label = origin.dropFirst(prefix.count).dropLast(suffix.count)
            if label.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }) { return true }
        }
        return false
    }
}
