import Synchronization

/// Counts for one span of time. Every field is a plain count; rates come from dividing by the window.
public struct MetricCounters: Sendable, Equatable {
    public var requests = 0
    public var status2xx = 0
    public var status3xx = 0
    public var status4xx = 0
    public var status5xx = 0
    public var unauthorized = 0
    public var forbidden = 0
    public var rateLimited = 0
    /// Attempts that failed to get a response from an instance (refused, reset, garbage).
    public var upstreamErrors = 0
    /// Attempts that timed out waiting for an instance.
    public var upstreamTimeouts = 0
    /// Responses the instance broke off after their head (counted in `upstreamErrors` too): the
    /// client got a status but not the whole body.
    public var upstreamTruncated = 0
    public var bytesIn = 0
    public var bytesOut = 0

    public init() {}

    mutating func add(_ other: MetricCounters) {
        requests += other.requests
        status2xx += other.status2xx
        status3xx += other.status3xx
        status4xx += other.status4xx
        status5xx += other.status5xx
        unauthorized += other.unauthorized
        forbidden += other.forbidden
        rateLimited += other.rateLimited
        upstreamErrors += other.upstreamErrors
        upstreamTimeouts += other.upstreamTimeouts
        upstreamTruncated += other.upstreamTruncated
        bytesIn += other.bytesIn
        bytesOut += other.bytesOut
    }

    /// Share of requests that failed for the client: answered 5xx, or broken off by the instance.
    public var errorRatio: Double { requests > 0 ? Double(status5xx + upstreamTruncated) / Double(requests) : 0 }
}

/// A merged view of a series over a window.
public struct MetricWindow: Sendable {
    public var seconds: Int
    public var counters: MetricCounters
    /// Total latency as the client saw it.
    public var latency: LatencyHistogram
    /// The gateway's own share: total minus time spent waiting on instances.
    public var addedLatency: LatencyHistogram

    mutating func merge(_ other: MetricWindow) {
        counters.add(other.counters)
        latency.merge(other.latency)
        addedLatency.merge(other.addedLatency)
    }

    public var requestsPerSecond: Double { seconds > 0 ? Double(counters.requests) / Double(seconds) : 0 }
    public var errorRatio: Double { counters.errorRatio }
}
