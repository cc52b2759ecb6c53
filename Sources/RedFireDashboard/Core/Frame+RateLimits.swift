import Foundation
import RedFireGateway

/// The most-limited keys.
extension Frame {
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
}
