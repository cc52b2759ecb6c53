import HTTPTypes

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The field names the gateway reads or writes beyond those HTTP types defines.
extension HTTPField.Name {
    static let requestID = Self("X-Request-ID")!
    static let forwardedFor = Self("X-Forwarded-For")!
    static let forwardedProto = Self("X-Forwarded-Proto")!
    static let forwardedHost = Self("X-Forwarded-Host")!
    static let realIP = Self("X-Real-IP")!
    static let gatewayService = Self("X-Gateway-Service")!
    static let idempotencyKey = Self("Idempotency-Key")!
    static let keepAlive = Self("Keep-Alive")!
    static let proxyConnection = Self("Proxy-Connection")!
    static let upgradeField = Self("Upgrade")!
    static let trailer = Self("Trailer")!
    static let te = Self("TE")!
    static let apiKey = Self("X-API-Key")!
    static let userID = Self("X-User-Id")!
    static let userName = Self("X-User-Name")!
    static let userRoles = Self("X-User-Roles")!
    static let gatewayToken = Self("X-Gateway-Token")!
    // Rate limits (draft-ietf-httpapi-ratelimit-headers, and the older trio).
    static let rateLimitPolicy = Self("RateLimit-Policy")!
    static let rateLimit = Self("RateLimit")!
    static let xRateLimitLimit = Self("X-RateLimit-Limit")!
    static let xRateLimitRemaining = Self("X-RateLimit-Remaining")!
    static let xRateLimitReset = Self("X-RateLimit-Reset")!
}

/// Field names as they usually arrive, made once: a name read off the wire that matches one of these
/// byte for byte is that value — no string decoded, lowercased and checked for it (a name longer than
/// 15 bytes is two allocations). Any other spelling is made as before: the bytes decide, so a name
/// passes on exactly as it came.
enum KnownFieldNames {
    private struct Entry {
        let bytes: [UInt8]
        let name: HTTPField.Name
    }

    /// The usual names in the two spellings clients and servers send: canonical and lower case.
    static let names: [HTTPField.Name] = {
        let canonical = [
            "Host", "User-Agent", "Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Content-Type", "Content-Length",
            "Connection", "Cookie", "Date", "Server", "Cache-Control", "ETag", "Last-Modified", "Location", "Set-Cookie",
            "Transfer-Encoding", "Vary", "Keep-Alive", "Upgrade", "Origin", "Referer", "If-None-Match", "If-Modified-Since",
            "Content-Encoding", "Expect", "Expires", "Pragma", "X-Request-ID", "X-Forwarded-For", "X-Forwarded-Proto", "X-Real-IP",
            "X-API-Key", "Idempotency-Key", "Traceparent", "Access-Control-Allow-Origin", "Strict-Transport-Security",
        ]
        var names: [HTTPField.Name] = []
        for spelling in canonical {
            names.append(HTTPField.Name(spelling)!)
            if spelling.lowercased() != spelling { names.append(HTTPField.Name(spelling.lowercased())!) }
        }
        return names
    }()

    /// `names` by the length of their bytes.
    private static let byLength: [[Entry]] = {
        var table = [[Entry]](repeating: [], count: 32)
        for name in names {
            let bytes = Array(name.rawName.utf8)
            table[bytes.count].append(Entry(bytes: bytes, name: name))
        }
        return table
    }()

    /// The made name spelled exactly as `bytes`; nil for any other.
    static func name(_ bytes: UnsafeRawBufferPointer) -> HTTPField.Name? {
        guard bytes.count < byLength.count, let start = bytes.baseAddress else { return nil }
        for entry in byLength[bytes.count] {
            let same = entry.bytes.withUnsafeBytes { memcmp($0.baseAddress!, start, bytes.count) == 0 }
            if same { return entry.name }
        }
        return nil
    }
}
