import Foundation
import RedFireGateway

/// The routes pane: rates, errors and a sparkline per route.
extension Frame {
    func sparkline(_ values: [Int], width: Int) -> String {
        let points = Array(values.suffix(width))
        let top = max(1, points.max() ?? 1)
        var text = String(repeating: " ", count: max(0, width - points.count))
        for value in points {
            if value == 0 { text.append(" "); continue }
            let level = min(glyphs.sparks.count - 1, max(0, Int((Double(value) / Double(top) * Double(glyphs.sparks.count - 1)).rounded(.up))))
            text.append(glyphs.sparks[level])
        }
        return text
    }

    mutating func drawRoutes(_ rect: Rect) {
        let routes = state.routeRows(snapshot)
        drawTitle("Routes \(snapshot.routes.count) \(glyphs.bullet) last \(state.window.label)", rect, focused: state.focus == .routes)
        let fixedColumns: [(String, Int, Bool)] = [("2XX", 6, true), ("4XX", 5, true), ("5XX", 5, true), ("401/403", 7, true), ("429/S", 5, true), ("P99", 8, true), ("STRM", 5, true), ("MSG/S", 6, true)]
        let nameWidth = rect.width >= 110 ? 22 : 16
        let fixed = 2 + nameWidth + 1 + 7 + 1 + fixedColumns.reduce(0) { $0 + $1.1 + 1 }
        let sparkWidth = max(6, min(60, rect.width - fixed - 1))
        let columns: [(String, Int, Bool)] = [("ROUTE", nameWidth, false), ("REQ/S", 7, true), ("LAST \(sparkWidth)S", sparkWidth, false)] + fixedColumns
        drawColumnHeaders(columns, row: rect.row + 1, rect: rect)
        let visible = rect.height - 2
        guard visible > 0 else { return }
        if routes.isEmpty {
            buffer.put("  no routes", row: rect.row + 2, column: rect.column, role: .dim)
            return
        }
        let selected = min(state.routeRow, routes.count - 1)
        let first = Self.scrollStart(selected: selected, count: routes.count, visible: visible)
        for (offset, index) in (first..<min(routes.count, first + visible)).enumerated() {
            let route = routes[index]
            let f = route.figures
            let texts: [(String, ThemeRole)] = [
                (route.name, .text), (Format.rate(f.requestsPerSecond), .text), (sparkline(route.requestsSeries, width: sparkWidth), .sparkline),
                (Format.count(f.status2xx), .text), (Format.count(f.status4xx), f.status4xx > 0 ? .warning : .text),
                (Format.count(f.status5xx), f.status5xx > 0 ? .error : .text),
                ("\(Format.count(f.unauthorized))/\(Format.count(f.forbidden))", .text),
                (Format.rate(f.rateLimitedPerSecond), f.rateLimited > 0 ? .rateLimited : .text),
                (Format.latency(f.p99, unicode: unicode), .text),
                (route.streams.open > 0 ? Format.count(route.streams.open) : "-", route.streams.open > 0 ? .text : .dim),
                (route.streams.open > 0 || route.streams.messagesPerSecond > 0 ? Format.rate(route.streams.messagesPerSecond) : "-",
                 route.streams.open > 0 ? .text : .dim),
            ]
            let cells = zip(texts, columns).map { Cell($0.0, $0.1, $1.1, right: $1.2) }
            drawRow(cells, row: rect.row + 2 + offset, rect: rect, selected: index == selected && state.focus == .routes,
                    marker: index == selected ? glyphs.selection : " ")
        }
        drawScrollHints(first: first, visible: visible, count: routes.count, rect: Rect(row: rect.row + 2, column: rect.column, width: rect.width, height: visible))
    }
}
