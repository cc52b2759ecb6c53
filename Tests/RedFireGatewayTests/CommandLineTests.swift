import AsyncHTTPClient
import DemoServices
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import RedFireGateway

@Suite("Command line", .serialized, .cleansUp, .timeLimit(.minutes(2)))
struct CommandLineTests {
    static func writeConfig(_ text: String) throws -> String {
        let directory = URL(fileURLWithPath: TemporaryPath.make("redfire-test"))
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("gateway.yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func configCheckAcceptsTheExample() async throws {
        let result = try await GatewayProcess.run(["config", "check", ConfigTests.examplePath], environment: ["JWT_SECRET": String(repeating: "s", count: 48)])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("OK (5 services"))
    }

    @Test func configCheckReportsEveryProblemWithItsKeyPath() async throws {
        let path = try Self.writeConfig("""
        services:
          user_trading:
            instances:
              - url: http://127.0.0.1:9001
                wieght: 2
            health_check: {interval: 5}
        routes:
          - prefix: /api/v1/trading
            service: user_tradng
        """)
        let result = try await GatewayProcess.run(["config", "check", path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("3 problems"))
        #expect(result.stderr.contains("services.user_trading.instances[0].wieght (line 5): unknown key"))
        #expect(result.stderr.contains("services.user_trading.health_check.interval (line 6): invalid duration"))
        #expect(result.stderr.contains("routes[0].service (line 9): no service named \"user_tradng\""))
    }

    @Test func configCheckReadsTLSFilesAndWarnsOfExpiry() async throws {
        let files = try TLSListenerTests.Files()
        try files.server("soon", names: ["api.redfire.test"], validFor: 86_400 * 9 + 3600)
        try files.server("fine", names: ["fine.redfire.test"])
        try files.server("expired", names: ["old.redfire.test"], validFor: -60)
        try files.server("open", names: ["open.redfire.test"])
        chmod(files.path("open.key"), 0o644)
        try files.server("other", names: ["other.redfire.test"])
        let services = """

        services:
          user_trading:
            instances:
              - url: http://127.0.0.1:9001
        routes:
          - prefix: /api/v1/trading
            service: user_trading
        """
        let good = files.path("good.yaml")
        try ("""
        listeners:
          - address: 127.0.0.1:8443
            tls:
              certificates:
                - {cert: soon.pem, key: soon.key}
                - {cert: fine.pem, key: fine.key}
              hsts: "max-age=31536000"
          - address: 127.0.0.1:8080
            redirect_https: true
        """ + services).write(toFile: good, atomically: true, encoding: .utf8)
        var result = try await GatewayProcess.run(["config", "check", good])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("warning: listeners[0].tls.certificates[0] (api.redfire.test): expires in 9 days"), "\(result.stderr)")
        #expect(!result.stderr.contains("fine.redfire.test"))

        let bad = files.path("bad.yaml")
        try ("""
        listen: 127.0.0.1:8000
        listeners:
          - address: 127.0.0.1:8443
            tls:
              certificates:
                - {cert: expired.pem, key: expired.key}
          - address: 127.0.0.1:8444
            tls:
              certificates:
                - {cert: open.pem, key: open.key}
          - address: 127.0.0.1:8445
            tls:
              certificates:
                - {cert: fine.pem, key: other.key}
          - address: 127.0.0.1:8446
            tls:
              certificates:
                - {cert: missing.pem, key: fine.key}
              client_certificates: required
              min_version: "1.0"
          - address: 127.0.0.1:8080
            redirect_https: true
            tls:
              certificates:
                - {cert: fine.pem, key: fine.key}
        """ + services).write(toFile: bad, atomically: true, encoding: .utf8)
        result = try await GatewayProcess.run(["config", "check", bad])
        #expect(result.status == 1)
        for expected in ["listen (line 1): use either listen or listeners, not both",
                         "listeners[0].tls: certificates[0].cert \(files.path("expired.pem")): expired on",
                         "listeners[1].tls: certificates[0].key \(files.path("open.key")): readable by others (mode 644); chmod 600 it",
                         "listeners[2].tls: certificates[0]: \(files.path("other.key")) is not the private key of \(files.path("fine.pem"))",
                         "listeners[3].tls.client_ca", "is required when client_certificates is required",
                         "listeners[3].tls.min_version", "must be one of 1.2, 1.3",
                         "listeners[4].redirect_https", "is for plain listeners"] {
            #expect(result.stderr.contains(expected), "\(expected)\n\(result.stderr)")
        }
    }

    @Test func usersCommandManagesTheStoreNamedByTheConfig() async throws {
        let path = try Self.writeConfig(ConfigTests.minimalYAML + """
        auth:
          bcrypt_cost: 4
          roles:
            trader: [trading:read, trading:write]
            admin: ["gateway:admin"]
        """)
        var result = try await GatewayProcess.run(["users", "add", "alice", "--role", "trader", "--password-stdin", "--config", path],
                                                  input: "correct-horse-battery\n")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("added alice (id 1) with roles trader"))
        result = try await GatewayProcess.run(["users", "add", "bob", "--password-stdin", "--config", path], input: "short\n")
        #expect(result.status == 1)
        #expect(result.stderr.contains("password: must be at least 10 characters"))
        result = try await GatewayProcess.run(["users", "grant", "alice", "root", "--config", path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("no role root in auth.roles; roles: admin, trader"))
        #expect(try await GatewayProcess.run(["users", "grant", "alice", "admin", "--config", path]).status == 0)
        #expect(try await GatewayProcess.run(["users", "disable", "alice", "--config", path]).status == 0)
        result = try await GatewayProcess.run(["users", "list", "--config", path])
        #expect(result.stdout.contains("alice"))
        #expect(result.stdout.contains("disabled"))
        #expect(result.stdout.contains("gateway:admin,trading:read,trading:write"))
        #expect(!result.stdout.contains("$2"), "no hash is ever printed")
        // The store is the file next to the configuration, under data/.
        let database = (path as NSString).deletingLastPathComponent + "/data/auth.sqlite"
        #expect(FileManager.default.fileExists(atPath: database))
    }

    @Test func keysCommandCreatesListsAndRevokesKeysShownOnce() async throws {
        let path = try Self.writeConfig(ConfigTests.minimalYAML + """
        auth:
          bcrypt_cost: 4
          roles:
            trader: [trading:read]
        """)
        #expect(try await GatewayProcess.run(["users", "add", "alice", "--role", "trader", "--password-stdin", "--config", path],
                                             input: "correct-horse-battery\n").status == 0)
        var result = try await GatewayProcess.run(["keys", "create", "--user", "alice", "--config", path])
        #expect(result.status == 0, "\(result.stderr)")
        let userKey = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(userKey.hasPrefix("rf_") && userKey.count > 40, "the key alone on stdout: \(userKey)")
        #expect(result.stderr.contains("shown only this once"))
        result = try await GatewayProcess.run(["keys", "create", "--service-account", "reporting", "--permission", "trading:read",
                                               "--expires-in", "720h", "--config", path])
        #expect(result.status == 0, "\(result.stderr)")
        let serviceKey = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try await GatewayProcess.run(["keys", "create", "--service-account", "x", "--permission", "nope", "--config", path]).status == 1)
        #expect(try await GatewayProcess.run(["keys", "create", "--user", "nobody", "--config", path]).stderr.contains("no user named nobody"))

        let userKeyID = String(userKey.split(separator: "_")[1])
        result = try await GatewayProcess.run(["keys", "list", "--config", path])
        #expect(result.stdout.contains(userKeyID) && result.stdout.contains("user:alice") && result.stdout.contains("service:reporting"))
        #expect(result.stdout.contains("trading:read"))
        #expect(!result.stdout.contains(userKey) && !result.stdout.contains(serviceKey), "keys are never listed")
        #expect(try await GatewayProcess.run(["keys", "revoke", userKeyID, "--config", path]).status == 0)
        result = try await GatewayProcess.run(["keys", "list", "--config", path])
        #expect(result.stdout.split(separator: "\n").first { $0.contains(userKeyID) }?.contains("revoked") == true)
        #expect(try await GatewayProcess.run(["keys", "revoke", "000000000000", "--config", path]).stderr.contains("no API key with id"))
    }

    @Test func unreadableConfigIsAClearError() async throws {
        let result = try await GatewayProcess.run(["serve", "--config", "/nonexistent/gateway.yaml"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("does not exist"))
    }

    static func config(upstreamPort: Int) -> String {
        """
        listen: 127.0.0.1:0
        shutdown_grace: 10s
        services:
          user_trading:
            instances: [{url: "http://127.0.0.1:\(upstreamPort)"}]
        routes:
          - {prefix: /api/v1/trading, service: user_trading}
        """
    }

    @Test func portInUseExitsWithAnActionableMessage() async throws {
        let holder = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = holder.localAddress!.port!
        let path = try Self.writeConfig(Self.config(upstreamPort: 1))
        let result = try await GatewayProcess.run(["serve", "--config", path, "--listen", "127.0.0.1:\(port)"])
        #expect(result.status == 3)
        #expect(result.stderr.contains("already in use"))
        #expect(result.stderr.contains("--listen"))
        try await holder.close()
    }

    @Test func sigtermLetsInFlightRequestsFinishThenExitsZero() async throws {
        let upstream = try await DemoInstance.start(service: .userTrading, id: "slow-1")
        let path = try Self.writeConfig(Self.config(upstreamPort: upstream.port))
        let child = try GatewayProcess(["serve", "--config", path])
        // `--listen 127.0.0.1:0` in the file: the bound port is printed alone on a line.
        let port = try await child.listeningPort()
        #expect(port > 0)

        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let requests = (0..<3).map { _ in
            Task {
                let response = try await client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/api/v1/trading/orders?sleep_ms=1500"), timeout: .seconds(20))
                let body = try await response.body.collect(upTo: 1 << 20)
                return (Int(response.status.code), String(buffer: body))
            }
        }
        await waitUntil("requests in flight upstream") { upstream.inFlight == 3 }
        kill(child.pid, SIGTERM)
        for request in requests {
            let (status, body) = try await request.value
            #expect(status == 200)
            #expect(body.contains("slow-1"))
        }
        let status = await child.waitForExit()
        #expect(status == 0, "\(child.errorOutput)")
        try await client.shutdown()
        await upstream.stop()
    }

    /// `demo-services` runs the five services alone and writes their configuration (what
    /// `scripts/cluster.sh` puts three gateways in front of): a valid file whose instances answer.
    @Test func demoServicesRunAloneAndWriteTheirConfiguration() async throws {
        let path = TemporaryPath.make("redfire-services", ".yaml")
        let child = try GatewayProcess(["demo-services", "--write-config", path])
        await waitUntil("the configuration is written") { child.output.contains("demo services running") }
        // Its routes carry the demo's permissions, so a gateway in front needs `auth` as well.
        let auth = "auth: {jwt_secret: \"\(AuthFlowTests.secret)\", roles: {trader: [\"trading:read\"]}}\n"
        let config = try GatewayConfig.parse(yaml: auth + String(contentsOfFile: path, encoding: .utf8), environment: [:])
        #expect(config.services.count == 5 && config.routes.count == 5)
        #expect(config.routes.allSatisfy { $0.permissions != nil })
        let first = try #require(config.services.first?.instances.first)
        let health = try await HTTPClient.shared.execute(HTTPClientRequest(url: "\(first.url)/health"), timeout: .seconds(5))
        #expect(health.status == .ok)
        kill(child.pid, SIGTERM)
        #expect(await child.waitForExit() == 0)
    }
}
