import AsyncHTTPClient
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization

/// The registry's background work, as one service: an active health-check loop per instance, lease
/// expiry for registered instances, and the end of passive ejections. Stops on graceful shutdown.
final class RegistryMaintenance: Service {
    let registry: ServiceRegistry
    let eventLoopGroup: any EventLoopGroup
    /// How `https://` instances are checked: over the gateway's own upstream transport, with the
    /// service's TLS settings (the same verification as its requests get).
    let transport: (any UpstreamTransport)?
    let logger: Logger
    /// How often leases and ejections are looked at.
    static let tick: Duration = .milliseconds(100)

    private let checkTasks = Mutex<[String: Task<Void, Never>]>([:])

    /// Told when a registered instance drained before deregistration is gone (the cluster drops it too).
    let onRemoved: @Sendable (_ service: String, _ id: String) -> Void

    init(registry: ServiceRegistry, eventLoopGroup: any EventLoopGroup, transport: (any UpstreamTransport)? = nil, logger: Logger,
         onRemoved: @escaping @Sendable (_ service: String, _ id: String) -> Void = { _, _ in }) {
        self.onRemoved = onRemoved
        self.transport = transport
        self.registry = registry
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
    }

    func run() async throws {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, decompression: .disabled)
        configuration.httpVersion = .http1Only
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.tracing.tracer = nil
        let client = HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup), configuration: configuration, backgroundActivityLogger: logger)

        var lastRevocationCheck = ContinuousClock.now
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            startChecks(client: client)
            let now = ContinuousClock.now
            for (service, id) in registry.expireLeases(now: now) {
                registry.record(.lease, service: service, instance: id, "\(id) lease expired: removed from rotation")
            }
            for (service, id, inFlight) in registry.completeRemovals(now: now) {
                registry.record(.registration, service: service, instance: id,
                                inFlight == 0 ? "\(id) drained and deregistered" : "\(id) deregistered at its drain deadline with \(inFlight) in flight")
                onRemoved(service, id)
            }
            var ended: [InstanceRuntime] = []
            for runtime in registry.allRuntimes {
                if runtime.expireEjection(now: now) { ended.append(runtime) }
                if let inFlight = runtime.passedDrainDeadline(now: now) {
                    let streams = runtime.streams.count
                    let closing = streams > 0 ? "; \(streams) open stream\(streams == 1 ? "" : "s") closed (WebSocket 1001, event streams ended)" : ""
                    registry.record(.drain, service: runtime.serviceName, instance: runtime.id,
                                    "\(runtime.id) drain deadline passed with \(inFlight) in flight: drained; those requests are left to finish\(closing)")
                    runtime.streams.endAll(.drainDeadline)
                }
            }
            if !ended.isEmpty {
                registry.rebuild()
                for runtime in ended {
                    registry.record(.ejection, service: runtime.serviceName, instance: runtime.id, "\(runtime.id) ejection ended: back in rotation")
                }
            }
            // A stream must not outlive its authorization: revoked tokens end their WebSockets (1008)
            // within a second (plus the revocation's own propagation: at once on this node, two seconds
            // from the store).
            if now - lastRevocationCheck >= .seconds(1) {
                lastRevocationCheck = now
                let ended = registry.streams.endRevoked()
                if ended > 0 { logger.info("streams closed: their access token was revoked", metadata: ["streams": .stringConvertible(ended)]) }
            }
            try? await Task.sleep(for: Self.tick)
        }
        let tasks = checkTasks.withLock { tasks in
            defer { tasks.removeAll() }
            return Array(tasks.values)
        }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
        try? await client.shutdown()
    }

    private func startChecks(client: HTTPClient) {
        let runtimes = registry.allRuntimes
        checkTasks.withLock { tasks in
            tasks = tasks.filter { id, task in
                if runtimes.contains(where: { $0.id == id }) { return true }
                task.cancel()
                return false
            }
            for runtime in runtimes where runtime.claimHealthChecker() {
                tasks[runtime.id]?.cancel()
                tasks[runtime.id] = Task { [registry, logger, transport] in
                    await Self.checkLoop(runtime: runtime, registry: registry, client: client, transport: transport, logger: logger)
                }
            }
        }
    }

    private static func checkLoop(runtime: InstanceRuntime, registry: ServiceRegistry, client: HTTPClient, transport: (any UpstreamTransport)?,
                                  logger: Logger) async {
        while !Task.isCancelled && !runtime.isRemoved {
            guard let pool = registry.state.service(named: runtime.serviceName),
                  let member = pool.members.first(where: { $0.runtime === runtime }) else { return }
            let check = pool.service.healthCheck
            guard check.enabled else {
                try? await Task.sleep(for: check.interval)
                continue
            }
            let (passed, reason) = if member.url.scheme == "https", let transport {
                await probe(member: member, check: check, tls: pool.service.tls ?? UpstreamTLSConfig(), transport: transport)
            } else {
                await probe(member: member, check: check, client: client)
            }
            if Task.isCancelled { return }
            if let transition = runtime.recordCheck(passed: passed, reason: reason, config: check, now: .now) {
                registry.rebuild()
                if transition.from != transition.to {
                    registry.record(.health, service: runtime.serviceName, instance: runtime.id,
                                    "\(runtime.id) \(transition.from.rawValue) → \(transition.to.rawValue) (\(reason))")
                } else if transition.endedEjection {
                    registry.record(.ejection, service: runtime.serviceName, instance: runtime.id, "\(runtime.id) ejection ended by a passing health check")
                }
            }
            let jitterNanos = check.jitter.nanosecondsClamped
            let jitter: Duration = jitterNanos > 0 ? .nanoseconds(Int64(FastRandom.below(Int(jitterNanos)))) : .zero
            try? await Task.sleep(for: check.interval + jitter)
        }
    }

    /// A check of an `https://` instance, over the upstream transport (TLS verified as for requests).
    private static func probe(member: PoolMember, check: HealthCheckConfig, tls: UpstreamTLSConfig, transport: any UpstreamTransport) async -> (Bool, String) {
        var request = UpstreamRequest(method: .get, upstream: member.url, authority: member.authority, target: check.path,
                                      headers: UpstreamFields([.userAgent: "redfire-gateway-health-check"]), body: nil, tls: tls)
        // A check whose task is cancelled (its instance removed, the gateway stopping) ends at once.
        let abandonment = ExchangeAbandonment()
        request.abandonment = abandonment
        var timeouts = TimeoutConfig()
        timeouts.connect = check.timeout
        timeouts.responseHeaders = check.timeout
        timeouts.idle = check.timeout
        let result: Result<UpstreamResponse, UpstreamFailure> = await withTaskCancellationHandler {
            do throws(UpstreamFailure) {
                return .success(try await transport.execute(request, timeouts: timeouts))
            } catch {
                return .failure(error)
            }
        } onCancel: {
            abandonment.abandon()
        }
        do {
            let response = try result.get()
            if case .stream(let body) = response.body {
                var read = 0
                do { for try await chunk in body { read += chunk.readableBytes; if read > 64 * 1024 { break } } } catch {}
            }
            let code = response.status.code
            return check.accepts(status: code) ? (true, "HTTP \(code)") : (false, "HTTP \(code)")
        } catch {
            return (false, reason(error, check: check))
        }
    }

    private static func reason(_ failure: UpstreamFailure, check: HealthCheckConfig) -> String {
        switch failure {
        case .connectFailed: return "connection refused"
        case .connectTimeout: return "connect timeout"
        case .responseTimeout: return "timeout after \(ConfigDuration.format(check.timeout))"
        case .connectionFailed: return "connection failed"
        case .tlsFailed: return "TLS handshake failed"
        }
    }

    private static func probe(member: PoolMember, check: HealthCheckConfig, client: HTTPClient) async -> (Bool, String) {
        var request = HTTPClientRequest(url: member.baseURL + check.path)
        request.method = .GET
        request.headers.add(name: "User-Agent", value: "redfire-gateway-health-check")
        do {
            let response = try await client.execute(request, deadline: .now() + .nanoseconds(check.timeout.nanosecondsClamped))
            _ = try? await response.body.collect(upTo: 64 * 1024)
            let code = Int(response.status.code)
            return check.accepts(status: code) ? (true, "HTTP \(code)") : (false, "HTTP \(code)")
        } catch {
            return (false, reason(UpstreamFailure(classifying: error), check: check))
        }
    }
}
