import Synchronization

/// Collects what one request contributes to telemetry and records it once, when the request is done.
struct RequestRecorder: Sendable {
    let start: TelemetryClock.Instant
    var method: String = ""
    /// The route's series once a route matched; until then the unrouted series.
    var route: MetricSeries
    var service: MetricSeries?
    /// Where the request's access-log line goes, and what it says beyond the outcome.
    var log: AccessLog?
    var entry: AccessLogEntry?
    /// The client's connection: a request whose client went away before it ended is logged as
    /// `client_closed_request` (with the status the instance gave, if it answered).
    var hangup: ClientHangup?
    /// What the route's slowest requests keep of it (`SlowRequests`): set once a route matched.
    var slow: SlowRequestIdentity?

    struct SlowRequestIdentity: Sendable {
        var requestID: String
        var path: String
        var traceID: TraceID?
    }

    init(start: TelemetryClock.Instant, unrouted: MetricSeries) {
        self.start = start
        self.route = unrouted
    }

    /// Records the request's outcome in the route (or unrouted) and service series, and the instance
    /// that answered, if any.
    func finish(status: Int, instance: MetricSeries? = nil, upstream: Duration = .zero, bytesIn: Int = 0, bytesOut: Int = 0,
                upstreamErrors: Int = 0, upstreamTimeouts: Int = 0, truncated: Bool = false, now: TelemetryClock.Instant = TelemetryClock.now,
                instanceID: String? = nil, attempts: Int? = nil, errorCode: GatewayError? = nil) {
        if let log, let entry {
            let errorCode = errorCode ?? ((hangup?.happened ?? false) ? .clientClosedRequest : nil)
            log.record(entry, status: status, instance: instanceID, attempts: attempts ?? (upstreamErrors + upstreamTimeouts), upstream: upstream, total: now - start,
                       bytesIn: bytesIn, bytesOut: bytesOut, errorCode: errorCode?.code)
        }
        let total = TelemetryClock.micros(now - start)
        let sample = RequestSample(status: status, method: method, totalMicros: total,
                                   upstreamMicros: TelemetryClock.micros(upstream), bytesIn: bytesIn, bytesOut: bytesOut,
                                   upstreamErrors: upstreamErrors, upstreamTimeouts: upstreamTimeouts, truncated: truncated)
        let second = TelemetryClock.second(now)
        if let slow {
            route.slowest.offer(micros: total, second: second) {
                GatewaySnapshot.SlowRequest(micros: total, status: status, method: method, path: slow.path, requestID: slow.requestID,
                                            traceID: slow.traceID?.hex, instance: instanceID)
            }
        }
        route.record(sample, second: second)
        service?.record(sample, second: second)
        instance?.record(sample, second: second)
    }
}
