import AsyncHTTPClient
import DemoServices
import Testing

@testable import RedFireGateway

@Suite("Routing", .cleansUp, .timeLimit(.minutes(2)))
struct RoutingTests {
    @Test func prefixMatchesWholeSegmentsAndLongestWins() async throws {
        let general = try await startInstances(.userTrading, count: 1, prefix: "general")
        let orders = try await startInstances(.userTrading, count: 1, prefix: "orders")
        var config = GatewayConfig()
        config.services = [serviceConfig("general", general), serviceConfig("orders", orders)]
        config.routes = [RouteConfig(prefix: "/api/v1/trading", service: "general"),
                         RouteConfig(prefix: "/api/v1/trading/orders", service: "orders")]
        let gateway = try await GatewayHarness.start(config)

        #expect(try await gateway.send("/api/v1/trading").instance == "general-1")
        #expect(try await gateway.send("/api/v1/trading/positions?x=1").instance == "general-1")
        #expect(try await gateway.send("/api/v1/trading/orders").instance == "orders-1")
        #expect(try await gateway.send("/api/v1/trading/orders/42").instance == "orders-1")
        #expect(try await gateway.send("/api/v1/trading/ordersX").instance == "general-1")
        let miss = try await gateway.send("/api/v1/tradingX/orders")
        #expect(miss.status == 404)
        #expect(miss.errorCode == "route_not_found")
        #expect(miss.headers.first(name: "Content-Type") == "application/json")
        let requestID = try #require(miss.headers.first(name: "X-Request-ID"))
        #expect(miss.body == #"{"error":{"code":"route_not_found","message":"No route matches this path.","request_id":"\#(requestID)"}}"#)

        await gateway.shutdown()
        await stopAll(general + orders)
    }

    @Test func methodNotAllowedAnswers405WithAllow() async throws {
        let instances = try await startInstances(.monitor, count: 1)
        let gateway = try await tradingGateway(instances, routes: [RouteConfig(prefix: "/api/v1/trading", service: "user_trading", methods: ["GET", "POST"])])
        let reply = try await gateway.send(.DELETE, "/api/v1/trading/orders/1")
        #expect(reply.status == 405)
        #expect(reply.errorCode == "method_not_allowed")
        #expect(reply.headers.first(name: "Allow") == "GET, HEAD, POST")
        #expect(try await gateway.send(.POST, "/api/v1/trading/orders").status == 201)
        #expect(try await gateway.send(.HEAD, "/api/v1/trading/orders").status == 200)
        #expect(instances[0].requestCount == 2)
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test func routesSelectInstancesByVersion() async throws {
        let v1 = try await startInstances(.userTrading, count: 2, prefix: "v1")
        let v2 = try await startInstances(.userTrading, count: 1, prefix: "v2")
        var service = serviceConfig("user_trading", v1 + v2)
        service.instances[0].version = "1.4.0"
        service.instances[1].version = "1.5.2"
        service.instances[2].version = "2.0.0"
        var config = GatewayConfig()
        config.services = [service]
        config.routes = [RouteConfig(prefix: "/api/v1/trading", service: "user_trading", version: "1"),
                         RouteConfig(prefix: "/api/v2/trading", service: "user_trading", version: "2")]
        let gateway = try await GatewayHarness.start(config)
        var seenV1: Set<String> = []
        for _ in 0..<6 {
            seenV1.insert(try #require(try await gateway.send("/api/v1/trading/orders").instance))
            #expect(try await gateway.send("/api/v2/trading/orders").instance == "v2-1")
        }
        #expect(seenV1 == ["v1-1", "v1-2"])
        await gateway.shutdown()
        await stopAll(v1 + v2)
    }

    @Test func stripPrefixIsOffByDefaultAndOptional() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await tradingGateway(instances, routes: [
            RouteConfig(prefix: "/api/v1/trading", service: "user_trading"),
            RouteConfig(prefix: "/short", service: "user_trading", stripPrefix: true),
        ])
        #expect(try await gateway.echo(.GET, "/api/v1/trading/_echo?a=1&b=2").path == "/api/v1/trading/_echo")
        #expect(try await gateway.echo(.GET, "/api/v1/trading/_echo?a=1&b=2").query == "a=1&b=2")
        #expect(try await gateway.echo(.GET, "/short/x/_echo?q=1").path == "/x/_echo")
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test func probes() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await tradingGateway(instances)
        #expect(try await gateway.send("/health").status == 200)
        #expect(try await gateway.send("/ready").status == 200)
        await instances[0].stop()
        await waitUntil("instance unhealthy") { gateway.registry.state.services[0].eligible.isEmpty }
        let notReady = try await gateway.send("/ready")
        #expect(notReady.status == 503)
        #expect(notReady.errorCode == "not_ready")
        #expect(try await gateway.send("/health").status == 200)
        await gateway.shutdown()
        await stopAll(instances)  // the stopped instance holds its port (refusing) until here
    }
}
