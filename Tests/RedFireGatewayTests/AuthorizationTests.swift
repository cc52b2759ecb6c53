import AsyncHTTPClient
import DemoServices
import Foundation
import JWTKit
import NIOCore
import NIOHTTP1
import Testing

@testable import RedFireGateway

/// Route permissions, public paths on the normalized path, and the identity a service receives —
/// through a real gateway with a real user store, in front of real demo instances.
@Suite("Authorization and identity to services", .cleansUp, .timeLimit(.minutes(2)))
struct AuthorizationTests {
    /// `/api/v1/trading` needs trading:read / trading:write; `/api/v1/monitor` declares nothing (deny by
    /// default) except its public `/api/v1/monitor/_echo`.
    static func gateway() async throws -> (GatewayHarness, [DemoInstance], trader: String, admin: String) {
        let trading = try await startInstances(.userTrading, count: 1)
        let monitor = try await startInstances(.monitor, count: 1)
        var config = GatewayConfig()
        config.services = [serviceConfig("user_trading", trading), serviceConfig("monitor", monitor)]
        config.routes = [
            RouteConfig(prefix: "/api/v1/trading", service: "user_trading", permissions: RoutePermissions(read: "trading:read", write: "trading:write")),
            RouteConfig(prefix: "/api/v1/monitor", service: "monitor"),
        ]
        config.dataDirectory = TemporaryPath.make("redfire-authz")
        config.auth.jwtSecret = AuthFlowTests.secret
        config.auth.bcryptCost = 4
        config.auth.roles = ["trader": ["trading:read"], "admin": ["gateway:admin", "trading:*"]]
        // These tests poll with keys not loaded yet and try many invalid ones on purpose: the
        // per-client lockout for invalid credentials (tested in ClientAddressTests) stays out of the way.
        config.auth.maxCredentialFailures = 100_000
        config.auth.defaultRoles = ["trader"]
        config.auth.publicPaths = AuthConfig.defaultPublicPaths + ["/api/v1/monitor/_echo"]
        let gateway = try await GatewayHarness.start(config)
        func post(_ path: String, _ json: String) async throws -> GatewayHarness.Reply {
            try await gateway.send(.POST, path, headers: [("Content-Type", "application/json")], body: ByteBuffer(string: json))
        }
        _ = try await post("/api/v1/auth/register", #"{"username":"tina","password":"correct-horse-battery"}"#)
        _ = try await post("/api/v1/auth/register", #"{"username":"root","password":"correct-horse-battery"}"#)
        let store = try UserStore(path: config.auth.databasePath(dataDirectory: config.dataDirectory), bcryptCost: 4)
        try await store.grant("root", role: "admin")
        let trader = try #require(try await post("/api/v1/auth/login", #"{"username":"tina","password":"correct-horse-battery"}"#).json()["access_token"] as? String)
        let admin = try #require(try await post("/api/v1/auth/login", #"{"username":"root","password":"correct-horse-battery"}"#).json()["access_token"] as? String)
        return (gateway, trading + monitor, trader, admin)
    }

    @Test func traderReadsButCannotWriteAndAdminCan() async throws {
        let (gateway, instances, trader, admin) = try await Self.gateway()
        let bearer = { (token: String) in [("Authorization", "Bearer \(token)")] }
        #expect(try await gateway.send("/api/v1/trading/orders", headers: bearer(trader)).status == 200)
        #expect(try await gateway.send(.HEAD, "/api/v1/trading/orders", headers: bearer(trader)).status == 200)

        var reply = try await gateway.send(.POST, "/api/v1/trading/orders", headers: bearer(trader), body: ByteBuffer(string: "{}"))
        #expect(reply.status == 403)
        #expect(reply.errorCode == "forbidden")
        #expect(reply.body.contains("trading:write"), "the 403 names the missing permission: \(reply.body)")
        #expect(reply.headers.first(name: "WWW-Authenticate")?.contains("insufficient_scope") == true)
        reply = try await gateway.send(.DELETE, "/api/v1/trading/orders/1", headers: bearer(trader))
        #expect(reply.status == 403, "every non-read method is in the write group")

        reply = try await gateway.send(.POST, "/api/v1/trading/orders", headers: bearer(admin), body: ByteBuffer(string: "{}"))
        #expect(reply.status != 401 && reply.status != 403, "trading:* holds trading:write: \(reply.status)")

        reply = try await gateway.send("/api/v1/trading/orders")
        #expect(reply.status == 401 && reply.errorCode == "unauthorized")
        #expect(reply.headers.first(name: "WWW-Authenticate") == #"Bearer realm="redfire-gateway""#)
        reply = try await gateway.send("/api/v1/trading/orders", headers: bearer("not.a.token"))
        #expect(reply.status == 401 && reply.errorCode == "invalid_token")
        #expect(reply.headers.first(name: "WWW-Authenticate")?.contains(#"error="invalid_token""#) == true)

        // `/gateway/*`: the admin gets through, the trader does not.
        #expect(try await gateway.send("/gateway/services", headers: bearer(admin)).status == 200)
        #expect(try await gateway.send("/gateway/services", headers: bearer(trader)).status == 403)
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test func routesWithoutPermissionsAreDeniedExceptPublicPaths() async throws {
        let (gateway, instances, trader, admin) = try await Self.gateway()
        for token in [trader, admin] {
            let reply = try await gateway.send("/api/v1/monitor/status", headers: [("Authorization", "Bearer \(token)")])
            #expect(reply.status == 403, "deny by default, even for an admin")
            #expect(reply.body.contains("grants no read permission"), "\(reply.body)")
        }
        let report = try await gateway.echo("/api/v1/monitor/_echo")
        #expect(report.path == "/api/v1/monitor/_echo", "a public path passes without credentials")
        #expect(report.headers["x-user-id"] == nil, "and carries no identity")
        await gateway.shutdown()
        await stopAll(instances)
    }

    /// Spellings of protected paths never pass as the public path, and never bypass a permission; the
    /// service receives exactly the normalized path.
    @Test func pathSpellingsNeverBypassAuthorization() async throws {
        let (gateway, instances, trader, _) = try await Self.gateway()
        let unauthenticated: [(String, Int)] = [
            ("/api/v1/monitor/_echo/../status", 401),           // resolves to a protected path
            ("/api/v1/monitor/_echo/", 401),                    // trailing slash: not the public path
            ("/api/v1/monitor/_echo/x", 401),                   // public paths are exact, not prefixes
            ("//api/v1/monitor//status", 401),                  // merged slashes, then protected
            ("/api/v1/monitor/_echo/%2e%2e/status", 400),       // encoded dot segment
            ("/api/v1/monitor/_echo/..%2fstatus", 400),         // encoded slash
            ("/api/v1/monitor/_echo/..%5cstatus", 400),         // encoded backslash
            ("/api/v1/monitor/_echo%00", 400),                  // encoded NUL
            ("/api/v1/monitor/_echo/..\\status", 400),          // raw backslash
            ("/api/v1/trading/..%2f..%2fgateway/services", 400),
            ("/api/v1/trading/%2e%2e/%2e%2e/gateway/services", 400),
            ("/API/V1/MONITOR/_echo", 404),                     // paths are case-sensitive: no route, nothing public
            ("/api/v1/%74rading/orders", 401),                  // %74 is "t": the trading route, protected
            ("/api/v1/trading/./orders", 401),
        ]
        for (target, expected) in unauthenticated {
            let reply = try await RawHTTP.send(port: gateway.port, target: target)
            #expect(reply.status == expected, "\(target): \(reply.status) \(reply.body)")
            #expect(reply.body.contains("\"error\""), "\(target) is answered by the gateway with the envelope")
        }
        // An authenticated trader cannot write through another spelling either.
        for target in ["/api/v1/trading/./orders", "//api/v1/trading/orders", "/api/v1/monitor/../trading/orders", "/api/v1/%74rading/orders"] {
            let reply = try await RawHTTP.send(port: gateway.port, method: "POST", target: target,
                                               headers: [("Authorization", "Bearer \(trader)"), ("Content-Length", "0")])
            #expect(reply.status == 403, "\(target): \(reply.status)")
        }
        // What the gateway checked is what the service receives.
        let reply = try await RawHTTP.send(port: gateway.port, target: "/api/v1//trading/./x/../_echo?a=%2F&b=1", headers: [("Authorization", "Bearer \(trader)")])
        #expect(reply.status == 200, "\(reply.body)")
        let report = try JSONDecoder().decode(EchoReport.self, from: Data(reply.body.utf8))
        #expect(report.path == "/api/v1/trading/_echo")
        #expect(report.query == "a=%2F&b=1", "the query is passed as sent")
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test func serviceReceivesVerifiedIdentityNeverForgedOnes() async throws {
        let (gateway, instances, trader, _) = try await Self.gateway()
        let forged = [("X-User-Id", "1"), ("x-user-roles", "admin"), ("X_User_Name", "root"), ("X-USER-ID", "0"), ("x_user-id", "0"),
                      ("X-Gateway-Token", "forged"), ("X-Gateway-Anything", "x")]
        let report = try await gateway.echo("/api/v1/trading/_echo", headers: [("Authorization", "Bearer \(trader)")] + forged)
        let me = try await gateway.send("/api/v1/auth/me", headers: [("Authorization", "Bearer \(trader)")]).json()
        let userID = try #require(me["id"] as? String)
        #expect(report.headers["x-user-id"] == [userID], "exactly one X-User-Id, the verified one: \(report.headers)")
        #expect(report.headers["x-user-name"] == ["tina"])
        #expect(report.headers["x-user-roles"] == ["trader"])
        #expect(report.headers["x-gateway-anything"] == nil && report.headers["x_user_name"] == nil && report.headers["x_user-id"] == nil)
        #expect(report.headers["authorization"] == nil, "the client's Authorization is not forwarded by default")
        #expect(report.headers["x-api-key"] == nil)
        let token = try #require(report.headers["x-gateway-token"]?.first)
        #expect(report.headers["x-gateway-token"]?.count == 1 && token != "forged")

        // A service verifies X-Gateway-Token with an independent JWT library and the published JWKS.
        struct GatewayClaims: JWTPayload {
            var iss: IssuerClaim
            var aud: AudienceClaim
            var sub: SubjectClaim
            var roles: [String]
            var exp: ExpirationClaim
            var iat: IssuedAtClaim
            func verify(using algorithm: some JWTAlgorithm) async throws {
                try exp.verifyNotExpired()
                try aud.verifyIntendedAudience(includes: "user_trading")
            }
        }
        let jwks = try await gateway.send("/gateway/jwks.json")
        #expect(jwks.status == 200)
        #expect(!jwks.body.contains("\"k\""), "no symmetric secret is ever published")
        let keys = JWTKeyCollection()
        try await keys.add(jwksJSON: jwks.body)
        let claims = try await keys.verify(token, as: GatewayClaims.self)
        #expect(claims.sub.value == userID)
        #expect(claims.roles == ["trader"])
        #expect(claims.iss.value == "redfire-gateway")
        #expect(claims.exp.value.timeIntervalSince(claims.iat.value) == 60)
        // Another service's audience does not accept it.
        struct MonitorClaims: JWTPayload {
            var aud: AudienceClaim
            func verify(using algorithm: some JWTAlgorithm) async throws { try aud.verifyIntendedAudience(includes: "monitor") }
        }
        await #expect(throws: (any Error).self) { try await keys.verify(token, as: MonitorClaims.self) }
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test func routeCanOptInToForwardAuthorization() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        var config = GatewayConfig()
        config.services = [serviceConfig("user_trading", instances)]
        config.routes = [RouteConfig(prefix: "/api/v1/trading", service: "user_trading", permissions: RoutePermissions(read: "trading:read"),
                                     forwardAuthorization: true)]
        config.auth.jwtSecret = AuthFlowTests.secret
        config.auth.bcryptCost = 4
        config.auth.roles = ["trader": ["trading:read"]]
        config.auth.defaultRoles = ["trader"]
        config.dataDirectory = TemporaryPath.make("redfire-authz")
        let gateway = try await GatewayHarness.start(config)
        _ = try await gateway.send(.POST, "/api/v1/auth/register", headers: [("Content-Type", "application/json")],
                                   body: ByteBuffer(string: #"{"username":"tina","password":"correct-horse-battery"}"#))
        let login = try await gateway.send(.POST, "/api/v1/auth/login", headers: [("Content-Type", "application/json")],
                                           body: ByteBuffer(string: #"{"username":"tina","password":"correct-horse-battery"}"#))
        let token = try #require(try login.json()["access_token"] as? String)
        let report = try await gateway.echo("/api/v1/trading/_echo", headers: [("Authorization", "Bearer \(token)")])
        #expect(report.headers["authorization"] == ["Bearer \(token)"])
        await gateway.shutdown()
        await stopAll(instances)
    }
}

@Suite("API keys", .cleansUp, .timeLimit(.minutes(2)))
struct APIKeyTests {
    @Test func keysActAsTheirUserOrServiceAccountUntilRevoked() async throws {
        let (gateway, instances, _, _) = try await AuthorizationTests.gateway()
        let config = gateway.registry.state.config
        let store = try UserStore(path: config.auth.databasePath(dataDirectory: config.dataDirectory), bcryptCost: 4)
        let (userKey, userRecord) = try await store.createAPIKey(name: "tina's script", username: "tina")
        let (serviceKey, _) = try await store.createAPIKey(name: "order bot", serviceAccount: "order-bot", permissions: ["trading:write"])
        func get(_ key: String, _ method: HTTPMethod = .GET) async throws -> GatewayHarness.Reply {
            try await gateway.send(method, "/api/v1/trading/_echo", headers: [("X-API-Key", key)])
        }
        // The gateway reloads keys every two seconds — possibly between the two keys' creation: wait for both
        // (the service key, without `trading:read`, is refused with 403 once known, 401 before).
        await waitUntil("the new keys are loaded") {
            guard (try? await get(userKey).status) == 200 else { return false }
            return (try? await get(serviceKey).status) == 403
        }
        let report = try JSONDecoder().decode(EchoReport.self, from: Data(try await get(userKey).body.utf8))
        #expect(report.headers["x-user-name"] == ["tina"] && report.headers["x-user-roles"] == ["trader"], "a user's key acts as the user")
        #expect(report.headers["x-api-key"] == nil, "the key is not forwarded")
        #expect(try await get(userKey, .POST).status == 403, "with the user's permissions only")

        var reply = try await get(serviceKey)
        #expect(reply.status == 403 && reply.body.contains("trading:read"), "a service account has only its own permissions")
        reply = try await get(serviceKey, .POST)
        #expect(reply.status == 200, "\(reply.body)")
        #expect(try JSONDecoder().decode(EchoReport.self, from: Data(reply.body.utf8)).headers["x-user-name"] == ["order-bot"])

        for bad in ["rf_\(userRecord.id)_wrongsecret", "rf_000000000000_x", "garbage", userKey + "x"] {
            reply = try await get(bad)
            #expect(reply.status == 401 && reply.errorCode == "invalid_api_key", "\(bad)")
            #expect(!reply.body.contains(bad))
        }
        try await store.revokeAPIKey(userRecord.id)
        await waitUntil("revocation takes effect") { (try? await get(userKey).status) == 401 }
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test func expiredKeysAndKeysOfDisabledUsersAreRefused() async throws {
        let directory = TemporaryPath.make("redfire-keys")
        let store = try UserStore(path: directory + "/auth.sqlite", bcryptCost: 4)
        try await store.addUser(username: "tina", password: "correct-horse-battery", roles: ["trader"])
        var config = AuthConfig()
        config.roles = ["trader": ["trading:read"]]
        let cache = APIKeyCache(store: store, config: config)
        let (live, _) = try await store.createAPIKey(name: "a", username: "tina")
        let (expired, _) = try await store.createAPIKey(name: "b", serviceAccount: "bot", permissions: ["x:y"], expiresAt: Date().addingTimeInterval(-1))
        try await cache.reload()
        #expect(cache.identity(for: live)?.permissions == ["trading:read"])
        #expect(cache.identity(for: expired) == nil)
        try await store.setDisabled("tina", true)
        try await cache.reload()
        #expect(cache.identity(for: live) == nil, "a disabled user's keys stop working")
    }
}

@Suite("Request target normalization", .cleansUp, .timeLimit(.minutes(2)))
struct RequestTargetTests {
    @Test(arguments: [
        ("/a/b", "/a/b"), ("/a//b", "/a/b"), ("//a", "/a"), ("/a/./b", "/a/b"), ("/a/../b", "/b"), ("/../a", "/a"), ("/a/b/..", "/a/"),
        ("/a/b/.", "/a/b/"), ("/a/", "/a/"), ("/", "/"), ("/%41%7e", "/A~"), ("/a%2db", "/a-b"), ("/a%20b", "/a%20b"), ("/a%c3%a9", "/a%C3%A9"),
        ("/.well-known/x", "/.well-known/x"), ("/a/..b/c", "/a/..b/c"), ("/a%2eb", "/a.b"),
    ])
    func normalizes(_ raw: String, _ expected: String) throws {
        #expect(try RequestTarget.parse(raw).path == expected)
    }

    @Test(arguments: ["/a%2fb", "/a%2Fb", "/a%5cb", "/a%00", "/%2e%2e/a", "/a/%2E", "/a/.%2e/b", "/a%", "/a%4", "/a%zz", "/a\\b", "/a b", "/a#b", "*",
                      "http://evil.example/a", "/caf\u{e9}"])
    func refuses(_ raw: String) {
        #expect(throws: RequestTarget.Problem.self) { try RequestTarget.parse(raw) }
    }

    @Test(arguments: [
        ("/a//b", "/a//b"), ("//a", "//a"), ("/a//", "/a//"), ("//", "//"), ("/a//../b", "/a/b"), ("/a/./b//c", "/a/b//c"), ("/a/b", "/a/b"),
    ])
    func keepsEmptySegmentsWithoutMergeSlashes(_ raw: String, _ expected: String) throws {
        #expect(try RequestTarget.parse(raw, mergeSlashes: false).path == expected)
    }

    @Test func queryIsKeptAsSent() throws {
        let target = try RequestTarget.parse("/a/./b?x=%2F..&y")
        #expect(target.path == "/a/b")
        #expect(target.query == "x=%2F..&y")
        #expect(target.upstreamTarget == "/a/b?x=%2F..&y")
        #expect(try RequestTarget.parse("/a?").upstreamTarget == "/a?")
    }
}
