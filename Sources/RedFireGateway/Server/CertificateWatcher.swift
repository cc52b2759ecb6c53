import Logging
import NIOPosix
import ServiceLifecycle

/// Checks the TLS listeners' certificate, key and client-CA files every `watch_interval` (the shortest
/// of the listeners') and uses changed, valid files for new handshakes; open connections keep what
/// they negotiated. The files are read on NIO's blocking-work pool, never on an event loop.
struct CertificateWatcher: Service {
    let listeners: [ListenerRuntime]
    let logger: Logger

    func run() async throws {
        let watched = listeners.filter { $0.tls != nil }
        guard !watched.isEmpty else { return }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let interval = watched.compactMap { $0.tls?.config.watchInterval }.min() ?? .seconds(10)
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            guard !Task.isCancelled && !Task.isShuttingDownGracefully else { return }
            _ = try? await NIOThreadPool.singleton.runIfActive { [logger] in
                for listener in watched {
                    _ = listener.tls?.reloadIfChanged(logger: logger, listener: listener.config.address.description)
                }
            }
        }
    }
}

/// The servers of every listener as one service: graceful shutdown reaches all of them at once (each
/// stops accepting and lets its connections finish), and the gateway stops when the last has.
struct ListenerServers: Service {
    let servers: [any Service]

    func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            for server in servers { group.addTask { try await server.run() } }
        }
    }
}
