import DemoServices
import Foundation
import NIOCore
import Testing

@testable import RedFireGateway

/// Every per-client decision keys on the one resolved client address (`ClientAddress.resolve`): the
/// TCP peer, or `X-Forwarded-For` read through `trusted_proxies`. Rate limits are covered in
/// `RateLimitTests.forwardedForChangesTheKeyOnlyBehindATrustedProxy`; here the other consumers.
@Suite("Client address", .cleansUp, .timeLimit(.minutes(2)))
struct ClientAddressTests {
    static let json = [("Content-Type", "application/json")]

    static func login(_ gateway: GatewayHarness, _ user: String, _ password: String, from client: String) async throws -> Int {
        try await gateway.send(.POST, "/api/v1/auth/login", headers: json + [("X-Forwarded-For", client)],
                               body: ByteBuffer(string: #"{"username":"\#(user)","password":"\#(password)"}"#)).status
    }

    /// Behind a trusted proxy, one client guessing passwords across many usernames is locked out by
    /// address — and only that client: another client behind the same proxy still logs in. From an
    /// untrusted peer the forwarded address is ignored (the peer is the key), so it cannot be used to
    /// dodge the lockout.
    @Test(arguments: [true, false])
    func theLoginThrottleCountsPerResolvedClient(_ trusted: Bool) async throws {
        let (gateway, instances) = try await AuthFlowTests.authGateway(configure: {
            $0.maxLoginFailures = 2
            $0.lockout = .seconds(60)
        }, gateway: {
            $0.trustedProxies = trusted ? [CIDR(parsing: "127.0.0.1/32")!] : []
        })
        _ = try await gateway.send(.POST, "/api/v1/auth/register", headers: Self.json,
                                   body: ByteBuffer(string: #"{"username":"bob","password":"correct-horse-battery"}"#))
        // The address threshold is four times the per-user one: 8 failures over 8 usernames.
        for index in 0..<8 { #expect(try await Self.login(gateway, "guess\(index)", "wrong-password-x", from: "203.0.113.66") == 401) }
        #expect(try await Self.login(gateway, "guess9", "wrong-password-x", from: "203.0.113.66") == 429, "the guessing client is locked out")
        let other = try await Self.login(gateway, "bob", "correct-horse-battery", from: "198.51.100.7")
        if trusted {
            #expect(other == 200, "another client behind the same proxy is not")
        } else {
            #expect(other == 429, "an untrusted peer's forwarded address is not a way around the lockout")
        }
        await gateway.shutdown()
        await stopAll(instances)
    }

    /// `hash_key: client_ip` hashes the resolved client: behind a trusted proxy each forwarded client
    /// sticks to one instance and different clients spread; the access log names the same address.
    @Test func consistentHashingAndTheAccessLogUseTheResolvedClient() async throws {
        let instances = try await startInstances(.userTrading, count: 2)
        let directory = TemporaryPath.make("redfire-client")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var service = serviceConfig("user_trading", instances, strategy: .consistentHash)
        service.hashKey = .clientIP
        var config = GatewayConfig()
        config.services = [service]
        config.routes = [RouteConfig(prefix: "/api/v1/trading", service: "user_trading")]
        config.trustedProxies = [CIDR(parsing: "127.0.0.1/32")!]
        config.accessLog.enabled = true
        config.accessLog.path = directory + "/access.log"
        let gateway = try await GatewayHarness.start(config)
        await waitUntil("instances checked") { gateway.registry.state.services[0].members.allSatisfy { $0.runtime.health == .healthy } }

        var chosen: [String: Set<String>] = [:]
        for round in 0..<3 {
            for client in 1...20 {
                let reply = try await gateway.send("/api/v1/trading/orders", headers: [("X-Forwarded-For", "203.0.113.\(client)"),
                                                                                        ("X-Request-ID", "client-\(round)-\(client)")])
                #expect(reply.status == 200)
                chosen["203.0.113.\(client)", default: []].insert(reply.instance ?? "?")
            }
        }
        #expect(chosen.values.allSatisfy { $0.count == 1 }, "each client sticks to one instance: \(chosen)")
        #expect(Set(chosen.values.flatMap { $0 }).count == 2, "different clients spread over both instances")
        await gateway.shutdown()
        await stopAll(instances)

        let lines = try ReliabilityTests.accessLogLines(directory + "/access.log")
        let line = try #require(lines.first { $0["request_id"] as? String == "client-0-7" })
        #expect(line["client_ip"] as? String == "203.0.113.7", "\(line)")
    }

    /// Invalid bearer tokens and API keys are counted per resolved client: past
    /// `auth.max_credential_failures` that client gets 429 `too_many_attempts` with `Retry-After` — even
    /// with a valid token — while another client behind the same trusted proxy goes on. Requests
    /// without credentials are not counted.
    @Test func invalidCredentialsAreRateLimitedPerClient() async throws {
        let (gateway, instances) = try await AuthFlowTests.authGateway(configure: {
            $0.maxCredentialFailures = 5
            $0.lockout = .seconds(60)
        }, gateway: {
            $0.trustedProxies = [CIDR(parsing: "127.0.0.1/32")!]
        })
        _ = try await gateway.send(.POST, "/api/v1/auth/register", headers: Self.json,
                                   body: ByteBuffer(string: #"{"username":"dana","password":"correct-horse-battery"}"#))
        let login = try await gateway.send(.POST, "/api/v1/auth/login", headers: Self.json,
                                           body: ByteBuffer(string: #"{"username":"dana","password":"correct-horse-battery"}"#))
        let token = try #require(try login.json()["access_token"] as? String)
        func orders(_ headers: [(String, String)], from client: String) async throws -> GatewayHarness.Reply {
            try await gateway.send("/api/v1/trading/orders", headers: headers + [("X-Forwarded-For", client)])
        }
        for _ in 0..<10 { #expect(try await orders([], from: "203.0.113.5").status == 401, "no credentials: not counted") }
        #expect(try await orders([("Authorization", "Bearer \(token)")], from: "203.0.113.5").status == 200)
        for index in 0..<5 {
            let bad = index % 2 == 0 ? ("Authorization", "Bearer not.a.token\(index)") : ("X-API-Key", "rf_000000000000_guess\(index)")
            #expect(try await orders([bad], from: "203.0.113.5").status == 401)
        }
        let limited = try await orders([("Authorization", "Bearer \(token)")], from: "203.0.113.5")
        #expect(limited.status == 429 && limited.errorCode == "too_many_attempts", "\(limited.status) \(limited.body)")
        #expect(Int(limited.headers.first(name: "Retry-After") ?? "") ?? 0 >= 1)
        #expect(try await orders([("Authorization", "Bearer \(token)")], from: "198.51.100.9").status == 200, "another client goes on")
        await gateway.shutdown()
        await stopAll(instances)
    }
}
