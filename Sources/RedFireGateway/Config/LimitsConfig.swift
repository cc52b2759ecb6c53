import Foundation

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
    /// `rate_limits.sync_interval` — how often `scope: sync` policies share their counts (read at start).
    public var syncInterval: Duration = .milliseconds(200)
    /// `rate_limits.store_timeout` — how long a `scope: exact` decision waits for the cluster store
    /// before it is refused (or decided as `split`); read at start.
    public var storeTimeout: Duration = .seconds(1)

    public enum HeaderStyle: String, Sendable, CaseIterable {
        case ietf
        case ietfAndLegacy = "ietf_and_legacy"
        case none
    }

    public init() {}
}

/// Whose allowance a policy is in a cluster. Without `cluster.store` every scope is this process's own
/// (one node: `split` divides by one, and this process's decisions are exact).
public enum RateLimitScope: String, Sendable, CaseIterable {
    /// Each node keeps its own allowance: N nodes admit up to N times the limit.
    case node
    /// Each node admits its share, the limit divided by the nodes alive (their heartbeats); no database
    /// access per request. Exact when clients spread evenly over the nodes; a client that sticks to one
    /// node gets its share only.
    case split
    /// Decided on each node with no store access, counts shared every `rate_limits.sync_interval`; per
    /// fixed window of the period by the nodes' clocks. A small, bounded overshoot (docs/configuration.md).
    case sync
    /// One atomic decision in the cluster store per request, in fixed windows of the period by the
    /// store's clock: never over the limit. For low-rate, high-value limits (order entry).
    case exact
}

/// `rate` + `burst`: e.g. 100 requests per second, up to 50 at once from idle.
public struct RateLimitPolicy: Sendable, Equatable {
    /// The policy's name in `RateLimit-Policy` (`default`, `route`, or the role).
    public var name: String
    public var count: Int
    public var period: Duration
    public var burst: Int
    /// `scope` — whose allowance this is when several gateways share a cluster (`cluster.store`).
    public var scope: RateLimitScope = .node
    /// `when_store_unavailable` — what an `exact` policy does while the cluster store cannot be reached.
    public var whenStoreUnavailable: StoreUnavailableAction = .refuse

    public init(name: String, count: Int, period: Duration, burst: Int, scope: RateLimitScope = .node) {
        self.name = name
        self.count = count
        self.period = period
        self.burst = burst
        self.scope = scope
    }

    public enum StoreUnavailableAction: String, Sendable, CaseIterable {
        /// 503 `rate_limit_unavailable` with `Retry-After` (the limit is never exceeded).
        case refuse
        /// Decide as `split` until the store answers again.
        case split
    }

    /// This policy as one node's share of a cluster of `nodes`: rate and burst divided (at least 1 each).
    func split(among nodes: Int) -> RateLimitPolicy {
        guard nodes > 1 else { return self }
        var share = self
        share.count = max(1, Int((Double(count) / Double(nodes)).rounded()))
        share.burst = max(1, Int((Double(burst) / Double(nodes)).rounded()))
        return share
    }

    /// Parses `N/s`, `N/m` or `N/h`.
    public static func parseRate(_ text: String) -> (count: Int, period: Duration)? {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let count = Int(parts[0].trimmingCharacters(in: .whitespaces)), count > 0 else { return nil }
        switch parts[1].trimmingCharacters(in: .whitespaces) {
        case "s": return (count, .seconds(1))
        case "m": return (count, .seconds(60))
        case "h": return (count, .seconds(3600))
        default: return nil
        }
    }

    /// Nanoseconds between two requests at the sustained rate (GCRA's emission interval T).
    var interval: Int64 {
        let nanos = period.components.seconds * 1_000_000_000 + period.components.attoseconds / 1_000_000_000
        return max(1, nanos / Int64(count))
    }

    /// How far ahead of now the theoretical arrival time may run (GCRA's tolerance τ): exactly `burst`
    /// requests pass at once from idle.
    var tolerance: Int64 { interval * Int64(max(0, burst - 1)) }

    var description: String { "\(count)/\(period == .seconds(1) ? "s" : period == .seconds(60) ? "m" : "h") burst \(burst)" }
}
