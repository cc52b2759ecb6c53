import Foundation

/// `auth` — where users live and what their roles allow.
public struct AuthConfig: Sendable, Equatable {
    /// `auth.database` — the SQLite file of users and roles. Default `auth.sqlite` in the data directory.
    public var database: String?
    /// `auth.bcrypt_cost` — bcrypt work factor for password hashes, 4–31. Default 12.
    public var bcryptCost = 12
    /// `auth.roles` — role name → permissions (`area:action`, e.g. `trading:read`). A user's
    /// permissions are the union of their roles'.
    public var roles: [String: [String]] = [:]
    /// `auth.jwt_secret` (or the contents of `auth.jwt_secret_file`) — the HS256 signing secret of
    /// access tokens, at least 32 bytes. Without one the auth endpoints are off.
    public var jwtSecret: String?
    /// `auth.key_id` — the `kid` of the signing key. Default `k1`.
    public var keyID = "k1"
    /// `auth.signing_key` — an RS256, ES256, EdDSA (or HS256) key instead of `jwt_secret`.
    public var signingKey: JWTKeyConfig?
    /// `auth.verification_keys` — more keys whose tokens are accepted (previous keys during a rotation).
    public var verificationKeys: [JWTKeyConfig] = []
    /// `auth.external_issuers` — identity providers whose tokens are accepted, verified by their JWKS.
    public var externalIssuers: [ExternalIssuerConfig] = []
    /// `auth.issuer` / `auth.audience` — `iss` and `aud` of access tokens, checked on every token.
    public var issuer = "redfire-gateway"
    public var audience = "redfire-api"
    /// `auth.access_token_ttl` — default 15 minutes.
    public var accessTokenTTL: Duration = .seconds(900)
    /// `auth.refresh_token_ttl` — default 30 days.
    public var refreshTokenTTL: Duration = .seconds(30 * 86_400)
    /// `auth.leeway` — clock skew tolerated on `exp` and `nbf`. Default 30 s.
    public var leeway: Duration = .seconds(30)
    /// `auth.max_token_lifetime` — an access token (the gateway's or an external issuer's) whose `exp`
    /// is further away than this is refused: a token valid for years is a leaked or forged one waiting
    /// to be used. Default 24 hours (at least `access_token_ttl`).
    public var maxTokenLifetime: Duration = .seconds(86_400)
    /// `auth.registration` — whether `POST /api/v1/auth/register` is open. Default true.
    public var registration = true
    /// `auth.default_roles` — roles a self-registered user gets. Default none.
    public var defaultRoles: [String] = []
    /// `auth.max_login_failures` — failed logins for one username before lockouts start (four times as
    /// many for one client address). Default 5.
    public var maxLoginFailures = 5
    /// `auth.max_credential_failures` — requests from one client address presenting an invalid bearer
    /// token or API key before that address is locked out (429 `too_many_attempts`, lockouts as for
    /// logins). Default 20.
    public var maxCredentialFailures = 20
    /// `auth.lockout` / `auth.max_lockout` — the first lockout, doubled with each further failure up to
    /// the maximum. Defaults 1 s and 15 min.
    public var lockout: Duration = .seconds(1)
    public var maxLockout: Duration = .seconds(900)
    /// `auth.public_paths` — exact paths of routes that need no credentials, compared with the
    /// normalized request path. The gateway's own login, register, refresh, probes and API description
    /// are public whatever this says; listing them documents it.
    public var publicPaths: [String] = AuthConfig.defaultPublicPaths
    /// `auth.gateway_token_key_file` — PEM file of the P-256 key that signs `X-Gateway-Token`. Default
    /// `gateway-token-key.pem` in the data directory, created on first start.
    public var gatewayTokenKeyFile: String?
    /// `auth.gateway_token_ttl` — lifetime of an `X-Gateway-Token`. Default 60 s.
    public var gatewayTokenTTL: Duration = .seconds(60)

    public static let defaultPublicPaths = [
        "/api/v1/auth/login", "/api/v1/auth/register", "/api/v1/auth/refresh", "/health", "/ready", "/gateway/docs", "/gateway/openapi.json",
        "/gateway/jwks.json",
    ]

    public init() {}

    /// The key file path for a configuration whose data directory is `dataDirectory`; nil keeps the key
    /// in memory only (no data directory).
    public func gatewayTokenKeyPath(dataDirectory: String?) -> String? {
        gatewayTokenKeyFile ?? dataDirectory.map { ($0 as NSString).appendingPathComponent("gateway-token-key.pem") }
    }

    /// Whether the gateway authenticates (a signing secret or key is configured).
    public var isEnabled: Bool { jwtSecret != nil || signingKey != nil }

    /// The signing key: `signing_key`, else `jwt_secret` as HS256 under `key_id`.
    public var effectiveSigningKey: JWTKeyConfig? {
        signingKey ?? jwtSecret.map { JWTKeyConfig(keyID: keyID, algorithm: .hs256, material: $0) }
    }

    /// The permissions granted by `roles` (unknown roles grant nothing).
    public func permissions(of roles: [String]) -> [String] {
        Set(roles.flatMap { self.roles[$0] ?? [] }).sorted()
    }

    /// The database path for a configuration whose data directory is `dataDirectory`.
    public func databasePath(dataDirectory: String?) -> String {
        database ?? ((dataDirectory ?? "data") as NSString).appendingPathComponent("auth.sqlite")
    }
}

/// `auth.external_issuers[i]` — an identity provider whose tokens the gateway accepts, verified with
/// the keys its JWKS URL publishes.
public struct ExternalIssuerConfig: Sendable, Equatable {
    /// `issuer` — the tokens' `iss`, exactly.
    public var issuer: String
    /// `jwks_url` — where the provider publishes its public keys.
    public var jwksURL: String
    /// `audience` — required in `aud`. Default `auth.audience`.
    public var audience: String?
    /// `roles_claim` — the claim holding the caller's roles (an array or a space-separated string),
    /// mapped to permissions by `auth.roles`. Default `roles`.
    public var rolesClaim = "roles"
    /// `refresh_interval` — how often the keys are fetched in the background. Default 10 minutes.
    public var refreshInterval: Duration = .seconds(600)
    /// `min_refetch_interval` — a token with an unknown `kid` triggers a fetch at most this often. Default 30 s.
    public var minRefetchInterval: Duration = .seconds(30)
    /// `allow_http_loopback` — accept an `http://` `jwks_url` on a loopback address (a provider on the
    /// same host). Default false: keys come over `https://` only.
    public var allowHTTPLoopback = false

    /// Whether `jwks_url` may be fetched: `https://`, or `http://` on a loopback host when allowed.
    public var jwksURLIsAcceptable: Bool {
        if jwksURL.lowercased().hasPrefix("https://") { return true }
        guard allowHTTPLoopback, jwksURL.lowercased().hasPrefix("http://") else { return false }
        let rest = jwksURL.dropFirst("http://".count)
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }.lowercased()
        let host = authority.hasPrefix("[") ? String(authority.prefix { $0 != "]" }) + "]" : String(authority.prefix { $0 != ":" })
        return host == "localhost" || host == "[::1]" || (host.hasPrefix("127.") && CIDR.bytes(host) != nil)
    }

    public init(issuer: String, jwksURL: String) {
        self.issuer = issuer
        self.jwksURL = jwksURL
    }
}
