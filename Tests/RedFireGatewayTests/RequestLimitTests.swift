import DemoServices
import Foundation
import Testing

@testable import RedFireGateway

/// Size limits answered by the gateway itself, sent as raw bytes so no client library shapes them.
@Suite("Request limits", .cleansUp, .timeLimit(.minutes(2)))
struct RequestLimitTests {
    @Test func oversizedTargetsHeadersAndBodiesGet414431And413() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await tradingGateway(instances, routes: [
            RouteConfig(prefix: "/api/v1/trading", service: "user_trading"),
            { var route = RouteConfig(prefix: "/api/v1/small", service: "user_trading"); route.maxBodySize = 10; return route }(),
        ])
        let before = instances[0].requestCount

        var reply = try await RawHTTP.send(port: gateway.port, target: "/api/v1/trading/" + String(repeating: "a", count: 9000))
        #expect(reply.status == 414 && reply.errorCode == "uri_too_long")

        reply = try await RawHTTP.send(port: gateway.port, target: "/api/v1/trading/orders", headers: [("X-Big", String(repeating: "b", count: 40_000))])
        #expect(reply.status == 431 && reply.errorCode == "headers_too_large", "\(reply.status)")
        reply = try await RawHTTP.send(port: gateway.port, target: "/api/v1/trading/orders", headers: (0..<120).map { ("X-Many-\($0)", "v") })
        #expect(reply.status == 431)

        // Declared too large: refused before the body is sent at all.
        reply = try await RawHTTP.send(port: gateway.port, method: "POST", target: "/api/v1/trading/orders", headers: [("Content-Length", "20000000")])
        #expect(reply.status == 413 && reply.errorCode == "body_too_large")
        #expect(reply.headers.first(name: "Connection")?.lowercased() == "close")
        let small = "POST /api/v1/small/orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 11\r\n\r\nhello world"
        reply = try await RawHTTP.exchange(port: gateway.port, bytes: Array(small.utf8))
        #expect(reply.status == 413, "the route's own limit")
        let fits = "POST /api/v1/small/orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 10\r\n\r\nhelloworld"
        do {
            #expect(try await RawHTTP.exchange(port: gateway.port, bytes: Array(fits.utf8)).status == 201)
        } catch {
            Issue.record("the request within the limit got no complete answer: \(error)")
        }

        #expect(instances[0].requestCount == before + 1, "only the request within the limits reached the service")
        await gateway.shutdown()
        await stopAll(instances)
    }
}
