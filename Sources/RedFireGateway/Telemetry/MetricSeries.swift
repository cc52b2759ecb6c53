import Synchronization

/// Per-second telemetry of one route, service or instance: a ring of one-second buckets for the last
/// minute and a ring of 15-second buckets for the long window (default 15 minutes). Recording takes
/// this series' own short mutex — never a lock shared across series — and allocates nothing: the
/// buckets and their histograms are allocated once and reset in place when reused.
package final class MetricSeries: Sendable {
    package let name: String
    /// Its WebSockets and event streams.
    package let streams = StreamTelemetry()
    /// Its slowest requests of the last minute (a route's).
    package let slowest = SlowRequests()

    struct Bucket {
        var start: Int64 = .min
        var counters = MetricCounters()
        var latency = LatencyHistogram()
        var added = LatencyHistogram()

        mutating func record(_ sample: RequestSample) {
            counters.requests += 1
            switch sample.status {
            case 200..<300: counters.status2xx += 1
            case 300..<400: counters.status3xx += 1
            case 400..<500:
                counters.status4xx += 1
                if sample.status == 401 { counters.unauthorized += 1 }
                if sample.status == 403 { counters.forbidden += 1 }
                if sample.status == 429 { counters.rateLimited += 1 }
            case 500..<600: counters.status5xx += 1
            default: break
            }
            counters.upstreamErrors += sample.upstreamErrors
            counters.upstreamTimeouts += sample.upstreamTimeouts
            if sample.truncated { counters.upstreamTruncated += 1 }
            counters.bytesIn += sample.bytesIn
            counters.bytesOut += sample.bytesOut
            latency.record(micros: sample.totalMicros)
            added.record(micros: sample.totalMicros &- min(sample.upstreamMicros, sample.totalMicros))
        }

        mutating func reuse(start: Int64) {
            self.start = start
            counters = MetricCounters()
            latency.reset()
            added.reset()
        }
    }

    struct Rings {
        var fine: [Bucket]
        var coarse: [Bucket]
        var totals = Totals()
    }

    /// Counts since start, for Prometheus (counters must only grow).
    struct Totals {
        /// Requests by method and status code. The latest key's run is counted apart until another key
        /// comes (`latest`), so the usual run of one method and code adds without hashing a method name
        /// on every request.
        var byMethodAndCode: [MethodCode: Int] {
            guard let latest, latestCount > 0 else { return counted }
            var all = counted
            all[latest, default: 0] += latestCount
            return all
        }
        private var counted: [MethodCode: Int] = [:]
        private var latest: MethodCode?
        private var latestCount = 0
        /// Cumulative-by-construction counts per `DurationBuckets.bounds` bucket (+Inf last).
        var durationBuckets = Array(repeating: 0, count: DurationBuckets.bounds.count + 1)
        var durationSumMicros: UInt64 = 0
        var count = 0
        var truncated = 0

        mutating func record(_ sample: RequestSample, micros: UInt64) {
            count(MethodCode(method: sample.method, code: sample.status))
            if sample.truncated { truncated += 1 }
            durationBuckets[DurationBuckets.index(micros: micros)] += 1
            durationSumMicros &+= micros
            count += 1
        }

        private mutating func count(_ key: MethodCode) {
            if key == latest {
                latestCount += 1
                return
            }
            if let latest { counted[latest, default: 0] += latestCount }
            latest = key
            latestCount = 1
        }
    }

    struct MethodCode: Hashable {
        var method: String
        var code: Int
    }

    /// Whether the Prometheus duration histogram measures time waiting on the instance (instance
    /// series: `gateway_upstream_duration_seconds`) rather than total time (routes and services).
    let totalsMeasureUpstream: Bool

    static let fineSeconds = 60
    static let coarseSeconds: Int64 = 15
    private let rings: Mutex<Rings>
    /// Length of the long window in seconds.
    package let retention: Int

    package init(name: String, retention: Duration = .seconds(900), totalsMeasureUpstream: Bool = false) {
        self.name = name
        self.totalsMeasureUpstream = totalsMeasureUpstream
        let coarseCount = max(4, Int(retention.components.seconds / Self.coarseSeconds))
        self.retention = coarseCount * Int(Self.coarseSeconds)
        self.rings = Mutex(Rings(fine: Array(repeating: Bucket(), count: Self.fineSeconds),
                                 coarse: Array(repeating: Bucket(), count: coarseCount)))
    }

    func record(_ sample: RequestSample, second: Int64) {
        rings.withLock { rings in
            let fineIndex = Int(second % Int64(rings.fine.count))
            if rings.fine[fineIndex].start != second { rings.fine[fineIndex].reuse(start: second) }
            rings.fine[fineIndex].record(sample)
            let coarseStart = second - second % Self.coarseSeconds
            let coarseIndex = Int((coarseStart / Self.coarseSeconds) % Int64(rings.coarse.count))
            if rings.coarse[coarseIndex].start != coarseStart { rings.coarse[coarseIndex].reuse(start: coarseStart) }
            rings.coarse[coarseIndex].record(sample)
            rings.totals.record(sample, micros: totalsMeasureUpstream ? sample.upstreamMicros : sample.totalMicros)
        }
    }

    /// A copy of the totals since start.
    func totals() -> Totals {
        rings.withLock { $0.totals }
    }

    /// Merges the buckets of the last `seconds` (up to and including the current second). Windows up
    /// to a minute use one-second buckets; longer ones use 15-second buckets.
    package func window(seconds requested: Int, now: Int64 = TelemetryClock.second()) -> MetricWindow {
        let seconds = min(max(1, requested), retention)
        var result = MetricWindow(seconds: seconds, counters: MetricCounters(), latency: LatencyHistogram(), addedLatency: LatencyHistogram())
        rings.withLock { rings in
            if seconds <= Self.fineSeconds {
                let oldest = now - Int64(seconds) + 1
                for bucket in rings.fine where bucket.start >= oldest && bucket.start <= now {
                    result.counters.add(bucket.counters)
                    result.latency.merge(bucket.latency)
                    result.addedLatency.merge(bucket.added)
                }
            } else {
                let oldest = now - Int64(seconds) + 1
                for bucket in rings.coarse where bucket.start + Self.coarseSeconds > oldest && bucket.start <= now {
                    result.counters.add(bucket.counters)
                    result.latency.merge(bucket.latency)
                    result.addedLatency.merge(bucket.added)
                }
            }
        }
        return result
    }

    /// Counts per second for the last `count` seconds (≤ 60), oldest first — the console's sparklines.
    package func perSecond(_ count: Int = 60, now: Int64 = TelemetryClock.second(), _ field: (MetricCounters) -> Int = { $0.requests }) -> [Int] {
        let count = min(max(1, count), Self.fineSeconds)
        return rings.withLock { rings in
            (0..<count).map { offset in
                let second = now - Int64(count - 1 - offset)
                guard second >= 0 else { return 0 }  // before the clock's origin (process start)
                let bucket = rings.fine[Int(second % Int64(rings.fine.count))]
                return bucket.start == second ? field(bucket.counters) : 0
            }
        }
    }
}
