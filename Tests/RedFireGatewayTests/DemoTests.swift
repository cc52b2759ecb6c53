import AsyncHTTPClient
import DemoServices
import Foundation
import ServiceLifecycle
import Testing

@testable import RedFireGateway

@Suite("Demo wiring", .cleansUp, .timeLimit(.minutes(2)))
struct DemoTests {
    /// The same wiring `redfire-gateway demo` uses: every one of the five services answers through the
    /// gateway, on every instance, and the traffic generator gets answers.
    @Test func everyDemoServiceIsReachableThroughTheGateway() async throws {
        let cluster = try await DemoCluster.start()
        #expect(cluster.instances.count == 10)
        var config = cluster.gatewayConfig(listen: ListenAddress(host: "127.0.0.1", port: 0))
        DemoAuth.configure(&config, secret: "demo-test-secret-0123456789abcdefgh",
                           dataDirectory: TemporaryPath.make("redfire-demo"))
        config.auth.bcryptCost = 4
        let users = DemoAuth.users()
        try await DemoAuth.provision(users, config: config)
        let gateway = try await GatewayHarness.start(config)
        // Every instance verified by its first health check (ready needs only one route): on a busy
        // machine a first check can fail, and the instance then waits for its next ones.
        #expect(await waitUntil("every instance healthy") { gateway.registry.allRuntimes.allSatisfy { $0.health == .healthy } })
        let trader = try #require(users.first { $0.role == "trader" })
        let login = try await gateway.send(.POST, "/api/v1/auth/login", headers: [("Content-Type", "application/json")],
                                           body: .init(string: #"{"username":"\#(trader.username)","password":"\#(trader.password)"}"#))
        let token = try #require(try login.json()["access_token"] as? String, "the demo trader logs in with the printed password")
        #expect(try await gateway.send("/api/v1/trading/orders").status == 401, "every demo route needs a token")

        for kind in DemoServiceKind.allCases {
            var seen: Set<String> = []
            for resource in kind.resources {
                for _ in 0..<4 {
                    let reply = try await gateway.send(kind.prefix + resource, headers: [("X-Account-Id", "acct-\(seen.count)-\(resource)"),
                                                                                          ("Authorization", "Bearer \(token)")])
                    #expect(reply.status == 200, "\(kind.prefix + resource): \(reply.status)")
                    let json = try reply.json()
                    #expect(json["service"] as? String == kind.rawValue)
                    #expect(json["path"] as? String == kind.prefix + resource)
                    if let instance = reply.instance { seen.insert(instance) }
                }
            }
            #expect(!seen.isEmpty)
            #expect(seen.allSatisfy { $0.hasPrefix(kind.rawValue + "-") })
        }
        #expect(try await gateway.send(.POST, "/api/v1/trading/orders", headers: [("Authorization", "Bearer \(token)")]).status == 201)
        #expect(try await gateway.send(.POST, "/api/v1/vnpy/contracts", headers: [("Authorization", "Bearer \(token)")]).status == 403,
                "a trader may not write to vnpy")

        let traffic = TrafficGenerator(baseURL: gateway.baseURL, rate: 200, users: users)
        let group = ServiceGroup(configuration: .init(services: [traffic], logger: GatewayHarness.quietLogger))
        let run = Task { try await group.run() }
        await waitUntil("both demo users logged in") { traffic.loginCount == 2 }
        await waitUntil("traffic flows") { traffic.requestsSent >= 100 }
        // Its subscriptions: tick streams (WebSocket) on vnpy_core, alert streams (SSE) on monitor.
        let routes = gateway.registry.state.routes
        let vnpy = try #require(routes.first { $0.pool.name == "vnpy_core" }).metrics.streams
        let monitor = try #require(routes.first { $0.pool.name == "monitor" }).metrics.streams
        #expect(await waitUntil("subscriptions open") {
            traffic.openStreams == TrafficGenerator.tickStreams + TrafficGenerator.alertStreams
                && vnpy.open(.websocket) == TrafficGenerator.tickStreams && monitor.open(.eventStream) == TrafficGenerator.alertStreams
        })
        #expect(await waitUntil("ticks arrive") { traffic.streamMessagesReceived > 20 })
        await group.triggerGracefulShutdown()
        try await run.value
        #expect(traffic.requestsFailed == 0)
        await waitUntil("every instance served") { cluster.instances.allSatisfy { $0.requestCount > 0 } }
        // The generator's requests carried tokens: most succeeded, a few were deliberately refused.
        let window = gateway.registry.telemetry.gatewayWindow(seconds: 60, state: gateway.registry.state)
        #expect(window.counters.status2xx > window.counters.unauthorized + window.counters.forbidden, "authenticated traffic dominates: \(window.counters.status2xx) 2xx, \(window.counters.unauthorized) 401, \(window.counters.forbidden) 403")

        await gateway.shutdown()
        await cluster.stop()
    }
}
