import Foundation
import HTTPTypes
import Hummingbird
import JWTKit
import NIOCore
import Synchronization

/// The claims of an access token. Verification is done by `AuthService.verifyAccessToken`, which pins
/// the algorithm and key before the signature is checked and applies the leeway to `exp`/`nbf`.
struct AccessClaims: JWTPayload, Equatable {
    var sub: SubjectClaim
    var name: String
    var roles: [String]
    var permissions: [String]
    var iat: IssuedAtClaim
    var nbf: NotBeforeClaim
    var exp: ExpirationClaim
    var iss: IssuerClaim
    var aud: AudienceClaim
    var jti: IDClaim
    var typ: String
    /// The refresh family (session) the token was issued in; logout revokes it.
    var sid: String

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Who made a request, once its access token verified.
public struct Identity: Sendable, Equatable {
    public var userID: String
    public var username: String
    public var roles: [String]
    public var permissions: [String]
    var tokenID: String
    var session: String
    var expiresAt: Date
}

/// Users, logins and tokens: registration, login, refresh rotation, logout, and access-token
/// verification (RFC 7519 / RFC 8725: algorithm and key pinned to the configuration, `typ`, `iss`,
/// `aud`, `exp`, `nbf` checked, revoked `jti`s refused).
public final class AuthService: Sendable {
    public let store: UserStore
    let config: AuthConfig
    let keys: JWTKeyCollection
    /// Revoked access tokens (`jti` → expiry), kept until the token would have expired anyway.
    private let revoked = Mutex<[String: Date]>([:])
    let throttle: LoginThrottle

    public init(config: AuthConfig, dataDirectory: String?) async throws {
        guard let secret = config.jwtSecret else { throw AuthSetupError.noSecret }
        self.config = config
        self.store = try UserStore(path: config.databasePath(dataDirectory: dataDirectory), bcryptCost: config.bcryptCost)
        self.keys = JWTKeyCollection()
        self.throttle = LoginThrottle(maxFailures: config.maxLoginFailures, baseLockout: config.lockout, maxLockout: config.maxLockout)
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256, kid: JWKIdentifier(string: config.keyID))
    }

    public enum AuthSetupError: Error {
        case noSecret
    }

    public struct TokenPair: Codable, Sendable {
        public var accessToken: String
        public var refreshToken: String
        public var tokenType = "Bearer"
        public var expiresIn: Int
    }

    // MARK: Tokens

    func issue(for user: User, session: String, refreshToken: String) async throws -> TokenPair {
        let now = Date()
        let claims = AccessClaims(
            sub: .init(value: String(user.id)), name: user.username, roles: user.roles, permissions: config.permissions(of: user.roles),
            iat: .init(value: now), nbf: .init(value: now), exp: .init(value: now.addingTimeInterval(Double(config.accessTokenTTL.components.seconds))),
            iss: .init(value: config.issuer), aud: .init(value: [config.audience]), jti: .init(value: UUID().uuidString), typ: "access", sid: session)
        let token = try await keys.sign(claims, kid: JWKIdentifier(string: config.keyID))
        return TokenPair(accessToken: token, refreshToken: refreshToken, expiresIn: Int(config.accessTokenTTL.components.seconds))
    }

    /// The identity in a valid access token; nil for anything else (malformed, wrong algorithm or key,
    /// bad signature, expired, not yet valid, wrong issuer or audience, not an access token, revoked).
    public func verifyAccessToken(_ token: String) async -> Identity? {
        guard Self.headerIsPinned(token, keyID: config.keyID) else { return nil }
        guard let claims = try? await keys.verify(token, as: AccessClaims.self) else { return nil }
        let now = Date()
        let leeway = Double(config.leeway.components.seconds)
        guard claims.typ == "access",
              claims.exp.value.addingTimeInterval(leeway) > now,
              claims.nbf.value.addingTimeInterval(-leeway) <= now,
              claims.iss.value == config.issuer,
              claims.aud.value.contains(config.audience) else { return nil }
        let isRevoked = revoked.withLock { $0[claims.jti.value] != nil }
        guard !isRevoked else { return nil }
        return Identity(userID: claims.sub.value, username: claims.name, roles: claims.roles, permissions: claims.permissions,
                        tokenID: claims.jti.value, session: claims.sid, expiresAt: claims.exp.value)
    }

    /// The header must name exactly the configured algorithm (HS256) and key: `alg: none`, another
    /// algorithm (HS/RS confusion) or an unknown `kid` never reach signature verification.
    static func headerIsPinned(_ token: String, keyID: String) -> Bool {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let header = base64URLDecode(parts[0]),
              let object = try? JSONSerialization.jsonObject(with: header) as? [String: Any] else { return false }
        return object["alg"] as? String == "HS256" && object["kid"] as? String == keyID
    }

    static func base64URLDecode(_ text: Substring) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64.append("=") }
        return Data(base64Encoded: base64)
    }

    private func revoke(_ identity: Identity) {
        let now = Date()
        revoked.withLock { revoked in
            revoked[identity.tokenID] = identity.expiresAt.addingTimeInterval(Double(config.leeway.components.seconds))
            revoked = revoked.filter { $0.value > now }
        }
    }

    // MARK: Operations

    public func register(username: String, password: String, email: String?) async throws -> User {
        try await store.addUser(username: username, password: password, email: email, roles: config.defaultRoles)
    }

    public enum LoginOutcome: Sendable {
        case success(TokenPair)
        /// Wrong username, wrong password or disabled user — one answer for all three.
        case refused
        /// Too many recent failures for this username or address: try again after this many seconds.
        case throttled(retryAfter: Int)
    }

    /// A new session's tokens, unless the credentials are wrong (the same answer, after the same bcrypt
    /// work, for a wrong username, a wrong password and a disabled user) or too many attempts failed.
    public func login(username: String, password: String, clientAddress: String? = nil) async throws -> LoginOutcome {
        let keys = [LoginThrottle.userKey(username)] + (clientAddress.map { [LoginThrottle.addressKey($0)] } ?? [])
        if let wait = throttle.retryAfter(keys) { return .throttled(retryAfter: max(1, Int(wait.rounded(.up)))) }
        guard let user = try await store.authenticate(username: username, password: password) else {
            throttle.recordFailure(user: username, address: clientAddress)
            return .refused
        }
        throttle.recordSuccess(user: username)
        let (refresh, family) = try await store.issueRefreshToken(userID: user.id, ttl: config.refreshTokenTTL)
        return .success(try await issue(for: user, session: family, refreshToken: refresh))
    }

    public func refresh(_ token: String) async throws -> TokenPair? {
        switch try await store.rotateRefreshToken(token, ttl: config.refreshTokenTTL) {
        case .rotated(let userID, let family, let next):
            guard let user = try await store.user(id: userID) else { return nil }
            return try await issue(for: user, session: family, refreshToken: next)
        case .reused, .invalid:
            return nil
        }
    }

    /// Ends the caller's session: its refresh family and the access token presented.
    public func logout(_ identity: Identity) async throws {
        try await store.revokeFamily(identity.session)
        revoke(identity)
    }
}
