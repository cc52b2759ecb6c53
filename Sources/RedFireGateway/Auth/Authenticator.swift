import HTTPTypes

/// The one credential decision, for routes (`Authorizer`) and the admin API (`AdminResponder`): which
/// credential a request presents, whether it is valid, and what a refusal says. A fix here reaches both.
///
/// Order: a client past `auth.max_credential_failures` is refused (429) before any verification; an
/// `X-API-Key` takes precedence over a bearer token; without a bearer token the answer is 401 with a
/// bare challenge (RFC 6750 §3.1: no error code when no credentials came); `admin.token` (where the
/// caller accepts it) is compared in constant time; any other bearer token must verify as an access
/// token. Every invalid credential counts against the client.
struct Authenticator: Sendable {
    let auth: AuthService?
    /// Invalid credentials per resolved client.
    let throttle: LoginThrottle?
    /// The protection space named in `WWW-Authenticate` (RFC 9110 §11.5).
    let realm: String

    enum Credential {
        case identity(Identity)
        /// The operator's break-glass `admin.token`.
        case adminToken
    }

    /// Why a request is refused: the error and the fields its answer carries (challenge, Retry-After).
    struct Refusal: Error {
        let error: GatewayError
        let headers: HTTPFields
    }

    /// - Parameters:
    ///   - client: the resolved client address (failures count against it); nil counts nothing.
    ///   - adminToken: `admin.token`, where it is accepted (the admin API); nil elsewhere.
    nonisolated(nonsending) func authenticate(_ fields: HTTPFields, client: String?, adminToken: String? = nil) async -> Result<Credential, Refusal> {
        if let throttle, let client, let wait = throttle.retryAfter([LoginThrottle.addressKey(client)]) {
            return .failure(Refusal(error: .tooManyAttempts.with(message: "Too many requests with invalid credentials. Retry after the time in Retry-After."),
                                    headers: [.retryAfter: String(max(1, Int(wait.rounded(.up))))]))
        }
        func invalid(_ error: GatewayError, _ headers: HTTPFields = [:]) -> Result<Credential, Refusal> {
            if let throttle, let client { throttle.recordFailure(address: client) }
            return .failure(Refusal(error: error, headers: headers))
        }
        if let auth, let key = fields[.apiKey] {
            guard let identity = auth.apiKeys.identity(for: key) else {
                guard auth.apiKeys.isLoaded else { return .failure(Refusal(error: .authUnavailable, headers: [.retryAfter: "5"])) }
                return invalid(.invalidAPIKey)
            }
            return .success(.identity(identity))
        }
        guard let token = Self.bearerToken(fields) else {
            return .failure(Refusal(error: .unauthorized, headers: [.wwwAuthenticate: Self.challenge(realm)]))
        }
        if let adminToken, ConstantTime.equals(token, adminToken) { return .success(.adminToken) }
        guard let auth else { return invalid(.unauthorized, [.wwwAuthenticate: Self.challenge(realm)]) }
        switch await auth.checkAccessToken(token) {
        case .valid(let identity):
            return .success(.identity(identity))
        case .invalid:
            return invalid(.invalidToken, [.wwwAuthenticate: Self.challenge(realm, error: "invalid_token")])
        case .unavailable:
            return .failure(Refusal(error: .authUnavailable, headers: [.retryAfter: "5"]))
        }
    }

    /// The answer to a caller whose valid credentials lack `permission` (RFC 6750 §3.1 `insufficient_scope`).
    func lacks(_ permission: String) -> Refusal {
        Refusal(error: .forbidden.with(message: "This needs the \(permission) permission."),
                headers: [.wwwAuthenticate: Self.challenge(realm, error: "insufficient_scope", scope: permission)])
    }

    /// The gateway's own protection space (routes, `/api/v1/auth/*`, `/metrics`); the admin API has its own.
    static let gatewayRealm = "redfire-gateway"

    /// A `WWW-Authenticate: Bearer` challenge (RFC 6750 §3), the one way every refusal writes it.
    static func challenge(_ realm: String, error: String? = nil, scope: String? = nil) -> String {
        var challenge = "Bearer realm=\"\(realm)\""
        if let error { challenge += ", error=\"\(error)\"" }
        if let scope { challenge += ", scope=\"\(scope)\"" }
        return challenge
    }

    /// The token of an `Authorization: Bearer TOKEN` field (scheme without case, RFC 9110 §11.1).
    static func bearerToken(_ fields: HTTPFields) -> String? {
        // A singleton field (RFC 9110 §11.6.2): its one value is read as it is; several are read joined,
        // as `HTTPFields` gives them (and then fail as a token).
        var value: String?
        for field in fields where field.name == .authorization {
            guard value == nil else {
                value = fields[.authorization]
                break
            }
            value = field.value
        }
        guard let header = value else { return nil }
        let utf8 = header.utf8
        guard utf8.count > 7, ASCII.equalsIgnoringCase(bytes: utf8.prefix(7), "bearer ") else { return nil }
        let token = Substring(utf8.dropFirst(7)).trimmingASCIISpaces()
        return token.isEmpty ? nil : String(token)
    }
}
