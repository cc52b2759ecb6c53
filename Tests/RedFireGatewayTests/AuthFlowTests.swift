import AsyncHTTPClient
import Crypto
import DemoServices
import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import RedFireGateway

/// Register, login, refresh rotation, logout and token verification through the real gateway, with a
/// real SQLite user store.
@Suite("Authentication flow", .cleansUp, .timeLimit(.minutes(2)))
struct AuthFlowTests {
    static let secret = "test-signing-secret-0123456789abcdef"

    static func authGateway(configure: (inout AuthConfig) -> Void = { _ in },
                            gateway configureGateway: (inout GatewayConfig) -> Void = { _ in }) async throws -> (GatewayHarness, [DemoInstance]) {
        let instances = try await startInstances(.userTrading, count: 1)
        var config = GatewayConfig()
        config.services = [serviceConfig("user_trading", instances)]
        config.routes = [RouteConfig(prefix: "/api/v1/trading", service: "user_trading",
                                     permissions: RoutePermissions(read: "trading:read", write: "trading:write"))]
        config.dataDirectory = TemporaryPath.make("redfire-auth")
        config.auth.jwtSecret = secret
        config.auth.bcryptCost = 4
        config.auth.roles = ["trader": ["trading:read", "trading:write"]]
        config.auth.defaultRoles = ["trader"]
        configure(&config.auth)
        configureGateway(&config)
        return (try await GatewayHarness.start(config), instances)
    }

    func post(_ gateway: GatewayHarness, _ path: String, _ json: String, token: String? = nil) async throws -> GatewayHarness.Reply {
        try await gateway.send(.POST, path, headers: [("Content-Type", "application/json")] + (token.map { [("Authorization", "Bearer \($0)")] } ?? []),
                               body: ByteBuffer(string: json))
    }

    func tokens(_ reply: GatewayHarness.Reply) throws -> (access: String, refresh: String) {
        let object = try reply.json()
        return (try #require(object["access_token"] as? String), try #require(object["refresh_token"] as? String))
    }

    func me(_ gateway: GatewayHarness, _ token: String) async throws -> GatewayHarness.Reply {
        try await gateway.send("/api/v1/auth/me", headers: [("Authorization", "Bearer \(token)")])
    }

    @Test func registerLoginRefreshLogout() async throws {
        let (gateway, instances) = try await Self.authGateway()
        var reply = try await post(gateway, "/api/v1/auth/register", #"{"username":"alice","password":"correct-horse-battery","email":"alice@example.com"}"#)
        #expect(reply.status == 201, "\(reply.body)")
        #expect(try reply.json()["username"] as? String == "alice")
        #expect(try reply.json()["roles"] as? [String] == ["trader"])
        #expect(!reply.body.contains("password") && !reply.body.contains("$2"), "never the hash: \(reply.body)")

        reply = try await post(gateway, "/api/v1/auth/login", #"{"username":"alice","password":"correct-horse-battery"}"#)
        #expect(reply.status == 200)
        #expect(try reply.json()["token_type"] as? String == "Bearer")
        #expect(try reply.json()["expires_in"] as? Int == 900)
        #expect(reply.headers.first(name: "Cache-Control") == "no-store")
        let first = try tokens(reply)

        reply = try await me(gateway, first.access)
        #expect(reply.status == 200)
        #expect(try reply.json()["username"] as? String == "alice")
        func orders(_ token: String) async throws -> Int {
            try await gateway.send("/api/v1/trading/orders", headers: [("Authorization", "Bearer \(token)")]).status
        }
        #expect(try await orders(first.access) == 200, "a protected route with the access token")
        #expect(try await gateway.send("/api/v1/trading/orders").status == 401, "and not without")
        #expect(try reply.json()["permissions"] as? [String] == ["trading:read", "trading:write"])

        reply = try await post(gateway, "/api/v1/auth/refresh", #"{"refresh_token":"\#(first.refresh)"}"#)
        #expect(reply.status == 200)
        let second = try tokens(reply)
        #expect(second.refresh != first.refresh)
        #expect(try await me(gateway, second.access).status == 200)
        #expect(try await orders(second.access) == 200)

        let otherSession = try tokens(try await post(gateway, "/api/v1/auth/login", #"{"username":"alice","password":"correct-horse-battery"}"#))
        #expect(try await post(gateway, "/api/v1/auth/logout", "{}", token: second.access).status == 204)
        // After logout the session's access tokens (the one presented and the earlier one) and its
        // refresh token are refused; another session of the same user goes on.
        #expect(try await orders(second.access) == 401, "the logged-out access token no longer opens the route")
        #expect(try await orders(first.access) == 401, "nor does the session's earlier access token")
        #expect(try await orders(otherSession.access) == 200, "another login session is not logged out")
        reply = try await me(gateway, second.access)
        #expect(reply.status == 401)
        #expect(reply.errorCode == "invalid_token")
        #expect(reply.headers.first(name: "WWW-Authenticate")?.contains(#"error="invalid_token""#) == true)
        #expect(try await post(gateway, "/api/v1/auth/refresh", #"{"refresh_token":"\#(second.refresh)"}"#).status == 401)
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test func reusingARotatedRefreshTokenRevokesTheFamily() async throws {
        let (gateway, instances) = try await Self.authGateway()
        _ = try await post(gateway, "/api/v1/auth/register", #"{"username":"alice","password":"correct-horse-battery"}"#)
        let first = try tokens(try await post(gateway, "/api/v1/auth/login", #"{"username":"alice","password":"correct-horse-battery"}"#))
        let second = try tokens(try await post(gateway, "/api/v1/auth/refresh", #"{"refresh_token":"\#(first.refresh)"}"#))
        // The rotated-out token comes back (stolen copy): refused, and the newest token of the family dies too.
        #expect(try await post(gateway, "/api/v1/auth/refresh", #"{"refresh_token":"\#(first.refresh)"}"#).status == 401)
        #expect(try await post(gateway, "/api/v1/auth/refresh", #"{"refresh_token":"\#(second.refresh)"}"#).status == 401)
        // …and so do the family's access tokens, at once — the old and the newest.
        #expect(try await me(gateway, first.access).status == 401)
        #expect(try await me(gateway, second.access).status == 401)

        // Two concurrent refreshes of one token: exactly one 200.
        let fresh = try tokens(try await post(gateway, "/api/v1/auth/login", #"{"username":"alice","password":"correct-horse-battery"}"#))
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<2 { group.addTask { try await post(gateway, "/api/v1/auth/refresh", #"{"refresh_token":"\#(fresh.refresh)"}"#).status } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(statuses.sorted() == [200, 401], "\(statuses)")
        await gateway.shutdown()
        await stopAll(instances)
    }

    /// Changes made to a user by the operator — in this process or with `redfire-gateway users` in
    /// another one (here: a second store on the same file, as the CLI opens it) — end the user's live
    /// access tokens within the two seconds in which the gateway reads them: disabling, a new password,
    /// a role granted or taken away. A token issued afterwards works; other users are untouched.
    @Test(arguments: ["disable", "password", "grant", "revoke"])
    func operatorChangesEndTheUsersAccessTokens(_ change: String) async throws {
        let (gateway, instances) = try await Self.authGateway()
        _ = try await post(gateway, "/api/v1/auth/register", #"{"username":"alice","password":"correct-horse-battery"}"#)
        _ = try await post(gateway, "/api/v1/auth/register", #"{"username":"carol","password":"correct-horse-battery"}"#)
        let alice = try tokens(try await post(gateway, "/api/v1/auth/login", #"{"username":"alice","password":"correct-horse-battery"}"#))
        let carol = try tokens(try await post(gateway, "/api/v1/auth/login", #"{"username":"carol","password":"correct-horse-battery"}"#))
        #expect(try await me(gateway, alice.access).status == 200)

        let config = gateway.registry.state.config
        let cli = try UserStore(path: config.auth.databasePath(dataDirectory: config.dataDirectory), bcryptCost: 4)
        switch change {
        case "disable": try await cli.setDisabled("alice", true)
        case "password": try await cli.setPassword("alice", "another-horse-battery")
        case "grant": try await cli.grant("alice", role: "auditor")
        default: try await cli.revoke("alice", role: "trader")
        }
        let changed = ContinuousClock.now
        try await waitUntil(timeout: .seconds(5), "alice's access token refused after \(change)") { try await me(gateway, alice.access).status == 401 }
        #expect(ContinuousClock.now - changed < .seconds(4), "within the documented two seconds (plus a loaded machine's margin)")
        #expect(try await me(gateway, carol.access).status == 200, "another user is untouched")

        let password = change == "password" ? "another-horse-battery" : "correct-horse-battery"
        let login = try await post(gateway, "/api/v1/auth/login", #"{"username":"alice","password":"\#(password)"}"#)
        if change == "disable" {
            #expect(login.status == 401)
        } else {
            #expect(try await me(gateway, try tokens(login).access).status == 200, "a token issued after the change works at once")
            let refreshed = try await post(gateway, "/api/v1/auth/refresh", #"{"refresh_token":"\#(alice.refresh)"}"#)
            #expect(refreshed.status == (change == "password" ? 401 : 200), "a new password ends the sessions; a role change only their access tokens")
        }
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test func wrongUsernameAndWrongPasswordLookTheSame() async throws {
        let (gateway, instances) = try await Self.authGateway()
        _ = try await post(gateway, "/api/v1/auth/register", #"{"username":"alice","password":"correct-horse-battery"}"#)
        let wrongPassword = try await post(gateway, "/api/v1/auth/login", #"{"username":"alice","password":"not-the-password"}"#)
        let wrongUser = try await post(gateway, "/api/v1/auth/login", #"{"username":"mallory","password":"correct-horse-battery"}"#)
        #expect(wrongPassword.status == 401 && wrongUser.status == 401)
        #expect(wrongPassword.errorCode == "invalid_credentials" && wrongUser.errorCode == "invalid_credentials")
        func withoutRequestID(_ body: String) throws -> String {
            var object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as! [String: [String: Any]]
            object["error"]?["request_id"] = nil
            return String(decoding: try JSONSerialization.data(withJSONObject: object, options: .sortedKeys), as: UTF8.self)
        }
        #expect(try withoutRequestID(wrongPassword.body) == withoutRequestID(wrongUser.body))
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test func registrationRefusesTakenNamesWeakInputAndCanBeClosed() async throws {
        let (gateway, instances) = try await Self.authGateway()
        _ = try await post(gateway, "/api/v1/auth/register", #"{"username":"alice","password":"correct-horse-battery"}"#)
        var reply = try await post(gateway, "/api/v1/auth/register", #"{"username":"alice","password":"another-long-secret"}"#)
        #expect(reply.status == 409 && reply.errorCode == "username_taken")
        reply = try await post(gateway, "/api/v1/auth/register", #"{"username":"b!","password":"short"}"#)
        #expect(reply.status == 400 && reply.errorCode == "validation_failed")
        let error = try #require((try reply.json())["error"] as? [String: Any])
        #expect((try reply.json())["details"] == nil, "details sit inside the error object")
        let fields = (error["details"] as? [[String: String]])?.compactMap { $0["field"] } ?? []
        #expect(Set(fields) == ["username", "password"], "\(reply.body)")
        reply = try await post(gateway, "/api/v1/auth/register", "not json")
        #expect(reply.status == 400 && reply.errorCode == "invalid_request")
        #expect(try await gateway.send(.GET, "/api/v1/auth/login").status == 405)
        await gateway.shutdown()
        await stopAll(instances)

        let (closed, more) = try await Self.authGateway { $0.registration = false }
        reply = try await post(closed, "/api/v1/auth/register", #"{"username":"carol","password":"correct-horse-battery"}"#)
        #expect(reply.status == 403 && reply.errorCode == "registration_closed")
        await closed.shutdown()
        await stopAll(more)
    }

    @Test func forgedAndForeignTokensAreRefused() async throws {
        let (gateway, instances) = try await Self.authGateway()
        _ = try await post(gateway, "/api/v1/auth/register", #"{"username":"alice","password":"correct-horse-battery"}"#)
        let good = try tokens(try await post(gateway, "/api/v1/auth/login", #"{"username":"alice","password":"correct-horse-battery"}"#)).access
        let parts = good.split(separator: ".").map(String.init)
        func b64(_ json: String) -> String {
            Data(json.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        }
        let payload = String(decoding: Base64URL.decode(parts[1].utf8)!, as: UTF8.self)
        let now = Int(Date().timeIntervalSince1970)
        let ourKey = SigningKey.hmac(SymmetricKey(data: Array(Self.secret.utf8)))
        // Correctly signed with the gateway's own key, but without `exp`.
        struct NoExpiry: Encodable {
            var sub = "1", name = "alice", iss = "redfire-gateway", aud = "redfire-api", typ = "access", jti = "j", sid = "s"
            var roles = ["trader"], permissions = ["trading:read"]
            var iat: Int, nbf: Int
        }
        let noExpiry = try JWS.sign(payload: NoExpiry(iat: now, nbf: now), key: ourKey, keyID: "k1")
        // Signed by an attacker's key that the header points to (jwk/jku are never followed).
        let attacker = P256.Signing.PrivateKey()
        let embedded = b64(#"{"alg":"ES256","typ":"JWT","kid":"k1","jku":"http://127.0.0.1:1/jwks.json","jwk":{"kty":"EC","crv":"P-256","x":"\#(Base64URL.encode(Array(attacker.publicKey.x963Representation[1..<33])))","y":"\#(Base64URL.encode(Array(attacker.publicKey.x963Representation[33..<65])))"}}"#)
        let embeddedSignature = Base64URL.encode(Array(try attacker.signature(for: Array((embedded + "." + parts[1]).utf8)).rawRepresentation))
        let cases: [(String, String)] = [
            ("alg none", b64(#"{"alg":"none","typ":"JWT","kid":"k1"}"#) + "." + parts[1] + "."),
            ("other algorithm", b64(#"{"alg":"HS512","typ":"JWT","kid":"k1"}"#) + "." + parts[1] + "." + parts[2]),
            ("RS256 header", b64(#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#) + "." + parts[1] + "." + parts[2]),
            ("unknown kid", b64(#"{"alg":"HS256","typ":"JWT","kid":"k2"}"#) + "." + parts[1] + "." + parts[2]),
            ("tampered header", b64(#"{"alg":"HS256","typ":"JWT","kid":"k1","x":1}"#) + "." + parts[1] + "." + parts[2]),
            ("tampered payload", parts[0] + "." + b64(payload.replacingOccurrences(of: "alice", with: "admin")) + "." + parts[2]),
            ("tampered signature", parts[0] + "." + parts[1] + "." + String(parts[2].reversed())),
            ("garbage", "not-a-token"),
            ("oversized", parts[0] + "." + b64(String(repeating: "a", count: 9000)) + "." + parts[2]),
            ("no exp", noExpiry),
            ("attacker key in jwk/jku header", embedded + "." + parts[1] + "." + embeddedSignature),
            ("HS256 signed with the token's own payload as secret", parts[0] + "." + parts[1] + "."
                + Base64URL.encode(Array(HMAC<SHA256>.authenticationCode(for: Array((parts[0] + "." + parts[1]).utf8), using: SymmetricKey(data: Array("k1".utf8)))))),
            ("refresh token as access token", "x.y.z"),
        ]
        for (name, token) in cases {
            let reply = try await me(gateway, token)
            #expect(reply.status == 401, "\(name): \(reply.status)")
            #expect(reply.errorCode == "invalid_token", "\(name)")
            #expect(!reply.body.contains(token), "\(name): the token is not echoed")
        }
        #expect(try await gateway.send("/api/v1/auth/me").status == 401, "no credentials")
        await gateway.shutdown()
        await stopAll(instances)
    }
}

/// Claims checks on tokens signed with the gateway's own key (so only the claims are wrong).
@Suite("Access token claims", .cleansUp, .timeLimit(.minutes(2)))
struct AccessTokenClaimTests {
    /// An auth service over a fresh store, signing with the test secret.
    static func service(leeway: Duration = .seconds(30)) async throws -> (AuthService, AuthConfig) {
        var config = AuthConfig()
        config.jwtSecret = AuthFlowTests.secret
        config.bcryptCost = 4
        config.leeway = leeway
        let directory = TemporaryPath.make("redfire-claims")
        return (try await AuthService(config: config, dataDirectory: directory), config)
    }

    @Test func claimsAreCheckedWithLeeway() async throws {
        let (auth, config) = try await Self.service()
        let now = Date()
        func token(_ change: (inout AccessClaims) -> Void) async throws -> String {
            var claims = AccessClaims(sub: "1", name: "alice", roles: [], permissions: [], iat: NumericDate(now), nbf: NumericDate(now),
                                      exp: NumericDate(now.addingTimeInterval(600)), iss: config.issuer, aud: Audience([config.audience]),
                                      jti: UUID().uuidString, typ: "access", sid: "s")
            change(&claims)
            return try JWS.sign(payload: claims, key: auth.signingKey, keyID: config.keyID)
        }
        #expect(auth.verifyAccessToken(try await token { _ in }) != nil, "a correct token verifies")
        #expect(auth.verifyAccessToken(try await token { $0.exp = NumericDate(now.addingTimeInterval(-10)) }) != nil, "expired within leeway")
        #expect(auth.verifyAccessToken(try await token { $0.exp = NumericDate(now.addingTimeInterval(-60)) }) == nil, "expired")
        #expect(auth.verifyAccessToken(try await token { $0.nbf = NumericDate(now.addingTimeInterval(120)) }) == nil, "not yet valid")
        #expect(auth.verifyAccessToken(try await token { $0.iss = "someone-else" }) == nil, "wrong issuer")
        #expect(auth.verifyAccessToken(try await token { $0.aud = Audience(["other-api"]) }) == nil, "wrong audience")
        #expect(auth.verifyAccessToken(try await token { $0.aud = Audience(["x", config.audience]) }) != nil, "audience in a list")
        #expect(auth.verifyAccessToken(try await token { $0.typ = "refresh" }) == nil, "not an access token")
        // `max_token_lifetime` (24 h): a token valid for longer is refused however well it is signed.
        #expect(auth.verifyAccessToken(try await token { $0.exp = NumericDate(now.addingTimeInterval(23 * 3600)) }) != nil, "within the lifetime")
        #expect(auth.verifyAccessToken(try await token { $0.exp = NumericDate(now.addingTimeInterval(25 * 3600)) }) == nil, "beyond it")
        #expect(auth.verifyAccessToken(try await token { $0.exp = NumericDate(now.addingTimeInterval(10 * 365 * 86_400)) }) == nil, "ten years")
    }

    /// A JWT whose header or payload has a member twice is refused (RFC 7515 §5.2, RFC 7519 §4): JSON
    /// parsers disagree on which one wins, so a service could read another value than the gateway
    /// checked. Variants: the same name spelled with escapes, at the top level and nested, in the header.
    @Test func duplicateMembersInAJWTAreRefused() async throws {
        let (auth, config) = try await Self.service()
        let now = Int(Date().timeIntervalSince1970)
        func signed(header: String, payload: String) -> String {
            let input = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8))
            let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: Array(AuthFlowTests.secret.utf8)))
            return input + "." + Base64URL.encode(Array(mac))
        }
        let header = #"{"alg":"HS256","kid":"\#(config.keyID)","typ":"JWT"}"#
        func payload(_ extra: String = "", sub: String = #""sub":"1""#) -> String {
            #"{\#(sub),"name":"alice","roles":[],"permissions":[],"iat":\#(now),"nbf":\#(now),"exp":\#(now + 600),"iss":"\#(config.issuer)","aud":"\#(config.audience)","jti":"\#(UUID().uuidString)","typ":"access","sid":"s"\#(extra)}"#
        }
        #expect(auth.verifyAccessToken(signed(header: header, payload: payload())) != nil, "the well-formed token verifies")
        let refused = [
            ("sub twice", signed(header: header, payload: payload(#","sub":"2""#))),
            ("sub twice, once escaped", signed(header: header, payload: payload(#","sub":"2""#))),
            ("roles twice", signed(header: header, payload: payload(#","roles":["admin"]"#))),
            ("nested duplicate", signed(header: header, payload: payload(#","ext":{"a":1,"a":2}"#))),
            ("kid twice in the header", signed(header: #"{"alg":"HS256","kid":"\#(config.keyID)","kid":"other","typ":"JWT"}"#, payload: payload())),
            ("alg twice in the header", signed(header: #"{"alg":"none","alg":"HS256","kid":"\#(config.keyID)"}"#, payload: payload())),
        ]
        for (name, token) in refused { #expect(auth.verifyAccessToken(token) == nil, "\(name)") }
        #expect(auth.verifyAccessToken(signed(header: header, payload: payload(#","list":[{"a":1},{"a":2}]"#))) != nil,
                "the same name in two different objects is no duplicate")
        #expect(!JSONMembers.hasDuplicates(Array(#"{"a":"\"a\"","b":{"a":1}}"#.utf8)))
        #expect(JSONMembers.hasDuplicates(Array(#"{"a\n":1,"a\u000a":2}"#.utf8)))
    }
}

/// Verified tokens are cached by their text; the cache never outlives the token.
@Suite("Verified token cache", .cleansUp, .timeLimit(.minutes(2)))
struct VerifiedTokenCacheTests {
    @Test func aCachedTokenStillExpires() async throws {
        let (auth, config) = try await AccessTokenClaimTests.service(leeway: .zero)
        let now = Date()
        let claims = AccessClaims(sub: "1", name: "alice", roles: [], permissions: [], iat: NumericDate(now), nbf: NumericDate(now),
                                  exp: NumericDate(now.addingTimeInterval(2)), iss: config.issuer, aud: Audience([config.audience]),
                                  jti: UUID().uuidString, typ: "access", sid: "s")
        let token = try JWS.sign(payload: claims, key: auth.signingKey, keyID: config.keyID)
        #expect(auth.verifyAccessToken(token) != nil)
        #expect(auth.verifyAccessToken(token) != nil, "from the cache")
        await waitUntil(timeout: .seconds(5), "the cached token expires") { auth.verifyAccessToken(token) == nil }
    }
}

/// `/gateway/*` needs `gateway:admin`: a trader's token is refused on every admin route, an admin's
/// works and is audited under the admin's name; the docs stay public.
@Suite("Admin API permissions", .cleansUp, .timeLimit(.minutes(2)))
struct AdminPermissionTests {
    @Test func traderGets403OnEveryAdminRouteAndAdminGetsThrough() async throws {
        let (gateway, instances) = try await AuthFlowTests.authGateway { $0.roles["admin"] = ["gateway:admin"] }
        func post(_ path: String, _ json: String) async throws -> GatewayHarness.Reply {
            try await gateway.send(.POST, path, headers: [("Content-Type", "application/json")], body: ByteBuffer(string: json))
        }
        _ = try await post("/api/v1/auth/register", #"{"username":"trader1","password":"correct-horse-battery"}"#)
        _ = try await post("/api/v1/auth/register", #"{"username":"boss","password":"correct-horse-battery"}"#)
        let store = try UserStore(path: gateway.registry.state.config.auth.databasePath(dataDirectory: gateway.registry.state.config.dataDirectory), bcryptCost: 4)
        try await store.grant("boss", role: "admin")
        let trader = try #require(try await post("/api/v1/auth/login", #"{"username":"trader1","password":"correct-horse-battery"}"#).json()["access_token"] as? String)
        let admin = try #require(try await post("/api/v1/auth/login", #"{"username":"boss","password":"correct-horse-battery"}"#).json()["access_token"] as? String)

        let router = AdminAPI(control: gateway.control).router()
        var checked = 0
        for route in router.routes {
            let path = "/" + route.path.description.split(separator: "/").map { $0.hasPrefix(":") ? ($0 == ":name" ? "user_trading" : "user_trading-1") : String($0) }
                .joined(separator: "/")
            let method = HTTPMethod(rawValue: route.method.rawValue)
            let reply = try await gateway.send(method, path, headers: [("Authorization", "Bearer \(trader)")])
            #expect(reply.status == 403, "\(route.method) \(path): \(reply.status)")
            #expect(reply.errorCode == "forbidden")
            #expect(reply.body.contains("gateway:admin"), "the 403 names the missing permission")
            checked += 1
        }
        #expect(checked >= 13, "every admin route was tried")
        #expect(try await gateway.send("/gateway/services", headers: [("Authorization", "Bearer not-a-token")]).status == 401)
        #expect(try await gateway.send("/gateway/services").status == 401)

        var reply = try await gateway.send("/gateway/services", headers: [("Authorization", "Bearer \(admin)")])
        #expect(reply.status == 200)
        reply = try await gateway.send(.POST, "/gateway/services/user_trading/instances/user_trading-1/drain", headers: [("Authorization", "Bearer \(admin)")])
        #expect(reply.status == 200 || reply.status == 204, "\(reply.body)")
        #expect(gateway.control.audit.recent(1).first?.actor == "admin-api:boss")

        // Public: the API description.
        #expect(try await gateway.send("/gateway/openapi.json").status == 200)
        #expect(try await gateway.send("/gateway/docs").status == 200)
        await gateway.shutdown()
        await stopAll(instances)
    }
}

@Suite("Login throttling", .cleansUp, .timeLimit(.minutes(2)))
struct LoginThrottleTests {
    @Test func lockoutsDoubleUpToTheMaximumAndSuccessClears() {
        let throttle = LoginThrottle(maxFailures: 3, baseLockout: .seconds(1), maxLockout: .seconds(5))
        let start = Date(timeIntervalSince1970: 1_000_000)
        let user = [LoginThrottle.userKey("Alice")]
        for index in 0..<2 { throttle.recordFailure(user: "alice", address: nil, now: start.addingTimeInterval(Double(index))) }
        #expect(throttle.retryAfter(user, now: start.addingTimeInterval(2)) == nil, "below the threshold")
        throttle.recordFailure(user: "alice", address: nil, now: start.addingTimeInterval(2))
        #expect(throttle.retryAfter(user, now: start.addingTimeInterval(2)) == 1)
        throttle.recordFailure(user: "ALICE", address: nil, now: start.addingTimeInterval(3))
        #expect(throttle.retryAfter(user, now: start.addingTimeInterval(3)) == 2, "usernames compare without case; the lockout doubled")
        for index in 0..<5 { throttle.recordFailure(user: "alice", address: nil, now: start.addingTimeInterval(4 + Double(index))) }
        #expect(throttle.retryAfter(user, now: start.addingTimeInterval(8)) == 5, "capped at the maximum")
        throttle.recordSuccess(user: "alice")
        #expect(throttle.retryAfter(user, now: start.addingTimeInterval(8)) == nil)
        // One address failing across many usernames is locked at four times the threshold.
        for index in 0..<12 { throttle.recordFailure(user: "user\(index)", address: "203.0.113.9", now: start) }
        #expect(throttle.retryAfter([LoginThrottle.addressKey("203.0.113.9")], now: start) == 1)
    }

    @Test func repeatedFailuresAreSlowedDownAndSayWhenToRetry() async throws {
        let (gateway, instances) = try await AuthFlowTests.authGateway {
            $0.maxLoginFailures = 3
            $0.lockout = .seconds(1)
        }
        func login(_ user: String, _ password: String) async throws -> GatewayHarness.Reply {
            try await gateway.send(.POST, "/api/v1/auth/login", headers: [("Content-Type", "application/json")],
                                   body: ByteBuffer(string: #"{"username":"\#(user)","password":"\#(password)"}"#))
        }
        _ = try await gateway.send(.POST, "/api/v1/auth/register", headers: [("Content-Type", "application/json")],
                                   body: ByteBuffer(string: #"{"username":"alice","password":"correct-horse-battery"}"#))
        for _ in 0..<3 { #expect(try await login("alice", "wrong-password-x").status == 401) }
        // Locked: even the right password waits, and the answer says how long.
        var reply = try await login("alice", "correct-horse-battery")
        #expect(reply.status == 429)
        #expect(reply.errorCode == "too_many_attempts")
        #expect(reply.headers.first(name: "Retry-After") == "1")
        // Unknown usernames are throttled the same way, so throttling reveals nothing.
        for _ in 0..<3 { #expect(try await login("nobody", "wrong-password-x").status == 401) }
        #expect(try await login("nobody", "wrong-password-x").status == 429)
        // After the lockout the right password works again.
        let deadline = ContinuousClock.now + .seconds(10)
        repeat {
            reply = try await login("alice", "correct-horse-battery")
            if reply.status == 200 { break }
            try await Task.sleep(for: .milliseconds(100))
        } while ContinuousClock.now < deadline
        #expect(reply.status == 200)
        await gateway.shutdown()
        await stopAll(instances)
    }
}
