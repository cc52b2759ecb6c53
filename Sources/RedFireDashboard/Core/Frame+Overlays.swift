import Foundation
import RedFireGateway

/// Boxes over the panes: help, confirmations, the strategy picker, shutdown.
extension Frame {
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
            let inner = drawBox(title: "\(verb) \(confirmation.instance)?", width: 76, height: (confirmation.requiresTyping ? 10 : 8) + (confirmation.streams > 0 ? 1 : 0))
            var lines: [(String, ThemeRole)] = []
            if confirmation.undrain {
                lines.append(("\(confirmation.instance) goes back into rotation for \(confirmation.service).", .dialog))
            } else {
                lines.append(("\(confirmation.instance) gets no new requests; \(confirmation.inFlight) in flight will finish.", .dialog))
                if confirmation.streams > 0 {
                    lines.append(("\(confirmation.streams) open stream\(confirmation.streams == 1 ? "" : "s") stay until they end or the drain deadline (then 1001).", .dialog))
                }
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
