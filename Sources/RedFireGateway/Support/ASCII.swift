/// ASCII text helpers for protocol elements (field names, tokens): no locale, no allocation.
enum ASCII {
    /// ASCII case-insensitive comparison with a lower-case literal, without allocating.
    static func equalsIgnoringCase(_ name: String, _ lowercase: StaticString) -> Bool {
        equalsIgnoringCase(bytes: name.utf8, lowercase)
    }

    static func equalsIgnoringCase(bytes: some Collection<UInt8>, _ lowercase: StaticString) -> Bool {
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
    func trimmingASCIISpaces() -> Substring {
        var result = self
        while let first = result.first, first == " " || first == "\t" { result.removeFirst() }
        while let last = result.last, last == " " || last == "\t" { result.removeLast() }
        return result
    }
}
