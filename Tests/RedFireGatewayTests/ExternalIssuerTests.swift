import Crypto
import DemoServices
import Foundation
import HTTPTypes
import Hummingbird
import JWTKit
import Logging
import NIOCore
import Synchronization
import Testing

@testable import RedFireGateway

/// A real HTTP server on loopback that serves a JWKS (changeable) and counts fetches.
final class JWKSServer: Sendable {
    let body = Mutex<String>(#"{"keys":[]}"#)
    let fetches = Atomic<Int>(0)
    private let server = Mutex<LoopbackServer?>(nil)
    var port: Int { server.withLock { $0?.port ?? 0 } }
    var url: String { "http://127.0.0.1:\(port)/.well-known/jwks.json" }

    func start() async throws {
        let router = Router()
        router.get("/.well-known/jwks.json") { [self] _, _ -> Response in
            fetches.add(1, ordering: .relaxed)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body.withLock { $0 })))
        }
        var logger = Logger(label: "jwks")
        logger.logLevel = .critical
        let started = try await LoopbackServer.start(logger: logger) { onServerRunning in
            Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), onServerRunning: onServerRunning, logger: logger)
        }
        server.withLock { $0 = started }
    }

    func stop() async {
        await server.withLock { $0 }?.stop()
    }
}

/// Tokens from an external identity provider, verified with the keys its JWKS URL serves.
@Suite("External issuers (JWKS)", .cleansUp, .timeLimit(.minutes(2)))
struct ExternalIssuerTests {
    struct IdPClaims: JWTPayload {
        var iss: IssuerClaim
        var sub: SubjectClaim
        var aud: AudienceClaim
        var exp: ExpirationClaim
        var preferred_username: String
        var groups: [String]
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    static func claims(issuer: String = "https://idp.example", audience: String = "redfire-api", expiresIn: TimeInterval = 300) -> IdPClaims {
        IdPClaims(iss: .init(value: issuer), sub: "idp-user-7", aud: .init(value: [audience]), exp: .init(value: Date().addingTimeInterval(expiresIn)),
                  preferred_username: "erin", groups: ["trader"])
    }

    static func jwk(_ key: P256.Signing.PrivateKey, kid: String) -> String {
        let point = Array(key.publicKey.x963Representation)
        return #"{"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","kid":"\#(kid)","x":"\#(Base64URL.encode(Array(point[1..<33])))","y":"\#(Base64URL.encode(Array(point[33..<65])))"}"#
    }

    /// One protected route over `instances`, the gateway's own auth, role `trader` → `trading:read`.
    static func config(_ instances: [DemoInstance]) -> GatewayConfig {
        var config = GatewayConfig()
        config.services = [serviceConfig("user_trading", instances)]
        config.routes = [RouteConfig(prefix: "/api/v1/trading", service: "user_trading", permissions: RoutePermissions(read: "trading:read"))]
        config.dataDirectory = TemporaryPath.make("redfire-idp")
        config.auth.jwtSecret = AuthFlowTests.secret
        config.auth.bcryptCost = 4
        config.auth.roles = ["trader": ["trading:read"]]
        return config
    }

    @Test func tokensVerifyWithTheIssuersKeysRefetchOnRotationAnd503WhenNoKeyCanBeHad() async throws {
        let idp = JWKSServer()
        try await idp.start()
        let first = P256.Signing.PrivateKey(), second = P256.Signing.PrivateKey()
        idp.body.withLock { $0 = #"{"keys":[\#(Self.jwk(first, kid: "idp-1"))]}"# }

        let instances = try await startInstances(.userTrading, count: 1)
        var config = Self.config(instances)
        var external = ExternalIssuerConfig(issuer: "https://idp.example", jwksURL: idp.url)
        external.allowHTTPLoopback = true
        external.rolesClaim = "groups"
        external.minRefetchInterval = .seconds(30)
        // An issuer whose JWKS endpoint is down (nothing listens on that port).
        var down = ExternalIssuerConfig(issuer: "https://down.example", jwksURL: "http://127.0.0.1:1/jwks.json")
        down.allowHTTPLoopback = true
        config.auth.externalIssuers = [external, down]
        let gateway = try await GatewayHarness.start(config)
        await waitUntil("the JWKS was fetched at start") { idp.fetches.load(ordering: .relaxed) >= 1 }

        func call(_ token: String) async throws -> GatewayHarness.Reply {
            try await gateway.send("/api/v1/trading/_echo", headers: [("Authorization", "Bearer \(token)")])
        }
        let signer = JWTKeyCollection()
        await signer.add(ecdsa: try ES256PrivateKey(pem: first.pemRepresentation), kid: "idp-1")
        await signer.add(ecdsa: try ES256PrivateKey(pem: second.pemRepresentation), kid: "idp-2")
        await signer.add(ecdsa: ES256PrivateKey(), kid: "idp-3")

        var reply = try await call(try await signer.sign(Self.claims(), kid: "idp-1"))
        #expect(reply.status == 200, "\(reply.body)")
        let report = try JSONDecoder().decode(EchoReport.self, from: Data(reply.body.utf8))
        #expect(report.headers["x-user-id"] == ["idp-user-7"] && report.headers["x-user-name"] == ["erin"] && report.headers["x-user-roles"] == ["trader"])

        #expect(try await call(try await signer.sign(Self.claims(audience: "other"), kid: "idp-1")).status == 401, "wrong audience")
        #expect(try await call(try await signer.sign(Self.claims(expiresIn: -120), kid: "idp-1")).status == 401, "expired")

        // The provider rotates: a token with a new kid makes the gateway fetch again, once.
        idp.body.withLock { $0 = #"{"keys":[\#(Self.jwk(first, kid: "idp-1")),\#(Self.jwk(second, kid: "idp-2"))]}"# }
        let before = idp.fetches.load(ordering: .relaxed)
        reply = try await call(try await signer.sign(Self.claims(), kid: "idp-2"))
        #expect(reply.status == 200, "\(reply.body)")
        #expect(idp.fetches.load(ordering: .relaxed) == before + 1)
        // An unknown kid right after: no new fetch (at most one per min_refetch_interval), 401.
        reply = try await call(try await signer.sign(Self.claims(), kid: "idp-3"))
        #expect(reply.status == 401 && reply.errorCode == "invalid_token")
        #expect(idp.fetches.load(ordering: .relaxed) == before + 1)

        // The other issuer's keys cannot be fetched: 503, not 401.
        let downSigner = JWTKeyCollection()
        await downSigner.add(ecdsa: ES256PrivateKey(), kid: "down-1")
        reply = try await call(try await downSigner.sign(Self.claims(issuer: "https://down.example"), kid: "down-1"))
        #expect(reply.status == 503, "\(reply.body)")
        #expect(reply.errorCode == "auth_unavailable")
        #expect(reply.headers.first(name: "Retry-After") != nil)
        #expect(!reply.body.contains("127.0.0.1:1"), "no upstream address in the answer")

        await gateway.shutdown()
        await stopAll(instances)
        await idp.stop()
    }

    /// Keys come only from the configured URL: a redirect is never followed (it could point anywhere,
    /// https→http included), and the URL must be https — http only on a loopback address, explicitly.
    @Test func jwksRedirectsAreNotFollowedAndPlainHTTPNeedsLoopbackAndConsent() async throws {
        let idp = JWKSServer()
        try await idp.start()
        let key = P256.Signing.PrivateKey()
        idp.body.withLock { $0 = #"{"keys":[\#(Self.jwk(key, kid: "idp-1"))]}"# }
        let redirect = try await ScriptedServer.start {
            ("HTTP/1.1 302 Found\r\nLocation: \(idp.url)\r\nContent-Length: 0\r\n\r\n", close: false)
        }
        let instances = try await startInstances(.userTrading, count: 1)
        var config = Self.config(instances)
        var external = ExternalIssuerConfig(issuer: "https://idp.example", jwksURL: "http://127.0.0.1:\(redirect.port)/jwks.json")
        external.allowHTTPLoopback = true
        external.rolesClaim = "groups"
        config.auth.externalIssuers = [external]
        let gateway = try await GatewayHarness.start(config)
        let signer = JWTKeyCollection()
        await signer.add(ecdsa: try ES256PrivateKey(pem: key.pemRepresentation), kid: "idp-1")
        let reply = try await gateway.send("/api/v1/trading/_echo", headers: [("Authorization", "Bearer \(try await signer.sign(Self.claims(), kid: "idp-1"))")])
        #expect(reply.status == 503 && reply.errorCode == "auth_unavailable", "\(reply.status) \(reply.body)")
        #expect(idp.fetches.load(ordering: .relaxed) == 0, "the redirect was not followed")
        await gateway.shutdown()
        await stopAll(instances)
        try await redirect.close()
        await idp.stop()

        for (url, allow, accepted) in [("https://idp.example/jwks", false, true), ("http://idp.example/jwks", true, false),
                                       ("http://10.0.0.5/jwks", true, false), ("http://127.0.0.1:9000/jwks", false, false),
                                       ("http://127.0.0.1:9000/jwks", true, true), ("http://[::1]:9000/jwks", true, true),
                                       ("http://localhost/jwks", true, true), ("http://127.0.0.1.evil.example/jwks", true, false)] {
            var issuer = ExternalIssuerConfig(issuer: "x", jwksURL: url)
            issuer.allowHTTPLoopback = allow
            #expect(issuer.jwksURLIsAcceptable == accepted, "\(url) allow=\(allow)")
        }
    }
}
