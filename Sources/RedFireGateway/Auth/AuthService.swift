import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// The claims of an access token (RFC 7519 names; dates are NumericDate seconds). Verification is done
/// by `AuthService.verifyAccessToken`, which checks the signature with the configured key first.
struct AccessClaims: Codable, Equatable {
    var sub: String
    var name: String
    var roles: [String]
    var permissions: [String]
    var iat: NumericDate
    var nbf: NumericDate
    var exp: NumericDate
    var iss: String
    var aud: Audience
    var jti: String
    var typ: String
    /// The refresh family (session) the token was issued in; logout revokes it.
    var sid: String
}

/// A JWT NumericDate: seconds since the epoch, integral or not on input, integral on output.
struct NumericDate: Codable, Equatable, Comparable {
    var seconds: Double

    init(_ date: Date) { seconds = date.timeIntervalSince1970.rounded(.down) }
    init(seconds: Double) { self.seconds = seconds }

    init(from decoder: any Decoder) throws {
        seconds = try decoder.singleValueContainer().decode(Double.self)
        guard seconds.isFinite else { throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a number")) }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Int64(seconds))
    }

    var date: Date { Date(timeIntervalSince1970: seconds) }
    static func < (lhs: Self, rhs: Self) -> Bool { lhs.seconds < rhs.seconds }
}

/// `aud`: one string or an array of strings (RFC 7519 §4.1.3).
struct Audience: Codable, Equatable {
    var values: [String]

    init(_ values: [String]) { self.values = values }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let one = try? container.decode(String.self) { values = [one] } else { values = try container.decode([String].self) }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if values.count == 1 { try container.encode(values[0]) } else { try container.encode(values) }
    }
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
    /// Signs access tokens; `verificationKeys` (by `kid`) check them, the signing key's own among them.
    let signingKey: SigningKey
    let signingKeyID: String
    let verificationKeys: [String: VerificationKey]
    /// Tokens that verified, by their exact text (only valid tokens get in; bounded).
    private let verified = ShardedCache<String, Identity>()
    /// Revoked access tokens (`jti` → expiry), kept until the token would have expired anyway.
    private let revoked = Mutex<[String: Date]>([:])
    let throttle: LoginThrottle
    /// Usable API keys, in memory; reloaded by running it as a service.
    let apiKeys: APIKeyCache

    /// Identity providers whose tokens are accepted too (run each as a service to keep its keys fresh).
    let externalIssuers: [ExternalIssuer]

    public init(config: AuthConfig, dataDirectory: String?, logger: Logger = Logger(label: "redfire.auth")) async throws {
        guard let signing = config.effectiveSigningKey else { throw AuthSetupError.noSecret }
        self.config = config
        self.store = try UserStore(path: config.databasePath(dataDirectory: dataDirectory), bcryptCost: config.bcryptCost)
        self.signingKey = try signing.signingKey()
        self.signingKeyID = signing.keyID
        var keys = [signing.keyID: signingKey.verificationKey]
        for extra in config.verificationKeys where keys[extra.keyID] == nil { keys[extra.keyID] = try extra.verificationKey() }
        self.verificationKeys = keys
        self.throttle = LoginThrottle(maxFailures: config.maxLoginFailures, baseLockout: config.lockout, maxLockout: config.maxLockout)
        self.apiKeys = APIKeyCache(store: store, config: config)
        self.externalIssuers = config.externalIssuers.map { ExternalIssuer(config: $0, logger: logger) }
        try await apiKeys.reload()
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
            sub: String(user.id), name: user.username, roles: user.roles, permissions: config.permissions(of: user.roles),
            iat: NumericDate(now), nbf: NumericDate(now), exp: NumericDate(now.addingTimeInterval(Double(config.accessTokenTTL.components.seconds))),
            iss: config.issuer, aud: Audience([config.audience]), jti: UUID().uuidString, typ: "access", sid: session)
        let token = try JWS.sign(payload: claims, key: signingKey, keyID: signingKeyID)
        return TokenPair(accessToken: token, refreshToken: refreshToken, expiresIn: Int(config.accessTokenTTL.components.seconds))
    }

    private static let claimsDecoder = JSONDecoder()

    /// The identity in a valid access token; nil for anything else (oversized, malformed, unknown `kid`,
    /// another algorithm than the key's, bad signature, expired, not yet valid, wrong issuer or audience,
    /// not an access token, revoked). Synchronous: no actor hop on the request path.
    public func verifyAccessToken(_ token: String) -> Identity? {
        // A token verified before is not parsed again: only its expiry and revocation can have changed.
        let leeway = Double(config.leeway.components.seconds)
        if let cached = verified[token] {
            guard cached.expiresAt.timeIntervalSince1970 + leeway > Date().timeIntervalSince1970,
                  !revoked.withLock({ $0[cached.tokenID] != nil }) else { return nil }
            return cached
        }
        guard let payload = try? JWS.verify(token, keys: verificationKeys),
              let claims = try? Self.claimsDecoder.decode(AccessClaims.self, from: Data(payload)) else { return nil }
        let now = Date().timeIntervalSince1970
        guard claims.typ == "access",
              claims.exp.seconds + leeway > now,
              claims.nbf.seconds - leeway <= now,
              claims.iss == config.issuer,
              claims.aud.values.contains(config.audience) else { return nil }
        let isRevoked = revoked.withLock { $0[claims.jti] != nil }
        guard !isRevoked else { return nil }
        let identity = Identity(userID: claims.sub, username: claims.name, roles: claims.roles, permissions: claims.permissions,
                                tokenID: claims.jti, session: claims.sid, expiresAt: claims.exp.date)
        if token.utf8.count <= JWS.maxTokenBytes { verified.set(identity, for: token) }
        return identity
    }

    public enum TokenCheck: Sendable {
        case valid(Identity)
        case invalid
        /// The token is from an external issuer whose keys cannot be had: 503, not 401.
        case unavailable
    }

    /// Checks a bearer token: the gateway's own keys first (synchronous, no suspension), then the
    /// external issuer named by the token's `iss`, fetching its keys when the `kid` is new to it.
    func checkAccessToken(_ token: String) async -> TokenCheck {
        if let identity = verifyAccessToken(token) { return .valid(identity) }
        guard !externalIssuers.isEmpty, token.utf8.count <= JWS.maxTokenBytes,
              let kid = JWS.unverifiedKeyID(token), verificationKeys[kid] == nil,
              let issuerName = Self.unverifiedIssuer(token),
              let issuer = externalIssuers.first(where: { $0.config.issuer == issuerName }) else { return .invalid }
        if issuer.keys?[kid] == nil { await issuer.refetchIfAllowed() }
        guard let keys = issuer.keys else { return .unavailable }
        let decoder = JSONDecoder()
        decoder.userInfo[ExternalClaims.rolesClaimKey] = issuer.config.rolesClaim
        guard let payload = try? JWS.verify(token, keys: keys),
              let claims = try? decoder.decode(ExternalClaims.self, from: Data(payload)) else { return .invalid }
        let now = Date().timeIntervalSince1970
        let leeway = Double(config.leeway.components.seconds)
        guard claims.exp.seconds + leeway > now,
              (claims.nbf?.seconds ?? 0) - leeway <= now,
              claims.iss == issuer.config.issuer,
              claims.aud.values.contains(issuer.config.audience ?? config.audience) else { return .invalid }
        let tokenID = claims.jti ?? "ext:\(claims.sub):\(Int(claims.exp.seconds))"
        if revoked.withLock({ $0[tokenID] != nil }) { return .invalid }
        return .valid(Identity(userID: claims.sub, username: claims.preferredUsername ?? claims.name ?? claims.sub, roles: claims.roles,
                               permissions: config.permissions(of: claims.roles), tokenID: tokenID, session: "", expiresAt: claims.exp.date))
    }

    private struct IssuerOnly: Decodable {
        var iss: String
    }

    /// The `iss` of a token's payload, unverified: only used to choose which key set verifies it.
    static func unverifiedIssuer(_ token: String) -> String? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let bytes = Base64URL.decode(parts[1].utf8) else { return nil }
        return (try? JSONDecoder().decode(IssuerOnly.self, from: Data(bytes)))?.iss
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
