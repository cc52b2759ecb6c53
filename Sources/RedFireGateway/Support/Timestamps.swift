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

/// Numbers and UTC times written digit by digit into a buffer (no formatter, no String): the access
/// log's hot path.
enum DecimalText {
    /// `12.345`: milliseconds with three decimals, written without Foundation formatting.
    static func writeMilliseconds(_ duration: Duration, to buffer: inout ByteBuffer) {
        let micros = max(0, duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000)
        writeDecimal(Int(micros / 1000), to: &buffer)
        buffer.writeInteger(UInt8(ascii: "."))
        writeDigits(Int(micros % 1000), count: 3, to: &buffer)
    }

    static func writeDecimal(_ value: Int, to buffer: inout ByteBuffer) {
        if value < 0 {
            buffer.writeInteger(UInt8(ascii: "-"))
            writeDecimal(-value, to: &buffer)
            return
        }
        var digits = 1
        var rest = value / 10
        while rest > 0 { digits += 1; rest /= 10 }
        writeDigits(value, count: digits, to: &buffer)
    }

    /// `value` as exactly `count` decimal digits, zero-padded.
    static func writeDigits(_ value: Int, count: Int, to buffer: inout ByteBuffer) {
        var value = value
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { bytes in
            for index in stride(from: count - 1, through: 0, by: -1) {
                bytes[index] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
            }
            return count
        }
    }

    /// RFC 3339 UTC with milliseconds (`2026-11-27T07:30:12.345Z`), from the system clock, written
    /// digit by digit (no formatter, no String).
    static func writeTimestamp(to buffer: inout ByteBuffer) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        writeDigits(Int(parts.tm_year) + 1900, count: 4, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "-"))
        writeDigits(Int(parts.tm_mon) + 1, count: 2, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "-"))
        writeDigits(Int(parts.tm_mday), count: 2, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "T"))
        writeDigits(Int(parts.tm_hour), count: 2, to: &buffer)
        buffer.writeInteger(UInt8(ascii: ":"))
        writeDigits(Int(parts.tm_min), count: 2, to: &buffer)
        buffer.writeInteger(UInt8(ascii: ":"))
        writeDigits(Int(parts.tm_sec), count: 2, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "."))
        writeDigits(Int(now.tv_nsec / 1_000_000), count: 3, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "Z"))
    }
}
