import DemoServices
import Foundation
import Testing

@testable import RedFireGateway

@Suite("Telemetry", .cleansUp, .timeLimit(.minutes(2)))
struct TelemetryTests {
    @Test func histogramBucketsAreContiguousAndNarrow() {
        for index in 0..<(LatencyHistogram.bucketCount - 1) {
            #expect(LatencyHistogram.upperBound(index) == LatencyHistogram.lowerBound(index + 1))
            let lower = LatencyHistogram.lowerBound(index), upper = LatencyHistogram.upperBound(index)
            #expect(LatencyHistogram.index(micros: lower) == index)
            #expect(LatencyHistogram.index(micros: upper - 1) == index)
            if lower >= 4 { #expect(Double(upper - lower) / Double(lower) <= 0.25) }
        }
    }

    @Test func quantilesAreWithinABucket() {
        var histogram = LatencyHistogram()
        for micros in 1...10_000 { histogram.record(micros: UInt64(micros)) }
        #expect(histogram.count == 10_000)
        #expect(histogram.maxMicros == 10_000)
        let p50 = Double(histogram.quantile(0.5)!), p99 = Double(histogram.quantile(0.99)!)
        #expect(abs(p50 - 5_000) / 5_000 < 0.15, "p50 \(p50)")
        #expect(abs(p99 - 9_900) / 9_900 < 0.15, "p99 \(p99)")
        #expect(histogram.quantile(1.0) == 10_000)
        #expect(LatencyHistogram().quantile(0.5) == nil)
    }

    @Test func seriesMergesWindowsAndForgetsOldSeconds() {
        let series = MetricSeries(name: "t", retention: .seconds(120))
        for second in Int64(1)...Int64(100) {
            series.record(RequestSample(status: second % 10 == 0 ? 500 : 200, totalMicros: 1000, upstreamMicros: 900, bytesIn: 10, bytesOut: 20), second: second)
        }
        let last10 = series.window(seconds: 10, now: 100)
        #expect(last10.counters.requests == 10)
        #expect(last10.counters.status5xx == 1)
        #expect(last10.counters.bytesOut == 200)
        #expect(last10.requestsPerSecond == 1)
        #expect(last10.addedLatency.quantile(0.5)! < 120)
        #expect(series.window(seconds: 60, now: 100).counters.requests == 60)
        // Long windows use 15-second buckets: the 120 s window covers everything recorded.
        #expect(series.window(seconds: 120, now: 100).counters.requests == 100)
        #expect(series.perSecond(5, now: 102) == [1, 1, 1, 0, 0])
        // A minute later the one-second ring has moved on.
        #expect(series.window(seconds: 10, now: 200).counters.requests == 0)
    }

    @Test func totalsCountEveryMethodAndCodeAcrossRunsAndSwitches() {
        let series = MetricSeries(name: "t")
        // Runs of one key, keys alternating, a key coming back after others: every request counts once.
        let keys: [(String, Int)] = [("GET", 200), ("GET", 200), ("GET", 200), ("POST", 201), ("GET", 200), ("POST", 201),
                                     ("GET", 404), ("GET", 404), ("GET", 200)]
        for (method, code) in keys {
            series.record(RequestSample(status: code, method: method, totalMicros: 10, upstreamMicros: 5, bytesIn: 0, bytesOut: 0), second: 1)
            // Reading in between does not lose or double the run in progress.
            _ = series.totals()
        }
        let counts = series.totals().byMethodAndCode
        let text = counts.sorted { ($0.key.method, $0.key.code) < ($1.key.method, $1.key.code) }
            .map { "\($0.key.method) \($0.key.code) \($0.value)" }.joined(separator: ", ")
        #expect(text == "GET 200 5, GET 404 2, POST 201 2")
        #expect(series.totals().count == keys.count)
    }

    @Test func gatewayCountsAKnownMixExactly() async throws {
        let instances = try await startInstances(.userTrading, count: 2)
        // No passive ejection: ten 500s would eject both instances and bend the round robin.
        let gateway = try await tradingGateway(instances, configure: { $0.passiveEjection.enabled = false },
                                               routes: [RouteConfig(prefix: "/api/v1/trading", service: "user_trading", methods: ["GET"])])
        for _ in 0..<100 { #expect(try await gateway.send("/api/v1/trading/orders").status == 200) }
        for _ in 0..<10 { #expect(try await gateway.send("/api/v1/trading/orders?status=500").status == 500) }
        for _ in 0..<5 { #expect(try await gateway.send(.DELETE, "/api/v1/trading/orders").status == 405) }
        for _ in 0..<3 { #expect(try await gateway.send("/nowhere").status == 404) }

        let state = gateway.registry.state
        let route = state.routes[0].metrics.window(seconds: 60)
        #expect(route.counters.requests == 115)
        #expect(route.counters.status2xx == 100)
        #expect(route.counters.status5xx == 10)
        #expect(route.counters.status4xx == 5)
        let service = state.services[0].metrics.window(seconds: 60)
        #expect(service.counters.requests == 115)
        let perInstance = state.services[0].members.map { $0.runtime.metrics.window(seconds: 60).counters.requests }
        #expect(perInstance.reduce(0, +) == 110)
        #expect(perInstance.allSatisfy { $0 == 55 })
        let all = gateway.registry.telemetry.gatewayWindow(seconds: 60, state: state)
        #expect(all.counters.requests == 118)
        #expect(all.counters.status4xx == 8)
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test func latencyOfASlowUpstreamReadsRight() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await tradingGateway(instances)
        var observed: [UInt64] = []
        for _ in 0..<20 {
            let started = ContinuousClock.now
            #expect(try await gateway.send("/api/v1/trading/orders?sleep_ms=50").status == 200)
            observed.append(TelemetryClock.micros(ContinuousClock.now - started))
        }
        observed.sort()
        let window = gateway.registry.state.routes[0].metrics.window(seconds: 60)
        let p50 = window.latency.quantile(0.5)!, p99 = window.latency.quantile(0.99)!
        // 50–60 ms on a quiet machine; when other tests load the two cores, never more than what the
        // client itself measured (plus one bucket's width).
        let p50Bound = max(60_000, observed[9] + observed[9] / 4), p99Bound = max(60_000, observed[19] + observed[19] / 4)
        #expect(p50 >= 50_000 && p50 <= p50Bound, "p50 \(p50) µs, client saw \(observed[9]) µs")
        #expect(p99 >= 50_000 && p99 <= p99Bound, "p99 \(p99) µs, client saw \(observed[19]) µs")
        // Almost all of it is the upstream's time.
        #expect(window.addedLatency.quantile(0.5)! < 10_000)
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test func metricsSurviveAReload() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await tradingGateway(instances)
        for _ in 0..<7 { _ = try await gateway.send("/api/v1/trading/orders") }
        gateway.registry.apply(gateway.registry.state.config)
        #expect(gateway.registry.state.routes[0].metrics.window(seconds: 60).counters.requests == 7)
        #expect(gateway.registry.state.services[0].members[0].runtime.metrics.window(seconds: 60).counters.requests == 7)
        await gateway.shutdown()
        await stopAll(instances)
    }
}

@Suite("Prometheus", .cleansUp, .timeLimit(.minutes(2)))
struct PrometheusTests {
    static func value(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    @Test func metricsReportAKnownMixExactly() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await tradingGateway(instances) { $0.passiveEjection.enabled = false }
        for _ in 0..<100 { _ = try await gateway.send("/api/v1/trading/orders") }
        for _ in 0..<10 { _ = try await gateway.send("/api/v1/trading/orders?status=500") }
        for _ in 0..<5 { _ = try await gateway.send("/api/v1/trading/orders?status=429") }
        for _ in 0..<2 { _ = try await gateway.send("/elsewhere") }
        let reply = try await gateway.send("/metrics")
        #expect(reply.status == 200)
        #expect(reply.headers.first(name: "Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
        let text = reply.body
        let route = #"route="/api/v1/trading",service="user_trading""#
        #expect(Self.value(text, #"gateway_requests_total{\#(route),method="GET",code="200"}"#) == 100)
        #expect(Self.value(text, #"gateway_requests_total{\#(route),method="GET",code="500"}"#) == 10)
        #expect(Self.value(text, #"gateway_requests_total{\#(route),method="GET",code="429"}"#) == 5)
        #expect(Self.value(text, #"gateway_requests_total{route="",service="",method="GET",code="404"}"#) == 2)
        #expect(Self.value(text, #"gateway_ratelimit_rejections_total{route="/api/v1/trading"}"#) == 5)
        #expect(Self.value(text, #"gateway_request_duration_seconds_count{\#(route)}"#) == 115)
        #expect(Self.value(text, #"gateway_request_duration_seconds_bucket{\#(route),le="+Inf"}"#) == 115)
        #expect(Self.value(text, #"gateway_upstream_requests_total{service="user_trading",instance="user_trading-1",code="200"}"#) == 100)
        #expect(Self.value(text, #"gateway_upstream_duration_seconds_count{service="user_trading",instance="user_trading-1"}"#) == 115)
        #expect(Self.value(text, #"gateway_instance_healthy{service="user_trading",instance="user_trading-1"}"#) == 1)
        #expect(Self.value(text, #"gateway_instance_inflight{service="user_trading",instance="user_trading-1"}"#) == 0)
        #expect((Self.value(text, #"gateway_health_checks_total{service="user_trading",instance="user_trading-1",result="pass"}"#) ?? 0) >= 1)
        #expect(Self.value(text, #"gateway_config_reloads_total{result="success"}"#) == 0)
        // Buckets are cumulative and never decrease.
        var previous = 0.0
        for line in text.split(separator: "\n") where line.hasPrefix("gateway_request_duration_seconds_bucket{\(route)") {
            let value = Double(line.split(separator: " ").last!)!
            #expect(value >= previous)
            previous = value
        }
        await gateway.shutdown()
        await stopAll(instances)
    }
}

@Suite("Grafana dashboard", .cleansUp, .timeLimit(.minutes(2)))
struct GrafanaDashboardTests {
    /// The shipped dashboard only queries metric names the gateway exports.
    @Test func dashboardUsesExportedMetricNames() throws {
        let path = URL(fileURLWithPath: ConfigTests.examplePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/grafana-dashboard.json").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let dashboard = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        let exported = ["gateway_requests_total", "gateway_request_duration_seconds_bucket", "gateway_ratelimit_rejections_total",
                        "gateway_upstream_requests_total", "gateway_upstream_duration_seconds_bucket", "gateway_instance_healthy",
                        "gateway_instance_inflight", "gateway_health_checks_total", "gateway_config_reloads_total"]
        var used: Set<String> = []
        for panel in panels {
            for target in panel["targets"] as? [[String: Any]] ?? [] {
                let expr = try #require(target["expr"] as? String)
                let names = expr.split(whereSeparator: { !($0.isLetter || $0 == "_") }).filter { $0.hasPrefix("gateway_") }.map(String.init)
                #expect(!names.isEmpty)
                for name in names { #expect(exported.contains(name), "\(name) is not exported"); used.insert(name) }
            }
        }
        #expect(used == Set(exported))
    }
}

/// `/metrics` names every route, service and instance: public on a loopback listener by default, and
/// behind a scraper's token (or the admin token) elsewhere.
@Suite("Metrics access", .cleansUp, .timeLimit(.minutes(2)))
struct MetricsAccessTests {
    @Test func publicOnlyOnALoopbackListenerByDefault() {
        var config = GatewayConfig()
        for (host, open) in [("127.0.0.1", true), ("127.0.0.2", true), ("::1", true), ("localhost", true), ("0.0.0.0", false), ("::", false),
                             ("10.1.2.3", false), ("gateway.example", false)] {
            config.listen = ListenAddress(host: host, port: 8080)
            #expect(config.metricsArePublic == open, "\(host)")
        }
        config.publicMetrics = true
        #expect(config.metricsArePublic, "explicitly public")
    }

    @Test func aTokenOpensThemWhenNotPublic() async throws {
        var config = GatewayConfig()
        config.publicMetrics = false
        config.metricsToken = "scraper-token-0123456789"
        config.adminToken = AdminAPITests.token
        let gateway = try await GatewayHarness.start(config)
        var reply = try await gateway.send("/metrics")
        #expect(reply.status == 401 && reply.errorCode == "unauthorized")
        #expect(!reply.body.contains("gateway_requests_total"))
        #expect(try await gateway.send("/metrics", headers: [("Authorization", "Bearer wrong-token-0123456789")]).status == 401)
        reply = try await gateway.send("/metrics", headers: [("Authorization", "Bearer scraper-token-0123456789")])
        #expect(reply.status == 200 && reply.body.contains("gateway_config_reloads_total"))
        #expect(try await gateway.send("/metrics", headers: AdminAPITests.auth).status == 200)
        #expect(try await gateway.send("/health").status == 200, "probes stay public")
        await gateway.shutdown()
    }
}
