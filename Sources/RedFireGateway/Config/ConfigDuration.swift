/// Parses the durations used across the configuration: `250ms`, `5s`, `2m`, `1h`, and combinations
/// such as `1m30s`. A bare number is refused: a unit must always be explicit.
public enum ConfigDuration {
    public static func parse(_ text: String) -> Duration? {
        var total: Duration = .zero
        var index = text.startIndex
        var sawComponent = false
        while index < text.endIndex {
            let numberStart = index
            while index < text.endIndex, text[index].isASCII, text[index].isNumber || text[index] == "." {
                index = text.index(after: index)
            }
            guard numberStart < index, let value = Double(text[numberStart..<index]), value >= 0 else { return nil }
            let unitStart = index
            while index < text.endIndex, text[index].isLetter { index = text.index(after: index) }
            let unit = text[unitStart..<index]
            let nanosPerUnit: Double
            switch unit {
            case "ns": nanosPerUnit = 1
            case "us", "µs": nanosPerUnit = 1_000
            case "ms": nanosPerUnit = 1_000_000
            case "s": nanosPerUnit = 1_000_000_000
            case "m": nanosPerUnit = 60 * 1_000_000_000
            case "h": nanosPerUnit = 3_600 * 1_000_000_000
            default: return nil
            }
            let nanos = value * nanosPerUnit
            guard nanos < 1e18 else { return nil }
            total += .nanoseconds(Int64(nanos.rounded()))
            sawComponent = true
        }
        return sawComponent ? total : nil
    }

    /// Formats a duration the way the configuration spells it (`250ms`, `5s`, `2m`).
    static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let millis = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        if millis % 3_600_000 == 0, millis > 0 { return "\(millis / 3_600_000)h" }
        if millis % 60_000 == 0, millis > 0 { return "\(millis / 60_000)m" }
        if millis % 1000 == 0 { return "\(millis / 1000)s" }
        return "\(millis)ms"
    }
}

extension Duration {
    /// The duration in nanoseconds, saturating at Int64's range.
    var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return product &+ attoseconds / 1_000_000_000
    }

    var secondsDouble: Double { Double(nanosecondsClamped) / 1e9 }

    /// The duration in whole milliseconds (rounded down), saturating.
    var milliseconds: Int64 { nanosecondsClamped / 1_000_000 }
}
