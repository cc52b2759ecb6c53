/// ASCII text helpers for protocol elements (field names, tokens): no locale, no allocation.
package enum ASCII {
    /// ASCII case-insensitive comparison with a lower-case literal, without allocating.
    static func equalsIgnoringCase(_ name: String, _ lowercase: StaticString) -> Bool {
        equalsIgnoringCase(bytes: name.utf8, lowercase)
    }

    package static func equalsIgnoringCase(bytes: some Collection<UInt8>, _ lowercase: StaticString) -> Bool {
        let count = lowercase.utf8CodeUnitCount
        guard bytes.count == count else { return false }
        return lowercase.withUTF8Buffer { expected in
            var index = 0
            for byte in bytes {
                let folded = (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) ? byte | 0x20 : byte
                if folded != expected[index] { return false }
                index += 1
            }
            return true
        }
    }
}

extension Substring {
    /// Without leading and trailing optional whitespace (RFC 9110 §5.6.3: SP and HTAB bytes), found on
    /// the bytes — no grapheme breaking.
    func trimmingASCIISpaces() -> Substring {
        let utf8 = self.utf8
        var start = utf8.startIndex
        var end = utf8.endIndex
        while start < end, Self.isSpace(utf8[start]) { utf8.formIndex(after: &start) }
        while end > start, Self.isSpace(utf8[utf8.index(before: end)]) { utf8.formIndex(before: &end) }
        return self[start..<end]
    }

    private static func isSpace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
}
