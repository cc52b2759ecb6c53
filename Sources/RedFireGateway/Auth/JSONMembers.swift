import Foundation

/// Finds objects with a member name twice in a JSON text (at any depth), comparing names after their
/// escapes are decoded (`"a"` and `"\u0061"` are the same member). Text that is not JSON is left to the
/// decoder to refuse.
enum JSONMembers {
    static func hasDuplicates(_ bytes: [UInt8]) -> Bool {
        var index = 0
        /// Member names seen per open object; nil entries for arrays.
        var stack: [Set<[UInt8]>?] = []
        var expectingName = false
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "{"):
                stack.append([])
                expectingName = true
                index += 1
            case UInt8(ascii: "["):
                stack.append(nil)
                expectingName = false
                index += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if !stack.isEmpty { stack.removeLast() }
                expectingName = false
                index += 1
            case UInt8(ascii: ","):
                expectingName = stack.last.map { $0 != nil } ?? false
                index += 1
            case UInt8(ascii: "\""):
                guard let (name, end) = string(bytes, from: index) else { return false }
                if expectingName, var names = stack.last ?? nil {
                    if !names.insert(name).inserted { return true }
                    stack[stack.count - 1] = names
                }
                expectingName = false
                index = end
            default:
                index += 1
            }
        }
        return false
    }

    /// The decoded content of the string starting at `start` (a quote) and the index after it.
    private static func string(_ bytes: [UInt8], from start: Int) -> ([UInt8], Int)? {
        var result: [UInt8] = []
        var index = start + 1
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") { return (result, index + 1) }
            guard byte == UInt8(ascii: "\\") else {
                result.append(byte)
                index += 1
                continue
            }
            guard index + 1 < bytes.count else { return nil }
            switch bytes[index + 1] {
            case UInt8(ascii: "n"): result.append(0x0A)
            case UInt8(ascii: "r"): result.append(0x0D)
            case UInt8(ascii: "t"): result.append(0x09)
            case UInt8(ascii: "b"): result.append(0x08)
            case UInt8(ascii: "f"): result.append(0x0C)
            case UInt8(ascii: "u"):
                guard index + 5 < bytes.count, let unit = UInt16(String(decoding: bytes[(index + 2)...(index + 5)], as: UTF8.self), radix: 16) else { return nil }
                if let scalar = Unicode.Scalar(unit) {
                    result.append(contentsOf: Array(String(Character(scalar)).utf8))
                } else {
                    // A surrogate half: kept as its code unit, apart from any real text.
                    result.append(contentsOf: [0xFF, UInt8(unit >> 8), UInt8(unit & 0xFF)])
                }
                index += 6
                continue
            default: result.append(bytes[index + 1])
            }
            index += 2
        }
        return nil
    }
}
