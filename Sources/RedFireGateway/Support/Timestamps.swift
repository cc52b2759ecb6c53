import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// RFC 9110 §5.6.7 IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
enum HTTPDate {
    static func format(seconds: time_t) -> String {
        var seconds = seconds
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}

/// Numbers and UTC times written digit by digit into a buffer (no formatter, no String), through
/// `ReservedText`.
enum DecimalText {
    /// `12.345`: milliseconds with three decimals, written without Foundation formatting.
    static func writeMilliseconds(_ duration: Duration, to buffer: inout ByteBuffer) {
        buffer.writeReserved(atMost: ReservedText.millisecondsBound) { $0.writeMilliseconds(duration) }
    }

    static func writeDecimal(_ value: Int, to buffer: inout ByteBuffer) {
        buffer.writeReserved(atMost: ReservedText.decimalBound) { $0.writeDecimal(value) }
    }

    /// RFC 3339 UTC with milliseconds (`2026-11-27T07:30:12.345Z`), from the system clock.
    static func writeTimestamp(to buffer: inout ByteBuffer) {
        buffer.writeReserved(atMost: ReservedText.timestampBound) { $0.writeTimestamp() }
    }
}
