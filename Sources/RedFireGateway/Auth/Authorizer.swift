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
    let authenticator: Authenticator
    let publicPaths: Set<String>

    init(auth: AuthService, publicPaths: [String]) {
        self.authenticator = Authenticator(auth: auth, throttle: auth.credentialThrottle, realm: Authenticator.gatewayRealm)
        self.publicPaths = Set(publicPaths)
    }

    /// For a long-lived stream opened by `identity`: asked again while it runs, true once its token is
    /// revoked.
    func revocationCheck(_ identity: Identity) -> (@Sendable () -> Bool)? {
        guard let auth = authenticator.auth else { return nil }
        return { auth.isRevoked(identity) }
    }

    enum Decision {
        /// Forward; the identity is nil on a public path.
        case allow(Identity?)
        case deny(GatewayResponse, GatewayError)
    }

    static func deny(_ refusal: Authenticator.Refusal, requestID: String) -> Decision {
        .deny(GatewayResponse.error(refusal.error, requestID: requestID, headers: refusal.headers), refusal.error)
    }

    /// - Parameter client: the resolved client address; invalid credentials are counted against it, and
    ///   an address past `auth.max_credential_failures` is refused (429) before any verification.
    nonisolated(nonsending) func authorize(_ head: HTTPRequest, path: String, route: RouteEntry, requestID: String, client: String? = nil) async -> Decision {
        if publicPaths.contains(path) { return .allow(nil) }
        let identity: Identity
        switch await authenticator.authenticate(head.headerFields, client: client) {
        case .success(.identity(let found)): identity = found
        case .success(.adminToken): return Self.deny(Authenticator.Refusal(error: .unauthorized, headers: [:]), requestID: requestID)
        case .failure(let refusal): return Self.deny(refusal, requestID: requestID)
        }
        let isRead = RoutePermissions.isRead(head.method.rawValue)
        guard let needed = isRead ? route.config.permissions?.read : route.config.permissions?.write else {
            let group = isRead ? "read" : "write"
            return Self.deny(Authenticator.Refusal(error: .forbidden.with(message: "This route grants no \(group) permission (\(head.method.rawValue) is refused to everyone)."),
                                                   headers: [:]), requestID: requestID)
        }
        guard identity.holds(needed) else { return Self.deny(authenticator.lacks(needed), requestID: requestID) }
        return .allow(identity)
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
