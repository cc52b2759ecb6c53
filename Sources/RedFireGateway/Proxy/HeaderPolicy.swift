import HTTPTypes

/// What the gateway changes in headers on the way through, and nothing more.
enum HeaderPolicy {
    /// Hop-by-hop fields (RFC 9110 §7.6.1) that never cross the gateway, in either direction, plus
    /// `Proxy-Authorization`/`Proxy-Authenticate`, which are meant for the gateway itself.
    static let hopByHop: [HTTPField.Name] = [
        .connection, .keepAlive, .proxyConnection, .te, .trailer, .transferEncoding, .upgradeField,
        .proxyAuthorization, .proxyAuthenticate,
    ]

    /// Removes hop-by-hop fields and every field named in `Connection`.
    static func stripHopByHop(_ fields: inout HTTPFields) {
        let connectionValues = fields[values: .connection]
        if !connectionValues.isEmpty {
            for value in connectionValues {
                for token in value.split(separator: ",") {
                    let name = token.trimmingASCIISpaces()
                    if let fieldName = HTTPField.Name(String(name)) { fields[fieldName] = nil }
                }
            }
        }
        for name in hopByHop where fields.contains(name) {
            fields[name] = nil
        }
    }

    /// Headers for the upstream request: the client's, without hop-by-hop fields and without any
    /// client-supplied `X-User-*`/`X-Gateway-*` field, plus the forwarding fields and the verified
    /// identity. `X-Forwarded-For` appends the TCP peer to any value the client sent.
    static func upstreamHeaders(_ clientFields: HTTPFields, clientIP: String?, clientHost: String?, requestID: String,
                                identity: UpstreamIdentity = .transparent) -> HTTPFields {
        var fields = clientFields
        stripHopByHop(&fields)
        stripReserved(&fields, credentials: !identity.keepCredentials)
        if let clientIP {
            let existing = fields[values: .forwardedFor]
            fields[.forwardedFor] = existing.isEmpty ? clientIP : existing.joined(separator: ", ") + ", " + clientIP
        }
        fields[.forwardedProto] = "http"
        if let clientHost { fields[.forwardedHost] = clientHost } else { fields[.forwardedHost] = nil }
        fields[.requestID] = requestID
        fields[.gatewayService] = "api-gateway"
        if let user = identity.identity {
            fields[.userID] = user.userID
            fields[.userName] = user.username
            fields[.userRoles] = user.roles.joined(separator: ",")
        }
        if let token = identity.gatewayToken { fields[.gatewayToken] = token }
        return fields
    }

    /// Removes every field a client could use to impersonate the gateway's identity headers —
    /// `X-User-*` and `X-Gateway-*` in any letter case and with `_` for `-` (some servers map one to the
    /// other) — and, when `credentials` is set, `Authorization` and `X-API-Key`.
    static func stripReserved(_ fields: inout HTTPFields, credentials: Bool) {
        var found = false
        for field in fields where isReserved(field.name) || (credentials && (field.name == .authorization || field.name == .apiKey)) {
            found = true
            break
        }
        guard found else { return }
        fields = HTTPFields(fields.filter { !(isReserved($0.name) || (credentials && ($0.name == .authorization || $0.name == .apiKey))) })
    }

    private static let reservedPrefixes: [[UInt8]] = [Array("x-user-".utf8), Array("x-gateway-".utf8)]

    /// `X-User-*` or `X-Gateway-*`, compared without case and with `_` read as `-`.
    static func isReserved(_ name: HTTPField.Name) -> Bool {
        let utf8 = name.canonicalName.utf8
        for prefix in reservedPrefixes where utf8.count >= prefix.count {
            var matches = true
            var index = utf8.startIndex
            for expected in prefix {
                var byte = utf8[index]
                if byte == UInt8(ascii: "_") { byte = UInt8(ascii: "-") }
                if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { byte += 32 }
                if byte != expected { matches = false; break }
                index = utf8.index(after: index)
            }
            if matches { return true }
        }
        return false
    }

    /// Headers for the client from an upstream response.
    static func downstreamHeaders(_ upstreamFields: HTTPFields, requestID: String) -> HTTPFields {
        var fields = upstreamFields
        stripHopByHop(&fields)
        // No product or version of what runs behind the gateway is advertised.
        fields[.server] = nil
        fields[.requestID] = requestID
        return fields
    }
}

/// What the gateway tells a service about the caller.
struct UpstreamIdentity {
    /// The verified caller; nil on public paths and without auth.
    var identity: Identity?
    /// `X-Gateway-Token` for the target service.
    var gatewayToken: String?
    /// Pass the client's `Authorization` and `X-API-Key` on (the route opts in, or auth is off).
    var keepCredentials: Bool

    /// Without auth the gateway authenticates no one and passes credentials through.
    static let transparent = UpstreamIdentity(identity: nil, gatewayToken: nil, keepCredentials: true)
}

extension Substring {
    func trimmingASCIISpaces() -> Substring {
        var result = self
        while let first = result.first, first == " " || first == "\t" { result.removeFirst() }
        while let last = result.last, last == " " || last == "\t" { result.removeLast() }
        return result
    }
}
