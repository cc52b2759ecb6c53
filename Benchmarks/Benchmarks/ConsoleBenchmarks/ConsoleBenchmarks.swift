import Benchmark
import Foundation
import RedFireDashboard
import RedFireGateway

/// A large gateway for the console: 5 services × 20 instances, 20 routes, busy histograms, events.
func largeSnapshot() -> GatewaySnapshot {
    func histogram(_ center: UInt64) -> LatencyHistogram {
        var histogram = LatencyHistogram()
        for index in 0..<2000 { histogram.record(micros: center / 2 + UInt64(index % 97) * center / 40) }
        return histogram
    }
    func figures(_ histogram: LatencyHistogram, requests: Int) -> GatewaySnapshot.Figures {
        var figures = GatewaySnapshot.Figures()
        figures.requests = requests
        figures.windowSeconds = 60
        figures.requestsPerSecond = Double(requests) / 60
        figures.status2xx = requests - requests / 50
        figures.status5xx = requests / 50
        figures.p50 = histogram.quantile(0.5)
        figures.p90 = histogram.quantile(0.9)
        figures.p99 = histogram.quantile(0.99)
        figures.p999 = histogram.quantile(0.999)
        figures.max = histogram.maxMicros
        return figures
    }
    let names = ["user_trading", "vnpy_core", "strategy_data", "gateway_adapter", "monitor"]
    let services = names.enumerated().map { index, name in
        let latency = histogram(UInt64(1000 + 500 * index))
        return GatewaySnapshot.Service(
            name: name, strategy: BalancingStrategyKind.allCases[index], figures: figures(latency, requests: 60_000), latency: latency,
            instances: (1...20).map { number in
                GatewaySnapshot.Instance(id: "\(name)-\(number)", service: name, address: "http://10.0.\(index).\(number):8000",
                                         state: number == 3 ? .draining : .healthy, inFlight: number % 4, figures: figures(latency, requests: 3000),
                                         recentChecks: [.init(passed: true, reason: "HTTP 200", age: .seconds(1))], requestsLastMinute: 3000)
            })
    }
    let routes = (0..<20).map { index in
        GatewaySnapshot.Route(name: "/api/v1/route\(index)", prefix: "/api/v1/route\(index)", service: names[index % 5],
                              figures: figures(services[index % 5].latency, requests: 15_000), latency: services[index % 5].latency,
                              requestsSeries: (0..<60).map { 200 + ($0 * 37 + index) % 50 })
    }
    let events = (0..<200).map { GatewayEvent(at: Date(timeIntervalSince1970: Double(1_795_000_000 + $0)), kind: .health, message: "instance \($0) healthy") }
    return GatewaySnapshot(takenAt: Date(timeIntervalSince1970: 1_795_000_200), uptime: .seconds(3600), services: services, routes: routes, events: events)
}

let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(metrics: [.wallClock, .mallocCountTotal, .throughput], maxDuration: .seconds(3))
    let snapshot = largeSnapshot()
    let theme = Theme(name: "default-dark", styles: [:])
    var view = ViewState()
    view.now = snapshot.takenAt

    for size in [ScreenSize(width: 80, height: 24), ScreenSize(width: 160, height: 48)] {
        Benchmark("console frame \(size.width)x\(size.height) (5 services x 20 instances, 20 routes)", configuration: configuration) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(render(view, snapshot, theme: theme, capabilities: .color256, size: size))
            }
        }
    }
}
