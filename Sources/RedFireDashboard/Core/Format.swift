import Foundation

/// Short, fixed-width-friendly numbers for a terminal table. No `NumberFormatter`: a frame formats
/// hundreds of numbers and must stay under a couple of milliseconds.
enum Format {
    static func rate(_ value: Double) -> String {
        if value <= 0 { return "0" }
        if value < 10 { return fixed(value, 1) }
        if value < 10_000 { return String(Int(value.rounded())) }
        return fixed(value / 1000, 1) + "k"
    }

    static func percent(_ ratio: Double) -> String {
        let value = ratio * 100
        if value <= 0 { return "0%" }
        if value < 0.1 { return "<0.1%" }
        if value < 10 { return fixed(value, 1) + "%" }
        return String(Int(value.rounded())) + "%"
    }

    static func latency(_ micros: UInt64?) -> String {
        guard let micros else { return "-" }
        if micros < 1000 { return "\(micros)µs" }
        if micros < 10_000 { return fixed(Double(micros) / 1000, 2) + "ms" }
        if micros < 1_000_000 { return fixed(Double(micros) / 1000, micros < 100_000 ? 1 : 0) + "ms" }
        return fixed(Double(micros) / 1_000_000, 2) + "s"
    }

    /// Latency in ASCII (`us` for µs) when the terminal cannot print Unicode.
    static func latency(_ micros: UInt64?, unicode: Bool) -> String {
        let text = latency(micros)
        return unicode ? text : text.replacingOccurrences(of: "µ", with: "u")
    }

    static func count(_ value: Int) -> String {
        if value < 10_000 { return String(value) }
        if value < 10_000_000 { return String(value / 1000) + "k" }
        return String(value / 1_000_000) + "M"
    }

    static func duration(_ duration: Duration) -> String {
        let total = Int(duration.components.seconds)
        if total < 60 {
            let tenths = Int(duration.components.attoseconds / 100_000_000_000_000_000)
            return total < 10 ? "\(total).\(tenths)s" : "\(total)s"
        }
        if total < 3600 { return "\(total / 60)m\(pad2(total % 60))s" }
        if total < 86_400 { return "\(total / 3600)h\(pad2(total / 60 % 60))m" }
        return "\(total / 86_400)d\(pad2(total / 3600 % 24))h"
    }

    /// `HH:MM:SS` of a date, shifted by `offset` seconds from UTC.
    static func clock(_ date: Date, offset: Int) -> String {
        let seconds = (Int(date.timeIntervalSince1970.rounded(.down)) + offset) % 86_400
        let positive = seconds < 0 ? seconds + 86_400 : seconds
        return "\(pad2(positive / 3600)):\(pad2(positive / 60 % 60)):\(pad2(positive % 60))"
    }

    static func pad2(_ value: Int) -> String { value < 10 ? "0\(value)" : String(value) }

    static func fixed(_ value: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = Int((value * scale).rounded())
        let whole = scaled / Int(scale)
        guard digits > 0 else { return String(whole) }
        var fraction = String(scaled % Int(scale))
        while fraction.count < digits { fraction = "0" + fraction }
        return "\(whole).\(fraction)"
    }

    /// `text` cut or padded to exactly `width` characters.
    static func fit(_ text: String, _ width: Int, ellipsis: Character = "…", alignRight: Bool = false) -> String {
        guard width > 0 else { return "" }
        let count = text.count
        if count == width { return text }
        if count > width { return width == 1 ? String(ellipsis) : String(text.prefix(width - 1)) + String(ellipsis) }
        let padding = String(repeating: " ", count: width - count)
        return alignRight ? padding + text : text + padding
    }
}
