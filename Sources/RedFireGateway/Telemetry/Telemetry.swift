import Synchronization

/// All metric series of the gateway: one for the whole gateway, one per route, per service and per
/// instance. Series are looked up by name only when a snapshot is built; requests reach them through
/// references held by the snapshot, so a reload keeps every series whose route, service or instance
/// still exists.
package final class Telemetry: Sendable {
    /// Requests no route matched. Every other request is counted by exactly one route, so the
    /// gateway-wide figures are the sum of the routes and this series — and no series is shared by
    /// all requests (no gateway-wide lock on the request path).
    package let unrouted: MetricSeries
    package let retention: Duration
    private let series = Mutex<[String: MetricSeries]>([:])

    package init(retention: Duration = .seconds(900)) {
        self.retention = retention
        self.unrouted = MetricSeries(name: "unrouted", retention: retention)
    }


    func route(_ name: String) -> MetricSeries { lookup("route:" + name, name) }
    func service(_ name: String) -> MetricSeries { lookup("service:" + name, name) }
    func instance(_ id: String) -> MetricSeries { lookup("instance:" + id, id, totalsMeasureUpstream: true) }

    /// Forgets series whose owner left (called on rebuild with the keys still in use).
    func retain(routes: Set<String>, services: Set<String>, instances: Set<String>) {
        series.withLock { series in
            series = series.filter { key, _ in
                if key.hasPrefix("route:") { return routes.contains(String(key.dropFirst(6))) }
                if key.hasPrefix("service:") { return services.contains(String(key.dropFirst(8))) }
                return instances.contains(String(key.dropFirst(9)))
            }
        }
    }

    private func lookup(_ key: String, _ name: String, totalsMeasureUpstream: Bool = false) -> MetricSeries {
        series.withLock { series in
            if let existing = series[key] { return existing }
            let created = MetricSeries(name: name, retention: retention, totalsMeasureUpstream: totalsMeasureUpstream)
            series[key] = created
            return created
        }
    }
}
