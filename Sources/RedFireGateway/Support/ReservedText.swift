import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Text written straight into memory a buffer reserved for it (`ByteBuffer.writeReserved`): one
/// capacity check for a whole line instead of one per piece — an access-log line has ~60 pieces, and
/// each `ByteBuffer` write checks uniqueness, capacity and exclusive access. Every write still checks
/// that it stays within the reservation (a wrong bound stops the process; it never writes past).
struct ReservedText: ~Copyable {
    private let base: UnsafeMutableRawPointer
    private let capacity: Int
    private(set) var count = 0

    fileprivate init(_ bytes: UnsafeMutableRawBufferPointer) {
        base = bytes.baseAddress!
        capacity = bytes.count
    }

    /// At most the bytes `writeJSON` writes for `text`: quotes, and six per byte (`\u001f`).
    static func jsonBound(_ text: String?) -> Int {
        guard let text else { return 4 }
        return 2 + 6 * text.utf8.count
    }

    /// At most the bytes `writeDecimal` writes (`-9223372036854775808`).
    static let decimalBound = 20

    private mutating func reserve(_ bytes: Int) -> UnsafeMutableRawPointer {
        precondition(count + bytes <= capacity, "text past its reservation")
        defer { count += bytes }
        return base + count
    }

    mutating func write(byte: UInt8) {
        reserve(1).storeBytes(of: byte, as: UInt8.self)
    }

    mutating func write(_ text: StaticString) {
        let length = text.utf8CodeUnitCount
        reserve(length).copyMemory(from: text.utf8Start, byteCount: length)
    }

    /// `text`'s UTF-8, as it is. Read in place (`withUTF8` would need a copy of the string to mutate:
    /// a retain and a release per write).
    mutating func write(_ text: String) {
        let utf8 = text.utf8
        let length = utf8.count
        guard length > 0 else { return }
        let start = reserve(length)
        let copied: Bool? = utf8.withContiguousStorageIfAvailable { bytes in
            start.copyMemory(from: bytes.baseAddress!, byteCount: length)
            return true
        }
        guard copied == nil else { return }
        // A string not stored as UTF-8 (bridged): byte by byte.
        var offset = 0
        for byte in utf8 {
            start.storeBytes(of: byte, toByteOffset: offset, as: UInt8.self)
            offset += 1
        }
    }

    mutating func write(bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress else { return }
        reserve(bytes.count).copyMemory(from: source, byteCount: bytes.count)
    }

    /// `text` as a JSON string; `null` for nil. Bytes that need no escape (the common case) are copied as
    /// they are: UTF-8 passes through (the text is valid UTF-8, and so is the JSON).
    mutating func writeJSON(_ text: String?) {
        guard var text else {
            write("null")
            return
        }
        text.withUTF8 { utf8 in
            write(byte: UInt8(ascii: "\""))
            guard utf8.contains(where: Self.needsEscape) else {
                write(bytes: UnsafeRawBufferPointer(utf8))
                write(byte: UInt8(ascii: "\""))
                return
            }
            let hex: StaticString = "0123456789abcdef"
            for byte in utf8 {
                switch byte {
                case UInt8(ascii: "\""): write("\\\"")
                case UInt8(ascii: "\\"): write("\\\\")
                case UInt8(ascii: "\n"): write("\\n")
                case UInt8(ascii: "\r"): write("\\r")
                case UInt8(ascii: "\t"): write("\\t")
                case 0..<0x20:
                    write("\\u00")
                    write(byte: hex.utf8Start[Int(byte >> 4)])
                    write(byte: hex.utf8Start[Int(byte & 0xF)])
                default:
                    write(byte: byte)
                }
            }
            write(byte: UInt8(ascii: "\""))
        }
    }

    static func needsEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }

    mutating func writeDecimal(_ value: Int) {
        if value < 0 {
            write(byte: UInt8(ascii: "-"))
            // The magnitude as unsigned: `-Int.min` does not fit in an `Int`.
            writeDigits(value.magnitude)
            return
        }
        writeDigits(UInt(value))
    }

    mutating func writeDigits(_ value: UInt) {
        var digits = 1
        var rest = value / 10
        while rest > 0 { digits += 1; rest /= 10 }
        writeDigits(value, count: digits)
    }

    /// `value` as exactly `count` decimal digits, zero-padded.
    mutating func writeDigits(_ value: UInt, count digits: Int) {
        let start = reserve(digits)
        var value = value
        for index in stride(from: digits - 1, through: 0, by: -1) {
            start.storeBytes(of: UInt8(ascii: "0") + UInt8(value % 10), toByteOffset: index, as: UInt8.self)
            value /= 10
        }
    }

    /// `12.345`: milliseconds with three decimals.
    mutating func writeMilliseconds(_ duration: Duration) {
        let micros = max(0, duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000)
        writeDecimal(Int(micros / 1000))
        write(byte: UInt8(ascii: "."))
        writeDigits(UInt(micros % 1000), count: 3)
    }

    /// At most the bytes `writeMilliseconds` writes.
    static let millisecondsBound = decimalBound + 4

    /// RFC 3339 UTC with milliseconds (`2026-11-27T07:30:12.345Z`), from the system clock.
    mutating func writeTimestamp() {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        writeDigits(UInt(max(0, parts.tm_year + 1900)), count: 4)
        write(byte: UInt8(ascii: "-"))
        writeDigits(UInt(parts.tm_mon + 1), count: 2)
        write(byte: UInt8(ascii: "-"))
        writeDigits(UInt(parts.tm_mday), count: 2)
        write(byte: UInt8(ascii: "T"))
        writeDigits(UInt(parts.tm_hour), count: 2)
        write(byte: UInt8(ascii: ":"))
        writeDigits(UInt(parts.tm_min), count: 2)
        write(byte: UInt8(ascii: ":"))
        writeDigits(UInt(parts.tm_sec), count: 2)
        write(byte: UInt8(ascii: "."))
        writeDigits(UInt(now.tv_nsec / 1_000_000), count: 3)
        write(byte: UInt8(ascii: "Z"))
    }

    /// The bytes `writeTimestamp` writes.
    static let timestampBound = 24
}

extension String {
    /// The text `write` writes, at most `bound` bytes, made in one allocation (an interpolation of a
    /// few pieces grows its string piece by piece).
    init(reservedAtMost bound: Int, _ write: (inout ReservedText) -> Void) {
        self.init(unsafeUninitializedCapacity: bound) { bytes in
            var text = ReservedText(UnsafeMutableRawBufferPointer(bytes))
            write(&text)
            return text.count
        }
    }
}

extension ByteBuffer {
    /// Writes what `write` writes, at most `bound` bytes, into memory reserved for it at once.
    mutating func writeReserved(atMost bound: Int, _ write: (inout ReservedText) -> Void) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { bytes in
            var text = ReservedText(bytes)
            write(&text)
            return text.count
        }
    }
}
