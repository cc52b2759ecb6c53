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

    /// `names` laid out for the lookup, in memory made once and kept for the process's life: their bytes
    /// one after another, and by length which of them to compare (this runs for every field a client or
    /// an instance sends; reading Swift arrays of arrays retained and released each one it touched).
    private struct Table: @unchecked Sendable {
        /// Every name's bytes.
        let bytes: UnsafeMutableBufferPointer<UInt8>
        /// The names, as the lookup returns them.
        let names: UnsafeMutableBufferPointer<HTTPField.Name>
        /// Each name's first byte in `bytes`, ordered by length.
        let starts: UnsafeMutableBufferPointer<Int32>
        /// Each name's place in `names`, in the order of `starts`.
        let indices: UnsafeMutableBufferPointer<Int32>
        /// `starts[byLength[n] ..< byLength[n + 1]]` are the names of `n` bytes.
        let byLength: UnsafeMutableBufferPointer<Int32>

        static let maxLength = 31

        init(_ names: [HTTPField.Name]) {
            let ordered = names.indices.sorted { (names[$0].rawName.utf8.count, $0) < (names[$1].rawName.utf8.count, $1) }
            bytes = .allocate(capacity: names.reduce(0) { $0 + $1.rawName.utf8.count })
            self.names = .allocate(capacity: names.count)
            _ = self.names.initialize(from: names)
            starts = .allocate(capacity: names.count)
            indices = .allocate(capacity: names.count)
            byLength = .allocate(capacity: Self.maxLength + 2)
            byLength.initialize(repeating: 0)
            var offset = 0
            for (position, index) in ordered.enumerated() {
                let name = Array(names[index].rawName.utf8)
                precondition(name.count <= Self.maxLength)
                _ = UnsafeMutableBufferPointer(rebasing: bytes[offset ..< offset + name.count]).initialize(from: name)
                starts[position] = Int32(offset)
                indices[position] = Int32(index)
                offset += name.count
                byLength[name.count + 1] = Int32(position + 1)
            }
            // Lengths no name has start where the previous length ended.
            for length in 1 ... Self.maxLength + 1 where byLength[length] < byLength[length - 1] { byLength[length] = byLength[length - 1] }
        }
    }

    private static let table = Table(names)

    /// The made name spelled exactly as `bytes`; nil for any other.
    static func name(_ bytes: UnsafeRawBufferPointer) -> HTTPField.Name? {
        let count = bytes.count
        let table = table
        guard count <= Table.maxLength, let start = bytes.baseAddress, let known = table.bytes.baseAddress else { return nil }
        for position in Int(table.byLength[count]) ..< Int(table.byLength[count + 1]) where memcmp(known + Int(table.starts[position]), start, count) == 0 {
            return table.names[Int(table.indices[position])]
        }
        return nil
    }
}
