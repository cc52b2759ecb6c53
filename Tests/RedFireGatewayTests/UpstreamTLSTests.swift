import DemoServices
import Foundation
import NIOCore
import NIOSSL
import Testing

@testable import RedFireGateway

/// `https://` instances over the gateway's own transport: verified against a CA the test makes, the
/// name checked (or `server_name`), client certificates presented; a certificate that does not verify is a
/// 502 with the envelope and a failed health check, never a request sent in clear.
extension BulkTraffic {
@Suite("TLS to instances", .serialized, .cleansUp, .timeLimit(.minutes(2)))
struct UpstreamTLSTests {
    /// An `https://` demo instance whose certificate `files.authority` signed for `names` (and 127.0.0.1),
    /// requiring client certificates signed by `clientCA` when given.
    static func secureInstance(_ files: TLSListenerTests.Files, id: String, names: [String] = [], ip: Bool = true,
                               clientCA: TestAuthority? = nil) async throws -> DemoInstance {
        let issued = try files.authority.issue(commonName: names.first ?? "127.0.0.1", dnsNames: names, ipAddresses: ip ? ["127.0.0.1"] : [])
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: Array(try issued.certificatePEM.utf8), format: .pem))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(issued.keyPEM.utf8), format: .pem)))
        if let clientCA {
            tls.certificateVerification = .noHostnameVerification
            tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(try clientCA.pem.utf8), format: .pem)])
        }
        let instance = try await DemoInstance.start(service: .userTrading, id: id, tls: tls)
        TestResources.register { await instance.stop() }
        return instance
    }

    static func gateway(_ instances: [DemoInstance], tls: UpstreamTLSConfig?, transport: UpstreamTransportKind = .nio) async throws -> GatewayHarness {
        var service = serviceConfig("user_trading", instances)
        service.tls = tls
        var config = GatewayConfig()
        config.upstreamTransport = transport
        config.services = [service]
        config.routes = [RouteConfig(prefix: "/api/v1/trading", service: "user_trading")]
        return try await GatewayHarness.start(config)
    }

    static func waitForCheck(_ gateway: GatewayHarness) async -> InstanceRuntime {
        let runtime = gateway.registry.state.services[0].members[0].runtime
        await waitUntil("checked") { runtime.health != .unknown }
        return runtime
    }

    @Test(arguments: [UpstreamTransportKind.nio, .asyncHTTPClient])
    func verifiedInstancesAreServedOverTLS(transport: UpstreamTransportKind) async throws {
        let files = try TLSListenerTests.Files()
        let instance = try await Self.secureInstance(files, id: "secure-1")
        #expect(instance.url.hasPrefix("https://127.0.0.1:"))
        let gateway = try await Self.gateway([instance], tls: UpstreamTLSConfig(ca: files.path("ca.pem")), transport: transport)
        let runtime = await Self.waitForCheck(gateway)
        #expect(runtime.health == .healthy, "\(runtime.recentChecks)")
        let report = try await gateway.echo("/api/v1/trading/_echo")
        #expect(report.instance == "secure-1")
        #expect(report.headers["x-forwarded-proto"] == ["http"], "the client's scheme, not the hop's")
        for _ in 0..<5 { #expect(try await gateway.send("/api/v1/trading/orders").status == 200) }
        await gateway.shutdown()
    }

    /// A health check of an `https://` instance that does not answer (here: for 30 s) does not hold the
    /// gateway's shutdown until its timeout: the stopping check abandons its exchange, and its wait ends
    /// without waiting for the TLS close to complete.
    @Test func aHungCheckDoesNotHoldShutdown() async throws {
        let files = try TLSListenerTests.Files()
        let instance = try await Self.secureInstance(files, id: "secure-hung")
        var service = serviceConfig("user_trading", [instance])
        service.tls = UpstreamTLSConfig(ca: files.path("ca.pem"))
        service.healthCheck.path = "/orders?sleep_ms=30000"
        service.healthCheck.timeout = .seconds(60)
        var config = GatewayConfig()
        config.services = [service]
        config.routes = [RouteConfig(prefix: "/api/v1/trading", service: "user_trading")]
        let gateway = try await GatewayHarness.start(config)
        await waitUntil("the check reached the instance") { instance.inFlight == 1 }
        let stopping = ContinuousClock.now
        await gateway.shutdown()
        // Not after the check's 30 s, nor after TLS's wait for the busy instance's close_notify (5 s).
        #expect(ContinuousClock.now - stopping < .seconds(3), "stopped at once")
    }

    @Test func anUnverifiedCertificateIsABadGatewayNeverAPlainRequest() async throws {
        let files = try TLSListenerTests.Files()
        let instance = try await Self.secureInstance(files, id: "secure-1")
        // The system's trust store does not know the test CA: the health check says why …
        let gateway = try await Self.gateway([instance], tls: nil)
        let runtime = await Self.waitForCheck(gateway)
        #expect(runtime.health == .unhealthy)
        #expect(runtime.recentChecks.last?.reason == "TLS handshake failed", "\(runtime.recentChecks)")
        await gateway.shutdown()
        // … and without health checks the request itself fails: 502 with the envelope, an upstream
        // error of the instance, nothing sent to it in clear.
        var service = serviceConfig("user_trading", [instance])
        service.healthCheck.enabled = false
        var config = GatewayConfig()
        config.services = [service]
        config.routes = [RouteConfig(prefix: "/api/v1/trading", service: "user_trading")]
        let unchecked = try await GatewayHarness.start(config)
        let reply = try await unchecked.send("/api/v1/trading/orders")
        #expect(reply.status == 502 && reply.errorCode == "bad_gateway", "\(reply.status) \(reply.body)")
        #expect(reply.headers.first(name: "X-Request-ID") != nil)
        let errors = unchecked.registry.state.services[0].members[0].runtime.metrics.window(seconds: 60).counters.upstreamErrors
        #expect(errors == 1)
        #expect(instance.requestCount == 0, "nothing reached the instance")
        await unchecked.shutdown()
    }

    @Test func serverNameIsSentAndVerifiedAndAClientCertificatePresented() async throws {
        let files = try TLSListenerTests.Files()
        let gatewayIdentity = try files.authority.issue(commonName: "redfire-gateway", client: true)
        try gatewayIdentity.write(certificate: files.path("gateway.pem"), key: files.path("gateway.key"))
        // Named trading.internal only (no IP address), and wants a client certificate from the test CA.
        let instance = try await Self.secureInstance(files, id: "secure-1", names: ["trading.internal"], ip: false, clientCA: files.authority)

        var tls = UpstreamTLSConfig(ca: files.path("ca.pem"), serverName: "trading.internal",
                                    certificate: files.path("gateway.pem"), key: files.path("gateway.key"))
        let gateway = try await Self.gateway([instance], tls: tls)
        #expect(await Self.waitForCheck(gateway).health == .healthy)
        #expect(try await gateway.echo("/api/v1/trading/_echo").instance == "secure-1")
        await gateway.shutdown()

        // The name is what the certificate is checked against: by its IP address it fails.
        tls.serverName = nil
        let byAddress = try await Self.gateway([instance], tls: tls)
        #expect(await Self.waitForCheck(byAddress).health == .unhealthy)
        #expect(byAddress.registry.state.services[0].members[0].runtime.recentChecks.last?.reason == "TLS handshake failed")
        await byAddress.shutdown()

        // Without the client certificate the instance refuses the gateway.
        tls.serverName = "trading.internal"
        tls.certificate = nil
        tls.key = nil
        let anonymous = try await Self.gateway([instance], tls: tls)
        #expect(await Self.waitForCheck(anonymous).health == .unhealthy)
        #expect(anonymous.registry.state.services[0].members[0].runtime.recentChecks.last?.reason == "TLS handshake failed")
        await anonymous.shutdown()
    }

    @Test func configurationChecksTheServiceTLSSection() throws {
        let files = try TLSListenerTests.Files()
        try files.server("gateway", names: ["redfire-gateway"])
        func problems(_ tls: String, instance: String = "https://127.0.0.1:9443", transport: String = "nio") -> [String] {
            let yaml = """
            upstream_transport: \(transport)
            services:
              user_trading:
                instances:
                  - url: \(instance)
                tls:
            \(tls.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n"))
            routes:
              - prefix: /api/v1/trading
                service: user_trading
            """
            do {
                _ = try GatewayConfig.parse(yaml: yaml, baseDirectory: files.directory)
                return []
            } catch let error as ConfigError {
                return error.problems.map(\.description)
            } catch {
                return ["\(error)"]
            }
        }
        #expect(problems("ca: ca.pem\nserver_name: trading.internal\ncert: gateway.pem\nkey: gateway.key").isEmpty)
        #expect(problems("ca: missing.pem").contains { $0.contains("ca \(files.path("missing.pem")): cannot read the file") })
        #expect(problems("cert: gateway.pem").contains { $0.contains("cert and key go together") })
        #expect(problems("ca: ca.pem", instance: "http://127.0.0.1:9001").contains { $0.contains("applies to https:// instances") })
        #expect(problems("server_name: trading.internal", transport: "async_http_client").contains { $0.contains("needs upstream_transport: nio") })
        #expect(problems("min_version: \"1.1\"").contains { $0.contains("must be one of 1.2, 1.3") })
    }
}
}
