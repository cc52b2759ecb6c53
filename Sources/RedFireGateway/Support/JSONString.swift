import NIOCore

/// JSON string literals written straight into a buffer (error envelopes, access-log lines): no encoder.
enum JSONString {
    /// `text` as a JSON string. Bytes that need no escape (the common case) are copied as they are.
    static func write(_ text: String, to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "\""))
        // Over the bytes in place when the string is native (a tight loop, no iterator per byte).
        let clean = text.utf8.withContiguousStorageIfAvailable { !$0.contains(where: needsEscape) } ?? !text.utf8.contains(where: needsEscape)
        if clean {
            buffer.writeString(text)
        } else {
            let hex: StaticString = "0123456789abcdef"
            for byte in text.utf8 {
                switch byte {
                case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
                case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
                case UInt8(ascii: "\n"): buffer.writeStaticString("\\n")
                case UInt8(ascii: "\r"): buffer.writeStaticString("\\r")
                case UInt8(ascii: "\t"): buffer.writeStaticString("\\t")
                case 0..<0x20:
                    buffer.writeStaticString("\\u00")
                    hex.withUTF8Buffer { digits in
                        buffer.writeInteger(digits[Int(byte >> 4)])
                        buffer.writeInteger(digits[Int(byte & 0xF)])
                    }
                default:
                    // UTF-8 passes through: the text is valid UTF-8, and so is the JSON.
                    buffer.writeInteger(byte)
                }
            }
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    static func needsEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }
}
