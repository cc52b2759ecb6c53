import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// Users, logins and tokens: registration, login, refresh rotation, logout, and access-token
/// verification (RFC 7519 / RFC 8725: algorithm and key pinned to the configuration, `typ`, `iss`,
/// `aud`, `exp`, `nbf` checked, revoked `jti`s refused).
package final class AuthService: Sendable {
    /// The embedded SQLite file, or the cluster's PostgreSQL store.
    package let store: any CredentialStore
    let config: AuthConfig
    /// Signs access tokens; `verificationKeys` (by `kid`) check them, the signing key's own among them.
    let signingKey: SigningKey
    let signingKeyID: String
    let verificationKeys: [String: VerificationKey]
    /// Tokens that verified, by their exact text (only valid tokens get in; bounded).
    private let verified = ShardedCache<String, Identity>()
    /// Revoked access tokens, sessions and user cutoffs, kept until what they cover would have expired.
    private let revoked = Mutex(Revocations())
    /// The newest user cutoff read from the store (`syncRevocations`).
    private let cutoffsReadUntil = Mutex<Date?>(nil)
    let throttle: LoginThrottle
    /// Invalid bearer tokens and API keys, per client address (`auth.max_credential_failures`).
    let credentialThrottle: LoginThrottle
    /// Usable API keys, in memory; reloaded by running it as a service.
    let apiKeys: APIKeyCache

    /// Identity providers whose tokens are accepted too (run each as a service to keep its keys fresh).
    let externalIssuers: [ExternalIssuer]

    /// - Parameters:
    ///   - store: where users, refresh families and keys live; nil: the SQLite file named by the
    ///     configuration (`auth.database`).
    ///   - loadAtStart: read the API keys and user cutoffs now; false when something else asks for them
    ///     once the store is reachable (the cluster listener).
    package init(config: AuthConfig, dataDirectory: String?, store: (any CredentialStore)? = nil, loadAtStart: Bool = true,
                 logger: Logger = Logger(label: "redfire.auth")) async throws {
        guard let signing = config.effectiveSigningKey else { throw AuthSetupError.noSecret }
        self.config = config
        self.store = try store ?? UserStore(path: config.databasePath(dataDirectory: dataDirectory), bcryptCost: config.bcryptCost)
        self.signingKey = try signing.signingKey()
        self.signingKeyID = signing.keyID
        var keys = [signing.keyID: signingKey.verificationKey]
        for extra in config.verificationKeys where keys[extra.keyID] == nil { keys[extra.keyID] = try extra.verificationKey() }
        self.verificationKeys = keys
        self.throttle = LoginThrottle(maxFailures: config.maxLoginFailures, baseLockout: config.lockout, maxLockout: config.maxLockout)
        self.credentialThrottle = LoginThrottle(maxFailures: config.maxCredentialFailures, baseLockout: config.lockout, maxLockout: config.maxLockout)
        self.apiKeys = APIKeyCache(store: self.store, config: config)
        self.externalIssuers = config.externalIssuers.map { ExternalIssuer(config: $0, logger: logger) }
        // A store that cannot be reached at start (the cluster's) is not fatal: tokens verify without
        // it, and API keys answer 503 until their first load (`APIKeyCache.isLoaded`).
        do {
            if loadAtStart {
                try await apiKeys.reload()
                try await syncRevocations()
            }
        } catch let error as CredentialStoreUnavailable {
            logger.warning("the user store is unavailable at start; API keys are refused with 503 until it answers",
                           metadata: ["error": .string(error.reason)])
        }
        apiKeys.onReload = { [weak self] in try await self?.syncRevocations() }
    }

    package enum AuthSetupError: Error {
        case noSecret
    }

    package struct TokenPair: Codable, Sendable {
        package var accessToken: String
        package var refreshToken: String
        package var tokenType = "Bearer"
        package var expiresIn: Int
    }

    // MARK: Tokens

    func issue(for user: User, session: String, refreshToken: String) async throws -> TokenPair {
        var now = Date()
        // A token issued after a cutoff is dated after it, even where this clock is behind the one that
        // wrote the cutoff (the cluster store's).
        if let cutoff = user.tokensValidAfter, now.timeIntervalSince1970 <= cutoff.timeIntervalSince1970 + 0.001 {
            now = cutoff.addingTimeInterval(0.002)
        }
        let claims = AccessClaims(
            sub: String(user.id), name: user.username, roles: user.roles, permissions: config.permissions(of: user.roles),
            iat: NumericDate(precise: now), nbf: NumericDate(now), exp: NumericDate(now.addingTimeInterval(Double(config.accessTokenTTL.components.seconds))),
            iss: config.issuer, aud: Audience([config.audience]), jti: UUID().uuidString, typ: "access", sid: session)
        let token = try JWS.sign(payload: claims, key: signingKey, keyID: signingKeyID)
        return TokenPair(accessToken: token, refreshToken: refreshToken, expiresIn: Int(config.accessTokenTTL.components.seconds))
    }

    private static let claimsDecoder = JSONDecoder()

    /// The identity in a valid access token; nil for anything else (oversized, malformed, unknown `kid`,
    /// another algorithm than the key's, bad signature, expired, not yet valid, wrong issuer or audience,
    /// not an access token, revoked). Synchronous: no actor hop on the request path.
    package func verifyAccessToken(_ token: String) -> Identity? {
        // A token verified before is not parsed again: only its expiry and revocation can have changed.
        let leeway = Double(config.leeway.components.seconds)
        if let cached = verified[token] {
            RequestTracing.current?.set("gateway.auth.token_cache", "hit")
            guard cached.expiresAt.timeIntervalSince1970 + leeway > Date().timeIntervalSince1970,
                  !revoked.withLock({ $0.refuses(cached) }) else { return nil }
            return cached
        }
        RequestTracing.current?.set("gateway.auth.token_cache", "miss")
        guard let payload = try? JWS.verify(token, keys: verificationKeys),
              let claims = try? Self.claimsDecoder.decode(AccessClaims.self, from: Data(payload)) else { return nil }
        let now = Date().timeIntervalSince1970
        guard claims.typ == "access",
              claims.exp.seconds + leeway > now,
              claims.exp.seconds - now <= maxLifetime,
              claims.nbf.seconds - leeway <= now,
              claims.iss == config.issuer,
              claims.aud.values.contains(config.audience) else { return nil }
        let identity = Identity(userID: claims.sub, username: claims.name, roles: claims.roles, permissions: claims.permissions,
                                tokenID: claims.jti, session: claims.sid, expiresAt: claims.exp.date, issuedAt: claims.iat.date)
        guard !revoked.withLock({ $0.refuses(identity) }) else { return nil }
        if token.utf8.count <= JWS.maxTokenBytes { verified.set(identity, for: token) }
        return identity
    }

    package enum TokenCheck: Sendable {
        case valid(Identity)
        case invalid
        /// The token is from an external issuer whose keys cannot be had: 503, not 401.
        case unavailable
    }

    /// Checks a bearer token: the gateway's own keys first (synchronous, no suspension), then the
    /// external issuer named by the token's `iss`, fetching its keys when the `kid` is new to it.
    nonisolated(nonsending) func checkAccessToken(_ token: String) async -> TokenCheck {
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
              claims.exp.seconds - now <= maxLifetime,
              (claims.nbf?.seconds ?? 0) - leeway <= now,
              claims.iss == issuer.config.issuer,
              claims.aud.values.contains(issuer.config.audience ?? config.audience) else { return .invalid }
        let tokenID = claims.jti ?? "ext:\(claims.sub):\(Int(claims.exp.seconds))"
        if revoked.withLock({ $0.tokens[tokenID] != nil }) { return .invalid }
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

    /// The furthest `exp` accepted from now: `max_token_lifetime`, never below the gateway's own TTL.
    private var maxLifetime: Double {
        Double(max(config.maxTokenLifetime, config.accessTokenTTL).components.seconds + config.leeway.components.seconds)
    }

    /// How long a revocation must be remembered: until every access token it covers has expired.
    private var coverage: TimeInterval { Double(config.accessTokenTTL.components.seconds + config.leeway.components.seconds) }

    private func revoke(_ identity: Identity) {
        let now = Date()
        revoked.withLock { revoked in
            revoked.tokens[identity.tokenID] = identity.expiresAt.addingTimeInterval(Double(config.leeway.components.seconds))
            revoked.forgetExpired(now: now)
        }
    }

    /// Every access token of a login session, from now on (logout, refresh-token reuse).
    package func revokeSession(_ session: String) {
        let now = Date()
        revoked.withLock { revoked in
            revoked.sessions[session] = now.addingTimeInterval(coverage)
            revoked.forgetExpired(now: now)
        }
    }

    /// Reads the user cutoffs written since the last read (`users disable`, `users passwd`, role
    /// changes — by this process or the CLI) into the revocations. Run every two seconds by
    /// `APIKeyCache`, so a change made elsewhere holds within that time.
    func syncRevocations() async throws {
        let since = cutoffsReadUntil.withLock { $0 }
        let cutoffs = try await store.accessTokenCutoffs(since: since)
        guard !cutoffs.isEmpty else { return }
        let now = Date()
        revoked.withLock { revoked in
            for (userID, cutoff) in cutoffs where cutoff.addingTimeInterval(coverage) > now {
                revoked.users[userID] = (cutoff, cutoff.addingTimeInterval(coverage))
            }
            revoked.forgetExpired(now: now)
        }
        let newest = cutoffs.map(\.cutoff).max()
        cutoffsReadUntil.withLock { $0 = max($0 ?? .distantPast, newest ?? .distantPast) }
    }

    /// Whether the token behind `identity` was revoked since it was verified (logout, refresh-token reuse,
    /// the user disabled, a new password, roles changed): what ends a stream it opened.
    package func isRevoked(_ identity: Identity) -> Bool {
        revoked.withLock { $0.refuses(identity) }
    }

    /// A user's access tokens issued up to `cutoff` end now (a cluster event from another node).
    package func applyCutoff(userID: String, at cutoff: Date) {
        let now = Date()
        guard cutoff.addingTimeInterval(coverage) > now else { return }
        revoked.withLock { revoked in
            if let known = revoked.users[userID], known.cutoff >= cutoff { return }
            revoked.users[userID] = (cutoff, cutoff.addingTimeInterval(coverage))
            revoked.forgetExpired(now: now)
        }
    }

    // MARK: Operations

    package func register(username: String, password: String, email: String?) async throws -> User {
        try await store.addUser(username: username, password: password, email: email, roles: config.defaultRoles)
    }

    package enum LoginOutcome: Sendable {
        case success(TokenPair)
        /// Wrong username, wrong password or disabled user — one answer for all three.
        case refused
        /// Too many recent failures for this username or address: try again after this many seconds.
        case throttled(retryAfter: Int)
    }

    /// A new session's tokens, unless the credentials are wrong (the same answer, after the same bcrypt
    /// work, for a wrong username, a wrong password and a disabled user) or too many attempts failed.
    package func login(username: String, password: String, clientAddress: String? = nil) async throws -> LoginOutcome {
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

    package func refresh(_ token: String) async throws -> TokenPair? {
        switch try await store.rotateRefreshToken(token, ttl: config.refreshTokenTTL) {
        case .rotated(let userID, let family, let next):
            guard let user = try await store.user(id: userID) else { return nil }
            return try await issue(for: user, session: family, refreshToken: next)
        case .reused(let family):
            // A rotated token came back: someone else holds a copy. The store revoked the family's
            // refresh tokens; its access tokens end now too.
            revokeSession(family)
            return nil
        case .invalid:
            return nil
        }
    }

    /// Ends the caller's session: its refresh family and every access token issued in it.
    package func logout(_ identity: Identity) async throws {
        try await store.revokeFamily(identity.session)
        revoke(identity)
        if !identity.session.isEmpty { revokeSession(identity.session) }
    }
}
