import HTTPTypes
import Hummingbird

/// Who is calling and whether the route lets them, decided before anything is forwarded.
///
/// Order: a path in `auth.public_paths` (compared with the normalized path) passes without
/// credentials; otherwise the caller must present a valid access token (401 otherwise, with a
/// `WWW-Authenticate: Bearer` challenge), and the route must grant the method's group a permission the
/// caller holds (403 naming it otherwise). A route that declares no permission for the group is refused
/// to everyone: deny by default.
struct Authorizer: Sendable {
    let auth: AuthService
    let publicPaths: Set<String>

    init(auth: AuthService, publicPaths: [String]) {
        self.auth = auth
        self.publicPaths = Set(publicPaths)
    }

    enum Decision {
        /// Forward; the identity is nil on a public path.
        case allow(Identity?)
        case deny(Response, GatewayError)
    }

    static func deny(_ code: GatewayError, requestID: String, headers: HTTPFields = [:]) -> Decision {
        .deny(ErrorEnvelope.response(code, requestID: requestID, headers: headers), code)
    }

    static let realm = #"Bearer realm="redfire-gateway""#
    static let invalidTokenChallenge = #"Bearer realm="redfire-gateway", error="invalid_token""#

    /// - Parameter client: the resolved client address; invalid credentials are counted against it, and
    ///   an address past `auth.max_credential_failures` is refused (429) before any verification.
    func authorize(_ head: HTTPRequest, path: String, route: RouteEntry, requestID: String, client: String? = nil) async -> Decision {
        if publicPaths.contains(path) { return .allow(nil) }
        let throttleKey = client.map { [LoginThrottle.addressKey($0)] }
        if let throttleKey, let wait = auth.credentialThrottle.retryAfter(throttleKey) {
            return Self.deny(.tooManyAttempts.with(message: "Too many requests with invalid credentials. Retry after the time in Retry-After."),
                             requestID: requestID, headers: [.retryAfter: String(max(1, Int(wait.rounded(.up))))])
        }
        let identity: Identity
        if let key = head.headerFields[.apiKey] {
            // An API key takes precedence over a bearer token.
            guard let found = auth.apiKeys.identity(for: key) else {
                if let client { auth.credentialThrottle.recordFailure(address: client) }
                return Self.deny(.invalidAPIKey, requestID: requestID)
            }
            identity = found
        } else {
            guard let token = Self.bearerToken(head.headerFields) else {
                // RFC 6750 §3.1: no error code when the request carried no credentials.
                return Self.deny(.unauthorized, requestID: requestID, headers: [.wwwAuthenticate: Self.realm])
            }
            switch await auth.checkAccessToken(token) {
            case .valid(let verified):
                identity = verified
            case .invalid:
                if let client { auth.credentialThrottle.recordFailure(address: client) }
                return Self.deny(.invalidToken, requestID: requestID, headers: [.wwwAuthenticate: Self.invalidTokenChallenge])
            case .unavailable:
                return Self.deny(.authUnavailable, requestID: requestID, headers: [.retryAfter: "5"])
            }
        }
        let isRead = RoutePermissions.isRead(head.method.rawValue)
        guard let needed = isRead ? route.config.permissions?.read : route.config.permissions?.write else {
            let group = isRead ? "read" : "write"
            return Self.deny(.forbidden.with(message: "This route grants no \(group) permission (\(head.method.rawValue) is refused to everyone)."),
                                                requestID: requestID)
        }
        guard identity.holds(needed) else {
            return Self.deny(.forbidden.with(message: "This needs the \(needed) permission."), requestID: requestID,
                                                headers: [.wwwAuthenticate: #"Bearer realm="redfire-gateway", error="insufficient_scope", scope="\#(needed)""#])
        }
        return .allow(identity)
    }

    /// The token of an `Authorization: Bearer TOKEN` field (scheme without case, RFC 9110 §11.1).
    static func bearerToken(_ fields: HTTPFields) -> String? {
        guard let header = fields[.authorization] else { return nil }
        let utf8 = header.utf8
        guard utf8.count > 7, ASCII.equalsIgnoringCase(bytes: utf8.prefix(7), "bearer ") else { return nil }
        let token = header.dropFirst(7).trimmingASCIISpaces()
        return token.isEmpty ? nil : String(token)
    }
}

extension Identity {
    /// Whether the identity's permissions include `permission`, directly or as `AREA:*`.
    func holds(_ permission: String) -> Bool {
        if permissions.contains(permission) { return true }
        guard let colon = permission.firstIndex(of: ":") else { return false }
        return permissions.contains(permission[..<colon] + ":*")
    }
}
