#if canImport(Glibc)
import Glibc
#endif
import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// A request head's fields as the parser hands them over: HTTP fields (`Host` aside, it becomes the
/// request's authority), with what the checks after the head need.
struct RequestHeadBuilder {
    var fields = HTTPFields()
    var host: String?
    var hostCount = 0
    /// `Transfer-Encoding` codings, and whether the last one is `chunked`.
    var transferCodings = 0
    var lastCodingIsChunked = false
    /// A value held bytes that are not UTF-8, or U+FFFD: refused rather than forwarded altered.
    var malformed = false
    /// The client's `X-Request-ID`, for a refusal's envelope.
    var requestID: String?

    mutating func add(name rawName: UnsafeRawBufferPointer, value rawValue: UnsafeRawBufferPointer) {
        // Room for a typical head at once, not grown field by field.
        if fields.isEmpty { fields.reserveCapacity(16) }
        let value = String(decoding: rawValue, as: UTF8.self)
        // Invalid UTF-8 decodes to U+FFFD (and a literal U+FFFD is refused too).
        if GatewayHTTPCodec.containsReplacementCharacter(value) {
            malformed = true
            return
        }
        if ASCII.equalsIgnoringCase(bytes: rawName, "host") {
            hostCount += 1
            host = value
            return
        }
        if ASCII.equalsIgnoringCase(bytes: rawName, "transfer-encoding") {
            for coding in value.split(separator: ",") {
                transferCodings += 1
                lastCodingIsChunked = ASCII.equalsIgnoringCase(bytes: coding.trimmingASCIISpaces().utf8, "chunked")
            }
        } else if requestID == nil, ASCII.equalsIgnoringCase(bytes: rawName, "x-request-id") {
            requestID = value
        }
        // llhttp has validated names (RFC 9110 tokens); HTTP types agree.
        guard let name = KnownFieldNames.name(rawName) ?? HTTPField.Name(String(decoding: rawName, as: UTF8.self)) else {
            malformed = true
            return
        }
        fields.append(HTTPField(name: name, value: value))
    }
}

/// A request head converted to HTTP types, with the RFC 9112 / RFC 3986 checks the parser does not make.
extension GatewayHTTPCodec {
    struct Refusal: Error {
        let error: GatewayError
    }

    /// The parsed head as the request the gateway forwards: its method, target and `Host` checked.
    func convert(_ head: HTTP1Parser.Head, fields builder: inout RequestHeadBuilder) -> Result<HTTPRequest, Refusal> {
        let http11 = head.minorVersion >= 1
        facts?.httpVersion = http11 ? "HTTP/1.1" : "HTTP/1.0"
        let scheme = facts?.tlsVersion == nil ? "http" : "https"
        guard head.method != "CONNECT" else { return .failure(Refusal(error: .notImplemented)) }
        guard let method = HTTPRequest.Method(head.method), !builder.malformed else { return .failure(Refusal(error: .malformedRequest)) }
        if builder.transferCodings > 0 {
            // RFC 9112 §6.1, §6.3: the final coding must be chunked, or the length cannot be known.
            guard http11, builder.lastCodingIsChunked else { return .failure(Refusal(error: .malformedRequest)) }
            if builder.transferCodings > 1 { return .failure(Refusal(error: .notImplemented)) }
        }
        // RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one before; a valid host[:port].
        guard builder.hostCount <= 1, builder.hostCount == 1 || !http11 else { return .failure(Refusal(error: .malformedRequest)) }
        var host = builder.host
        if let host, !Self.isValidAuthority(host) { return .failure(Refusal(error: .malformedRequest)) }

        var path = head.target
        // RFC 9112 §3.2.4: the asterisk form is for OPTIONS only (answered by the gateway).
        if path == "*", method != .options { return .failure(Refusal(error: .malformedRequest)) }
        if let first = path.utf8.first, first != UInt8(ascii: "/"), path != "*" {
            // Absolute form (RFC 9112 §3.2.2): the target's authority replaces Host.
            guard let absolute = Self.splitAbsoluteForm(path) else {
                return .success(HTTPRequest(method: method, scheme: scheme, authority: host, path: path, headerFields: builder.fields))
            }
            guard Self.isValidAuthority(absolute.authority), !absolute.authority.isEmpty else { return .failure(Refusal(error: .malformedRequest)) }
            guard settings.serverNames.contains(Self.hostName(absolute.authority)) else { return .failure(Refusal(error: .misdirectedRequest)) }
            host = absolute.authority
            path = absolute.pathAndQuery
        }
        return .success(HTTPRequest(method: method, scheme: scheme, authority: host, path: path, headerFields: builder.fields))
    }

    /// `http://authority/path?query` → (authority, "/path?query"); nil when the target has no `scheme://`.
    static func splitAbsoluteForm(_ target: String) -> (authority: String, pathAndQuery: String)? {
        guard let separator = target.range(of: "://") else { return nil }
        let scheme = target[..<separator.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { return nil }
        let rest = target[separator.upperBound...]
        let end = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = String(rest[..<end])
        let tail = rest[end...]
        let pathAndQuery = tail.isEmpty ? "/" : (tail.first == "?" ? "/" + tail : String(tail))
        return (authority, pathAndQuery)
    }

    /// The host of `host[:port]` or `[v6]:port`, lower-cased.
    static func hostName(_ authority: String) -> String {
        let lower = authority.lowercased()
        if lower.hasPrefix("["), let close = lower.firstIndex(of: "]") { return String(lower[...close]) }
        if let colon = lower.lastIndex(of: ":") { return String(lower[..<colon]) }
        return lower
    }

    /// RFC 9112 §3.2 / RFC 3986 §3.2.2–3.2.3 `host [ ":" port ]` without userinfo: a reg-name (unreserved,
    /// sub-delims, `%`-escapes) or IPv4 address, or an IP-literal in brackets (hex digits, `:` and `.`
    /// only), then at most one `:` and a port of at most five digits, up to 65535. Several colons outside
    /// brackets, unbalanced brackets, a bad port or a bad escape are refused.
    static func isValidAuthority(_ value: String) -> Bool {
        // Checked on every request's Host: read in place, no copy of the bytes.
        value.utf8.withContiguousStorageIfAvailable(isValidAuthority) ?? isValidAuthority(Array(value.utf8))
    }

    private static func isValidAuthority(_ bytes: some RandomAccessCollection<UInt8>) -> Bool {
        guard !bytes.isEmpty, bytes.count <= 255 else { return false }
        let start = bytes.startIndex
        var index = start
        if bytes[start] == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")), bytes.distance(from: start, to: close) > 2 else { return false }
            for byte in bytes[bytes.index(after: start)..<close] {
                guard byte == UInt8(ascii: ":") || byte == UInt8(ascii: ".") || RequestTarget.hexValue(byte) != nil else { return false }
            }
            index = bytes.index(after: close)
        } else {
            while index < bytes.endIndex, bytes[index] != UInt8(ascii: ":") {
                let byte = bytes[index]
                if byte == UInt8(ascii: "%") {
                    guard bytes.distance(from: index, to: bytes.endIndex) > 2, RequestTarget.hexValue(bytes[bytes.index(index, offsetBy: 1)]) != nil,
                          RequestTarget.hexValue(bytes[bytes.index(index, offsetBy: 2)]) != nil else { return false }
                    index = bytes.index(index, offsetBy: 3)
                    continue
                }
                guard isRegNameByte(byte) else { return false }
                index = bytes.index(after: index)
            }
            guard index > start else { return false }
        }
        guard index < bytes.endIndex else { return true }
        // A port: ":" and 1–5 digits, at most 65535 (an empty port after ":" is refused).
        guard bytes[index] == UInt8(ascii: ":") else { return false }
        let port = bytes[bytes.index(after: index)...]
        guard !port.isEmpty, port.count <= 5 else { return false }
        var number = 0
        for digit in port {
            guard digit >= UInt8(ascii: "0") && digit <= UInt8(ascii: "9") else { return false }
            number = number * 10 + Int(digit - UInt8(ascii: "0"))
        }
        return number <= 65535
    }

    private static func isRegNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"),
             UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="):
            return true
        default:
            return false
        }
    }

    /// Whether a value holds U+FFFD (UTF-8 `EF BF BD`): `memchr` for its lead byte, which no ASCII value
    /// has, over the bytes in place.
    static func containsReplacementCharacter(_ value: String) -> Bool {
        value.utf8.withContiguousStorageIfAvailable(containsReplacementCharacter) ?? Array(value.utf8).withUnsafeBufferPointer(containsReplacementCharacter)
    }

    private static func containsReplacementCharacter(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard var cursor = bytes.baseAddress else { return false }
        let end = cursor + bytes.count
        while cursor < end, let found = memchr(cursor, 0xEF, end - cursor) {
            let lead = UnsafePointer(found.assumingMemoryBound(to: UInt8.self))
            if end - lead >= 3, lead[1] == 0xBF, lead[2] == 0xBD { return true }
            cursor = lead + 1
        }
        return false
    }
}
