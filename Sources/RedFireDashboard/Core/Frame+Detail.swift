import Foundation
import RedFireGateway

/// The detail view of a route, service or instance.
extension Frame {
    mutating func drawDetail(_ detail: ViewState.Detail, in rect: Rect) {
        var lines: [(String, ThemeRole)] = []
        var histogram: (LatencyHistogram, GatewaySnapshot.Figures)?
        let title: String
        func figures(_ f: GatewaySnapshot.Figures) {
            lines.append(("requests \(f.requests) in \(state.window.label) \(glyphs.bullet) \(Format.rate(f.requestsPerSecond)) req/s \(glyphs.bullet) errors \(Format.percent(f.errorRatio))", .text))
            lines.append(("2xx \(f.status2xx)  3xx \(f.status3xx)  4xx \(f.status4xx)  5xx \(f.status5xx)  401 \(f.unauthorized)  403 \(f.forbidden)  429 \(f.rateLimited)", .text))
            lines.append(("upstream errors \(f.upstreamErrors)  timeouts \(f.upstreamTimeouts)  truncated \(f.upstreamTruncated)",
                          f.upstreamErrors + f.upstreamTimeouts > 0 ? .warning : .text))
        }
        switch detail {
        case .route(let name):
            guard let route = snapshot.routes.first(where: { $0.name == name }) else { title = "route \(name) (gone)"; break }
            title = "Route \(route.name)"
            lines.append(("prefix \(route.prefix) \(glyphs.arrowDown) service \(route.service)", .text))
            figures(route.figures)
            lines.append(("req/s, last 60 s  " + sparkline(route.requestsSeries, width: 60), .sparkline))
            // The slowest recent requests, with the ids to find their trace and their log lines.
            lines.append(("slowest requests, last 60 s", .columnHeader))
            if route.slowest.isEmpty { lines.append(("  none yet", .dim)) }
            for slow in route.slowest.prefix(5) {
                let latency = Format.fit(Format.latency(slow.micros, unicode: unicode), 8, alignRight: true)
                let text = "\(latency)  \(slow.status)  \(Format.fit(slow.method + " " + slow.path, 30))  trace \(slow.traceID ?? "-")  req \(slow.requestID)  "
                    + "\(slow.instance ?? "-") \(glyphs.bullet) \(slow.secondsAgo)s ago"
                lines.append(("  " + text, slow.status >= 500 ? .warning : .text))
            }
            histogram = (route.latency, route.figures)
        case .service(let name):
            guard let service = snapshot.service(named: name) else { title = "service \(name) (gone)"; break }
            title = "Service \(service.name)"
            lines.append(("strategy \(service.strategy.rawValue) \(glyphs.bullet) \(service.healthyCount)/\(service.instances.count) serving" + (service.panic ? " \(glyphs.bullet) PANIC ROUTING" : ""), .text))
            figures(service.figures)
            for instance in service.instances {
                let (text, role) = Self.stateText(instance, unicode: unicode)
                lines.append(("  \(Format.fit(instance.id, 20)) \(Format.fit(text, 16)) \(instance.address)", role))
            }
            histogram = (service.latency, service.figures)
        case .instance(let serviceName, let id):
            guard let instance = snapshot.service(named: serviceName)?.instances.first(where: { $0.id == id }) else { title = "instance \(id) (gone)"; break }
            title = "Instance \(instance.id) of \(serviceName)"
            let (text, role) = Self.stateText(instance, unicode: unicode)
            lines.append(("state \(text)", role))
            lines.append(("address \(instance.address) \(glyphs.bullet) weight \(instance.weight) \(glyphs.bullet) in flight \(instance.inFlight) \(glyphs.bullet) health \(instance.health.rawValue)", .text))
            // In a cluster, when the nodes disagree about it: each node's view.
            if !instance.healthByNode.isEmpty {
                let views = instance.healthByNode.sorted { $0.key < $1.key }
                    .map { "\($0.key): \($0.value == "healthy" ? "healthy" : $0.value.uppercased())" }
                lines.append(("nodes " + views.joined(separator: " \(glyphs.bullet) "), .unhealthy))
            }
            if let lease = instance.leaseExpiresIn { lines.append(("lease expires in \(Format.duration(lease))", .lease)) }
            if let ejected = instance.ejectedFor { lines.append(("ejected for \(Format.duration(ejected)) more", .ejected)) }
            figures(instance.figures)
            lines.append(("p50 \(Format.latency(instance.figures.p50, unicode: unicode))  p90 \(Format.latency(instance.figures.p90, unicode: unicode))  p99 \(Format.latency(instance.figures.p99, unicode: unicode))  max \(Format.latency(instance.figures.max, unicode: unicode))", .text))
            lines.append(("last health checks (newest first):", .columnHeader))
            if instance.recentChecks.isEmpty { lines.append(("  none yet", .dim)) }
            for check in instance.recentChecks {
                lines.append(("  \(Format.fit(Format.duration(check.age) + " ago", 12)) \(check.passed ? "ok  " : "FAIL") \(check.reason)", check.passed ? .healthy : .unhealthy))
            }
        }
        drawTitle(title + "  (Esc back)", rect, focused: true)
        for (offset, line) in lines.prefix(rect.height - 1).enumerated() {
            buffer.put(" " + line.0, row: rect.row + 1 + offset, column: rect.column, role: line.1, width: rect.width)
        }
        if let (latency, figures) = histogram {
            let top = rect.row + 1 + min(lines.count, rect.height - 1) + 1
            let height = rect.row + rect.height - top
            if height >= 3 {
                drawTitle("Latency \(glyphs.bullet) \(state.window.label)", Rect(row: top - 1, column: rect.column, width: rect.width, height: 1), focused: false)
                drawHistogram(latency, figures: figures, in: Rect(row: top, column: rect.column, width: min(rect.width, 100), height: height))
            }
        }
    }
}
