import AsyncHTTPClient
import DemoServices
import Foundation
import NIOCore
import Testing

@testable import RedFireGateway

@Suite("Admin API", .cleansUp, .timeLimit(.minutes(2)))
struct AdminAPITests {
    static let token = "test-admin-token-0123456789"
    static let auth = [("Authorization", "Bearer \(token)")]

    static func gateway(_ instances: [DemoInstance], token: String? = AdminAPITests.token) async throws -> GatewayHarness {
        var service = serviceConfig("user_trading", instances)
        service.healthCheck.interval = .milliseconds(100)
        var config = GatewayConfig()
        config.services = [service]
        config.routes = [RouteConfig(prefix: "/api/v1/trading", service: "user_trading")]
        config.adminToken = token
        let harness = try await GatewayHarness.start(config)
        // Start from checked instances: the first health transitions rebuild the snapshot (and restart
        // the round-robin cycle), which would make request placement in the tests unpredictable.
        await waitUntil("instances checked") { harness.registry.state.services[0].members.allSatisfy { $0.runtime.health == .healthy } }
        return harness
    }

    static func object(_ reply: GatewayHarness.Reply) throws -> [String: Any] { try reply.json() }

    /// Guessing the admin token is limited like invalid credentials on routes: after
    /// `auth.max_credential_failures` wrong tokens from one client, 429 — even with the right one.
    @Test func guessingTheAdminTokenIsRateLimited() async throws {
        var config = GatewayConfig()
        config.adminToken = Self.token
        config.auth.maxCredentialFailures = 5
        config.auth.lockout = .seconds(60)
        let gateway = try await GatewayHarness.start(config)
        #expect(try await gateway.send("/gateway/services").status == 401, "no credentials: not counted")
        for index in 0..<5 {
            #expect(try await gateway.send("/gateway/services", headers: [("Authorization", "Bearer guess-\(index)-0123456789abcdef")]).status == 401)
        }
        let limited = try await gateway.send("/gateway/services", headers: Self.auth)
        #expect(limited.status == 429 && limited.errorCode == "too_many_attempts", "\(limited.status) \(limited.body)")
        #expect(limited.headers.first(name: "Retry-After") != nil)
        await gateway.shutdown()
    }

    /// `GET /gateway` names the address the gateway is bound to — the port a `:0` listen address got.
    @Test func gatewayInfoNamesTheBoundAddress() async throws {
        var config = GatewayConfig()
        config.adminToken = Self.token
        let gateway = try await GatewayHarness.start(config)
        let info = try await gateway.send("/gateway", headers: Self.auth).json()
        #expect(info["listen"] as? String == "127.0.0.1:\(gateway.port)" && info["port"] as? Int == gateway.port, "\(info)")
        #expect((info["open_connections"] as? Int ?? 0) >= 1 && info["uptime_seconds"] != nil && info["generation"] != nil)
        #expect(try await gateway.send("/gateway").status == 401, "admin only")
        await gateway.shutdown()
    }

    @Test func adminAPIRequiresTheToken() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let disabled = try await Self.gateway(instances, token: nil)
        let off = try await disabled.send("/gateway/services", headers: Self.auth)
        #expect(off.status == 403)
        #expect(off.errorCode == "admin_disabled")
        await disabled.shutdown()

        let gateway = try await Self.gateway(instances)
        for headers in [[], [("Authorization", "Bearer wrong-token-wrong-token")], [("Authorization", "Basic \(Self.token)")]] {
            let reply = try await gateway.send("/gateway/services", headers: headers)
            #expect(reply.status == 401)
            #expect(reply.errorCode == "unauthorized")
            #expect(reply.headers.first(name: "WWW-Authenticate")?.hasPrefix("Bearer") == true)
            #expect(!reply.body.contains(Self.token))
        }
        #expect(try await gateway.send("/gateway/services", headers: Self.auth).status == 200)
        let missing = try await gateway.send("/gateway/nothing-here", headers: Self.auth)
        #expect(missing.status == 404)
        #expect(missing.errorCode == "not_found", "\(missing.body)")
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test func drainThroughTheAPIShowsProgressAndIsAudited() async throws {
        let instances = try await startInstances(.userTrading, count: 2)
        let gateway = try await Self.gateway(instances)
        let slow = (0..<4).map { _ in Task { try await gateway.send("/api/v1/trading/orders?sleep_ms=800") } }
        let runtime = try #require(gateway.registry.runtime(id: "user_trading-1"))
        await waitUntil("slow requests in flight") { runtime.inFlight == 2 }

        let drained = try await gateway.send(.POST, "/gateway/services/user_trading/instances/user_trading-1/drain", headers: Self.auth)
        #expect(drained.status == 200)
        #expect(try Self.object(drained)["state"] as? String == "draining")
        #expect((try Self.object(drained)["in_flight"] as? Int ?? 0) >= 1)

        var sawStates: [String] = []
        await waitUntil("drained") {
            let service = try? Self.object(await gateway.send("/gateway/services/user_trading", headers: Self.auth))
            let instance = (service?["instances"] as? [[String: Any]])?.first { $0["id"] as? String == "user_trading-1" }
            if let state = instance?["state"] as? String, sawStates.last != state { sawStates.append(state) }
            return sawStates.last == "drained"
        }
        #expect(sawStates.first == "draining")
        for request in slow { #expect(try await request.value.status == 200) }

        let audit = try Self.object(await gateway.send("/gateway/audit", headers: Self.auth))
        let entries = try #require(audit["entries"] as? [[String: Any]])
        #expect(entries.last?["action"] as? String == "drain")
        #expect(entries.last?["actor"] as? String == "admin-api")
        #expect(entries.last?["target"] as? String == "user_trading/user_trading-1")
        #expect(entries.last?["result"] as? String == "ok")

        let undrained = try await gateway.send(.POST, "/gateway/services/user_trading/instances/user_trading-1/undrain", headers: Self.auth)
        #expect(try Self.object(undrained)["state"] as? String != "drained")
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test func drainWithADeadlineReadsDrainedAtTheDeadlineAndLeavesRequestsToFinish() async throws {
        let instances = try await startInstances(.userTrading, count: 2)
        let gateway = try await Self.gateway(instances)
        // Slow enough that the deadline (300 ms) passes well before they end, on a loaded machine too
        // (one full-suite run missed a 1.2 s window).
        let slow = (0..<4).map { _ in Task { try await gateway.send("/api/v1/trading/orders?sleep_ms=4000") } }
        let runtime = try #require(gateway.registry.runtime(id: "user_trading-1"))
        await waitUntil("slow requests in flight") { runtime.inFlight == 2 }

        let bad = try await gateway.send(.POST, "/gateway/services/user_trading/instances/user_trading-1/drain?deadline=soon", headers: Self.auth)
        #expect(bad.status == 400 && bad.errorCode == "invalid_request")
        #expect(!runtime.isDraining, "a refused drain changes nothing")

        let draining = try await gateway.send(.POST, "/gateway/services/user_trading/instances/user_trading-1/drain", headers: Self.auth,
                                              body: ByteBuffer(string: #"{"deadline":"300ms"}"#))
        #expect(draining.status == 200, "\(draining.body)")
        let view = try Self.object(draining)
        #expect(view["state"] as? String == "draining")
        #expect((1...300).contains(view["drain_deadline_in_ms"] as? Int ?? -1), "\(view)")

        // At the deadline it reads drained although its two slow requests are still running…
        await waitUntil("drained at the deadline") {
            let service = try? Self.object(await gateway.send("/gateway/services/user_trading", headers: Self.auth))
            let instance = (service?["instances"] as? [[String: Any]])?.first { $0["id"] as? String == "user_trading-1" }
            return instance?["state"] as? String == "drained" && instance?["in_flight"] as? Int == 2
        }
        await waitUntil("the deadline event") {
            gateway.registry.events.recent().contains { $0.message.contains("user_trading-1 drain deadline passed with 2 in flight") }
        }
        // …and they are not cut: every client gets its answer.
        for request in slow { #expect(try await request.value.status == 200) }
        #expect(gateway.control.audit.recent().last?.action == "drain")
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test func registerHeartbeatDeregisterAndStrategy() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let extra = try await startInstances(.userTrading, count: 1, prefix: "dyn")
        let gateway = try await Self.gateway(instances)
        let body = ByteBuffer(string: #"{"id":"dyn-1","url":"http://127.0.0.1:\#(extra[0].port)","weight":3,"lease_ttl":"10s","metadata":{"zone":"b"}}"#)
        let created = try await gateway.send(.POST, "/gateway/services/user_trading/instances", headers: Self.auth, body: body)
        #expect(created.status == 201, "\(created.body)")
        #expect(try Self.object(created)["weight"] as? Int == 3)
        #expect((try Self.object(created)["lease_expires_in_ms"] as? Int ?? 0) > 1000)
        #expect(try await gateway.send(.PUT, "/gateway/services/user_trading/instances/dyn-1/heartbeat", headers: Self.auth).status == 200)

        let strategy = try await gateway.send(.PUT, "/gateway/services/user_trading/strategy", headers: Self.auth, body: ByteBuffer(string: #"{"strategy":"least_connections"}"#))
        #expect(try Self.object(strategy)["strategy"] as? String == "least_connections")
        let bad = try await gateway.send(.PUT, "/gateway/services/user_trading/strategy", headers: Self.auth, body: ByteBuffer(string: #"{"strategy":"fastest"}"#))
        #expect(bad.status == 400)
        #expect(bad.errorCode == "invalid_request")
        let garbage = try await gateway.send(.POST, "/gateway/services/user_trading/instances", headers: Self.auth, body: ByteBuffer(string: "not json"))
        #expect(garbage.status == 400)
        let unknown = try await gateway.send(.POST, "/gateway/services/ghost/instances/x/drain", headers: Self.auth)
        #expect(unknown.status == 404)
        #expect(unknown.errorCode == "service_not_found")

        #expect(try await gateway.send(.DELETE, "/gateway/services/user_trading/instances/dyn-1", headers: Self.auth).status == 204)
        let services = try Self.object(await gateway.send("/gateway/services", headers: Self.auth))
        let list = try #require(services["services"] as? [[String: Any]])
        #expect((list.first?["instances"] as? [[String: Any]])?.map { $0["id"] as? String } == ["user_trading-1"])
        #expect(gateway.control.audit.recent().map(\.action) == ["register", "set_strategy", "drain", "deregister"])
        await gateway.shutdown()
        await stopAll(instances + extra)
    }

    @Test func deregisterWithDrainWaitsForInFlightRequests() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let extra = try await startInstances(.userTrading, count: 1, prefix: "dyn")
        let gateway = try await Self.gateway(instances)
        let body = ByteBuffer(string: #"{"id":"dyn-1","url":"http://127.0.0.1:\#(extra[0].port)"}"#)
        #expect(try await gateway.send(.POST, "/gateway/services/user_trading/instances", headers: Self.auth, body: body).status == 201)
        let runtime = try #require(gateway.registry.runtime(id: "dyn-1"))
        await waitUntil("dyn-1 checked") { runtime.health == .healthy }
        let slow = (0..<4).map { _ in Task { try await gateway.send("/api/v1/trading/orders?sleep_ms=700") } }
        await waitUntil("slow request on dyn-1") { runtime.inFlight >= 1 }

        let reply = try await gateway.send(.DELETE, "/gateway/services/user_trading/instances/dyn-1?drain=true&deadline=10s", headers: Self.auth)
        #expect(reply.status == 202)
        #expect(try Self.object(reply)["state"] as? String == "draining")
        #expect(gateway.registry.runtime(id: "dyn-1") != nil)
        await waitUntil("removed once idle") { gateway.registry.runtime(id: "dyn-1") == nil }
        for request in slow { #expect(try await request.value.status == 200) }
        #expect(gateway.registry.events.recent().contains { $0.message.contains("dyn-1 drained and deregistered") })
        await gateway.shutdown()
        await stopAll(instances + extra)
    }

    @Test func statsReportAKnownMix() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await Self.gateway(instances)
        for _ in 0..<100 { _ = try await gateway.send("/api/v1/trading/orders") }
        for _ in 0..<10 { _ = try await gateway.send("/api/v1/trading/orders?status=500") }
        let stats = try Self.object(await gateway.send("/gateway/stats?window=1m", headers: Self.auth))
        #expect(stats["window_seconds"] as? Int == 60)
        let route = try #require((stats["routes"] as? [String: Any])?["/api/v1/trading"] as? [String: Any])
        #expect(route["requests"] as? Int == 110)
        #expect(route["status_2xx"] as? Int == 100)
        #expect(route["status_5xx"] as? Int == 10)
        let service = try #require((stats["services"] as? [String: Any])?["user_trading"] as? [String: Any])
        #expect(service["requests"] as? Int == 110)
        #expect(try await gateway.send("/gateway/stats?window=soon", headers: Self.auth).status == 400)
        await gateway.shutdown()
        await stopAll(instances)
    }
}
