import HTTPTypes
import Hummingbird
import NIOCore

/// The gateway's request path: request ID, the gateway's own probes, route match, method check, then
/// forwarding. Reads the current `GatewayState` once per request.
struct GatewayResponder: Sendable {
    typealias Context = GatewayRequestContext

    let registry: ServiceRegistry
    let control: GatewayControl
    let forwarder: Forwarder
    let admin: AdminResponder
    /// `/api/v1/auth/*` when authentication is configured.
    let auth: AuthEndpoints?
    /// Route permissions when authentication is configured; without it every route is forwarded as is.
    let authorizer: Authorizer?
    /// Mints `X-Gateway-Token` (with authentication).
    let gatewayTokens: GatewayTokenIssuer?
    /// `/gateway/jwks.json`: the public keys services verify gateway tokens (and access tokens) with.
    let jwksBody: ByteBuffer
    let rateLimiter: RateLimiter
    let accessLog: AccessLog?
    /// Open connections and accept failures, for `/metrics`.
    var listener: ListenerTelemetry?
    /// Spans per request and per attempt, when `tracing` is on.
    var tracing: RequestTracing?

    static let okBody = ByteBuffer(string: #"{"status":"ok"}"#)
    static let openAPIBody = ByteBuffer(string: OpenAPIDocument.json)
    static let docsBody = ByteBuffer(string: APIReferencePage.html)
    static let readyBody = ByteBuffer(string: #"{"status":"ready"}"#)

    nonisolated(nonsending) func respond(to request: GatewayRequest, context: Context) async throws -> GatewayResponse {
        let head = request.head
        let requestID: String
        if let supplied = head.headerFields[.requestID], GatewayRequestID.isWellFormed(supplied) {
            requestID = supplied
        } else {
            requestID = GatewayRequestID.generate()
        }
        guard let tracing else { return try await respond(to: request, context: context, requestID: requestID) }
        // Traced: the request's trace is current while it is answered (attempts join it). Unsampled (most
        // requests, at 1 %), it is ids only; nothing is evaluated for attributes that are not kept.
        let trace = tracing.begin(SpanName(head.method.rawValue), fields: head.headerFields,
                                  peerTrusted: ClientAddress.isTrusted(context.clientIP, trusted: registry.state.config.trustedProxies))
        trace.set("http.request.method", head.method.rawValue)
        trace.set("gateway.request_id", requestID)
        let response: GatewayResponse
        do {
            response = try await RequestTracing.$current.withValue(trace) {
                try await respond(to: request, context: context, requestID: requestID)
            }
        } catch {
            tracing.end(trace, status: nil, error: error)
            throw error
        }
        // A stream's span (a WebSocket's, an event stream's) goes on with it and ends when it closes.
        tracing.end(trace, status: response.status.code)
        return response
    }

    nonisolated(nonsending) private func respond(to request: GatewayRequest, context: Context, requestID: String) async throws -> GatewayResponse {
        let head = request.head
        // CORS, when configured: preflights are answered here, before routing and authentication, and
        // every other answer — the gateway's own errors included — gets `Vary: Origin` and, for an
        // allowed origin, the allow/expose fields.
        // The state is loaded once: one request sees one configuration from start to end.
        let state = registry.state
        guard let policy = state.cors else { return try await respond(to: request, context: context, requestID: requestID, state: state) }
        // A route with `cors: service` leaves CORS to its service: no preflight answer, no fields added.
        // Looked up on the path as sent: a path that only matches once normalized stays the gateway's.
        if state.hasServiceCORS, let route = state.route(for: Self.pathWithoutQuery(head.path)), route.config.corsByService {
            return try await respond(to: request, context: context, requestID: requestID, state: state)
        }
        if let preflight = policy.preflight(head, requestID: requestID) { return preflight }
        var response = try await respond(to: request, context: context, requestID: requestID, state: state)
        policy.decorate(&response.headers, origin: head.headerFields[CORSPolicy.origin])
        return response
    }

    /// The bytes of the fields' names and values (read by index: iterating would copy every field out).
    static func fieldBytes(_ fields: HTTPFields) -> Int {
        var bytes = 0
        for index in fields.indices { bytes += fields[index].name.rawName.utf8.count + fields[index].value.utf8.count }
        return bytes
    }

    static func pathWithoutQuery(_ target: String?) -> Substring {
        guard let target else { return "/" }
        return target.firstIndex(of: "?").map { target[..<$0] } ?? Substring(target)
    }

    nonisolated(nonsending) private func respond(to request: GatewayRequest, context: Context, requestID: String, state: GatewayState) async throws -> GatewayResponse {
        let start = TelemetryClock.now
        var head = request.head
        /// A WebSocket upgrade's request with its bearer token lifted from the subprotocols.
        var lifted: GatewayRequest?
        // The one client address every per-client decision uses — login throttle, rate limits,
        // consistent hashing on the client, the access log: the TCP peer, or `X-Forwarded-For` as
        // vouched for by `trusted_proxies` (the peer itself when none are configured).
        let client = ClientAddress.resolve(peer: context.clientIP, fields: head.headerFields, trusted: state.config.trustedProxies)
        // Read once: each read of a request's pseudo field goes through its shared storage.
        let rawPath = head.path
        let method = head.method
        // Size limits first: nothing oversized is parsed further, let alone forwarded.
        let limits = state.config.limits
        if (rawPath?.utf8.count ?? 0) > limits.maxURILength {
            return logged(GatewayResponse.error(.uriTooLong, requestID: requestID, headers: [.connection: "close"]), error: .uriTooLong,
                          path: String(Substring((rawPath ?? "").utf8.prefix(256))), head: head, requestID: requestID, client: client, start: start, context: context)
        }
        if head.headerFields.count > limits.maxHeaderCount || Self.fieldBytes(head.headerFields) > limits.maxHeaderBytes {
            return logged(GatewayResponse.error(.headersTooLarge, requestID: requestID, headers: [.connection: "close"]), error: .headersTooLarge,
                          path: rawPath ?? "", head: head, requestID: requestID, client: client, start: start, context: context)
        }
        // A plain listener with `redirect_https` sends every request to the same place over HTTPS.
        if let port = context.transport.redirectHTTPSPort {
            return logged(Self.redirectToHTTPS(head, port: port, requestID: requestID), path: String(Substring(Self.pathWithoutQuery(rawPath).utf8.prefix(256))),
                          head: head, requestID: requestID, client: client, start: start, context: context)
        }
        // `OPTIONS *` (RFC 9110 §9.3.7) asks about the gateway itself: what it accepts at all.
        if rawPath == "*" {
            return logged(GatewayResponse(status: .noContent, headers: [.allow: RouteEntry.standardAllowHeader, .requestID: requestID], buffer: ByteBuffer()),
                          path: "*", head: head, requestID: requestID, client: client, start: start, context: context)
        }
        // One normalized path for everything below: the gateway's own endpoints, route matching,
        // authorization and what the service receives.
        let target: RequestTarget
        do {
            target = try RequestTarget.parse(rawPath ?? "/", mergeSlashes: state.config.mergeSlashes)
        } catch {
            return logged(GatewayResponse.error(.invalidPath.with(message: error.description), requestID: requestID), error: .invalidPath,
                          path: rawPath ?? "", head: head, requestID: requestID, client: client, start: start, context: context)
        }
        let path = Substring(target.path)
        if Self.mayBeOwnEndpoint(path),
           let response = await ownEndpoint(request, path: path, target: target, context: context, requestID: requestID, client: client, state: state) {
            return logged(response, path: target.path, head: head, requestID: requestID, client: client, start: start, context: context)
        }

        // The normalized path only: never the query (it may carry secrets) nor a header value.
        if tracing != nil {
            RequestTracing.current?.set("url.path", target.path.utf8.count <= 256 ? target.path : String(Substring(target.path.utf8.prefix(256))))
        }
        var recorder = RequestRecorder(start: start, unrouted: registry.telemetry.unrouted)
        recorder.method = PrometheusExposition.methodLabel(method)
        recorder.hangup = context.hangup
        if let accessLog {
            recorder.log = accessLog
            recorder.entry = AccessLogEntry(requestID: requestID, clientIP: client, method: method.rawValue,
                                            path: target.path, protocolName: context.httpVersion, tls: context.transport.tls)
        }
        guard let route = state.route(for: path) else {
            recorder.finish(status: 404, errorCode: .routeNotFound)
            return GatewayResponse.error(.routeNotFound, requestID: requestID)
        }
        recorder.route = route.metrics
        recorder.service = route.pool.metrics
        recorder.slow = RequestRecorder.SlowRequestIdentity(requestID: requestID, path: target.path)
        if tracing != nil, let trace = RequestTracing.current {
            trace.rename(SpanName(method.rawValue, route.config.prefix))
            trace.set("http.route", route.config.prefix)
            trace.set("gateway.service", route.pool.service.name)
            recorder.slow?.traceID = trace.traceID
            if recorder.entry != nil { recorder.entry?.traceID = trace.traceIDHex }
        }
        recorder.entry?.route = route.name
        recorder.entry?.service = route.pool.service.name
        let maxBody = route.config.maxBodySize ?? limits.maxBodySize
        if let declared = head.headerFields[.contentLength].flatMap({ Int($0) }), declared > maxBody {
            // Refused before a byte of the body is read; the connection closes rather than drain it.
            recorder.finish(status: 413, errorCode: .bodyTooLarge)
            return GatewayResponse.error(.bodyTooLarge, requestID: requestID, headers: [.connection: "close"])
        }
        if !route.allowedMethods.contains(method) {
            recorder.finish(status: 405, errorCode: .methodNotAllowed)
            return GatewayResponse.error(.methodNotAllowed, requestID: requestID, headers: [.allow: route.allowHeader])
        }
        // A WebSocket upgrade: only where the route relays them, well-formed (RFC 6455 §4.2.1), from an
        // allowed browser origin — checked before authentication, so nothing else is learnt from it.
        var websocket: WebSocketRouteConfig?
        if context.upgrade != nil, WebSocketUpgrade.isRequested(head.headerFields) {
            guard let config = route.config.websocket else {
                recorder.finish(status: 400, errorCode: .websocketNotAllowed)
                return GatewayResponse.error(.websocketNotAllowed, requestID: requestID)
            }
            if let (error, fields) = WebSocketUpgrade.refusal(head) {
                recorder.finish(status: error.status.code, errorCode: error)
                return GatewayResponse.error(error, requestID: requestID, headers: fields)
            }
            guard WebSocketUpgrade.originAllowed(head.headerFields[WebSocketUpgrade.origin], authority: head.authority,
                                                 allowed: config.origins ?? state.config.cors.allowedOrigins) else {
                recorder.finish(status: 403, errorCode: .originNotAllowed)
                return GatewayResponse.error(.originNotAllowed, requestID: requestID)
            }
            if let liftedHead = WebSocketUpgrade.liftBearer(head) {
                head = liftedHead
                lifted = GatewayRequest(head: liftedHead, body: request.body)
            }
            websocket = config
        }
        var identity = UpstreamIdentity.transparent
        var caller: Identity?
        // A CORS preflight on a route whose service decides CORS carries no credentials by design.
        let servicePreflight = route.config.corsByService && method == .options && head.headerFields[CORSPolicy.origin] != nil
            && head.headerFields[CORSPolicy.requestMethod] != nil
        if let authorizer, !servicePreflight {
            let trace = tracing != nil ? RequestTracing.current : nil
            let started = trace?.stageStart
            switch await authorizer.authorize(head, path: target.path, route: route, requestID: requestID, client: client) {
            case .deny(let response, let code):
                trace?.stage("gateway.authenticate", since: started, ["gateway.outcome": .string(code.code)])
                recorder.finish(status: response.status.code, errorCode: code)
                return response
            case .allow(let verified):
                trace?.stage("gateway.authenticate", since: started, ["gateway.outcome": "allowed"])
                caller = verified
                recorder.entry?.userID = verified?.userID
                identity = UpstreamIdentity(identity: verified, gatewayToken: gatewayTokens?.field(service: route.pool.service.name, identity: verified),
                                            keepCredentials: route.config.forwardAuthorization)
            }
        }
        var rateLimitFields: HTTPFields = [:]
        let rateLimits = state.config.rateLimits
        if route.rateLimit != nil || rateLimits.defaultPolicy != nil || !rateLimits.rolePolicies.isEmpty {
            let trace = tracing != nil ? RequestTracing.current : nil
            let started = trace?.stageStart
            let decision = await rateLimiter.check(key: RateLimiter.key(identity: caller, clientIP: client), roles: caller?.roles,
                                                   route: (route.name, route.rateLimit), config: rateLimits)
            if let started { trace?.stage("gateway.rate_limit", since: started, ["gateway.outcome": .string(decision?.outcome ?? "none")]) }
            switch decision {
            case .limited(var fields, let retryAfter):
                fields[.retryAfter] = String(retryAfter)
                recorder.entry?.rateLimit = "limited"
                recorder.finish(status: 429, errorCode: .rateLimited)
                return GatewayResponse.error(.rateLimited, requestID: requestID, headers: fields)
            case .allowed(let fields):
                rateLimitFields = fields
                recorder.entry?.rateLimit = "allowed"
            case .unavailable(let retryAfter):
                recorder.entry?.rateLimit = "unavailable"
                recorder.finish(status: 503, errorCode: .rateLimitUnavailable)
                return GatewayResponse.error(.rateLimitUnavailable, requestID: requestID, headers: [.retryAfter: String(retryAfter)])
            case nil:
                break
            }
        }
        if let websocket, let upgrade = context.upgrade {
            return await forwarder.forwardUpgrade(lifted ?? request, route: route, target: target, requestID: requestID, clientIP: context.clientIP,
                                                  clientAddress: client, identity: identity, tokenExpiresAt: caller?.expiresAt,
                                                  revoked: caller.flatMap { authorizer?.revocationCheck($0) },
                                                  extraHeaders: rateLimitFields, bufferLimit: limits.connectionBuffer, headerFilter: state.clientHeaders,
                                                  peerTrusted: ClientAddress.isTrusted(context.clientIP, trusted: state.config.trustedProxies),
                                                  clientTLS: context.transport.tls != nil, upgrade: upgrade, websocket: websocket,
                                                  streams: registry.streams, abandonment: context.abandonment, recorder: recorder)
        }
        return await forwarder.forward(request, route: route, target: target, requestID: requestID, clientIP: context.clientIP, clientAddress: client,
                                       identity: consume identity, extraHeaders: rateLimitFields, maxBodySize: maxBody,
                                       bufferLimit: limits.connectionBuffer, headerFilter: state.clientHeaders,
                                       peerTrusted: ClientAddress.isTrusted(context.clientIP, trusted: state.config.trustedProxies),
                                       clientTLS: context.transport.tls != nil, abandonment: context.abandonment, recorder: recorder)
    }

    /// Whether `path` can be one of the gateway's own endpoints (`ownEndpoint`), told by its bytes: a path
    /// routed to a service is turned away without comparing it to each endpoint's.
    static func mayBeOwnEndpoint(_ path: Substring) -> Bool {
        let bytes = path.utf8
        // The shortest is `/ready`; each starts `/h`, `/g`, `/m` or `/r`, or with the auth API's prefix.
        guard bytes.count >= 6 else { return false }
        switch bytes[bytes.index(after: bytes.startIndex)] {
        case UInt8(ascii: "h"), UInt8(ascii: "g"), UInt8(ascii: "m"), UInt8(ascii: "r"): return true
        default: return bytes.starts(with: AuthEndpoints.prefix.utf8)
        }
    }

    /// The gateway's own endpoints: probes, documents, metrics, the admin API and the auth API; nil for
    /// everything else (routed to a service).
    nonisolated(nonsending) private func ownEndpoint(_ request: GatewayRequest, path: Substring, target: RequestTarget, context: Context, requestID: String,
                             client: String?, state: GatewayState) async -> GatewayResponse? {
        switch path {
        case "/health":
            return Self.json(.ok, Self.okBody, requestID: requestID)
        case "/gateway/openapi.json":
            return Self.json(.ok, Self.openAPIBody, requestID: requestID)
        case "/gateway/jwks.json":
            return GatewayResponse(status: .ok, headers: [.contentType: "application/json", .requestID: requestID, .cacheControl: "public, max-age=300"],
                                   buffer: jwksBody)
        case "/gateway/docs":
            return GatewayResponse(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .requestID: requestID,
                                                   .contentSecurityPolicy: "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"],
                                   buffer: Self.docsBody)
        case "/metrics":
            // The series name every route, service and instance: public only on a loopback listener
            // unless configured, otherwise for a scraper's token or the admin token.
            if !state.config.metricsArePublic {
                let presented = Authenticator.bearerToken(request.head.headerFields) ?? ""
                let tokens = [state.config.metricsToken, state.config.adminToken].compactMap { $0 }
                guard tokens.contains(where: { ConstantTime.equals(presented, $0) }) else {
                    return GatewayResponse.error(.unauthorized, requestID: requestID, headers: [.wwwAuthenticate: Authenticator.challenge(Authenticator.gatewayRealm)])
                }
            }
            let body = PrometheusExposition.render(registry: registry, reloads: control.reloadCounts, listener: listener,
                                                   cluster: control.cluster.map { ($0, control.membership) }, tracing: tracing)
            return GatewayResponse(status: .ok, headers: [.contentType: PrometheusExposition.contentType, .requestID: requestID, .cacheControl: "no-store"],
                                   buffer: body)
        case "/ready":
            if state.isReady {
                // Ready with the last state it applied; the cluster store being away is said, not fatal.
                if let note = control.cluster?.unreachableNote {
                    var body = ByteBuffer(string: #"{"status":"ready","cluster":"#)
                    JSONString.write(note, to: &body)
                    body.writeString("}")
                    return Self.json(.ok, body, requestID: requestID)
                }
                return Self.json(.ok, Self.readyBody, requestID: requestID)
            }
            return GatewayResponse.error(.notReady, requestID: requestID, headers: [.retryAfter: "1"])
        default:
            break
        }
        // Prefixes compared as bytes: `Substring.hasPrefix` compares characters, one `String` each.
        if path.utf8.starts(with: "/gateway/".utf8) || path == "/gateway" {
            var context = context.withRouterStorage()
            context.requestID = requestID
            context.clientAddress = client
            return GatewayResponse(await admin.respond(to: request.hummingbird, context: context, target: target))
        }
        if path.utf8.starts(with: AuthEndpoints.prefix.utf8), let auth {
            var context = context.withRouterStorage()
            context.requestID = requestID
            context.clientAddress = client
            return GatewayResponse(await auth.respond(to: request.hummingbird, target: target, context: context))
        }
        return nil
    }

    /// The access-log line of an answer that did not go to a service (own endpoints, early refusals).
    private func logged(_ response: GatewayResponse, error: GatewayError? = nil, path: String, head: HTTPRequest, requestID: String, client: String?,
                        start: TelemetryClock.Instant, context: Context) -> GatewayResponse {
        guard let accessLog else { return response }
        accessLog.record(AccessLogEntry(requestID: requestID, clientIP: client, method: head.method.rawValue, path: path,
                                        protocolName: context.httpVersion, tls: context.transport.tls),
                         status: response.status.code, instance: nil, attempts: 0, upstream: .zero, total: TelemetryClock.now - start,
                         bytesIn: 0, bytesOut: response.contentLength ?? 0, errorCode: error?.code)
        return response
    }

    /// `308 Permanent Redirect` (RFC 9110 §15.4.9: the method and body are kept) to `https://HOST[:port]TARGET`.
    /// Without a `Host` to redirect to (HTTP/1.0), 400.
    static func redirectToHTTPS(_ head: HTTPRequest, port: Int, requestID: String) -> GatewayResponse {
        guard let authority = head.authority, !authority.isEmpty else {
            return GatewayResponse.error(.malformedRequest.with(message: "this listener only redirects to HTTPS, which needs a Host field"), requestID: requestID)
        }
        let location = "https://" + GatewayHTTPCodec.hostName(authority) + (port == 443 ? "" : ":\(port)") + (head.path ?? "/")
        return GatewayResponse(status: .permanentRedirect, headers: [.location: location, .requestID: requestID, .contentLength: "0", .cacheControl: "no-store"],
                               buffer: ByteBuffer())
    }

    static func json(_ status: HTTPResponse.Status, _ body: ByteBuffer, requestID: String) -> GatewayResponse {
        GatewayResponse(status: status, headers: [.contentType: "application/json", .requestID: requestID, .cacheControl: "no-store"], buffer: body)
    }
}
