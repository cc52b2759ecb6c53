import AsyncHTTPClient
import DemoServices
import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import RedFireGateway

@Suite("CORS", .cleansUp, .timeLimit(.minutes(2)))
struct CORSTests {
    @Test func originMatchingIsExactOrOneLabelPatterns() {
        var config = CORSConfig()
        config.allowedOrigins = ["https://app.redfire.example", "https://*.desk.redfire.example"]
        #expect(config.allows("https://app.redfire.example"))
        #expect(config.allows("https://eu.desk.redfire.example"))
        for origin in ["https://app.redfire.example.evil.com", "https://evil.com", "null", "http://app.redfire.example",
                       "https://app.redfire.example:8443", "https://a.b.desk.redfire.example", "https://.desk.redfire.example",
                       "https://evil.com/.desk.redfire.example", "https://APP.redfire.example"] {
            #expect(!config.allows(origin), "\(origin)")
        }
        config.allowedOrigins.append("null")
        #expect(config.allows("null"), "null only when listed")
    }

    @Test func allowedOriginsGetTheFieldsOthersNoneAndPreflightNeedsNoCredentials() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        var config = GatewayConfig()
        config.services = [serviceConfig("user_trading", instances)]
        config.routes = [RouteConfig(prefix: "/api/v1/trading", service: "user_trading", permissions: RoutePermissions(read: "trading:read"))]
        config.auth.jwtSecret = AuthFlowTests.secret
        config.auth.bcryptCost = 4
        config.dataDirectory = TemporaryPath.make("redfire-cors")
        config.cors.allowedOrigins = ["https://app.redfire.example"]
        config.cors.allowCredentials = true
        let gateway = try await GatewayHarness.start(config)
        let allowed = [("Origin", "https://app.redfire.example")]

        // Preflight: 204 from the gateway itself, no token needed, nothing reaches the service.
        let before = instances[0].requestCount
        var reply = try await gateway.send(.OPTIONS, "/api/v1/trading/orders", headers: allowed + [("Access-Control-Request-Method", "POST"),
                                                                                                   ("Access-Control-Request-Headers", "authorization,content-type")])
        #expect(reply.status == 204)
        #expect(reply.headers.first(name: "Access-Control-Allow-Origin") == "https://app.redfire.example")
        #expect(reply.headers.first(name: "Access-Control-Allow-Methods")?.contains("POST") == true)
        #expect(reply.headers.first(name: "Access-Control-Allow-Headers")?.contains("Authorization") == true)
        #expect(reply.headers.first(name: "Access-Control-Max-Age") == "600")
        #expect(reply.headers.first(name: "Access-Control-Allow-Credentials") == "true")
        #expect(instances[0].requestCount == before)

        // An error the gateway makes (401) is readable by the allowed app: fields, Vary and exposed headers.
        reply = try await gateway.send("/api/v1/trading/orders", headers: allowed)
        #expect(reply.status == 401)
        #expect(reply.headers.first(name: "Access-Control-Allow-Origin") == "https://app.redfire.example")
        #expect(reply.headers.first(name: "Access-Control-Allow-Origin") != "*", "never * with credentials")
        #expect(reply.headers[canonicalForm: "Vary"].contains { $0.lowercased() == "origin" })
        #expect(reply.headers.first(name: "Access-Control-Expose-Headers")?.contains("X-Request-ID") == true)

        // Disallowed, null and look-alike origins get no CORS field at all — but still Vary: Origin.
        for origin in ["https://evil.com", "null", "https://app.redfire.example.evil.com"] {
            for method in [HTTPMethod.GET, .OPTIONS] {
                let headers = [("Origin", origin)] + (method == .OPTIONS ? [("Access-Control-Request-Method", "GET")] : [])
                reply = try await gateway.send(method, "/api/v1/trading/orders", headers: headers)
                #expect(!reply.headers.contains { $0.name.lowercased().hasPrefix("access-control-") }, "\(origin) \(method)")
                #expect(reply.headers[canonicalForm: "Vary"].contains { $0.lowercased() == "origin" })
            }
        }
        // A 404 from the gateway carries them too.
        reply = try await gateway.send("/nowhere", headers: allowed)
        #expect(reply.status == 404 && reply.headers.first(name: "Access-Control-Allow-Origin") == "https://app.redfire.example")
        await gateway.shutdown()
        await stopAll(instances)
    }

    /// The gateway owns CORS: a service's own `Access-Control-*` fields (here it reflects a foreign
    /// origin with credentials, in any spelling) never reach the client — refused origin: none; allowed
    /// origin: the gateway's; no `cors` configured: none. Only a route with `cors: service` passes the
    /// service's fields unchanged, and forwards its preflights without credentials.
    @Test func theServicesCORSFieldsAreReplacedByTheGatewaysDecision() async throws {
        let server = try await ScriptedServer.start {
            ("HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin: https://evil.com\r\naccess-control-allow-credentials: true\r\n"
                + "ACCESS-CONTROL-EXPOSE-HEADERS: X-Internal-Secret\r\nAccess-Control-Allow-Methods: *\r\nAccess-Control-Max-Age: 86400\r\n"
                + "Content-Length: 2\r\n\r\nok", close: false)
        }
        func corsFields(_ reply: GatewayHarness.Reply) -> [String: String] {
            var fields: [String: String] = [:]
            for header in reply.headers where header.name.lowercased().hasPrefix("access-control-") { fields[header.name.lowercased()] = header.value }
            return fields
        }
        let evil = [("Origin", "https://evil.com")]
        let app = [("Origin", "https://app.redfire.example")]

        // Configured CORS, a route the gateway decides for.
        var gateway = try await rawInstanceGateway(port: server.port, id: "reflecting", gateway: {
            $0.cors.allowedOrigins = ["https://app.redfire.example"]
            $0.routes.append(RouteConfig(prefix: "/api/v1/vnpy", service: "user_trading"))
            $0.routes[1].corsByService = true
        })
        var reply = try await gateway.send("/api/v1/trading/orders", headers: evil)
        #expect(reply.status == 200 && corsFields(reply).isEmpty, "refused origin: \(corsFields(reply))")
        #expect(reply.headers[canonicalForm: "Vary"].contains { $0.lowercased() == "origin" })
        reply = try await gateway.send("/api/v1/trading/orders", headers: app)
        #expect(corsFields(reply) == ["access-control-allow-origin": "https://app.redfire.example",
                                      "access-control-expose-headers": "X-Request-ID, Retry-After, RateLimit, RateLimit-Policy"], "\(corsFields(reply))")
        reply = try await gateway.send("/api/v1/trading/orders")
        #expect(corsFields(reply).isEmpty, "no Origin: nothing")

        // `cors: service`: the service's fields, unchanged; its preflight is forwarded.
        reply = try await gateway.send("/api/v1/vnpy/ticks", headers: evil)
        #expect(corsFields(reply)["access-control-allow-origin"] == "https://evil.com" && corsFields(reply).count == 5, "\(corsFields(reply))")
        reply = try await gateway.send(.OPTIONS, "/api/v1/vnpy/ticks", headers: evil + [("Access-Control-Request-Method", "POST")])
        #expect(reply.status == 200 && corsFields(reply)["access-control-allow-methods"] == "*", "the service answered its own preflight")
        await gateway.shutdown()

        // No CORS configured: cross-origin access is not granted, whatever the service says.
        gateway = try await rawInstanceGateway(port: server.port, id: "reflecting")
        reply = try await gateway.send("/api/v1/trading/orders", headers: evil)
        #expect(reply.status == 200 && corsFields(reply).isEmpty, "\(corsFields(reply))")
        await gateway.shutdown()
        try await server.close()
    }
}
