import DemoServices
import Foundation
import HTTPTypes
import Testing

@testable import RedFireGateway

@Suite("OpenAPI document")
struct OpenAPITests {
    static func document() throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json.utf8)) as? [String: Any])
    }

    /// Every route the gateway serves itself is in the document, with its method — and nothing else is.
    @Test func everyRouteIsDocumented() throws {
        let paths = try #require(try Self.document()["paths"] as? [String: [String: Any]])
        var documented: Set<String> = []
        for (path, operations) in paths {
            for method in operations.keys { documented.insert("\(method.uppercased()) \(path)") }
        }
        let registry = ServiceRegistry(config: GatewayConfig())
        let router = AdminAPI(control: GatewayControl(registry: registry)).router()
        var served: Set<String> = ["GET /health", "GET /ready", "GET /metrics", "GET /gateway/openapi.json", "GET /gateway/docs", "GET /gateway/jwks.json"]
        served.formUnion(AuthEndpoints.operations)
        for route in router.routes {
            // Hummingbird writes parameters as `:name`; OpenAPI as `{name}`.
            let path = route.path.description.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
            served.insert("\(route.method.rawValue) /\(path)")
        }
        #expect(served.count >= 18)
        #expect(served.subtracting(documented).isEmpty, "undocumented: \(served.subtracting(documented).sorted())")
        #expect(documented.subtracting(served).isEmpty, "documented but not served: \(documented.subtracting(served).sorted())")
        #expect(try Self.document()["openapi"] as? String == "3.1.0")
    }

    @Test func documentAndReferencePageArePublic() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        var config = GatewayConfig()
        config.services = [serviceConfig("user_trading", instances)]
        config.routes = [RouteConfig(prefix: "/api/v1/trading", service: "user_trading")]
        config.adminToken = "docs-test-token-0123456789"
        let gateway = try await GatewayHarness.start(config)
        let document = try await gateway.send("/gateway/openapi.json")
        #expect(document.status == 200)
        #expect(document.body == OpenAPIDocument.json)
        let page = try await gateway.send("/gateway/docs")
        #expect(page.status == 200)
        #expect(page.headers.first(name: "Content-Type")?.hasPrefix("text/html") == true)
        #expect(page.body.contains("/gateway/openapi.json"))
        #expect(!page.body.contains("http://") && !page.body.contains("https://"), "the page loads nothing from elsewhere")
        #expect(try await gateway.send("/gateway/services").status == 401)
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test func commandPrintsTheDocument() async throws {
        let child = try GatewayProcess(["openapi"])
        #expect(await child.waitForExit() == 0)
        let expected = OpenAPIDocument.json.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(child.output.trimmingCharacters(in: .whitespacesAndNewlines) == expected)
    }
}
