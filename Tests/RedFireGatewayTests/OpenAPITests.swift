import DemoServices
import Foundation
import HTTPTypes
import Testing

@testable import RedFireGateway

@Suite("OpenAPI document", .cleansUp, .timeLimit(.minutes(2)))
struct OpenAPITests {
    static func document() throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json.utf8)) as? [String: Any])
    }

    /// Every route the gateway serves itself is in the document, with its method — and nothing else is.
    @Test func everyRouteIsDocumented() async throws {
        let paths = try #require(try Self.document()["paths"] as? [String: [String: Any]])
        var documented: Set<String> = []
        for (path, operations) in paths {
            for method in operations.keys { documented.insert("\(method.uppercased()) \(path)") }
        }
        let registry = ServiceRegistry(config: GatewayConfig())
        let admin = AdminAPI(control: GatewayControl(registry: registry)).router()
        let (auth, _) = try await AccessTokenClaimTests.service()
        let login = AuthEndpoints.router(AuthEndpoints.Handlers(auth: auth, registrationOpen: true))
        var served: Set<String> = ["GET /health", "GET /ready", "GET /metrics", "GET /gateway/openapi.json", "GET /gateway/docs", "GET /gateway/jwks.json"]
        for route in admin.routes + login.routes {
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

    /// The binary carries docs/openapi.yaml exactly (`scripts/embed-openapi.sh` after every edit).
    @Test func embeddedDocumentIsTheYAMLFile() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let file = try String(contentsOf: root.appendingPathComponent("docs/openapi.yaml"), encoding: .utf8)
        #expect(OpenAPIDocument.yaml + "\n" == file, "docs/openapi.yaml changed: run scripts/embed-openapi.sh")
    }

    /// Shared parts are written once: admin operations inherit the top-level security, and the error
    /// responses and path parameters they repeat are references to `components`.
    @Test func sharedPartsLiveInComponents() throws {
        let document = try Self.document()
        let components = try #require(document["components"] as? [String: Any])
        let responses = try #require(components["responses"] as? [String: Any])
        #expect(Set(responses.keys).isSuperset(of: ["AdminUnauthorized", "AdminForbidden", "ServiceNotFound", "InstanceNotFound"]))
        #expect((components["parameters"] as? [String: Any])?.keys.sorted() == ["InstanceID", "ServiceName"])
        let security = try #require(document["security"] as? [[String: [String]]])
        #expect(security.flatMap(\.keys).sorted() == ["accessToken", "adminToken", "apiKey"])
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        for (path, operations) in paths where path.hasPrefix("/gateway/services") {
            for (method, operation) in operations {
                let operation = try #require(operation as? [String: Any])
                #expect(operation["security"] == nil, "\(method) \(path) repeats the admin security")
                let unauthorized = (operation["responses"] as? [String: Any])?["401"] as? [String: String]
                #expect(unauthorized == ["$ref": "#/components/responses/AdminUnauthorized"], "\(method) \(path)")
            }
        }
    }

    @Test func commandPrintsTheDocument() async throws {
        let child = try GatewayProcess(["openapi"])
        #expect(await child.waitForExit() == 0)
        let expected = OpenAPIDocument.json.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(child.output.trimmingCharacters(in: .whitespacesAndNewlines) == expected)
    }
}
