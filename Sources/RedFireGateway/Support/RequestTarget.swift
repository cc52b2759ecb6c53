/// The request target, normalized once (RFC 3986 §6.2.2 and §5.2.4) so that route matching,
/// authorization and forwarding all see the same path: what the gateway checked is exactly what the
/// service receives.
///
/// - Percent-encoded unreserved characters are decoded (`%7E` → `~`, `%41` → `A`); other escapes keep
///   their encoding with upper-case hex digits.
/// - `%2F`, `%5C` and `%00` (encoded slash, backslash, NUL) are refused: a service that decodes them
///   would see a different path than the one the gateway authorized.
/// - Dot segments are removed (`/a/./b/../c` → `/a/c`); dot segments spelled with escapes (`%2e%2e`) are
///   refused, since no client has a reason to send them.
/// - Repeated slashes are merged (`//a///b` → `/a/b`) unless `merge_slashes: false`; a trailing slash
///   is kept.
/// - Raw control characters, spaces, non-ASCII bytes and characters RFC 3986 does not allow in a
///   target (`"`, `#`, `<`, `>`, `\`, `^`, `` ` ``, `{`, `|`, `}`) are refused.
///
/// Only origin-form targets (`/path?query`) are accepted; the query is passed on as sent.
struct RequestTarget: Sendable, Equatable {
    /// The normalized path, always starting with `/`.
    var path: String
    /// What followed the first `?`, without it; nil when there was no `?`.
    var query: Substring?

    enum Problem: Error, Equatable, CustomStringConvertible {
        case notOriginForm
        case encodedSeparator
        case encodedDotSegment
        case badPercentEncoding
        case forbiddenCharacter

        var description: String {
            switch self {
            case .notOriginForm: return "The request target must be a path starting with /."
            case .encodedSeparator: return "The path contains an encoded slash, backslash or NUL (%2F, %5C, %00)."
            case .encodedDotSegment: return "The path contains a percent-encoded dot segment."
            case .badPercentEncoding: return "The path contains a malformed percent-encoding."
            case .forbiddenCharacter: return "The path or query contains a character that is not allowed."
            }
        }
    }

    /// The target as the upstream request line carries it: normalized path, then the query as sent.
    var upstreamTarget: String {
        guard let query else { return path }
        return path + "?" + query
    }

    /// Normalizes a raw request target (as in the request line).
    static func parse(_ target: String, mergeSlashes: Bool = true) throws(Problem) -> RequestTarget {
        let utf8 = target.utf8
        guard utf8.first == UInt8(ascii: "/") else { throw .notOriginForm }
        let queryStart = utf8.firstIndex(of: UInt8(ascii: "?"))
        let rawPath = target[..<(queryStart ?? target.endIndex)]
        var query: Substring?
        if let queryStart {
            query = target[target.index(after: queryStart)...]
            for byte in query!.utf8 where !isAllowedRaw(byte) { throw .forbiddenCharacter }
        }
        // Fast path: nothing to decode, no dot segment, no repeated slash.
        var needsWork = false
        var previous: UInt8 = 0
        for byte in rawPath.utf8 {
            guard isAllowedRaw(byte) else { throw .forbiddenCharacter }
            if byte == UInt8(ascii: "%") || (mergeSlashes && byte == UInt8(ascii: "/") && previous == UInt8(ascii: "/"))
                || (byte == UInt8(ascii: ".") && previous == UInt8(ascii: "/")) {
                needsWork = true
            }
            previous = byte
        }
        if !needsWork { return RequestTarget(path: String(rawPath), query: query) }
        return RequestTarget(path: try normalize(rawPath, mergeSlashes: mergeSlashes), query: query)
    }

    /// RFC 3986 §2–3.4: a raw path or query byte is unreserved, a sub-delim, `:`, `@`, `/`, `?`, `%`
    /// (escapes are checked apart), or `[`/`]` (which browsers send raw in queries). Refused: controls,
    /// space, non-ASCII and `"`, `#`, `<`, `>`, `\`, `^`, `` ` ``, `{`, `|`, `}` — a target with them is
    /// not a URI, and services and caches parse it differently.
    private static func isAllowedRaw(_ byte: UInt8) -> Bool {
        guard byte > 0x20 && byte < 0x7F else { return false }
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "#"), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "\\"), UInt8(ascii: "^"),
             UInt8(ascii: "`"), UInt8(ascii: "{"), UInt8(ascii: "|"), UInt8(ascii: "}"):
            return false
        default:
            return true
        }
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// The value of one hexadecimal digit (either case); nil for anything else.
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    /// One path segment after decoding, and whether any `.` in it came from an escape.
    private struct Segment {
        var bytes: [UInt8] = []
        var hasEncodedDot = false
    }

    private static func normalize(_ rawPath: Substring, mergeSlashes: Bool) throws(Problem) -> String {
        // Split into decoded segments. The leading "/" yields an empty first segment, skipped below.
        var segments: [Segment] = []
        var current = Segment()
        let bytes = Array(rawPath.utf8)
        var index = 1
        while index <= bytes.count {
            if index == bytes.count || bytes[index] == UInt8(ascii: "/") {
                segments.append(current)
                current = Segment()
                index += 1
                continue
            }
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < bytes.count, let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2]) else {
                    throw .badPercentEncoding
                }
                let value = high << 4 | low
                if value == UInt8(ascii: "/") || value == UInt8(ascii: "\\") || value == 0 { throw .encodedSeparator }
                if isUnreserved(value) {
                    current.bytes.append(value)
                    if value == UInt8(ascii: ".") { current.hasEncodedDot = true }
                } else {
                    current.bytes.append(UInt8(ascii: "%"))
                    current.bytes.append(hexDigits[Int(high)])
                    current.bytes.append(hexDigits[Int(low)])
                }
                index += 3
                continue
            }
            current.bytes.append(byte)
            index += 1
        }
        // Dot-segment removal and slash merging. An empty last segment means a trailing slash.
        var output: [[UInt8]] = []
        var trailingSlash = false
        for (position, segment) in segments.enumerated() {
            let isLast = position == segments.count - 1
            let isDot = segment.bytes == [UInt8(ascii: ".")]
            let isDotDot = segment.bytes == [UInt8(ascii: "."), UInt8(ascii: ".")]
            if (isDot || isDotDot) && segment.hasEncodedDot { throw .encodedDotSegment }
            if isDot {
                if isLast { trailingSlash = true }
            } else if isDotDot {
                if !output.isEmpty { output.removeLast() }
                if isLast { trailingSlash = true }
            } else if segment.bytes.isEmpty {
                if isLast { trailingSlash = true } else if !mergeSlashes { output.append([]) }
            } else {
                output.append(segment.bytes)
                if isLast { trailingSlash = false }
            }
        }
        var result: [UInt8] = [UInt8(ascii: "/")]
        for (position, segment) in output.enumerated() {
            if position > 0 { result.append(UInt8(ascii: "/")) }
            result.append(contentsOf: segment)
        }
        if trailingSlash && !output.isEmpty { result.append(UInt8(ascii: "/")) }
        return String(decoding: result, as: UTF8.self)
    }
}
