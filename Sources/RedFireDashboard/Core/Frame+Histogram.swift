import Foundation
import RedFireGateway

/// The latency histogram of the selected route or service.
extension Frame {
    /// The histogram shown next to the tables: the selected route when the routes pane has focus,
    /// otherwise the selected service.
    func histogramTarget() -> (String, LatencyHistogram, GatewaySnapshot.Figures)? {
        if state.focus == .routes, let route = state.selectedRoute(snapshot) {
            return ("route \(route.name)", route.latency, route.figures)
        }
        if let row = state.selectedServiceRow(snapshot), let service = snapshot.service(named: row.serviceName) {
            return ("service \(service.name)", service.latency, service.figures)
        }
        if let route = snapshot.routes.first { return ("route \(route.name)", route.latency, route.figures) }
        return nil
    }

    mutating func drawHistogramPane(_ rect: Rect) {
        guard let (name, histogram, figures) = histogramTarget() else {
            drawTitle("Latency", rect, focused: false)
            return
        }
        drawTitle("Latency \(glyphs.bullet) \(name) \(glyphs.bullet) \(state.window.label)", rect, focused: false)
        drawHistogram(histogram, figures: figures, in: Rect(row: rect.row + 1, column: rect.column, width: rect.width, height: rect.height - 1))
    }

    /// Bars per latency bucket (log-spaced, merged to fit the height), with p50/p90/p99/p99.9/max marked.
    mutating func drawHistogram(_ histogram: LatencyHistogram, figures: GatewaySnapshot.Figures, in rect: Rect) {
        guard rect.height >= 2 else { return }
        let first = "p50 \(Format.latency(figures.p50, unicode: unicode))  p90 \(Format.latency(figures.p90, unicode: unicode))  p99 \(Format.latency(figures.p99, unicode: unicode))"
        let second = "p99.9 \(Format.latency(figures.p999, unicode: unicode))  max \(Format.latency(figures.max, unicode: unicode))"
        var summaryRows = 1
        if first.count + second.count + 3 <= rect.width || rect.height < 4 {
            buffer.put(" " + first + "  " + second, row: rect.row + rect.height - 1, column: rect.column, role: .histogramMarker, width: rect.width)
        } else {
            summaryRows = 2
            buffer.put(" " + first, row: rect.row + rect.height - 2, column: rect.column, role: .histogramMarker, width: rect.width)
            buffer.put(" " + second, row: rect.row + rect.height - 1, column: rect.column, role: .histogramMarker, width: rect.width)
        }
        let buckets = histogram.buckets
        guard let first = buckets.first, let last = buckets.last else {
            buffer.put("  no requests in the last \(state.window.label)", row: rect.row, column: rect.column, role: .dim)
            return
        }
        let rows = rect.height - summaryRows
        // Log-spaced groups between the smallest and largest bucket seen.
        let lowIndex = LatencyHistogram.index(micros: first.lower)
        let highIndex = LatencyHistogram.index(micros: last.lower)
        let span = highIndex - lowIndex + 1
        let perRow = max(1, (span + rows - 1) / rows)
        let groups = (span + perRow - 1) / perRow
        var counts = Array(repeating: 0, count: groups)
        for bucket in buckets {
            counts[min(groups - 1, (LatencyHistogram.index(micros: bucket.lower) - lowIndex) / perRow)] += bucket.count
        }
        let top = max(1, counts.max() ?? 1)
        let labelWidth = 8
        let countWidth = 7
        let markerWidth = 18
        let barWidth = max(4, rect.width - labelWidth - countWidth - markerWidth - 4)
        var markers = Array(repeating: [String](), count: groups)
        for (label, value) in [("p50", figures.p50), ("p90", figures.p90), ("p99", figures.p99), ("p99.9", figures.p999), ("max", figures.max)] {
            guard let value else { continue }
            let index = min(groups - 1, max(0, (LatencyHistogram.index(micros: value) - lowIndex) / perRow))
            markers[index].append(label)
        }
        for group in 0..<groups {
            let row = rect.row + group
            let upper = LatencyHistogram.upperBound(min(lowIndex + (group + 1) * perRow - 1, LatencyHistogram.bucketCount - 1))
            var column = buffer.put(Format.fit("<" + Format.latency(upper, unicode: unicode), labelWidth, alignRight: true) + " ", row: row, column: rect.column, role: .dim)
            let exact = Double(counts[group]) / Double(top) * Double(barWidth)
            let whole = Int(exact)
            var bar = String(repeating: glyphs.bar, count: whole)
            if !glyphs.partialBars.isEmpty {
                let eighths = Int((exact - Double(whole)) * 8)
                if eighths > 0 && whole < barWidth { bar.append(glyphs.partialBars[min(eighths - 1, glyphs.partialBars.count - 1)]) }
            }
            if counts[group] > 0 && bar.isEmpty { bar = String(glyphs.partialBars.first ?? glyphs.bar) }
            buffer.put(bar, row: row, column: column, role: .histogramBar)
            column += barWidth + 1
            column = buffer.put(Format.fit(Format.count(counts[group]), countWidth, alignRight: true), row: row, column: column, role: .text)
            if !markers[group].isEmpty {
                buffer.put(" " + String(glyphs.marker) + markers[group].joined(separator: " "), row: row, column: column, role: .histogramMarker,
                           width: rect.column + rect.width - column)
            }
        }
    }
}
