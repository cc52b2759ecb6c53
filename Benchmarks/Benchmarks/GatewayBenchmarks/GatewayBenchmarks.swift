import Benchmark
import HTTPTypes
@_spi(Benchmarks) import RedFireGateway

let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        scalingFactor: .kilo,
        maxDuration: .seconds(3)
    )

    // One request's telemetry as the request path records it, into one series (route, service and
    // instance each cost one of these).
    Benchmark("metric recording", configuration: configuration) { benchmark in
        let series = BenchmarkHooks.metricSeries()
        var second: Int64 = 1
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            if index & 1023 == 0 { second += 1 }  // cross bucket boundaries as real time does
            BenchmarkHooks.record(series, status: 200, totalMicros: UInt64(800 + index & 255), upstreamMicros: 700, second: second)
        }
    }

    Benchmark("route match (10 routes)", configuration: configuration) { benchmark in
        let state = BenchmarkHooks.state(prefixes: (0..<10).map { "/api/v1/service\($0)" } + ["/api/v1/trading"])
        let path: Substring = "/api/v1/trading/orders/42"
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(BenchmarkHooks.match(state, path: path)) }
    }

    for strategy in BalancingStrategyKind.allCases {
        Benchmark("balancer pick: \(strategy.rawValue) (5 instances)", configuration: configuration) { benchmark in
            let pick = BenchmarkHooks.picker(strategy, weights: [1, 2, 1, 3, 1])
            benchmark.startMeasurement()
            for index in benchmark.scaledIterations { blackHole(pick(strategy == .consistentHash ? "acct-\(index & 63)" : nil)) }
        }
    }

    Benchmark("request head rewriting and writing (10 fields)", configuration: configuration) { benchmark in
        var fields = HTTPFields()
        for index in 0..<8 { fields.append(HTTPField(name: HTTPField.Name("X-Field-\(index)")!, value: "value-\(index)")) }
        fields[.connection] = "keep-alive"
        fields[.userAgent] = "wrk"
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(BenchmarkHooks.upstreamHead(fields)) }
    }

    Benchmark("response header rewriting (8 fields)", configuration: configuration) { benchmark in
        // What an instance typically answers with: framing, type, date, server, its own request ID.
        let fields: HTTPFields = [.contentType: "application/json", .contentLength: "24", .date: "Fri, 27 Nov 2026 11:00:00 GMT",
                                  .server: "nginx/1.22.1", .connection: "keep-alive", .cacheControl: "no-store",
                                  HTTPField.Name("X-Request-ID")!: "upstream", HTTPField.Name("X-Demo-Instance")!: "trading-1"]
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(BenchmarkHooks.downstreamHeaders(fields)) }
    }

    // The rate limiter's decision for one request: one key hammered, and keys spread over 100 000
    // clients (the shard dictionaries hold many entries). Time is synthetic and advances as real time would.
    let policy = RateLimitPolicy(name: "default", count: 1_000_000, period: .seconds(1), burst: 1000)
    Benchmark("rate limit decision (1 key)", configuration: configuration) { benchmark in
        let store = LocalRateLimitStore()
        var now: Int64 = 1_000_000_000
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            now += 1000
            blackHole(store.acquire("ip:203.0.113.7", policy: policy, now: now))
        }
    }
    let manyKeys = (0..<100_000).map { "ip:10.\($0 >> 16).\(($0 >> 8) & 255).\($0 & 255)" }
    let crowded = LocalRateLimitStore()
    for key in manyKeys { _ = crowded.acquire(key, policy: policy, now: 1_000_000_000) }
    Benchmark("rate limit decision (100k keys)", configuration: configuration) { benchmark in
        var now: Int64 = 2_000_000_000
        var cursor = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            now += 1000
            cursor = cursor == manyKeys.count - 1 ? 0 : cursor + 1
            blackHole(crowded.acquire(manyKeys[cursor], policy: policy, now: now))
        }
    }

    Benchmark("path normalization (plain)", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(BenchmarkHooks.normalize("/api/v1/trading/orders/42?limit=10")) }
    }
    Benchmark("path normalization (dot segments, escapes)", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(BenchmarkHooks.normalize("/api/v1//trading/./orders/../orders/%34%32?limit=10")) }
    }

    Benchmark("access token verification (HS256)", configuration: configuration) { benchmark in
        let verify = BenchmarkHooks.accessTokenVerifier()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(verify()) }
    }
}
