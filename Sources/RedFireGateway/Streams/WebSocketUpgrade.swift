import Crypto
import Foundation
import HTTPTypes

/// The rules of a WebSocket opening handshake (RFC 6455 §4) as the gateway checks them: before any
/// policy runs (a malformed upgrade never reaches an instance) and on the instance's 101.
enum WebSocketUpgrade {
    static let key = HTTPField.Name("Sec-WebSocket-Key")!
    static let version = HTTPField.Name("Sec-WebSocket-Version")!
    static let accept = HTTPField.Name("Sec-WebSocket-Accept")!
    static let subprotocol = HTTPField.Name("Sec-WebSocket-Protocol")!
    static let origin = HTTPField.Name("Origin")!

    /// The request asks to switch to WebSocket: `Upgrade` lists `websocket` and `Connection` lists
    /// `upgrade` (RFC 9110 §7.8: without the connection option the field is not meant for this hop, and
    /// the request is an ordinary one).
    static func isRequested(_ fields: HTTPFields) -> Bool {
        fields[values: .upgradeField].contains { value in
            value.split(separator: ",").contains { ASCII.equalsIgnoringCase(String($0.trimmingASCIISpaces()), "websocket") }
        } && HeaderPolicy.connectionListed(fields).contains { $0.canonicalName == "upgrade" }
    }

    /// What RFC 6455 §4.2.1 requires of the request: `GET`, a key of 16 bytes in
    /// base64, version 13 (else 426 with the version the gateway speaks).
    static func refusal(_ head: HTTPRequest) -> (GatewayError, HTTPFields)? {
        guard head.method == .get else { return (.invalidUpgrade.with(message: "A WebSocket upgrade must be a GET request."), [:]) }
        let keys = head.headerFields[values: key]
        guard keys.count == 1, let decoded = Data(base64Encoded: keys[0]), decoded.count == 16 else {
            return (.invalidUpgrade.with(message: "Sec-WebSocket-Key must be one base64 value of 16 bytes."), [:])
        }
        guard head.headerFields[values: version] == ["13"] else {
            return (.unsupportedWebSocketVersion, [version: "13"])
        }
        return nil
    }

    /// The `Sec-WebSocket-Accept` an instance must answer `key` with (RFC 6455 §4.2.2).
    static func expectedAccept(for key: String) -> String {
        Data(Insecure.SHA1.hash(data: Data((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))).base64EncodedString()
    }

    /// Whether a browser page from `origin` may open the stream: no `Origin` (not a browser), one of
    /// `allowed` (exact, or one `*` standing for a subdomain label as in `cors.allowed_origins`), or the
    /// request's own host name (`authority`, any port) — cross-site WebSocket hijacking is refused.
    static func originAllowed(_ origin: String?, authority: String?, allowed: [String]) -> Bool {
        guard let origin else { return true }
        let lowered = origin.lowercased()
        for candidate in allowed {
            let pattern = candidate.lowercased()
            if let star = pattern.firstIndex(of: "*") {
                let prefix = pattern[..<star], suffix = pattern[pattern.index(after: star)...]
                guard lowered.hasPrefix(prefix), lowered.hasSuffix(suffix), lowered.count > prefix.count + suffix.count else { continue }
                let label = lowered.dropFirst(prefix.count).dropLast(suffix.count)
                if !label.contains("."), !label.contains("/"), !label.contains(":") { return true }
            } else if pattern == lowered {
                return true
            }
        }
        guard let authority, let schemeEnd = lowered.range(of: "://") else { return false }
        return hostName(lowered[schemeEnd.upperBound...]) == hostName(Substring(authority.lowercased()))
    }

    /// `host` of `host[:port]` (brackets kept for IPv6).
    private static func hostName(_ authority: Substring) -> Substring {
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") { return authority[...close] }
        return authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? authority
    }

    /// Browsers cannot set `Authorization` on a WebSocket; they may offer the access token as a
    /// subprotocol `bearer.TOKEN` (next to the real subprotocols). It becomes the request's bearer token
    /// — never in a URL, so never in a log — and leaves the list the instance sees.
    static func liftBearer(_ head: HTTPRequest) -> HTTPRequest? {
        guard head.headerFields[.authorization] == nil else { return nil }
        var token: String?
        var remaining: [String] = []
        for value in head.headerFields[values: subprotocol] {
            for item in value.split(separator: ",") {
                let entry = item.trimmingASCIISpaces()
                if token == nil, entry.utf8.count > 7, ASCII.equalsIgnoringCase(String(entry.prefix(7)), "bearer.") {
                    token = String(entry.dropFirst(7))
                } else if !entry.isEmpty {
                    remaining.append(String(entry))
                }
            }
        }
        guard let token else { return nil }
        var lifted = head
        lifted.headerFields[subprotocol] = remaining.isEmpty ? nil : remaining.joined(separator: ", ")
        lifted.headerFields[.authorization] = "Bearer " + token
        return lifted
    }
}
