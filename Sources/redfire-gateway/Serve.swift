import ArgumentParser
import Foundation
import NIOPosix
import Logging
import NIOCore
import RedFireDashboard
import RedFireGateway
import ServiceLifecycle

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway from a configuration file.")

    @Option(name: .long, help: "Path to the YAML configuration.")
    var config: String

    @Option(name: .long, help: "Override the configuration's listen address (HOST:PORT).")
    var listen: String?

    @OptionGroup var logging: LoggingOptions

    @OptionGroup var console: ConsoleFlags

    func run() async throws {
        var gatewayConfig: GatewayConfig
        do {
            gatewayConfig = try GatewayConfig.load(path: config)
        } catch let error as ConfigError {
            printError(error.description)
            throw Exit.invalidConfig
        }
        if let address = try parseListen(listen) { gatewayConfig.listen = address }
        if console.wantsConsole && gatewayConfig.accessLog.path == "stdout" {
            // The dashboard owns the terminal: access lines go to a file instead.
            gatewayConfig.accessLog.path = ((gatewayConfig.dataDirectory ?? "data") as NSString).appendingPathComponent("access.log")
        }
        let finalConfig = gatewayConfig
        let events = EventLog(capacity: 1000)
        var setup: ConsoleSetup?
        if console.wantsConsole {
            let directory = (config as NSString).deletingLastPathComponent
            setup = try ConsoleSetup.prepare(flags: console, config: finalConfig.console, configDirectory: directory.isEmpty ? "." : directory,
                                             defaultLogPath: ((finalConfig.dataDirectory ?? "data") as NSString).appendingPathComponent("gateway.log"),
                                             events: events)
        }
        let logger = try {
            var logger = try logging.bootstrap(console: setup?.sink)
            // In a cluster every log line says which node wrote it.
            if let node = finalConfig.cluster.resolvedNodeName(listen: finalConfig.listen) { logger[metadataKey: "node"] = .string(node) }
            return logger
        }()
        let gateway: Gateway
        if let threads = finalConfig.eventLoopThreads {
            gateway = try Gateway(config: finalConfig, configPath: config, logger: logger, events: events,
                              eventLoopGroup: MultiThreadedEventLoopGroup(numberOfThreads: threads))
        } else {
            gateway = try Gateway(config: finalConfig, configPath: config, logger: logger, events: events)
        }
        let dashboard = setup.map { Console(gateway: gateway, options: $0.options, logger: logger) }
        let plainOutput = dashboard == nil
        defer { setup?.sink.close() }
        try await runGateway(gateway, services: [], config: finalConfig, logger: logger, console: dashboard, logSink: setup?.sink) { _ in
            let urls = gateway.listeners.map(\.url)
            logger.info("RedFire Gateway listening on \(urls.joined(separator: ", ")) (\(finalConfig.services.count) services, \(finalConfig.routes.count) routes)")
            // Each bound listener alone on a line, the primary one first, for scripts (`--listen
            // 127.0.0.1:0` binds any free port): `awk '/^listening on / {print $3; exit}'`.
            if plainOutput { for url in urls { printLine("listening on \(url)") } }
            for listener in gateway.listeners {
                for warning in listener.tls?.current.expiryWarnings() ?? [] { logger.warning("TLS certificate of \(listener.url): \(warning)") }
            }
        }
    }
}

/// Runs the gateway (and companions) until SIGTERM/SIGINT, then shuts down gracefully: the listener
/// closes, in-flight requests get up to `shutdown_grace` to finish, and the process exits 0.
///
/// With a `console`, the dashboard owns the terminal from start to exit: quitting it shuts the group
/// down gracefully (it shows the progress) and the terminal is restored before this returns.
///
/// A `logSink` runs first and so stops last: it writes the group's final log lines.
func runGateway(_ gateway: Gateway, services: [any Service], config: GatewayConfig, logger: Logger, console: Console? = nil,
                logSink: ConsoleLogSink? = nil, onListening: @escaping @Sendable (Int) async -> Void) async throws {
    var groupConfiguration = ServiceGroupConfiguration(
        services: (logSink.map { [.init(service: $0)] } ?? []) + [.init(service: gateway)] + services.map { .init(service: $0) }
            + (console.map { [.init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup)] } ?? []),
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger
    )
    groupConfiguration.maximumGracefulShutdownDuration = config.shutdownGrace
    let group = ServiceGroup(configuration: groupConfiguration)
    let announcer = Task {
        if let port = try? await gateway.waitUntilListening() { await onListening(port) }
    }
    defer { announcer.cancel() }
    console?.start()
    do {
        do {
            try await group.run()
        } catch {
            await console?.stop()
            throw error
        }
        await console?.stop()
        logger.info("RedFire Gateway stopped")
    } catch let error as IOError where error.errnoCode == EADDRINUSE {
        printError("error: cannot listen on \(config.listen): the address is already in use. Stop the other process or choose another port with --listen HOST:PORT.")
        throw Exit.startFailed
    } catch let error as IOError where error.errnoCode == EACCES {
        printError("error: cannot listen on \(config.listen): permission denied (ports below 1024 need privileges).")
        throw Exit.startFailed
    } catch let error as IOError where error.errnoCode == EADDRNOTAVAIL {
        printError("error: cannot listen on \(config.listen): no such local address.")
        throw Exit.startFailed
    } catch let error as ExitCode {
        throw error
    } catch {
        // Anything else ended the run abnormally: say what, in the log and on the terminal.
        logger.error("the gateway stopped on an error: \(error)")
        printError("error: the gateway stopped on an error: \(error)")
        throw error
    }
}
