import Foundation
import RedFireGateway

/// The events pane.
extension Frame {
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
}
