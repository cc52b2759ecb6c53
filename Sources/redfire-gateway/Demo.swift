import ArgumentParser
import DemoServices
import Foundation
import Logging
import RedFireDashboard
import RedFireGateway

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the gateway in front of five demo services (two instances each) with synthetic traffic."
    )

    @Option(name: .long, help: "Gateway listen address (HOST:PORT).")
    var listen: String = "127.0.0.1:8080"

    @Flag(name: .long, help: "Serve HTTPS and HTTP/2 with a throw-away self-signed certificate (made now, for localhost and 127.0.0.1).")
    var tls = false

    @Option(name: .long, help: "Synthetic requests per second through the gateway (0 for none).")
    var rate: Int = 20

    @OptionGroup var logging: LoggingOptions

    @OptionGroup var console: ConsoleFlags

    func validate() throws {
        guard rate >= 0 && rate <= 100_000 else { throw ValidationError("--rate must be between 0 and 100000") }
    }

    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in
            let text = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - text.count) + text
        }.joined()
    }

    func run() async throws {
        guard let address = try parseListen(listen) else { return }
        let events = EventLog(capacity: 1000)
        var setup: ConsoleSetup?
        if console.wantsConsole {
            let logPath = (NSTemporaryDirectory() as NSString).appendingPathComponent("redfire-gateway-demo-\(ProcessInfo.processInfo.processIdentifier).log")
            setup = try ConsoleSetup.prepare(flags: console, config: ConsoleConfig(), configDirectory: nil, defaultLogPath: logPath, events: events)
        }
        let logger = try logging.bootstrap(console: setup?.sink)
        let cluster = try await DemoCluster.start()
        var config = cluster.gatewayConfig(listen: address)
        let adminToken = ProcessInfo.processInfo.environment["REDFIRE_ADMIN_TOKEN"] ?? Self.randomToken()
        config.adminToken = adminToken
        // Authentication on, with a fresh user store and signing secret per run, and two users whose
        // passwords are printed below.
        let dataDirectory = (NSTemporaryDirectory() as NSString).appendingPathComponent("redfire-gateway-demo-\(ProcessInfo.processInfo.processIdentifier)")
        try? FileManager.default.removeItem(atPath: dataDirectory)
        DemoAuth.configure(&config, secret: Self.randomToken(), dataDirectory: dataDirectory)
        config.accessLog.enabled = true
        config.accessLog.path = (dataDirectory as NSString).appendingPathComponent("access.log")
        var demoTLS: DemoTLS?
        if tls {
            let made = try DemoTLS.make(in: (dataDirectory as NSString).appendingPathComponent("tls"), host: address.host)
            config.listeners[0].tls = ListenerTLSConfig(certificates: [.init(certificate: made.certificatePath, key: made.keyPath)])
            demoTLS = made
        }
        let scheme = tls ? "https" : "http"
        let users = DemoAuth.users()
        do {
            try await DemoAuth.provision(users, config: config)
        } catch {
            await cluster.stop()
            throw error
        }
        let finalConfig = config
        let gateway = try Gateway(config: finalConfig, logger: logger, events: events)
        let dashboard = setup.map { Console(gateway: gateway, options: $0.options, logger: logger) }
        let logSink = setup?.sink
        let traffic = TrafficGenerator(rate: rate, users: users, tls: demoTLS?.clientConfiguration) {
            // On the port the gateway was given (`--listen HOST:0` picks a free one).
            "\(scheme)://\(address.host == "0.0.0.0" ? "127.0.0.1" : address.host):\(try await gateway.waitUntilListening())"
        }
        defer { logSink?.close() }
        do {
            try await runGateway(gateway, services: [traffic], config: finalConfig, logger: logger, console: dashboard, logSink: logSink) { port in
                let host = address.host == "0.0.0.0" ? "127.0.0.1" : address.host
                var banner = """

                RedFire Gateway demo
                  gateway:   \(scheme)://\(host):\(port)
                  users:     \(users.map { "\($0.username) / \($0.password) (\($0.role))" }.joined(separator: ",  "))
                  login:     curl -s\(tls ? " -k" : "") -X POST \(scheme)://\(host):\(port)/api/v1/auth/login -H 'Content-Type: application/json' \\
                               -d '{"username":"\(users[1].username)","password":"\(users[1].password)"}'
                  try:       curl -i\(tls ? " -k --http2" : "") -H "Authorization: Bearer $ACCESS_TOKEN" \(scheme)://\(host):\(port)/api/v1/trading/orders
                  access:    \(finalConfig.accessLog.path) (one JSON line per request)
                  probes:    \(scheme)://\(host):\(port)/health  \(scheme)://\(host):\(port)/ready
                  admin:     curl\(tls ? " -k" : "") -H 'Authorization: Bearer \(adminToken)' \(scheme)://\(host):\(port)/gateway/services
                  services:

                """
                for kind in DemoServiceKind.allCases {
                    let ids = cluster.instances(of: kind).map { "\($0.id) (\($0.url))" }.joined(separator: ", ")
                    banner += "    \(kind.prefix)/  →  \(kind.rawValue) [\(DemoCluster.strategy(for: kind).rawValue)]: \(ids)\n"
                }
                banner += "  traffic:   \(rate) req/s (change with --rate N, 0 for none)\n"
                banner += "  stop:      Ctrl-C (in-flight requests finish first)\n"
                if let logSink {
                    // The dashboard owns the screen: the banner (with the admin token) goes to the log file.
                    logger.info("\(banner)")
                    events.append(GatewayEvent(at: Date(), kind: .operatorAction,
                                               message: "demo ready at \(scheme)://\(host):\(port): users, passwords, admin token and URLs in \(logSink.path)"))
                } else {
                    FileHandle.standardOutput.write(Data((banner + "\n").utf8))
                }
            }
        } catch {
            await cluster.stop()
            try? FileManager.default.removeItem(atPath: dataDirectory)
            throw error
        }
        await cluster.stop()
        try? FileManager.default.removeItem(atPath: dataDirectory)
    }
}
