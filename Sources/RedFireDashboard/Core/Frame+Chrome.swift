import Foundation
import RedFireGateway

/// The header, footer and pane titles.
extension Frame {
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
        // In a cluster: which node this is, and how many are alive.
        if let cluster = snapshot.cluster {
            segments.insert("\(cluster.node) · \(max(1, cluster.nodesAlive.count)) node\(cluster.nodesAlive.count == 1 ? "" : "s")", at: 2)
        }
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
        if let since = snapshot.cluster?.storeUnreachableSince {
            banners.append(("CLUSTER STORE UNREACHABLE SINCE \(Format.clock(since, offset: state.utcOffsetSeconds)): SERVING ON LAST STATE", .bannerCritical))
        }
        for listener in snapshot.listeners {
            if let days = listener.certificateDaysLeft, days < 14 {
                banners.append(("TLS CERTIFICATE \(listener.soonestCertificate ?? listener.url) EXPIRES IN \(max(0, days)) DAY\(days == 1 ? "" : "S")", .bannerCritical))
            }
        }
        if state.readOnly { banners.append(("READ-ONLY", .banner)) }
        if banners.isEmpty {
            let info = " listening \(listening)  \(glyphs.bullet)  config v\(snapshot.configVersion)  \(glyphs.bullet)  generation \(snapshot.generation)  \(glyphs.bullet)  theme \(themeName)"
            buffer.put(info, row: 1, column: 0, role: .dim)
        } else {
            var column = 1
            for (text, role) in banners {
                guard column + text.count + 2 <= size.width else { break }
                column = buffer.put(" \(text) ", row: 1, column: column, role: role) + 1
            }
        }
    }

    /// The listeners on the second line: `127.0.0.1:8080` for one plain listener; otherwise each with
    /// its open connections by protocol and its certificate's days left —
    /// `https://0.0.0.0:8443 12 (h2: 7, 1.3: 10, 1.2: 2) cert 83d · http://0.0.0.0:8080 → https 1`.
    var listening: String {
        guard snapshot.listeners.count > 1 || snapshot.listeners.first?.tls == true else { return snapshot.listen }
        return snapshot.listeners.map { listener in
            var text = "\(listener.url)\(listener.redirectsToHTTPS ? (unicode ? " → https" : " -> https") : "") \(listener.open)"
            if listener.tls { text += " (h2: \(listener.http2), 1.3: \(listener.tls13), 1.2: \(listener.tls12))" }
            if let days = listener.certificateDaysLeft { text += " cert \(days)d" }
            return text
        }.joined(separator: " \(glyphs.bullet) ")
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
}
