import Atomics
import HTTPTypes

/// One immutable picture of routes, services and their eligible instances. Requests load the current
/// state once (an atomic load, no lock) and use it to the end; changes build a new state and swap it in.
public final class GatewayState: AtomicReference, Sendable {
    /// Increases with every rebuild (config reload, health change, drain, registration).
    public let generation: Int
    public let config: GatewayConfig
    /// Routes ordered longest prefix first.
    public let routes: [RouteEntry]
    /// Every service's pool without any version filter, in file order.
    public let services: [ServicePool]
    /// The CORS fields, joined once per configuration; nil without `cors`.
    let cors: CORSPolicy?
    /// Client-supplied request fields removed before forwarding (`client_headers`).
    let clientHeaders: ClientHeaderFilter
    /// Some route leaves CORS to its service (`cors: service`).
    let hasServiceCORS: Bool
    /// Timeouts and names every new client connection is held to.
    let connectionSettings: ConnectionSettings

    init(generation: Int, config: GatewayConfig, routes: [RouteEntry], services: [ServicePool]) {
        self.generation = generation
        self.config = config
        self.routes = routes
        self.services = services
        self.cors = config.cors.isEnabled ? CORSPolicy(config.cors) : nil
        self.hasServiceCORS = config.routes.contains { $0.corsByService }
        self.clientHeaders = config.clientHeaders == ClientHeadersConfig() ? .standard : ClientHeaderFilter(config.clientHeaders)
        self.connectionSettings = ConnectionSettings(config: config)
    }

    public func service(named name: String) -> ServicePool? {
        services.first { $0.name == name }
    }

    /// The route serving `path` (no query), matching whole segments: `/api/v1/trading` serves
    /// `/api/v1/trading` and `/api/v1/trading/...`, never `/api/v1/tradingX`. Longest prefix wins.
    func route(for path: Substring) -> RouteEntry? {
        let utf8 = path.utf8
        for route in routes {
            let prefix = route.prefixUTF8
            if prefix.count == 1 { return route }  // "/" serves everything
            guard utf8.count >= prefix.count else { continue }
            var index = utf8.startIndex
            var matched = true
            for byte in prefix {
                if utf8[index] != byte { matched = false; break }
                index = utf8.index(after: index)
            }
            if matched && (index == utf8.endIndex || utf8[index] == UInt8(ascii: "/")) { return route }
        }
        return nil
    }

    /// True when at least one route has a verified-healthy instance (what `/ready` reports).
    public var isReady: Bool {
        routes.contains { route in route.pool.eligible.contains { $0.runtime.health == .healthy || !route.pool.service.healthCheck.enabled } }
    }
}

/// A route resolved against the current services.
public final class RouteEntry: Sendable {
    let config: RouteConfig
    let prefixUTF8: [UInt8]
    let allowedMethods: Set<HTTPRequest.Method>
    /// Value of the `Allow` header for 405 answers.
    let allowHeader: String
    let pool: ServicePool
    public let metrics: MetricSeries

    init(config: RouteConfig, pool: ServicePool, metrics: MetricSeries) {
        self.config = config
        self.metrics = metrics
        self.prefixUTF8 = Array(config.prefix.utf8)
        self.pool = pool
        if let methods = config.methods {
            var set = Set(methods.compactMap { HTTPRequest.Method($0) })
            // HEAD is served wherever GET is (RFC 9110 §9.3.2).
            if set.contains(.get) { set.insert(.head) }
            self.allowedMethods = set
            self.allowHeader = set.map(\.rawValue).sorted().joined(separator: ", ")
        } else {
            self.allowedMethods = Self.standardMethods
            self.allowHeader = Self.standardAllowHeader
        }
    }

    /// What a route without `methods` accepts: the methods of RFC 9110 and PATCH (RFC 5789), but not
    /// `TRACE` (it echoes the request, credentials included — cross-site tracing) nor `CONNECT`, nor
    /// extension methods; a route lists them in `methods` to accept them.
    static let standardMethods: Set<HTTPRequest.Method> = [.get, .head, .post, .put, .patch, .delete, .options]
    static let standardAllowHeader = standardMethods.map(\.rawValue).sorted().joined(separator: ", ")

    public var name: String { config.name }
    var rateLimit: RateLimitPolicy? { config.rateLimit }
}

/// The instances of one service (optionally narrowed to one API version) and the balancer over the
/// eligible ones. Rebuilt, never mutated.
public final class ServicePool: Sendable {
    public let service: ServiceConfig
    public let strategy: BalancingStrategyKind
    /// Every instance of the service (matching the version filter), whatever its state.
    public let members: [PoolMember]
    /// The instances the balancer chooses from.
    public let eligible: [PoolMember]
    /// No instance is eligible and `panic_routing` is on: traffic is spread over every non-drained instance.
    public let panic: Bool
    let balancer: any Balancer
    let shared: ServiceShared
    public let metrics: MetricSeries

    init(service: ServiceConfig, strategy: BalancingStrategyKind, members: [PoolMember], shared: ServiceShared, metrics: MetricSeries) {
        self.metrics = metrics
        self.service = service
        self.strategy = strategy
        self.members = members
        self.shared = shared
        var eligible = members.filter { $0.runtime.isEligible }
        var panic = false
        if eligible.isEmpty && service.panicRouting {
            eligible = members.filter { $0.runtime.isPanicCandidate }
            panic = !eligible.isEmpty
        }
        self.eligible = eligible
        self.panic = panic
        self.balancer = BalancerFactory.make(strategy, members: eligible)
    }

    public var name: String { service.name }
}

/// Per-service objects that live across snapshots: the retry budget.
final class ServiceShared: Sendable {
    let retryBudget: RetryBudget
    /// Requests in flight to the service (for `max_in_flight`), across rebuilds.
    let inFlight = ManagedAtomic<Int>(0)

    init(retries: RetryConfig) {
        self.retryBudget = RetryBudget(config: retries)
    }
}

/// One admitted request under a service's `max_in_flight`, released when the last reference goes
/// (the response body finished, failed or was abandoned).
final class ServiceAdmission: Sendable {
    let shared: ServiceShared

    /// nil when the service is at its limit.
    init?(_ shared: ServiceShared, limit: Int) {
        guard shared.inFlight.wrappingIncrementThenLoad(ordering: .relaxed) <= limit else {
            shared.inFlight.wrappingDecrement(ordering: .relaxed)
            return nil
        }
        self.shared = shared
    }

    deinit {
        shared.inFlight.wrappingDecrement(ordering: .relaxed)
    }
}

/// Retry budget: each request deposits `budget_ratio` of a retry, each retry withdraws one, with
/// `min_retries` in reserve at start. Retries can therefore add at most about `budget_ratio` to the
/// load a struggling service sees. Lock-free (fixed-point tokens in an atomic).
final class RetryBudget: Sendable {
    private static let scale = 1000
    private let tokens: ManagedAtomic<Int>
    private let deposit: Int
    private let capacity: Int
    let config: RetryConfig

    init(config: RetryConfig) {
        self.config = config
        self.deposit = Int(config.budgetRatio * Double(Self.scale))
        self.capacity = max(config.minRetries, 1) * Self.scale
        self.tokens = ManagedAtomic(max(config.minRetries, 0) * Self.scale)
    }

    func recordRequest() {
        guard deposit > 0 else { return }
        var current = tokens.load(ordering: .relaxed)
        while current < capacity {
            let (exchanged, original) = tokens.compareExchange(expected: current, desired: min(capacity, current + deposit), ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }

    func tryWithdraw() -> Bool {
        var current = tokens.load(ordering: .relaxed)
        while current >= Self.scale {
            let (exchanged, original) = tokens.compareExchange(expected: current, desired: current - Self.scale, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }
}
