import Atomics

/// Request IDs: a client's well-formed `X-Request-ID` is kept (so traces join up across systems);
/// otherwise the gateway makes one. Generated ids are 32 hex digits: a random per-process prefix and a
/// bijective mix of a counter, so they never repeat within a process and cost no system call.
enum GatewayRequestID {
    private static let counter = ManagedAtomic<UInt64>(0)
    private static let prefix: UInt64 = {
        var generator = SystemRandomNumberGenerator()
        return generator.next()
    }()

    /// 1–128 characters of `A-Z a-z 0-9 - _ . :` — safe in JSON, logs and headers.
    static func isWellFormed(_ value: String) -> Bool {
        let utf8 = value.utf8
        guard (1...128).contains(utf8.count) else { return false }
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"):
                continue
            default:
                return false
            }
        }
        return true
    }

    static func generate() -> String {
        let sequence = counter.wrappingIncrementThenLoad(ordering: .relaxed)
        let mixed = FastRandom.mix(sequence)
        // One string, written in place (no concatenation of two halves).
        return String(unsafeUninitializedCapacity: 32) { buffer in
            hex(prefix, into: buffer, at: 0)
            hex(mixed, into: buffer, at: 16)
            return 32
        }
    }

    private static func hex(_ value: UInt64, into buffer: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
        let digits: StaticString = "0123456789abcdef"
        digits.withUTF8Buffer { table in
            for index in 0..<16 {
                buffer[offset + index] = table[Int((value >> UInt64((15 - index) * 4)) & 0xF)]
            }
        }
    }
}
