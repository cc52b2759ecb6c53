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

    /// Headers for the upstream request: the client's, without hop-by-hop fields, plus the forwarding
    /// fields. `X-Forwarded-For` appends the TCP peer to any value the client sent.
    static func upstreamHeaders(_ clientFields: HTTPFields, clientIP: String?, clientHost: String?, requestID: String) -> HTTPFields {
        var fields = clientFields
        stripHopByHop(&fields)
        if let clientIP {
            let existing = fields[values: .forwardedFor]
            fields[.forwardedFor] = existing.isEmpty ? clientIP : existing.joined(separator: ", ") + ", " + clientIP
        }
        fields[.forwardedProto] = "http"
        if let clientHost { fields[.forwardedHost] = clientHost } else { fields[.forwardedHost] = nil }
        fields[.requestID] = requestID
        fields[.gatewayService] = "api-gateway"
        return fields
    }

    /// Headers for the client from an upstream response.
    static func downstreamHeaders(_ upstreamFields: HTTPFields, requestID: String) -> HTTPFields {
        var fields = upstreamFields
        stripHopByHop(&fields)
        fields[.requestID] = requestID
        return fields
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
