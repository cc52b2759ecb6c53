import Foundation
import Logging
import NIOPosix
import ServiceLifecycle
import Synchronization
import UnixSignals

/// The outcome of one reload attempt.
public struct ReloadResult: Sendable {
    public var applied: Bool
    public var generation: Int
    /// Every problem found, when the file was refused.
    public var problems: [ConfigProblem]
    /// Settings that changed in the file but only take effect on restart.
    public var restartRequired: [String]
}

extension GatewayControl {
    /// Reloads the configuration file the gateway was started with: validates it, then swaps it in
    /// atomically. An invalid file is refused with its problems and the running configuration stays.
    /// Health, drain state, in-flight counts and metrics of instances that still exist survive.
    public func reload(actor: String) -> ReloadResult {
        guard let path = configPath else {
            let result = ReloadResult(applied: false, generation: registry.state.generation,
                                      problems: [ConfigProblem(path: "", line: nil, message: "the gateway was not started from a file")], restartRequired: [])
            audit.append(AuditEntry(at: Date(), actor: actor, action: "reload", target: "config", result: "no_file"))
            return result
        }
        let current = registry.state.config
        var config: GatewayConfig
        do {
            config = try GatewayConfig.load(path: path)
        } catch let error as ConfigError {
            reloadOutcomes.withLock { $0.failed += 1; $0.lastFailed = true }
            audit.append(AuditEntry(at: Date(), actor: actor, action: "reload", target: path, result: "invalid_config"))
            registry.record(.reload, service: nil, instance: nil, "reload of \(path) refused by \(actor): \(error.problems.count) problem(s); running configuration kept")
            return ReloadResult(applied: false, generation: registry.state.generation, problems: error.problems, restartRequired: [])
        } catch {
            reloadOutcomes.withLock { $0.failed += 1; $0.lastFailed = true }
            return ReloadResult(applied: false, generation: registry.state.generation,
                                problems: [ConfigProblem(path: "", line: nil, message: "the file could not be read")], restartRequired: [])
        }
        // The listeners and the metric rings are fixed for the life of the process (and `--listen` may
        // override the file): both keep their running values until a restart. A TLS listener's
        // certificates and settings are not: they apply to new handshakes now (read already when the
        // file was loaded; read again here, all before any is used).
        var restart: [String] = []
        let fileListeners = config.listeners
        config.listeners = current.listeners
        if fileListeners.count != current.listeners.count || fileListeners.dropFirst().map(\.address) != current.listeners.dropFirst().map(\.address)
            || fileListeners.map({ $0.tls == nil }) != current.listeners.map({ $0.tls == nil })
            || fileListeners.map(\.redirectHTTPSPort) != current.listeners.map(\.redirectHTTPSPort)
            || fileListeners.map(\.http2) != current.listeners.map(\.http2) {
            restart.append("listeners")
        } else {
            var replacements: [(TLSListenerState, ListenerTLSConfig, ServerTLSMaterial)] = []
            for (index, listener) in fileListeners.enumerated() {
                guard let tls = listener.tls, index < listeners.count, let state = listeners[index].tls else { continue }
                guard tls != state.config || state.current.filesChanged else { continue }
                do {
                    replacements.append((state, tls, try ServerTLSMaterial(tls, applicationProtocols: state.applicationProtocols)))
                } catch {
                    reloadOutcomes.withLock { $0.failed += 1; $0.lastFailed = true }
                    audit.append(AuditEntry(at: Date(), actor: actor, action: "reload", target: path, result: "invalid_config"))
                    return ReloadResult(applied: false, generation: registry.state.generation,
                                        problems: [ConfigProblem(path: "listeners[\(index)].tls", line: nil, message: error.description)], restartRequired: [])
                }
                config.listeners[index].tls = tls
            }
            for (state, tls, material) in replacements { state.use(material, config: tls) }
        }
        if config.telemetryRetention != current.telemetryRetention { restart.append("telemetry.retention") }
        config.telemetryRetention = current.telemetryRetention
        registry.apply(config)
        reloadOutcomes.withLock { $0.succeeded += 1; $0.lastFailed = false }
        audit.append(AuditEntry(at: Date(), actor: actor, action: "reload", target: path, result: "ok"))
        registry.record(.reload, service: nil, instance: nil, "configuration reloaded by \(actor) (generation \(registry.state.generation))"
                        + (restart.isEmpty ? "" : "; restart needed for \(restart.joined(separator: ", "))"))
        return ReloadResult(applied: true, generation: registry.state.generation, problems: [], restartRequired: restart)
    }

    /// `reload`, with the file read and validated on NIO's blocking-work pool: what the admin API calls
    /// from a connection's event loop, which must never wait on the disk.
    public func reloadOffLoop(actor: String) async -> ReloadResult {
        (try? await NIOThreadPool.singleton.runIfActive { self.reload(actor: actor) })
            ?? ReloadResult(applied: false, generation: registry.state.generation,
                            problems: [ConfigProblem(path: "", line: nil, message: "the gateway is shutting down")], restartRequired: [])
    }

    /// Reloads counted by outcome, for telemetry.
    public var reloadCounts: (succeeded: Int, failed: Int) {
        reloadOutcomes.withLock { ($0.succeeded, $0.failed) }
    }
}
