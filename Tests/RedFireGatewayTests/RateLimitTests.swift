import AsyncHTTPClient
import DemoServices
import Foundation
import HTTPTypes
import NIOCore
import Testing

@testable import RedFireGateway

@Suite("Rate limiting", .cleansUp, .timeLimit(.minutes(2)))
struct RateLimitTests {
    static let tenPerSecond = RateLimitPolicy(name: "route", count: 10, period: .seconds(1), burst: 10)

    @Test func gcraAdmitsExactlyTheBurstAndDoesNotChargeRefusals() {
        let store = LocalRateLimitStore()
        let start: Int64 = 1_000_000_000_000
        var allowed = 0
        var first: RateDecision?
        for _ in 0..<50 {
            let decision = store.acquire("ip:1", policy: Self.tenPerSecond, now: start)
            if decision.allowed { allowed += 1; first = first ?? decision }
        }
        #expect(allowed == 10)
        #expect(first?.remaining == 9)
        let refused = store.acquire("ip:1", policy: Self.tenPerSecond, now: start)
        #expect(!refused.allowed && refused.retryAfterSeconds == 1)
        // A thousand refusals later, the allowance refills exactly as if they had not happened.
        for _ in 0..<1000 { _ = store.acquire("ip:1", policy: Self.tenPerSecond, now: start + 50_000_000) }
        #expect(store.acquire("ip:1", policy: Self.tenPerSecond, now: start + 100_000_000).allowed, "one interval later, one more")
        #expect(!store.acquire("ip:1", policy: Self.tenPerSecond, now: start + 100_000_000).allowed)
        var later = 0
        for _ in 0..<50 where store.acquire("ip:1", policy: Self.tenPerSecond, now: start + 1_100_000_000).allowed { later += 1 }
        #expect(later == 10, "a full second later the whole burst is back")
        #expect(store.acquire("ip:2", policy: Self.tenPerSecond, now: start).allowed, "keys are independent")
    }

    @Test func idleKeysAreDroppedWithoutGivingAnyoneMore() {
        let store = LocalRateLimitStore(shards: 1)
        let policy = RateLimitPolicy(name: "default", count: 1, period: .seconds(1), burst: 1)
        for index in 0..<5000 { _ = store.acquire("ip:\(index)", policy: policy, now: Int64(index) * 1_000_000) }
        #expect(store.keyCount < 5000, "keys whose allowance is full again were swept: \(store.keyCount)")
        // A key that is still limited is never swept: the client stays limited.
        let now: Int64 = 10_000_000_000
        #expect(store.acquire("abuser", policy: policy, now: now).allowed)
        for index in 0..<5000 { _ = store.acquire("other:\(index)", policy: policy, now: now + 1_000 + Int64(index)) }
        #expect(!store.acquire("abuser", policy: policy, now: now + 500_000_000).allowed)
    }

    @Test func clientAddressTrustsForwardedForOnlyFromTrustedProxies() {
        let trusted = [CIDR(parsing: "10.0.0.0/8")!, CIDR(parsing: "::1/128")!]
        let fields: HTTPFields = [.init("X-Forwarded-For")!: "203.0.113.9, 10.1.2.3"]
        #expect(ClientAddress.resolve(peer: "198.51.100.7", fields: fields, trusted: trusted) == "198.51.100.7", "untrusted peer: the header changes nothing")
        #expect(ClientAddress.resolve(peer: "10.0.0.1", fields: fields, trusted: trusted) == "203.0.113.9", "right to left, trusted hops skipped")
        #expect(ClientAddress.resolve(peer: "10.0.0.1", fields: [:], trusted: trusted) == "10.0.0.1")
        #expect(ClientAddress.resolve(peer: "10.0.0.1", fields: [.init("X-Forwarded-For")!: "1.2.3.4, garbage"], trusted: trusted) == "10.0.0.1")
        #expect(ClientAddress.resolve(peer: "::1", fields: [.init("X-Forwarded-For")!: "2001:db8::5"], trusted: trusted) == "2001:db8::5")
        #expect(CIDR(parsing: "10.0.0.0/33") == nil && CIDR(parsing: "nonsense") == nil)
    }

    @Test func keyIsTheAPIKeyThenTheUserThenTheAddress() {
        let user = Identity(userID: "7", username: "tina", roles: [], permissions: [], tokenID: "jti", session: "s", expiresAt: .distantFuture)
        var keyed = user
        keyed.tokenID = "key:abc123"
        #expect(RateLimiter.key(identity: keyed, clientIP: "1.2.3.4") == "api-key:abc123")
        #expect(RateLimiter.key(identity: user, clientIP: "1.2.3.4") == "user:7")
        #expect(RateLimiter.key(identity: nil, clientIP: "1.2.3.4") == "ip:1.2.3.4")
    }

    static func gateway(trustedProxies: [String] = [], policy: RateLimitPolicy = tenPerSecond) async throws -> (GatewayHarness, [DemoInstance]) {
        let instances = try await startInstances(.userTrading, count: 1)
        var config = GatewayConfig()
        config.services = [serviceConfig("user_trading", instances)]
        var route = RouteConfig(prefix: "/api/v1/trading", service: "user_trading")
        route.rateLimit = policy
        config.routes = [route]
        config.trustedProxies = trustedProxies.compactMap(CIDR.init(parsing:))
        config.rateLimits.headers = .ietfAndLegacy
        return (try await GatewayHarness.start(config), instances)
    }

    @Test func fiftyConcurrentRequestsGetTheBurstAndTheRestA429ThatSaysWhenToRetry() async throws {
        let (gateway, instances) = try await Self.gateway()
        let started = ContinuousClock.now
        let replies = try await withThrowingTaskGroup(of: GatewayHarness.Reply.self) { group in
            for _ in 0..<50 { group.addTask { try await gateway.send("/api/v1/trading/orders") } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let passed = replies.filter { $0.status == 200 }
        let limited = replies.filter { $0.status == 429 }
        // GCRA admits the burst at once, plus one more per 100 ms (1/rate) that the requests take to
        // arrive: exactly 10 + floor(elapsed / 100 ms) at most — 10 or 11 when they arrive together.
        let elapsed = ContinuousClock.now - started
        let bound = 10 + Int(elapsed / .milliseconds(100))
        #expect(passed.count >= 10 && passed.count <= bound, "\(passed.count) passed in \(elapsed) (bound \(bound))")
        #expect(passed.count + limited.count == 50)
        for reply in limited {
            #expect(reply.errorCode == "rate_limited")
            #expect(reply.headers.first(name: "Retry-After") == "1")
            #expect(reply.headers.first(name: "RateLimit-Policy") == #""route";q=10;w=1"#)
            #expect(reply.headers.first(name: "RateLimit")?.hasPrefix(#""route";r=0;t="#) == true)
            #expect(reply.headers.first(name: "X-RateLimit-Remaining") == "0")
        }
        for reply in passed {
            #expect(reply.headers.first(name: "RateLimit-Policy") == #""route";q=10;w=1"#, "allowed answers carry the fields too")
            #expect(reply.headers.first(name: "RateLimit") != nil && reply.headers.first(name: "X-RateLimit-Limit") == "10")
        }
        // Honouring Retry-After succeeds; the refused requests did not use up the next allowance.
        try await Task.sleep(for: .seconds(1))
        let again = ContinuousClock.now
        let next = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<20 { group.addTask { try await gateway.send("/api/v1/trading/orders").status } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let nextPassed = next.filter { $0 == 200 }.count
        #expect(nextPassed >= 10 && nextPassed <= 10 + Int((ContinuousClock.now - again) / .milliseconds(100)), "\(next)")
        let snapshot = gateway.gateway.snapshot(windowSeconds: 60)
        #expect(snapshot.topLimitedKeys.first?.key == "ip:127.0.0.1")
        // Every 429 of both rounds, counted for the key (how many there were depends on the machine's pace).
        #expect(snapshot.topLimitedKeys.first?.rejections == limited.count + next.filter { $0 == 429 }.count)
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test func forwardedForChangesTheKeyOnlyBehindATrustedProxy() async throws {
        for (trusted, expectSeparate) in [([String](), false), (["127.0.0.1/32"], true)] {
            // 10 per hour: no refill while the test runs, however slow the machine.
            let (gateway, instances) = try await Self.gateway(trustedProxies: trusted, policy: RateLimitPolicy(name: "route", count: 10, period: .seconds(3600), burst: 10))
            var passed = 0
            for index in 0..<20 {
                let reply = try await gateway.send("/api/v1/trading/orders", headers: [("X-Forwarded-For", "203.0.113.\(index)")])
                if reply.status == 200 { passed += 1 }
            }
            if expectSeparate { #expect(passed == 20, "each forwarded client has its own allowance") }
            else { #expect(passed == 10, "a spoofed header from an untrusted peer changes nothing: \(passed)") }
            await gateway.shutdown()
            await stopAll(instances)
        }
    }
}

@Suite("Service concurrency limit", .cleansUp, .timeLimit(.minutes(2)))
struct ServiceConcurrencyTests {
    @Test func requestsOverMaxInFlightAreShedAndTheSlotsComeBack() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        // Slow enough that all five are in flight together even on a loaded machine; no health checks,
        // which a slow instance would fail.
        let gateway = try await tradingGateway(instances) { $0.maxInFlight = 2; $0.healthCheck.enabled = false }
        instances[0].setBehaviour(.slow(.seconds(2)))
        let replies = try await withThrowingTaskGroup(of: GatewayHarness.Reply.self) { group in
            for _ in 0..<5 { group.addTask { try await gateway.send("/api/v1/trading/orders") } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(replies.filter { $0.status == 200 }.count == 2, "\(replies.map(\.status))")
        let shed = replies.filter { $0.status == 503 }
        #expect(shed.count == 3)
        #expect(shed.allSatisfy { $0.errorCode == "service_busy" && $0.headers.first(name: "Retry-After") == "1" })
        instances[0].setBehaviour(.normal)
        // Every slot was released when its response ended.
        for _ in 0..<3 { #expect(try await gateway.send("/api/v1/trading/orders").status == 200) }
        #expect(gateway.registry.state.services[0].shared.inFlight == 0)
        await gateway.shutdown()
        await stopAll(instances)
    }
}
