import Foundation
import RedFireGateway

/// Draws one frame. Pure: the same state, snapshot, capabilities and size give the same buffer, so
/// snapshot tests can compare text and style masks. The theme only contributes its name (the
/// buffer holds roles; the terminal layer maps roles to the theme's colours).
public func render(_ state: ViewState, _ snapshot: GatewaySnapshot, theme: Theme, capabilities: TerminalCapabilities, size: ScreenSize) -> ScreenBuffer {
    var frame = Frame(state: state, snapshot: snapshot, themeName: theme.name, unicode: capabilities.unicode, size: size)
    frame.draw()
    return frame.buffer
}

struct Frame {
    let state: ViewState
    let snapshot: GatewaySnapshot
    let themeName: String
    /// The locale prints Unicode; otherwise glyphs are ASCII and everything drawn is transliterated.
    let unicode: Bool
    let glyphs: Glyphs
    let size: ScreenSize
    var buffer: ScreenBuffer

    init(state: ViewState, snapshot: GatewaySnapshot, themeName: String, unicode: Bool, size: ScreenSize) {
        self.state = state
        self.snapshot = snapshot
        self.themeName = themeName
        self.unicode = unicode
        self.glyphs = unicode ? .unicode : .ascii
        self.size = size
        self.buffer = ScreenBuffer(size: size)
        self.buffer.asciiOnly = !unicode
    }

    struct Rect {
        var row: Int
        var column: Int
        var width: Int
        var height: Int
    }

    mutating func draw() {
        guard size.width >= ScreenSize.minimum.width && size.height >= ScreenSize.minimum.height else {
            drawTooSmall()
            return
        }
        drawHeader()
        let body = Rect(row: 2, column: 0, width: size.width, height: size.height - 3)
        if let detail = state.detail {
            drawDetail(detail, in: body)
        } else if size.width >= 120 {
            let rightWidth = max(40, size.width * 3 / 10)
            let left = Rect(row: body.row, column: 0, width: size.width - rightWidth - 1, height: body.height)
            let right = Rect(row: body.row, column: size.width - rightWidth, width: rightWidth, height: body.height)
            for row in body.row..<(body.row + body.height) { buffer.put(unicode ? "│" : "|", row: row, column: left.width, role: .border) }
            let servicesHeight = left.height * 3 / 5
            drawServices(Rect(row: left.row, column: 0, width: left.width, height: servicesHeight))
            drawRoutes(Rect(row: left.row + servicesHeight, column: 0, width: left.width, height: left.height - servicesHeight))
            let histogramHeight = right.height / 2
            let limitHeight = max(4, right.height / 6)
            drawHistogramPane(Rect(row: right.row, column: right.column, width: right.width, height: histogramHeight))
            drawRateLimits(Rect(row: right.row + histogramHeight, column: right.column, width: right.width, height: limitHeight))
            drawEvents(Rect(row: right.row + histogramHeight + limitHeight, column: right.column, width: right.width,
                            height: right.height - histogramHeight - limitHeight))
        } else {
            let eventsHeight = body.height < 30 ? 4 : body.height / 4
            let servicesHeight = (body.height - eventsHeight) * 3 / 5
            let routesHeight = body.height - eventsHeight - servicesHeight
            drawServices(Rect(row: body.row, column: 0, width: body.width, height: servicesHeight))
            drawRoutes(Rect(row: body.row + servicesHeight, column: 0, width: body.width, height: routesHeight))
            drawEvents(Rect(row: body.row + servicesHeight + routesHeight, column: 0, width: body.width,
                            height: body.height - servicesHeight - routesHeight))
        }
        drawFooter()
        if state.showHelp { drawHelp() }
        if let modal = state.modal { drawModal(modal) }
        if let inFlight = state.shuttingDown { drawShutdown(inFlight) }
    }

    // MARK: Frame parts

    mutating func drawTooSmall() {
        let lines = ["terminal too small: need \(ScreenSize.minimum.width)×\(ScreenSize.minimum.height)",
                     "now \(size.width)×\(size.height) — enlarge the window, or press q to quit"]
        for (index, line) in lines.enumerated() {
            let row = size.height / 2 - 1 + index
            buffer.put(line, row: row, column: max(0, (size.width - line.count) / 2), role: index == 0 ? .warning : .text)
        }
    }

    mutating func drawHeader() {
        buffer.fill(row: 0, role: .header)
        let g = snapshot.gateway
        let wide = size.width >= 120
        var segments = [
            wide ? "RedFire Gateway" : "RedFire",
            "up \(Format.duration(snapshot.uptime))",
            "config v\(snapshot.configVersion)",
            "\(Format.rate(g.requestsPerSecond)) req/s",
            "err \(Format.percent(g.errorRatio))",
            "429/s \(Format.rate(g.rateLimitedPerSecond))",
            "p50 \(Format.latency(g.p50, unicode: unicode))",
            "p99 \(Format.latency(g.p99, unicode: unicode))",
            "conns \(snapshot.openConnections)",
            "window \(state.window.label)",
        ]
        // At 80 columns the config version moves to the second line and the window to the footer.
        if !wide { segments.removeAll { $0.hasPrefix("config v") || $0.hasPrefix("window ") } }
        var text = ""
        for segment in segments {
            let candidate = text.isEmpty ? " " + segment : text + "  " + segment
            if candidate.count > size.width { break }
            text = candidate
        }
        buffer.put(text, row: 0, column: 0, role: .header)

        // Banners: what needs attention now.
        var banners: [(String, ThemeRole)] = []
        if state.paused { banners.append(("PAUSED", .banner)) }
        let age = state.now.timeIntervalSince(snapshot.takenAt)
        if !state.paused && age > 3 && snapshot.takenAt.timeIntervalSince1970 > 0 {
            banners.append(("STALE \(Int(age))s", .banner))
        }
        for service in snapshot.services where service.healthyCount == 0 && !service.instances.isEmpty {
            banners.append((service.panic ? "PANIC ROUTING: \(service.name)" : "NO HEALTHY INSTANCE: \(service.name)", .bannerCritical))
        }
        if snapshot.acceptPausedFor != nil {
            banners.append(("OUT OF FILE DESCRIPTORS: NOT ACCEPTING (limit \(snapshot.openFileLimit), conns \(snapshot.openConnections))", .bannerCritical))
        }
        if snapshot.lastReloadFailed { banners.append(("CONFIG RELOAD FAILED", .bannerCritical)) }
        if state.readOnly { banners.append(("READ-ONLY", .banner)) }
        if banners.isEmpty {
            let info = " listening \(snapshot.listen)  \(glyphs.bullet)  config v\(snapshot.configVersion)  \(glyphs.bullet)  generation \(snapshot.generation)  \(glyphs.bullet)  theme \(themeName)"
            buffer.put(info, row: 1, column: 0, role: .dim)
        } else {
            var column = 1
            for (text, role) in banners {
                guard column + text.count + 2 <= size.width else { break }
                column = buffer.put(" \(text) ", row: 1, column: column, role: role) + 1
            }
        }
    }

    mutating func drawFooter() {
        let row = size.height - 1
        buffer.fill(row: row, role: .footer)
        if state.editingFilter {
            let column = buffer.put(" filter: ", row: row, column: 0, role: .footerKey)
            buffer.put(state.filter + "_", row: row, column: column, role: .input, width: size.width - column)
            return
        }
        if case .command(let text)? = state.modal {
            let column = buffer.put(" :", row: row, column: 0, role: .footerKey)
            buffer.put(text + "_", row: row, column: column, role: .input, width: size.width - column)
            return
        }
        if let message = state.message {
            buffer.put(" " + message, row: row, column: 0, role: .footer)
            return
        }
        var hints: [(String, String)] = [("?", "help"), ("q", "quit")]
        if !state.readOnly { hints += [("d", "drain"), ("s", "strategy")] }
        hints += [("w", state.window.label), ("p", state.paused ? "resume" : "pause"), ("/", state.filter.isEmpty ? "filter" : "filter:\(state.filter)"),
                  ("Tab", "pane"), ("↵", "detail")]
        var column = 0
        let logText = state.logPath.map { "log: \($0) " } ?? ""
        let limit = size.width - min(logText.count, size.width / 3)
        for (key, label) in hints {
            let keyText = " " + (unicode || key != "↵" ? key : "Enter")
            guard column + keyText.count + label.count + 2 <= limit else { break }
            column = buffer.put(keyText, row: row, column: column, role: .footerKey)
            column = buffer.put(" " + label, row: row, column: column, role: .footer)
        }
        if !logText.isEmpty {
            let width = size.width - column - 1
            // Cut the path from the left: the file name is what matters.
            let text = logText.count > width ? "log: " + String(glyphs.ellipsis) + String(logText.suffix(max(0, width - 6))) : logText
            buffer.put(text, row: row, column: size.width - text.count, role: .footer)
        }
    }

    /// A pane title: `── Title ──────` with the focused pane highlighted.
    mutating func drawTitle(_ title: String, _ rect: Rect, focused: Bool) {
        buffer.fill(row: rect.row, column: rect.column, width: rect.width, character: glyphs.horizontal, role: .border)
        buffer.put(" \(title) ", row: rect.row, column: rect.column + 2, role: focused ? .titleFocused : .title, width: rect.width - 4)
    }

    // MARK: Services

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
        if wide { columns.append(("ADDRESS", 21, false)) }
        columns += [("STATE", 14, false), ("W", 3, true), ("INFL", 4, true), ("REQ/S", 6, true), ("ERR%", 6, true), ("P99", 7, true)]
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

    // MARK: Routes

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
        let fixedColumns: [(String, Int, Bool)] = [("2XX", 6, true), ("4XX", 5, true), ("5XX", 5, true), ("401/403", 7, true), ("429/S", 5, true), ("P99", 8, true)]
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
            ]
            let cells = zip(texts, columns).map { Cell($0.0, $0.1, $1.1, right: $1.2) }
            drawRow(cells, row: rect.row + 2 + offset, rect: rect, selected: index == selected && state.focus == .routes,
                    marker: index == selected ? glyphs.selection : " ")
        }
        drawScrollHints(first: first, visible: visible, count: routes.count, rect: Rect(row: rect.row + 2, column: rect.column, width: rect.width, height: visible))
    }

    // MARK: Events

    static func eventRole(_ event: GatewayEvent) -> ThemeRole {
        switch event.kind {
        case .health: return event.message.contains("unhealthy") ? .unhealthy : .healthy
        case .ejection: return .ejected
        case .drain: return .draining
        case .lease: return .lease
        case .reload: return event.message.contains("refused") ? .error : .text
        case .log: return .warning
        case .strategy, .registration, .operatorAction: return .text
        }
    }

    mutating func drawEvents(_ rect: Rect) {
        drawTitle("Events \(snapshot.events.count)", rect, focused: state.focus == .events)
        let visible = rect.height - 1
        guard visible > 0 else { return }
        let events = Array(snapshot.events.reversed().dropFirst(min(state.eventOffset, max(0, snapshot.events.count - 1))))
        if events.isEmpty {
            buffer.put("  no events yet", row: rect.row + 1, column: rect.column, role: .dim)
            return
        }
        for (offset, event) in events.prefix(visible).enumerated() {
            let row = rect.row + 1 + offset
            var column = buffer.put(" " + Format.clock(event.at, offset: state.utcOffsetSeconds) + " ", row: row, column: rect.column, role: .dim)
            column = buffer.put(Format.fit(event.kind.rawValue, 8) + " ", row: row, column: column, role: Self.eventRole(event))
            buffer.put(event.message, row: row, column: column, role: .text, width: rect.column + rect.width - column)
        }
        if state.eventOffset > 0 { buffer.put(String(glyphs.arrowUp), row: rect.row + 1, column: rect.column + rect.width - 1, role: .dim) }
    }

    // MARK: Latency histogram

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

    // MARK: Rate limiting

    mutating func drawRateLimits(_ rect: Rect) {
        let recent = snapshot.rateLimitedSeries.suffix(10).reduce(0, +)
        drawTitle("Rate limiting \(glyphs.bullet) \(Format.rate(Double(recent) / 10)) rejected/s", rect, focused: false)
        guard rect.height >= 2 else { return }
        let label = " 429/s "
        let column = buffer.put(label, row: rect.row + 1, column: rect.column, role: .dim)
        buffer.put(sparkline(snapshot.rateLimitedSeries, width: rect.width - label.count - 1), row: rect.row + 1, column: column, role: .rateLimited)
        guard rect.height >= 3 else { return }
        if snapshot.topLimitedKeys.isEmpty {
            buffer.put(" top limited keys: none", row: rect.row + 2, column: rect.column, role: .dim)
            return
        }
        buffer.put(" top limited keys", row: rect.row + 2, column: rect.column, role: .columnHeader, width: rect.width)
        for (offset, key) in snapshot.topLimitedKeys.prefix(rect.height - 3).enumerated() {
            let count = Format.count(key.rejections)
            buffer.put("  " + Format.fit(key.key, rect.width - count.count - 4, ellipsis: glyphs.ellipsis) + " " + count,
                       row: rect.row + 3 + offset, column: rect.column, role: .rateLimited)
        }
    }

    // MARK: Detail

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

    // MARK: Overlays

    /// Draws a dialog box centred on the screen; returns the rectangle inside its border.
    mutating func drawBox(title: String, width requestedWidth: Int, height requestedHeight: Int) -> Rect {
        let width = min(requestedWidth, size.width - 2)
        let height = min(requestedHeight, size.height - 2)
        let top = (size.height - height) / 2
        let left = (size.width - width) / 2
        let corner: (Character, Character, Character, Character) = unicode ? ("┌", "┐", "└", "┘") : ("+", "+", "+", "+")
        let vertical: Character = unicode ? "│" : "|"
        for row in top..<(top + height) { buffer.fill(row: row, column: left, width: width, role: .dialog) }
        buffer.fill(row: top, column: left, width: width, character: glyphs.horizontal, role: .dialog)
        buffer.fill(row: top + height - 1, column: left, width: width, character: glyphs.horizontal, role: .dialog)
        for row in top..<(top + height) {
            buffer.put(String(vertical), row: row, column: left, role: .dialog)
            buffer.put(String(vertical), row: row, column: left + width - 1, role: .dialog)
        }
        buffer.put(String(corner.0), row: top, column: left, role: .dialog)
        buffer.put(String(corner.1), row: top, column: left + width - 1, role: .dialog)
        buffer.put(String(corner.2), row: top + height - 1, column: left, role: .dialog)
        buffer.put(String(corner.3), row: top + height - 1, column: left + width - 1, role: .dialog)
        buffer.put(" \(title) ", row: top, column: left + 2, role: .dialogTitle, width: width - 4)
        return Rect(row: top + 1, column: left + 2, width: width - 4, height: height - 2)
    }

    mutating func drawButtons(_ labels: (String, String), focus: ViewState.DialogButton, row: Int, rect: Rect) {
        let cancel = "[ \(labels.0) ]"
        let confirm = "[ \(labels.1) ]"
        let column = rect.column + rect.width - cancel.count - confirm.count - 2
        buffer.put(cancel, row: row, column: column, role: focus == .cancel ? .buttonFocused : .button)
        buffer.put(confirm, row: row, column: column + cancel.count + 2, role: focus == .confirm ? .buttonFocused : .button)
    }

    mutating func drawHelp() {
        let entries = KeyHelp.entries.filter { !state.readOnly || !$0.acts }
        let inner = drawBox(title: "Keys" + (state.readOnly ? " (read-only console)" : ""), width: 78, height: entries.count + 4)
        for (offset, entry) in entries.enumerated() {
            let keys = unicode ? entry.keys : entry.keys.replacingOccurrences(of: "↑ ↓", with: "Up Down")
            let column = buffer.put(Format.fit(keys, 16), row: inner.row + offset, column: inner.column, role: .dialogTitle)
            buffer.put(" " + entry.action, row: inner.row + offset, column: column, role: .dialog, width: inner.column + inner.width - column)
        }
        buffer.put("any key closes this help", row: inner.row + inner.height - 1, column: inner.column, role: .dialog)
    }

    mutating func drawModal(_ modal: ViewState.Modal) {
        switch modal {
        case .command:
            return  // drawn in the footer
        case .quit(let focus):
            let inFlight = snapshot.inFlight
            let inner = drawBox(title: "Quit RedFire Gateway?", width: 62, height: 7)
            buffer.put("The gateway stops accepting connections; the \(inFlight)", row: inner.row, column: inner.column, role: .dialog, width: inner.width)
            buffer.put("request(s) in flight finish first.", row: inner.row + 1, column: inner.column, role: .dialog, width: inner.width)
            drawButtons(("Cancel", "Quit"), focus: focus, row: inner.row + inner.height - 1, rect: inner)
        case .drain(let confirmation):
            let verb = confirmation.undrain ? "Undrain" : "Drain"
            let inner = drawBox(title: "\(verb) \(confirmation.instance)?", width: 70, height: confirmation.requiresTyping ? 10 : 8)
            var lines: [(String, ThemeRole)] = []
            if confirmation.undrain {
                lines.append(("\(confirmation.instance) goes back into rotation for \(confirmation.service).", .dialog))
            } else {
                lines.append(("\(confirmation.instance) gets no new requests; \(confirmation.inFlight) in flight will finish.", .dialog))
                if confirmation.requiresTyping {
                    lines.append(("This is the LAST healthy instance of \(confirmation.service):", .error))
                    lines.append(("its requests will fail (or go to panic routing).", .error))
                    lines.append(("Type \(confirmation.instance) to confirm:", .dialog))
                } else {
                    lines.append(("Leaves \(confirmation.healthyLeft) healthy instance\(confirmation.healthyLeft == 1 ? "" : "s") of \(confirmation.service).", .dialog))
                }
            }
            for (offset, line) in lines.enumerated() {
                buffer.put(line.0, row: inner.row + offset, column: inner.column, role: line.1, width: inner.width)
            }
            if confirmation.requiresTyping {
                buffer.fill(row: inner.row + lines.count, column: inner.column, width: min(inner.width, 40), role: .input)
                buffer.put(confirmation.typed + "_", row: inner.row + lines.count, column: inner.column, role: .input, width: min(inner.width, 40))
            }
            drawButtons(("Cancel", verb), focus: confirmation.focus, row: inner.row + inner.height - 1, rect: inner)
        case .strategy(let picker):
            drawStrategyPicker(picker)
        }
    }

    mutating func drawStrategyPicker(_ picker: ViewState.StrategyPicker) {
        guard let service = snapshot.service(named: picker.service) else { return }
        let strategies = BalancingStrategyKind.allCases
        let inner = drawBox(title: "Strategy for \(service.name) (now \(picker.current.rawValue))", width: 76,
                            height: min(size.height - 2, strategies.count + service.instances.count + 8))
        for (offset, strategy) in strategies.enumerated() {
            let marker = offset == picker.index ? glyphs.selection : " "
            let suffix = strategy == picker.current ? "  (current)" : ""
            buffer.put("\(marker) \(strategy.rawValue)\(suffix)", row: inner.row + offset, column: inner.column,
                       role: offset == picker.index ? .buttonFocused : .dialog, width: inner.width)
        }
        var row = inner.row + strategies.count + 1
        let members = service.instances.map {
            StrategyPreview.Member(id: $0.id, weight: $0.weight, eligible: $0.eligible, requests: $0.requestsLastMinute, meanMicros: $0.meanMicrosLastMinute)
        }
        let total = members.reduce(0) { $0 + $1.requests }
        let shares = StrategyPreview.shares(picker.choice, members: members)
        let spread = StrategyPreview.spread(total: total, shares: shares)
        buffer.put("Last minute: \(total) requests. Under \(picker.choice.rawValue) they would spread:", row: row, column: inner.column,
                   role: .dialogTitle, width: inner.width)
        row += 1
        buffer.put(Format.fit("INSTANCE", 22) + Format.fit("ACTUAL", 14, alignRight: true) + Format.fit("PREVIEW", 16, alignRight: true),
                   row: row, column: inner.column, role: .dialog, width: inner.width)
        row += 1
        for (index, instance) in service.instances.enumerated() where row < inner.row + inner.height - 1 {
            let actual = members[index].requests
            let actualShare = total > 0 ? Double(actual) / Double(total) : 0
            buffer.put(Format.fit(instance.id, 22) + Format.fit("\(actual) \(Format.percent(actualShare))", 14, alignRight: true)
                       + Format.fit("\(spread[index]) \(Format.percent(shares[index]))", 16, alignRight: true)
                       + (instance.eligible ? "" : "  (not serving)"),
                       row: row, column: inner.column, role: .dialog, width: inner.width)
            row += 1
        }
        buffer.put("Enter apply \(glyphs.bullet) Esc cancel \(glyphs.bullet) ↑↓ choose", row: inner.row + inner.height - 1, column: inner.column, role: .dialog, width: inner.width)
    }

    mutating func drawShutdown(_ inFlight: Int) {
        let inner = drawBox(title: "Shutting down", width: 60, height: 5)
        buffer.put("Stopped accepting connections.", row: inner.row, column: inner.column, role: .dialog, width: inner.width)
        buffer.put("Waiting for \(inFlight) request(s) in flight to finish\(glyphs.ellipsis)", row: inner.row + 1, column: inner.column, role: .dialog, width: inner.width)
    }
}
