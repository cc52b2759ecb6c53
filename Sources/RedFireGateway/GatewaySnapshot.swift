import Foundation

/// A consistent, read-only picture of the gateway's state and telemetry at one moment: what the
/// operations console draws. Building one reads the current `GatewayState` once and every series over
/// the same window and the same clock second, so the figures of one frame agree with each other.
public struct GatewaySnapshot: Sendable {
    /// Counts and latency quantiles of one route, service, instance or the whole gateway over a window.
    /// The counts are the window's `MetricCounters`, readable directly (`figures.status5xx`).
    @dynamicMemberLookup
    public struct Figures: Sendable, Equatable {
        public var counters = MetricCounters()
        public var requestsPerSecond = 0.0
        /// Latency quantiles in microseconds; nil without requests.
        public var p50: UInt64?
        public var p90: UInt64?
        public var p99: UInt64?
        public var p999: UInt64?
        public var max: UInt64?
        public var meanMicros: Double?
        public var windowSeconds = 1

        public init() {}

        public subscript<Value>(dynamicMember keyPath: WritableKeyPath<MetricCounters, Value>) -> Value {
            get { counters[keyPath: keyPath] }
            set { counters[keyPath: keyPath] = newValue }
        }

        /// - Parameter elapsed: seconds the series can have data for (the process's uptime), so rates
        ///   right after start are not diluted by the part of the window before it.
        public init(_ window: MetricWindow, elapsed: Int = .max) {
            counters = window.counters
            windowSeconds = Swift.max(1, Swift.min(window.seconds, elapsed))
            requestsPerSecond = Double(counters.requests) / Double(windowSeconds)
            p50 = window.latency.quantile(0.5)
            p90 = window.latency.quantile(0.9)
            p99 = window.latency.quantile(0.99)
            p999 = window.latency.quantile(0.999)
            max = window.latency.count > 0 ? window.latency.maxMicros : nil
            meanMicros = window.latency.count > 0 ? Double(window.latency.sumMicros) / Double(window.latency.count) : nil
        }

        /// Share of requests answered 5xx or broken off by the instance.
        public var errorRatio: Double { counters.errorRatio }
        public var rateLimitedPerSecond: Double { Double(counters.rateLimited) / Double(Swift.max(1, windowSeconds)) }
    }

    public struct Check: Sendable, Equatable {
        public var passed: Bool
        public var reason: String
        public var age: Duration

        public init(passed: Bool, reason: String, age: Duration) {
            self.passed = passed
            self.reason = reason
            self.age = age
        }
    }

    /// WebSockets and event streams of a route or an instance: open now, and traffic per second over the
    /// last ten seconds (in: client → instance).
    public struct Streams: Sendable, Equatable {
        public var open = 0
        public var messagesInPerSecond = 0.0
        public var messagesOutPerSecond = 0.0
        public var bytesInPerSecond = 0.0
        public var bytesOutPerSecond = 0.0

        public init(open: Int = 0, messagesInPerSecond: Double = 0, messagesOutPerSecond: Double = 0, bytesInPerSecond: Double = 0, bytesOutPerSecond: Double = 0) {
            self.open = open
            self.messagesInPerSecond = messagesInPerSecond
            self.messagesOutPerSecond = messagesOutPerSecond
            self.bytesInPerSecond = bytesInPerSecond
            self.bytesOutPerSecond = bytesOutPerSecond
        }

        init(_ telemetry: StreamTelemetry, now: Int64) {
            let rates = telemetry.rates(seconds: 10, now: now)
            self.init(open: telemetry.openCount, messagesInPerSecond: rates.messagesIn, messagesOutPerSecond: rates.messagesOut,
                      bytesInPerSecond: rates.bytesIn, bytesOutPerSecond: rates.bytesOut)
        }

        public var messagesPerSecond: Double { messagesInPerSecond + messagesOutPerSecond }
    }

    public struct Instance: Sendable, Equatable {
        public var id: String
        public var service: String
        /// `scheme://host:port`.
        public var address: String
        public var state: InstanceState
        public var health: HealthStatus
        public var weight: Int
        public var inFlight: Int
        public var figures: Figures
        /// Newest first.
        public var recentChecks: [Check]
        public var ejectedFor: Duration?
        public var leaseExpiresIn: Duration?
        /// Requests this instance served in the last 60 seconds (the strategy preview's input).
        public var requestsLastMinute: Int
        /// Mean latency over the last 60 seconds, in microseconds.
        public var meanMicrosLastMinute: Double?
        /// Whether the balancer may choose it now.
        public var eligible: Bool
        /// In a cluster, when the nodes disagree: what each node alive says (`healthy`, `unhealthy`,
        /// `ejected`), by node name. Empty when they agree it is healthy.
        public var healthByNode: [String: String]
        /// Its WebSockets and event streams (also counted in `inFlight`).
        public var streams = Streams()

        public init(id: String, service: String, address: String, state: InstanceState, health: HealthStatus = .healthy,
                    weight: Int = 1, inFlight: Int = 0, figures: Figures = Figures(), recentChecks: [Check] = [],
                    ejectedFor: Duration? = nil, leaseExpiresIn: Duration? = nil, requestsLastMinute: Int = 0,
                    meanMicrosLastMinute: Double? = nil, eligible: Bool = true, healthByNode: [String: String] = [:]) {
            self.healthByNode = healthByNode
            self.id = id
            self.service = service
            self.address = address
            self.state = state
            self.health = health
            self.weight = weight
            self.inFlight = inFlight
            self.figures = figures
            self.recentChecks = recentChecks
            self.ejectedFor = ejectedFor
            self.leaseExpiresIn = leaseExpiresIn
            self.requestsLastMinute = requestsLastMinute
            self.meanMicrosLastMinute = meanMicrosLastMinute
            self.eligible = eligible
        }
    }

    public struct Service: Sendable, Equatable {
        public var name: String
        public var strategy: BalancingStrategyKind
        public var panic: Bool
        public var figures: Figures
        public var latency: LatencyHistogram
        public var instances: [Instance]

        public init(name: String, strategy: BalancingStrategyKind, panic: Bool = false, figures: Figures = Figures(),
                    latency: LatencyHistogram = LatencyHistogram(), instances: [Instance]) {
            self.name = name
            self.strategy = strategy
            self.panic = panic
            self.figures = figures
            self.latency = latency
            self.instances = instances
        }

        /// Instances that serve traffic and passed their checks (or are not checked).
        public var healthyCount: Int { instances.filter { $0.eligible }.count }
    }

    public struct Route: Sendable, Equatable {
        public var name: String
        public var prefix: String
        public var service: String
        public var figures: Figures
        public var latency: LatencyHistogram
        /// Requests per second for the last 60 seconds, oldest first.
        public var requestsSeries: [Int]
        /// 429 answers per second for the last 60 seconds, oldest first.
        public var rateLimitedSeries: [Int]
        /// Its WebSockets and event streams.
        public var streams = Streams()
        /// Its slowest requests of the last minute, slowest first.
        public var slowest: [SlowRequest] = []

        public init(name: String, prefix: String, service: String, figures: Figures = Figures(), latency: LatencyHistogram = LatencyHistogram(),
                    requestsSeries: [Int] = Array(repeating: 0, count: 60), rateLimitedSeries: [Int] = Array(repeating: 0, count: 60)) {
            self.name = name
            self.prefix = prefix
            self.service = service
            self.figures = figures
            self.latency = latency
            self.requestsSeries = requestsSeries
            self.rateLimitedSeries = rateLimitedSeries
        }
    }

    /// One of a route's slowest recent requests: what the console shows to find its trace and log lines.
    public struct SlowRequest: Sendable, Equatable {
        /// The whole request, as the access log's `total_ms`.
        public var micros: UInt64
        public var status: Int
        public var method: String
        /// The normalized path (never the query).
        public var path: String
        public var requestID: String
        /// 32 hex digits: sampled or not, every request has one when tracing is on.
        public var traceID: String?
        public var instance: String?
        public var secondsAgo: Int

        public init(micros: UInt64, status: Int, method: String, path: String, requestID: String, traceID: String? = nil, instance: String? = nil,
                    secondsAgo: Int = 0) {
            self.micros = micros
            self.status = status
            self.method = method
            self.path = path
            self.requestID = requestID
            self.traceID = traceID
            self.instance = instance
            self.secondsAgo = secondsAgo
        }
    }

    /// A client the rate limiter turned away most often: a client IP, user id or API key name (never a secret).
    public struct LimitedKey: Sendable, Equatable {
        public var key: String
        public var rejections: Int

        public init(key: String, rejections: Int) {
            self.key = key
            self.rejections = rejections
        }
    }

    /// This node in its cluster (`cluster.store`); nil for a single gateway.
    public struct Cluster: Sendable, Equatable {
        public var node: String
        /// The nodes alive by their heartbeats, this one included, by name.
        public var nodesAlive: [String]
        /// Since when the cluster store cannot be reached; nil while it can.
        public var storeUnreachableSince: Date?

        public init(node: String, nodesAlive: [String], storeUnreachableSince: Date? = nil) {
            self.node = node
            self.nodesAlive = nodesAlive
            self.storeUnreachableSince = storeUnreachableSince
        }
    }

    /// One listener: its URL, open connections by protocol and, with TLS, its soonest certificate expiry.
    public struct Listener: Sendable, Equatable {
        /// `https://0.0.0.0:8443`
        public var url: String
        public var open: Int
        /// Open connections whose handshake negotiated TLS 1.3 / 1.2 (TLS listeners).
        public var tls13: Int
        public var tls12: Int
        /// Open connections speaking HTTP/2 (TLS listeners).
        public var http2: Int
        public var tls: Bool
        /// A plain listener answering every request with a redirect to HTTPS.
        public var redirectsToHTTPS: Bool
        /// The certificate that expires first, and in how many whole days (TLS listeners).
        public var soonestCertificate: String?
        public var certificateDaysLeft: Int?

        public init(url: String, open: Int = 0, tls13: Int = 0, tls12: Int = 0, http2: Int = 0, tls: Bool = false, redirectsToHTTPS: Bool = false,
                    soonestCertificate: String? = nil, certificateDaysLeft: Int? = nil) {
            self.url = url
            self.open = open
            self.tls13 = tls13
            self.tls12 = tls12
            self.http2 = http2
            self.tls = tls
            self.redirectsToHTTPS = redirectsToHTTPS
            self.soonestCertificate = soonestCertificate
            self.certificateDaysLeft = certificateDaysLeft
        }
    }

    public var takenAt: Date
    public var uptime: Duration
    /// Increases with every rebuild of the routing state (reload, health change, drain, registration).
    public var generation: Int
    /// Successful configuration loads since start (1 = the file the gateway started with).
    public var configVersion: Int
    public var listen: String
    /// Every listener, the primary one first.
    public var listeners: [Listener] = []
    public var windowSeconds: Int
    public var gateway: Figures
    public var openConnections: Int
    /// Since when the listener cannot accept for want of file descriptors; nil while accepting.
    public var acceptPausedFor: Duration?
    /// The process's soft open-file limit.
    public var openFileLimit: Int
    /// The last reload attempt was refused (the running configuration is older than the file).
    public var lastReloadFailed: Bool
    public var services: [Service]
    /// In file order.
    public var routes: [Route]
    /// 429 answers per second over the last 60 seconds, all routes.
    public var rateLimitedSeries: [Int]
    public var topLimitedKeys: [LimitedKey]
    /// Newest last.
    public var events: [GatewayEvent]
    public var cluster: Cluster?

    public init(takenAt: Date = Date(timeIntervalSince1970: 0), uptime: Duration = .zero, generation: Int = 1, configVersion: Int = 1,
                listen: String = "127.0.0.1:8080", windowSeconds: Int = 60, gateway: Figures = Figures(), openConnections: Int = 0,
                acceptPausedFor: Duration? = nil, openFileLimit: Int = 0, lastReloadFailed: Bool = false, services: [Service] = [], routes: [Route] = [],
                rateLimitedSeries: [Int] = Array(repeating: 0, count: 60), topLimitedKeys: [LimitedKey] = [], events: [GatewayEvent] = [],
                cluster: Cluster? = nil) {
        self.cluster = cluster
        self.takenAt = takenAt
        self.uptime = uptime
        self.generation = generation
        self.configVersion = configVersion
        self.listen = listen
        self.windowSeconds = windowSeconds
        self.gateway = gateway
        self.openConnections = openConnections
        self.acceptPausedFor = acceptPausedFor
        self.openFileLimit = openFileLimit
        self.lastReloadFailed = lastReloadFailed
        self.services = services
        self.routes = routes
        self.rateLimitedSeries = rateLimitedSeries
        self.topLimitedKeys = topLimitedKeys
        self.events = events
    }

    public func service(named name: String) -> Service? { services.first { $0.name == name } }

    /// Requests in flight to any instance.
    public var inFlight: Int { services.reduce(0) { $0 + $1.instances.reduce(0) { $0 + $1.inFlight } } }

    public func instance(id: String) -> Instance? {
        for service in services { if let found = service.instances.first(where: { $0.id == id }) { return found } }
        return nil
    }
}
