import HTTPTypes
import NIOHTTP1

/// What the gateway changes in headers on the way through, and nothing more.
enum HeaderPolicy {
    /// Hop-by-hop fields (RFC 9110 §7.6.1) that never cross the gateway, in either direction —
    /// `Connection`, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade` —
    /// plus `Proxy-Authorization`/`Proxy-Authenticate`, which are meant for the gateway itself.
    /// Decided by length first, so most fields are settled without a string comparison (this runs for
    /// every field in both directions).
    static func isHopByHop(_ name: HTTPField.Name) -> Bool {
        isHopByHop(bytes: name.canonicalName.utf8)
    }

    /// The names a `Connection` field lists: hop-by-hop for this message (RFC 9110 §7.6.1).
    static func connectionListed(_ fields: HTTPFields) -> [HTTPField.Name] {
        var listed: [HTTPField.Name] = []
        for field in fields where field.name == .connection { appendConnectionTokens(field.value, to: &listed) }
        return listed
    }

    /// The field names one `Connection` value lists.
    static func appendConnectionTokens(_ value: String, to listed: inout [HTTPField.Name]) {
        forEachListToken(value) { token in
            if let name = HTTPField.Name(String(token)) { listed.append(name) }
        }
    }

    /// The fields a message's `Connection` lists that would otherwise cross the gateway (RFC 9110
    /// §7.6.1): its options less the hop-by-hop names dropped anyway. `close` is kept as a flag — a
    /// field named `Close` (a reserved name, §16.3.2.2) goes with it — so the usual values,
    /// `keep-alive` and `close`, allocate nothing (this runs for every message in both directions).
    struct ConnectionListed {
        var close = false
        var names: [HTTPField.Name] = []

        var isEmpty: Bool { !close && names.isEmpty }

        func contains(_ name: HTTPField.Name) -> Bool {
            (close && name.canonicalName == "close") || names.contains(name)
        }

        /// Notes what one `Connection` value lists. The usual values, `keep-alive` and `close`, are told
        /// apart whole (this runs for most messages in both directions).
        mutating func add(connectionValue value: String) {
            if ASCII.equalsIgnoringCase(value, "keep-alive") { return }
            if ASCII.equalsIgnoringCase(value, "close") {
                close = true
                return
            }
            forEachListToken(value) { token in
                if ASCII.equalsIgnoringCase(bytes: token.utf8, "close") {
                    close = true
                } else if !isHopByHop(token: token), let name = HTTPField.Name(String(token)) {
                    names.append(name)
                }
            }
        }
    }

    static func connectionListedBeyondHopByHop(_ fields: HTTPFields) -> ConnectionListed {
        var listed = ConnectionListed()
        guard fields.contains(.connection) else { return listed }
        for index in fields.indices where fields[index].name == .connection { listed.add(connectionValue: fields[index].value) }
        return listed
    }

    /// Each non-empty element of a comma-separated list value (`Connection`, `Transfer-Encoding`: RFC 9110
    /// §5.6.1), trimmed, without splitting it into a new array.
    static func forEachListToken(_ value: String, _ body: (Substring) -> Void) {
        var rest = Substring(value)
        while !rest.isEmpty {
            let comma = rest.utf8.firstIndex(of: UInt8(ascii: ",")) ?? rest.endIndex
            let token = rest[..<comma].trimmingASCIISpaces()
            rest = comma == rest.endIndex ? "" : rest[rest.utf8.index(after: comma)...]
            if !token.isEmpty { body(token) }
        }
    }

    /// `isHopByHop` for a name not (yet) made an `HTTPField.Name` (a `Connection` token), compared
    /// without case.
    static func isHopByHop(token: Substring) -> Bool {
        isHopByHop(bytes: token.utf8)
    }

    /// A name's bytes read where they are (a `Substring` made of a name holds its storage once more).
    private static func isHopByHop(bytes: some Collection<UInt8>) -> Bool {
        switch bytes.count {
        case 2: return ASCII.equalsIgnoringCase(bytes: bytes, "te")
        case 7: return ASCII.equalsIgnoringCase(bytes: bytes, "trailer") || ASCII.equalsIgnoringCase(bytes: bytes, "upgrade")
        case 10: return ASCII.equalsIgnoringCase(bytes: bytes, "connection") || ASCII.equalsIgnoringCase(bytes: bytes, "keep-alive")
        case 16: return ASCII.equalsIgnoringCase(bytes: bytes, "proxy-connection")
        case 17: return ASCII.equalsIgnoringCase(bytes: bytes, "transfer-encoding")
        case 18: return ASCII.equalsIgnoringCase(bytes: bytes, "proxy-authenticate")
        case 19: return ASCII.equalsIgnoringCase(bytes: bytes, "proxy-authorization")
        default: return false
        }
    }

    /// Headers for the upstream request: the client's, without hop-by-hop fields and without any
    /// client-supplied `X-User-*`/`X-Gateway-*` field (nor `Authorization`/`X-API-Key` unless the
    /// identity keeps credentials), plus the forwarding fields and the verified identity.
    /// `X-Forwarded-For` appends the TCP peer to any value the client sent.
    ///
    /// Client-supplied claims about the client, the original request or the user (`X-Real-IP`,
    /// `Forwarded`, `X-Forwarded-User`, `X-Original-URL`, `X-HTTP-Method-Override`, … — `filter`) never
    /// pass: the gateway states the client's address itself. `X-Forwarded-For` keeps what the client
    /// sent only when the peer is a trusted proxy (`peerTrusted`); from anyone else it is replaced by the
    /// peer's address, and `X-Real-IP` carries the resolved client (`clientAddress`).
    ///
    /// `X-Forwarded-Proto` is `https` only when the client really used TLS (`clientTLS`) — or, on a plain
    /// connection from a trusted proxy, what that proxy said (`http` or `https`); otherwise `http`.
    ///
    /// Decided here, applied as the fields are written (`UpstreamFields`): no second field list is built.
    static func upstreamFields(_ clientFields: HTTPFields, clientIP: String?, clientHost: String?, requestID: String,
                               identity: consuming UpstreamIdentity = .transparent, filter: ClientHeaderFilter = .standard,
                               peerTrusted: Bool = false, clientAddress: String? = nil, clientTLS: Bool = false,
                               traceFields: TraceFieldPolicy = .pass) -> UpstreamFields {
        var forwardedFor: String?
        var proxiedProto: String?
        // What a trusted proxy said about the client; from anyone else it is not read at all.
        if peerTrusted {
            for field in clientFields {
                if field.name == .forwardedFor {
                    forwardedFor = forwardedFor.map { $0 + ", " + field.value } ?? field.value
                } else if !clientTLS, field.name == .forwardedProto, field.value == "https" || field.value == "http" {
                    proxiedProto = field.value
                }
            }
        }
        if let clientIP { forwardedFor = forwardedFor.map { $0 + ", " + clientIP } ?? clientIP }
        return UpstreamFields(client: clientFields, forwarding: .init(
            listed: connectionListedBeyondHopByHop(clientFields), identity: identity, filter: filter, traceFields: traceFields,
            forwardedFor: forwardedFor, realIP: clientAddress ?? clientIP, forwardedProto: clientTLS ? "https" : proxiedProto ?? "http",
            forwardedHost: clientHost, requestID: requestID))
    }

    /// Whether a client's field crosses to the instance (`upstreamFields`).
    static func forwardsToInstance(_ name: HTTPField.Name, dropCredentials: Bool, filter: ClientHeaderFilter, listed: ConnectionListed,
                                   traceFields: TraceFieldPolicy) -> Bool {
        // Set by the gateway (`UpstreamFields`); `Expect` is answered by the gateway itself (it sends the
        // client's `100 Continue` when it starts reading the body).
        if name == .forwardedFor || name == .forwardedProto || name == .forwardedHost || name == .requestID || name == .expect { return false }
        if isHopByHop(name) || isReserved(name) || (dropCredentials && (name == .authorization || name == .apiKey)) { return false }
        if filter.removes(name) { return false }
        if !listed.isEmpty, listed.contains(name) { return false }
        if case .replace(let keepState) = traceFields,
           name == RequestTracing.traceparent || (!keepState && name == RequestTracing.tracestate) { return false }
        return true
    }

    /// `X-Request-ID` for a response. Its HPACK indexing is decided here, where the field is made
    /// (`HTTP2StreamGuard.setIndexing`): changing it on the way out would copy the response's fields.
    static func requestIDField(_ requestID: String) -> HTTPField {
        var field = HTTPField(name: .requestID, value: requestID)
        field.indexingStrategy = .avoid
        return field
    }

    /// What becomes of the client's W3C trace fields: passed on (tracing off), or replaced by the
    /// gateway's `traceparent` — the client's `tracestate` kept only when its trace is continued.
    enum TraceFieldPolicy {
        case pass
        case replace(keepState: Bool)
    }

    /// `Access-Control-*` (the canonical name is lower-case).
    static func isCORS(_ name: HTTPField.Name) -> Bool {
        let utf8 = name.canonicalName.utf8
        guard utf8.count > 15, utf8.first == UInt8(ascii: "a") else { return false }
        return name.canonicalName.hasPrefix("access-control-")
    }

    private static let reservedPrefixes: [[UInt8]] = [Array("x-user-".utf8), Array("x-gateway-".utf8)]

    /// `X-User-*` or `X-Gateway-*` — names a client could use to impersonate the gateway's identity
    /// headers — compared without case and with `_` and `.` read as `-` (servers and frameworks map
    /// them to one another: CGI turns both into `_`).
    static func isReserved(_ name: HTTPField.Name) -> Bool {
        let utf8 = name.canonicalName.utf8
        for prefix in reservedPrefixes where utf8.count >= prefix.count {
            var matches = true
            var index = utf8.startIndex
            for expected in prefix {
                var byte = utf8[index]
                if byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".") { byte = UInt8(ascii: "-") }
                if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { byte += 32 }
                if byte != expected { matches = false; break }
                index = utf8.index(after: index)
            }
            if matches { return true }
        }
        return false
    }

    /// Headers for the client from an upstream response: the instance's, without hop-by-hop fields,
    /// `Server` (no product or version of what runs behind the gateway is advertised), its
    /// `X-Request-ID` and — unless the route leaves CORS to the service — its `Access-Control-*` fields
    /// (the gateway owns CORS: a service reflecting any origin must not open the API to it), plus the
    /// request's ID and `extra` (rate-limit fields), which replace any field of the same name. Built in
    /// one pass over the fields the parser produced, with room for the `Date` the connection adds when
    /// missing.
    ///
    /// When the instance's connection already left out what never reaches a client while reading the head
    /// (`sifted`), and nothing else is to go, the instance's list is kept and only added to.
    static func downstreamHeaders(_ upstream: consuming HTTPFields, sifted: SiftedResponseHead? = nil, requestID: String, extra: HTTPFields = [:],
                                  keepCORS: Bool = false) -> HTTPFields {
        if let sifted, sifted.listed.isEmpty, keepCORS || !sifted.cors, !sifted.setCookie,
           extra.isEmpty || !extra.contains(where: { upstream.contains($0.name) }) {
            var fields = consume upstream
            fields.append(requestIDField(requestID))
            fields.append(contentsOf: extra)
            return fields
        }
        let listed = sifted?.listed ?? connectionListedBeyondHopByHop(upstream)
        var fields = HTTPFields()
        fields.reserveCapacity(upstream.count + extra.count + 2)
        for field in upstream {
            let name = field.name
            if neverToClient(name) { continue }
            if !keepCORS, isCORS(name) { continue }
            if !listed.isEmpty, listed.contains(name) { continue }
            if !extra.isEmpty, extra.contains(name) { continue }
            if name == .setCookie, field.indexingStrategy != .disallow {
                var cookie = field
                cookie.indexingStrategy = .disallow
                fields.append(cookie)
            } else {
                fields.append(field)
            }
        }
        fields.append(requestIDField(requestID))
        fields.append(contentsOf: extra)
        return fields
    }

    /// Fields of an instance's response that never reach a client: hop-by-hop ones, `Server` and the
    /// instance's own `X-Request-ID` (`downstreamHeaders`).
    static func neverToClient(_ name: HTTPField.Name) -> Bool {
        isHopByHop(name) || name == .server || name == .requestID
    }

    /// An instance's response head as its connection read it, without the fields that never reach a
    /// client (`neverToClient`) and with what `downstreamHeaders` would otherwise look for noted: what its
    /// `Connection` listed, and whether it has `Access-Control-*` or `Set-Cookie` fields.
    struct SiftedResponseHead: Sendable {
        var listed = ConnectionListed()
        var cors = false
        var setCookie = false

        /// Notes a field of the head; false when it never reaches a client (it is left out).
        mutating func keep(_ name: HTTPField.Name, value: String) -> Bool {
            if name == .connection { listed.add(connectionValue: value) }
            if neverToClient(name) { return false }
            if isCORS(name) { cors = true }
            if name == .setCookie { setCookie = true }
            return true
        }
    }
}
