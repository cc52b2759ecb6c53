import DemoServices
import Foundation
import Testing

@testable import RedFireGateway

/// TLS to the cluster store, against a PostgreSQL of this suite's own that accepts TLS only
/// (`hostssl` lines, no `host`), with certificates the suite makes: libpq's `sslmode`s mean what they
/// mean to `psql`, every connection of a node (its pool and its listener) is encrypted, and each way a
/// certificate can be wrong is refused and said — in `/gateway/cluster` and `/ready`.
@Suite("Cluster store over TLS", .cleansUp, .timeLimit(.minutes(2)),
       .enabled(if: TestPostgres.available || TestPostgres.required, "needs PostgreSQL's server binaries (apt-get install postgresql)"))
struct ClusterTLSTests {
    /// The server, its certificate authority's file and a client certificate for `certuser`.
    struct Setup: Sendable {
        let server: TestPostgres.Server
        let files: String
        var authority: String { files + "/ca.crt" }
        var otherAuthority: String { files + "/other-ca.crt" }
        var clientCertificate: String { files + "/client.crt" }
        var clientKey: String { files + "/client.key" }
    }

    static let setup = Task<Setup, any Error> {
        let authority = try TestAuthority("RedFire Test CA")
        let files = FileManager.default.temporaryDirectory.appendingPathComponent("redfire-tls-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: files, withIntermediateDirectories: true)
        try authority.write(to: files + "/ca.crt")
        try TestAuthority("Somebody Else's CA").write(to: files + "/other-ca.crt")
        try authority.issue(commonName: "certuser", client: true).write(certificate: files + "/client.crt", key: files + "/client.key")
        // The server's certificate names localhost and 127.0.0.1; it also listens on 127.0.0.2, which
        // the certificate does not name.
        let server = try TestPostgres.startServer(tls: .init(
            certificate: try authority.issue(commonName: "localhost", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"]),
            clientAuthority: authority,
            hba: """
                local all all trust
                hostssl all certuser 127.0.0.0/8 cert
                hostssl all all 127.0.0.0/8 trust

                """,
            listen: "127.0.0.1,127.0.0.2"))
        try server.administer("CREATE ROLE certuser LOGIN SUPERUSER")
        return Setup(server: server, files: files)
    }

    /// The store URL of a new database on the TLS server, with a query.
    static func store(host: String = "127.0.0.1", user: String = "redfire", _ query: String) async throws -> PostgresURL {
        let setup = try await setup.value
        let database = try setup.server.database()
        return try PostgresURL(validating: "postgres://\(user)@\(host):\(setup.server.port)/\(database.database)?\(query)")
    }

    @Test func verifiedTLSCarriesEveryConnectionOfEveryNode() async throws {
        let setup = try await Self.setup.value
        let a = try await Self.store("sslmode=verify-full&sslrootcert=\(setup.authority)")
        var b = a
        b.host = "localhost"  // verified by its DNS name, the other by its IP address
        let instances = try await startInstances(.userTrading, count: 2, prefix: "tls")
        let nodeA = try await ClusterTests.start(ClusterTests.config("node-a", store: a, instances: instances))
        let nodeB = try await ClusterTests.start(ClusterTests.config("node-b", store: b, instances: instances))
        try nodeA.control.drain(service: ClusterTests.service, instance: instances[0].id, actor: "test")
        #expect(await waitUntil(timeout: .seconds(2), "node-b applied a drain made on node-a") {
            nodeB.registry.runtime(id: instances[0].id)?.isDraining == true
        })
        // Each node's pool and listener: every backend serving this database speaks TLS 1.2 or later.
        let connections = try TestPostgres.run("psql", ["-h", setup.server.directory, "-p", String(setup.server.port), "-U", "redfire", "-d", "postgres", "-At", "-c", """
            SELECT s.ssl, s.version FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = '\(a.database)'
            """]).split(separator: "\n")
        #expect(connections.count >= 4, "\(connections)")
        #expect(connections.allSatisfy { $0.hasPrefix("t|TLSv1.3") || $0.hasPrefix("t|TLSv1.2") }, "\(connections)")
        let cluster = try await nodeA.send("/gateway/cluster", headers: AdminAPITests.auth)
        #expect(cluster.body.contains("sslmode=verify-full"), "\(cluster.body)")
    }

    @Test func aCertificateThatDoesNotHoldIsRefusedAndSaid() async throws {
        let setup = try await Self.setup.value
        let plain = try await TestPostgres.database()
        let cases: [(String, PostgresURL, String)] = [
            ("a server certificate from another CA", try await Self.store("sslmode=verify-ca&sslrootcert=\(setup.otherAuthority)"), "not signed by sslrootcert"),
            ("a host the certificate does not name", try await Self.store(host: "127.0.0.2", "sslmode=verify-full&sslrootcert=\(setup.authority)"), "certificate does not name 127.0.0.2"),
            ("require with a root certificate verifies as verify-ca", try await Self.store("sslmode=require&sslrootcert=\(setup.otherAuthority)"), "CERTIFICATE_VERIFY_FAILED"),
            ("no TLS against a TLS-only server", try await Self.store("sslmode=disable"), "no encryption"),
            ("certificate login without a client certificate", try await Self.store(user: "certuser", "sslmode=verify-full&sslrootcert=\(setup.authority)"), "requires a valid client certificate"),
            ("TLS required from a server without it", try PostgresURL(validating: "\(plain)?sslmode=require"), "does not offer TLS"),
        ]
        let instances = try await startInstances(.userTrading, count: 1, prefix: "tls-refused")
        for (what, url, said) in cases {
            let node = try await GatewayHarness.start(ClusterTests.config("refused", store: url, instances: instances))
            #expect(await waitUntil("\(what): refused") { node.control.cluster?.lastError != nil }, "\(what)")
            #expect(node.control.cluster?.isReachable == false, "\(what)")
            let view = try await node.send("/gateway/cluster", headers: AdminAPITests.auth).body
            #expect(view.contains(said), "\(what): \(view)")
            #expect(try await node.send("/ready").body.contains(said), "\(what)")
            await node.shutdown()
        }
    }

    @Test func verifyCAAcceptsAHostTheCertificateDoesNotNameAndAClientCertificateLogsIn() async throws {
        let setup = try await Self.setup.value
        let instances = try await startInstances(.userTrading, count: 1, prefix: "tls-ca")
        let byCA = try await Self.store(host: "127.0.0.2", "sslmode=verify-ca&sslrootcert=\(setup.authority)")
        let node = try await ClusterTests.start(ClusterTests.config("by-ca", store: byCA, instances: instances))
        #expect(try await node.send("/api/v1/trading/orders").status == 200)
        let byCertificate = try await Self.store(
            user: "certuser", "sslmode=verify-full&sslrootcert=\(setup.authority)&sslcert=\(setup.clientCertificate)&sslkey=\(setup.clientKey)")
        let certified = try await ClusterTests.start(ClusterTests.config("by-cert", store: byCertificate, instances: instances))
        #expect(certified.control.cluster?.isReachable == true)
    }

    @Test func storeURLsWithTLSParametersAreCheckedWhenTheConfigurationLoads() async throws {
        let setup = try await Self.setup.value
        func problem(_ store: String) -> String? {
            do {
                _ = try GatewayConfig.parse(yaml: """
                    services: {s: {instances: [{url: "http://127.0.0.1:9"}]}}
                    routes: [{prefix: /s, service: s}]
                    cluster: {store: "\(store)"}
                    """)
                return nil
            } catch {
                return "\(error)"
            }
        }
        let base = "postgres://gateway@db.internal/redfire"
        #expect(problem(base) == nil)
        #expect(problem("\(base)?sslmode=verify-full&sslrootcert=\(setup.authority)") == nil)
        #expect(problem("\(base)?sslrootcert=system") == nil)
        let broken = TemporaryPath.make("redfire-not-a-cert")
        try "not a certificate".write(toFile: broken, atomically: true, encoding: .utf8)
        let exposedKey = setup.files + "/exposed.key"
        try FileManager.default.copyItem(atPath: setup.clientKey, toPath: exposedKey)
        chmod(exposedKey, 0o644)
        let otherKey = setup.files + "/other.key"
        try TestAuthority("unrelated").issue(commonName: "x").write(certificate: setup.files + "/other.crt", key: otherKey)
        let expectations: [(String, String)] = [
            ("\(base)?sslmode=allow", "sslmode=allow is not supported"),
            ("\(base)?sslmode=verify", "unknown sslmode 'verify'"),
            ("\(base)?ssl=true", "unknown parameter 'ssl'"),
            ("\(base)?sslmode=verify-full", "needs sslrootcert"),
            ("\(base)?sslmode=verify-ca&sslrootcert=/nonexistent/ca.crt", "sslrootcert /nonexistent/ca.crt: cannot read the file"),
            ("\(base)?sslmode=verify-ca&sslrootcert=\(broken)", "no PEM certificate"),
            ("\(base)?sslcert=\(setup.clientCertificate)", "sslcert and sslkey go together"),
            ("\(base)?sslcert=\(setup.clientCertificate)&sslkey=\(exposedKey)", "readable by others"),
            ("\(base)?sslcert=\(setup.clientCertificate)&sslkey=\(otherKey)", "does sslkey belong to sslcert?"),
            ("\(base)?sslrootcert=system&sslmode=require", "sslrootcert=system needs sslmode=verify-full"),
        ]
        for (store, said) in expectations {
            let text = problem(store)
            #expect(text?.contains(said) == true, "\(store): \(text ?? "accepted")")
        }
        // The description names the mode, never a password.
        let url = try PostgresURL(validating: "postgres://u:secret@h/d?sslmode=verify-full&sslrootcert=\(setup.authority)")
        #expect(url.description == "postgres://u:***@h:5432/d?sslmode=verify-full")
    }
}
