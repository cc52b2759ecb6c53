import Foundation
import RedFireGateway

/// The services pane: one row per instance, grouped by service.
extension Frame {
    static func stateText(_ instance: GatewaySnapshot.Instance, unicode: Bool) -> (String, ThemeRole) {
        switch instance.state {
        case .healthy, .unknown:
            if let lease = instance.leaseExpiresIn, lease < .seconds(5) {
                return ("lease \(Format.duration(lease))", .lease)
            }
            return instance.state == .healthy ? ("healthy", .healthy) : ("unknown", .unknown)
        case .unhealthy: return ("UNHEALTHY", .unhealthy)
        case .ejected: return ("ejected " + (instance.ejectedFor.map { Format.duration($0) } ?? ""), .ejected)
        case .draining: return ("draining (\(instance.inFlight))", .draining)
        case .drained: return ("drained", .drained)
        }
    }

    static func checkText(_ instance: GatewaySnapshot.Instance) -> (String, ThemeRole) {
        guard let check = instance.recentChecks.first else { return ("-", .dim) }
        let reason = check.reason.hasPrefix("HTTP ") ? String(check.reason.dropFirst(5)) : check.reason
        return (check.passed ? "ok \(reason)" : "FAIL \(reason)", check.passed ? .text : .error)
    }

    mutating func drawServices(_ rect: Rect) {
        let rows = state.serviceRows(snapshot)
        let instanceCount = snapshot.services.reduce(0) { $0 + $1.instances.count }
        drawTitle("Services \(snapshot.services.count) \(glyphs.bullet) instances \(instanceCount)" + (state.filter.isEmpty ? "" : " \(glyphs.bullet) filter \"\(state.filter)\""),
                  rect, focused: state.focus == .services)
        let wide = rect.width >= 110
        // Column layout: (title, width, right-aligned).
        var columns: [(String, Int, Bool)] = [("INSTANCE", 20, false)]
        if wide { columns.append(("ADDRESS", 17, false)) }
        columns += [("STATE", 14, false), ("W", 3, true), ("INFL", 4, true), ("STRM", 4, true), ("REQ/S", 6, true), ("ERR%", 6, true), ("P99", 7, true)]
        let fixed = 2 + columns.reduce(0) { $0 + $1.1 + 1 }
        columns.append(("LAST CHECK", max(6, rect.width - fixed - 1), false))
        drawColumnHeaders(columns, row: rect.row + 1, rect: rect)
        let visible = rect.height - 2
        guard visible > 0 else { return }
        if rows.isEmpty {
            buffer.put(state.filter.isEmpty ? "  no services" : "  nothing matches \"\(state.filter)\"", row: rect.row + 2, column: rect.column, role: .dim)
            return
        }
        let selected = min(state.serviceRow, rows.count - 1)
        let first = Self.scrollStart(selected: selected, count: rows.count, visible: visible)
        for (offset, index) in (first..<min(rows.count, first + visible)).enumerated() {
            let row = rect.row + 2 + offset
            var cells: [Cell] = []
            switch rows[index] {
            case .service(let service):
                let strategyText = "\(service.strategy.rawValue) \(service.healthyCount)/\(service.instances.count)"
                cells.append(Cell(service.name, .service, columns[0].1))
                if wide { cells.append(Cell("", .text, columns[1].1)) }
                let stateIndex = wide ? 2 : 1
                cells.append(Cell(strategyText, .dim, columns[stateIndex].1 + columns[stateIndex + 1].1 + columns[stateIndex + 2].1 + 2))
                let streams = service.instances.reduce(0) { $0 + $1.streams.open }
                cells.append(Cell(streams > 0 ? Format.count(streams) : "", .text, columns[stateIndex + 3].1, right: true))
                cells.append(Cell(Format.rate(service.figures.requestsPerSecond), .text, 6, right: true))
                cells.append(Cell(Format.percent(service.figures.errorRatio), service.figures.status5xx > 0 ? .error : .text, 6, right: true))
                cells.append(Cell(Format.latency(service.figures.p99, unicode: unicode), .text, 7, right: true))
                if service.healthyCount == 0 && !service.instances.isEmpty {
                    cells.append(Cell(service.panic ? "PANIC ROUTING" : "NO HEALTHY INSTANCE", .error, columns[columns.count - 1].1))
                }
            case .instance(_, let instance):
                let (stateText, stateRole) = Self.stateText(instance, unicode: unicode)
                let (checkText, checkRole) = Self.checkText(instance)
                let texts: [(String, ThemeRole)] = [("  " + instance.id, .text)]
                    + (wide ? [(instance.address.replacingOccurrences(of: "http://", with: ""), .dim)] : [])
                    + [(stateText, stateRole), (String(instance.weight), .text), (String(instance.inFlight), .text),
                       (instance.streams.open > 0 ? Format.count(instance.streams.open) : "-", instance.streams.open > 0 ? .text : .dim),
                       (Format.rate(instance.figures.requestsPerSecond), .text),
                       (Format.percent(instance.figures.errorRatio), instance.figures.status5xx > 0 ? .error : .text),
                       (Format.latency(instance.figures.p99, unicode: unicode), .text), (checkText, checkRole)]
                cells = zip(texts, columns).map { Cell($0.0, $0.1, $1.1, right: $1.2) }
            }
            drawRow(cells, row: row, rect: rect, selected: index == selected && state.focus == .services,
                    marker: index == selected ? glyphs.selection : " ")
        }
        drawScrollHints(first: first, visible: visible, count: rows.count, rect: Rect(row: rect.row + 2, column: rect.column, width: rect.width, height: visible))
    }

    struct Cell {
        var text: String
        var role: ThemeRole
        var width: Int
        var right: Bool

        init(_ text: String, _ role: ThemeRole, _ width: Int, right: Bool = false) {
            self.text = text
            self.role = role
            self.width = width
            self.right = right
        }
    }

    /// One table row: a selection marker, then each cell fitted to its width with one space between.
    mutating func drawRow(_ cells: [Cell], row: Int, rect: Rect, selected: Bool, marker: Character) {
        var column = rect.column
        buffer.put(String(marker) + " ", row: row, column: column, role: selected ? .selected : .text)
        column += 2
        let end = rect.column + rect.width
        for cell in cells {
            let available = min(cell.width, end - column)
            guard available > 0 else { break }
            buffer.put(Format.fit(cell.text, available, ellipsis: glyphs.ellipsis, alignRight: cell.right), row: row, column: column, role: cell.role)
            column += cell.width + 1
        }
        if selected { buffer.restyle(row: row, column: rect.column, width: rect.width, role: .selected) }
    }

    mutating func drawColumnHeaders(_ columns: [(String, Int, Bool)], row: Int, rect: Rect) {
        var column = rect.column + 2
        buffer.fill(row: row, column: rect.column, width: rect.width, role: .columnHeader)
        for (title, width, right) in columns {
            let available = min(width, rect.column + rect.width - column)
            guard available > 0 else { break }
            buffer.put(Format.fit(title, available, alignRight: right), row: row, column: column, role: .columnHeader)
            column += width + 1
        }
    }

    static func scrollStart(selected: Int, count: Int, visible: Int) -> Int {
        guard count > visible else { return 0 }
        return max(0, min(selected - visible / 2, count - visible))
    }

    mutating func drawScrollHints(first: Int, visible: Int, count: Int, rect: Rect) {
        if first > 0 { buffer.put(String(glyphs.arrowUp), row: rect.row, column: rect.column + rect.width - 1, role: .dim) }
        if first + visible < count { buffer.put(String(glyphs.arrowDown), row: rect.row + rect.height - 1, column: rect.column + rect.width - 1, role: .dim) }
    }
}
