import DemoServices
import Foundation
import NIOCore
import NIOSSL
import Testing

@testable import RedFireGateway

/// TLS termination with certificates the tests make (a CA, server and client certificates), real
/// handshakes from swift-nio-ssl clients: SNI, versions, client certificates, what services and the
/// access log are told, redirects, and certificates replaced while connections stay open.
extension BulkTraffic {
@Suite("TLS listeners", .serialized, .cleansUp, .timeLimit(.minutes(2)))
struct TLSListenerTests {
    /// A directory with a CA and the files of its certificates.
    struct Files {
        let directory: String
        let authority: TestAuthority

        init() throws {
            directory = TemporaryPath.make("redfire-tls")
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            authority = try TestAuthority("RedFire Test CA")
            try authority.write(to: path("ca.pem"))
        }

        func path(_ name: String) -> String { directory + "/" + name }

        /// Issues a server certificate for `names` into `NAME.pem` / `NAME.key`.
        @discardableResult
        func server(_ name: String, names: [String], validFor: TimeInterval = 86_400 * 30, by issuer: TestAuthority? = nil) throws -> ListenerTLSConfig.CertificateFiles {
            let certificate = try (issuer ?? authority).issue(commonName: names.first ?? name, dnsNames: names, validFor: validFor)
            try certificate.write(certificate: path("\(name).pem"), key: path("\(name).key"))
            return .init(certificate: path("\(name).pem"), key: path("\(name).key"))
        }

        var trust: [NIOSSLCertificate] { get throws { try NIOSSLCertificate.fromPEMFile(path("ca.pem")) } }
    }

    static func gateway(_ listeners: [ListenerConfig], instances: [DemoInstance], configure: (inout GatewayConfig) -> Void = { _ in }) async throws -> GatewayHarness {
        var config = GatewayConfig()
        config.listeners = listeners
        config.services = [serviceConfig("user_trading", instances)]
        config.routes = [RouteConfig(prefix: "/api/v1/trading", service: "user_trading")]
        configure(&config)
        return try await GatewayHarness.start(config)
    }

    static let loopback = ListenAddress(host: "127.0.0.1", port: 0)

    @Test func presentsTheCertificateTheClientNamedAndTheDefaultOtherwise() async throws {
        let files = try Files()
        var tls = ListenerTLSConfig(certificates: [
            try files.server("api", names: ["api.redfire.test"]),
            try files.server("other", names: ["other.redfire.test", "*.wild.redfire.test"]),
        ])
        tls.hsts = "max-age=31536000; includeSubDomains"
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await Self.gateway([ListenerConfig(address: Self.loopback, tls: tls)], instances: instances)
        let trust = try files.trust
        for (sni, expected) in [("api.redfire.test", "api.redfire.test"), ("other.redfire.test", "other.redfire.test"),
                                ("deep.wild.redfire.test", "other.redfire.test"), ("API.Redfire.Test", "api.redfire.test")] {
            let connection = try await TLSTestConnection.connect(port: gateway.port, .init(serverName: sni, trust: trust))
            #expect(connection.presentedNames.first == expected, "SNI \(sni) → \(connection.presentedNames)")
            #expect(connection.tlsVersion == .tlsv13)
            let reply = try await connection.get("/health", host: sni)
            #expect(reply.status == 200)
            #expect(reply.headers.first(name: "Strict-Transport-Security") == "max-age=31536000; includeSubDomains")
            await connection.close()
        }
        // A wildcard covers one label only; an unknown name or no SNI gets the default (first) certificate.
        for sni in ["a.b.wild.redfire.test", "unknown.test", nil] as [String?] {
            let connection = try await TLSTestConnection.connect(port: gateway.port, .init(serverName: sni, verifyHostname: false, trust: trust))
            #expect(connection.presentedNames == ["api.redfire.test"], "SNI \(sni ?? "none")")
            await connection.close()
        }
        await gateway.shutdown()
    }

    @Test func refusesOldVersionsPlainHTTPAndUnknownNamesAndCountsWhy() async throws {
        let files = try Files()
        let certificate = try files.server("api", names: ["api.redfire.test"])
        var strict = ListenerTLSConfig(certificates: [certificate])
        strict.strictSNI = true
        var modern = ListenerTLSConfig(certificates: [certificate])
        modern.minimumVersion = .v13
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await Self.gateway([
            ListenerConfig(address: Self.loopback, tls: ListenerTLSConfig(certificates: [certificate])),
            ListenerConfig(address: Self.loopback, tls: strict),
            ListenerConfig(address: Self.loopback, tls: modern),
        ], instances: instances) { $0.publicMetrics = true }
        let (standard, strictPort, modernPort) = (gateway.port, gateway.gateway.listeners[1].boundPort, gateway.gateway.listeners[2].boundPort)
        let trust = try files.trust

        // TLS 1.2 minimum by default: 1.0 and 1.1 are refused, 1.2 works, 1.3 is preferred.
        for old in [TLSVersion.tlsv1, .tlsv11] {
            await #expect(throws: (any Error).self) {
                try await TLSTestConnection.connect(port: standard, .init(serverName: "api.redfire.test", trust: trust, maximumVersion: old))
            }
        }
        let twelve = try await TLSTestConnection.connect(port: standard, .init(serverName: "api.redfire.test", trust: trust, maximumVersion: .tlsv12))
        #expect(twelve.tlsVersion == .tlsv12)
        #expect(try await twelve.get("/health").status == 200)
        await twelve.close()
        // `min_version: 1.3` refuses 1.2.
        await #expect(throws: (any Error).self) {
            try await TLSTestConnection.connect(port: modernPort, .init(serverName: "api.redfire.test", trust: trust, maximumVersion: .tlsv12))
        }
        // `strict_sni`: a name no certificate has, or none, fails the handshake; the right name works.
        await #expect(throws: (any Error).self) {
            try await TLSTestConnection.connect(port: strictPort, .init(serverName: "unknown.redfire.test", trust: trust))
        }
        let named = try await TLSTestConnection.connect(port: strictPort, .init(serverName: "api.redfire.test", trust: trust))
        #expect(try await named.get("/health").status == 200)
        await named.close()
        // Plain HTTP to a TLS port: no answer in clear text, the connection closes, counted as such.
        let plain = try await RawConnection(port: standard)
        try await plain.write("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        let closed = try await plain.waitForClose(timeoutSeconds: 5)
        #expect(closed.closed && !closed.bytes.contains("HTTP/1.1 200"))

        let scraper = try await TLSTestConnection.connect(port: standard, .init(serverName: "api.redfire.test", trust: trust))
        let metrics = try await scraper.get("/metrics").body
        await scraper.close()
        let failures = metrics.split(separator: "\n").filter { $0.hasPrefix("gateway_tls_handshake_failures_total{") }
        func failed(_ reason: String) -> Int {
            failures.filter { $0.contains("reason=\"\(reason)\"") }.compactMap { Int($0.split(separator: " ").last ?? "") }.reduce(0, +)
        }
        #expect(failed("protocol_version") >= 3, "\(failures)")
        #expect(failed("plain_http") == 1, "\(failures)")
        #expect(failed("unknown_server_name") == 1, "\(failures)")
        let handshakes = metrics.split(separator: "\n").filter { $0.hasPrefix("gateway_tls_handshakes_total{") }
        #expect(handshakes.compactMap { Int($0.split(separator: " ").last ?? "") }.reduce(0, +) == 3, "\(handshakes)")
        #expect(metrics.contains("gateway_tls_certificate_expiry_seconds{listener="), "days to expiry are exported")
        await gateway.shutdown()
    }

    @Test func aHandshakeThatStallsIsClosedAtTheHeaderTimeout() async throws {
        let files = try Files()
        let tls = ListenerTLSConfig(certificates: [try files.server("api", names: ["api.redfire.test"])])
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await Self.gateway([ListenerConfig(address: Self.loopback, tls: tls)], instances: instances) {
            $0.limits.headerTimeout = .seconds(1)
        }
        // The first bytes of a ClientHello (record header, handshake type), then nothing.
        let stalled = try await RawConnection(port: gateway.port)
        let started = ContinuousClock.now
        try await stalled.write(String(decoding: [0x16, 0x03, 0x01, 0x00, 0xC8, 0x01], as: UTF8.self))
        let closed = try await stalled.waitForClose(timeoutSeconds: 10)
        #expect(closed.closed)
        #expect(ContinuousClock.now - started < .seconds(5))
        let state = try #require(gateway.gateway.listeners[0].tls)
        #expect(await waitUntil("counted") { state.failureCounts["handshake_timeout"] == 1 })
        await gateway.shutdown()
    }

    @Test func requiresAndVerifiesClientCertificates() async throws {
        let files = try Files()
        var tls = ListenerTLSConfig(certificates: [try files.server("api", names: ["api.redfire.test"])])
        tls.clientCertificates = .required
        tls.clientCA = files.path("ca.pem")
        let client = try files.authority.issue(commonName: "trading-terminal-7", client: true)
        try client.write(certificate: files.path("client.pem"), key: files.path("client.key"))
        let stranger = try TestAuthority("Someone Else").issue(commonName: "intruder", client: true)
        try stranger.write(certificate: files.path("stranger.pem"), key: files.path("stranger.key"))
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await Self.gateway([ListenerConfig(address: Self.loopback, tls: tls)], instances: instances)
        let trust = try files.trust

        let verified = try await TLSTestConnection.connect(port: gateway.port, .init(serverName: "api.redfire.test", trust: trust,
                                                                                     clientCertificate: (files.path("client.pem"), files.path("client.key"))))
        #expect(try await verified.get("/health").status == 200)
        await verified.close()
        // Without a certificate, or with one the CA did not sign: no request is ever read.
        for certificate in [nil, (files.path("stranger.pem"), files.path("stranger.key"))] as [(String, String)?] {
            var refused = false
            do {
                let connection = try await TLSTestConnection.connect(port: gateway.port, .init(serverName: "api.redfire.test", trust: trust,
                                                                                               clientCertificate: certificate))
                // TLS 1.3: the client may finish before the server has read its certificate; the request then fails.
                refused = (try? await connection.get("/health").status) == nil
                await connection.close()
            } catch {
                refused = true
            }
            #expect(refused, "client certificate \(certificate?.0 ?? "none") is refused")
        }
        let failures = try #require(gateway.gateway.listeners[0].tls).failureCounts
        #expect(failures["client_certificate_missing", default: 0] == 1, "\(failures)")
        #expect(failures["client_certificate_invalid", default: 0] == 1, "\(failures)")
        await gateway.shutdown()
    }

    @Test func servicesAndTheAccessLogAreToldTheClientUsedTLS() async throws {
        let files = try Files()
        let tls = ListenerTLSConfig(certificates: [try files.server("api", names: ["api.redfire.test"])])
        let instances = try await startInstances(.userTrading, count: 1)
        let log = files.path("access.log")
        let gateway = try await Self.gateway([ListenerConfig(address: Self.loopback), ListenerConfig(address: Self.loopback, tls: tls)],
                                             instances: instances) { config in
            config.accessLog.enabled = true
            config.accessLog.path = log
        }
        let tlsPort = gateway.gateway.listeners[1].boundPort
        let connection = try await TLSTestConnection.connect(port: tlsPort, .init(serverName: "api.redfire.test", trust: try files.trust))
        // Whatever the client claims, the service hears `https` because the client really used TLS …
        let secure = try await connection.get("/api/v1/trading/_echo", headers: [("X-Forwarded-Proto", "http"), ("X-Request-ID", "tls-proto-1")])
        let secureReport = try JSONDecoder().decode(EchoReport.self, from: Data(secure.body.utf8))
        #expect(secureReport.headers["x-forwarded-proto"] == ["https"])
        #expect(secure.headers.first(name: "Strict-Transport-Security") == nil, "no HSTS unless configured")
        await connection.close()
        // … and `http` on the plain listener, even when an untrusted client says `https`.
        let plain = try await gateway.echo("/api/v1/trading/_echo", headers: [("X-Forwarded-Proto", "https"), ("X-Request-ID", "tls-proto-2")])
        #expect(plain.headers["x-forwarded-proto"] == ["http"])
        await gateway.shutdown()

        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let overTLS = try #require(lines.first { $0["request_id"] as? String == "tls-proto-1" })
        #expect(overTLS["tls"] as? String == "TLSv1.3" && overTLS["protocol"] as? String == "HTTP/1.1")
        let overPlain = try #require(lines.first { $0["request_id"] as? String == "tls-proto-2" })
        #expect(overPlain["tls"] is NSNull)
    }

    @Test func plainListenerRedirectsToHTTPS() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await Self.gateway([ListenerConfig(address: Self.loopback, redirectHTTPSPort: 443),
                                              ListenerConfig(address: Self.loopback, redirectHTTPSPort: 8443)], instances: instances)
        let standard = try await RawHTTP.exchange(port: gateway.port, bytes: Array(
            "POST /api/v1/trading/orders?symbol=RF HTTP/1.1\r\nHost: api.redfire.test\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".utf8))
        #expect(standard.status == 308, "308 keeps the method and body (RFC 9110 §15.4.9)")
        #expect(standard.headers.first(name: "Location") == "https://api.redfire.test/api/v1/trading/orders?symbol=RF")
        let other = try await RawHTTP.send(port: gateway.gateway.listeners[1].boundPort, target: "/health")
        #expect(other.status == 308 && other.headers.first(name: "Location") == "https://127.0.0.1:8443/health")
        #expect(other.headers.first(name: "Strict-Transport-Security") == nil, "never HSTS over plain HTTP (RFC 6797 §7.2)")
        // No Host to redirect to (HTTP/1.0): the error envelope.
        let bare = try await RawHTTP.exchange(port: gateway.port, bytes: Array("GET /health HTTP/1.0\r\n\r\n".utf8))
        #expect(bare.status == 400 && bare.errorCode == "malformed_request")
        await gateway.shutdown()
    }

    @Test func replacedCertificateFilesServeNewHandshakesWhileOpenConnectionsStay() async throws {
        let files = try Files()
        var tls = ListenerTLSConfig(certificates: [try files.server("api", names: ["api.redfire.test"])])
        tls.watchInterval = .seconds(1)
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await Self.gateway([ListenerConfig(address: Self.loopback, tls: tls)], instances: instances)
        let trust = try files.trust
        let options = TLSTestConnection.Options(serverName: "api.redfire.test", trust: trust)
        let first = try await TLSTestConnection.connect(port: gateway.port, options)
        #expect(try await first.get("/health").status == 200)
        // A long download on the old connection (2 MB paced over ~3 s) runs across the swap.
        let download = Task { try await first.get("/api/v1/trading/_download?bytes=2000000&chunk_ms=100") }

        // A new pair for the same name, written over the files: new handshakes get it, the open
        // connection keeps working on the one it negotiated.
        let state = try #require(gateway.gateway.listeners[0].tls)
        let renewed = try files.authority.issue(commonName: "api.redfire.test", dnsNames: ["api.redfire.test"])
        try renewed.write(certificate: files.path("api.pem"), key: files.path("api.key"))
        let renewedSerial = renewed.certificate.serialNumber.description
        #expect(await waitUntil("the renewed pair is read") { state.reloadCount == 1 })
        let fresh = try await TLSTestConnection.connect(port: gateway.port, options)
        #expect(fresh.presentedSerial == renewedSerial)
        await fresh.close()
        let downloaded = try await download.value
        // Answered only once all Content-Length bytes arrived.
        #expect(downloaded.status == 200 && downloaded.headers.first(name: "Content-Length") == "2000000", "the long download completed on the old connection")
        #expect(try await first.get("/health").status == 200, "the open connection was not dropped")
        #expect(first.presentedSerial != renewedSerial)

        // A key that is not the certificate's: refused, logged, the renewed pair stays in use.
        let mismatched = try files.authority.issue(commonName: "api.redfire.test", dnsNames: ["api.redfire.test"])
        try mismatched.certificatePEM.write(toFile: files.path("api.pem"), atomically: true, encoding: .utf8)
        try await Task.sleep(for: .milliseconds(2500))  // two watch intervals: the change is seen and refused
        #expect(state.reloadCount == 1)
        let after = try await TLSTestConnection.connect(port: gateway.port, options)
        #expect(after.presentedSerial == renewedSerial)
        #expect(try await after.get("/health").status == 200)
        await after.close()
        await first.close()
        await gateway.shutdown()
    }

    @Test func reloadGivesNewCertificatesAndRefusesBrokenOnes() async throws {
        let files = try Files()
        try files.server("one", names: ["api.redfire.test"])
        try files.server("two", names: ["api.redfire.test", "trading.redfire.test"])
        let instances = try await startInstances(.userTrading, count: 1)
        func write(_ certificate: String) throws {
            try """
            listeners:
              - address: 127.0.0.1:0
                tls:
                  certificates:
                    - cert: \(certificate).pem
                      key: \(certificate).key
            services:
              user_trading:
                instances:
                  - url: \(instances[0].url)
            routes:
              - prefix: /api/v1/trading
                service: user_trading
            """.write(toFile: files.path("gateway.yaml"), atomically: true, encoding: .utf8)
        }
        try write("one")
        let config = try GatewayConfig.load(path: files.path("gateway.yaml"))
        let gateway = try await GatewayHarness.start(config, configPath: files.path("gateway.yaml"))
        let options = TLSTestConnection.Options(serverName: "api.redfire.test", trust: try files.trust)
        let open = try await TLSTestConnection.connect(port: gateway.port, options)
        #expect(open.presentedNames == ["api.redfire.test"])

        try write("two")
        let applied = gateway.control.reload(actor: "test")
        #expect(applied.applied && applied.restartRequired.isEmpty, "\(applied)")
        let renewed = try await TLSTestConnection.connect(port: gateway.port, options)
        #expect(renewed.presentedNames == ["api.redfire.test", "trading.redfire.test"])
        #expect(try await open.get("/health").status == 200, "open connections stay")

        // A key others may read: the reload is refused with the reason, the running certificates stay.
        try write("three")
        try files.server("three", names: ["api.redfire.test"])
        chmod(files.path("three.key"), 0o644)
        let refused = gateway.control.reload(actor: "test")
        #expect(!refused.applied)
        #expect(refused.problems.contains { $0.message.contains("readable by others") }, "\(refused.problems)")
        let still = try await TLSTestConnection.connect(port: gateway.port, options)
        #expect(still.presentedNames == ["api.redfire.test", "trading.redfire.test"])
        await still.close()
        await renewed.close()
        await open.close()
        await gateway.shutdown()
    }
}
}
