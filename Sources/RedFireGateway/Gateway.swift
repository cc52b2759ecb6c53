import Foundation
import Atomics
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The gateway assembled from a configuration: registry, control surface, health checks and the HTTP
/// server. Run it as a `Service` (the CLI puts it in a `ServiceGroup` that turns SIGTERM/SIGINT into a
/// graceful shutdown: stop accepting, let in-flight requests finish, exit).
public final class Gateway: Service {
    package let registry: ServiceRegistry
    public let control: GatewayControl
    public let logger: Logger
    let transport: any UpstreamTransport
    let eventLoopGroup: any EventLoopGroup
    private let listenAddress: ListenAddress
    private let listening = ListeningSignal()
    let startedAt = ContinuousClock.now
    let connections = ConnectionCount()
    /// Accept failures for want of file descriptors.
    package let acceptPressure: AcceptPressure
    /// Rate-limit state lives as long as the process: reloads change limits, not allowances.
    let rateLimiter: RateLimiter
    private let accessLogState = Mutex<AccessLog?>(nil)
    /// The access log, once running (its drop count is telemetry).
    package var accessLog: AccessLog? { accessLogState.withLock { $0 } }
    private let port: ManagedAtomic<Int>
    /// Every listener, the primary one first.
    package let listeners: [ListenerRuntime]

    /// - Parameters:
    ///   - configPath: the file `config` came from; enables reload (admin API and SIGHUP).
    ///   - events: where events go; pass one to share it with a log handler (the console shows both).
    /// - Throws: `PostgresURL.Invalid` when the cluster store's TLS files cannot be used, or
    ///   `ServerTLSMaterial.Invalid` when a TLS listener's (they are read now).
    public init(config: GatewayConfig, configPath: String? = nil, logger: Logger = Logger(label: "redfire.gateway"),
                events: EventLog = EventLog(capacity: 1000),
                eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        // In a cluster every log line says which node wrote it.
        let nodeName = config.cluster.resolvedNodeName(listen: config.listen)
        var logger = logger
        if let nodeName { logger[metadataKey: "node"] = .string(nodeName) }
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
        self.listenAddress = config.listen
        self.acceptPressure = AcceptPressure(logger: logger)
        self.listeners = try config.listeners.map { listener throws(ServerTLSMaterial.Invalid) in try ListenerRuntime(config: listener) }
        self.registry = ServiceRegistry(config: config, events: events, telemetry: Telemetry(retention: config.telemetryRetention), logger: logger)
        let cluster = try config.cluster.store.map { url throws(PostgresURL.Invalid) in
            try ClusterStore(url: url, nodeName: nodeName ?? "",
                         revocationWindow: config.auth.accessTokenTTL + config.auth.leeway, logger: logger)
        }
        let port = ManagedAtomic<Int>(0)
        self.port = port
        let membership = cluster.map { [registry, listenAddress = config.listen] store in
            ClusterMembership(store: store, listen: {
                let bound = port.load(ordering: .relaxed)
                return bound == 0 ? nil : "\(listenAddress.host):\(bound)"
            },
                              interval: config.cluster.heartbeatInterval, timeout: config.cluster.nodeTimeout,
                              houseKeepingInterval: config.cluster.houseKeepingInterval, health: {
                var unhealthy: [String: String] = [:]
                for runtime in registry.allRuntimes {
                    if runtime.ejectedUntil != nil { unhealthy[runtime.id] = "ejected" } else if runtime.health == .unhealthy { unhealthy[runtime.id] = "unhealthy" }
                }
                return unhealthy
            }) {
                registry.telemetry.gatewayWindow(seconds: 10, state: registry.state).requestsPerSecond
            }
        }
        let leases = cluster.map { [registry] store in
            ClusterLeases(store: store, recoveryGrace: config.cluster.nodeTimeout * 2) { service, id, remaining in
                guard let runtime = registry.runtime(id: id), runtime.serviceName == service else { return }
                runtime.showClusterLease(expiresAt: remaining.map { .now + $0 })
            }
        }
        self.control = GatewayControl(registry: registry, configPath: configPath, dataDirectory: config.dataDirectory, cluster: cluster,
                                      membership: membership, leases: leases, listeners: listeners)
        let sharedLimits = cluster.map { ClusterRateLimits(store: $0, membership: membership, syncInterval: config.rateLimits.syncInterval,
                                                                 deadline: config.rateLimits.storeTimeout) }
        self.rateLimiter = RateLimiter(shared: sharedLimits)
        switch config.upstreamTransport {
        case .nio: self.transport = NIOUpstreamTransport(eventLoopGroup: eventLoopGroup, logger: logger)
        case .asyncHTTPClient: self.transport = HTTPClientTransport(eventLoopGroup: eventLoopGroup, logger: logger)
        }
    }

    /// Waits until the server is accepting connections and returns the port it is bound to (useful when
    /// the configuration asks for port 0). Throws if the server failed to start.
    public func waitUntilListening() async throws -> Int {
        try await listening.wait()
    }

    /// The port the server is bound to, once listening.
    var boundPort: Int? {
        let value = port.load(ordering: .relaxed)
        return value == 0 ? nil : value
    }

    /// What `GET /gateway` says about the listener.
    private var listenerInfo: @Sendable () -> GatewayInfoView {
        { [port, connections, startedAt, listenAddress] in
            let bound = port.load(ordering: .relaxed)
            return GatewayInfoView(listen: ListenAddress(host: listenAddress.host, port: bound).description, port: bound,
                                   openConnections: connections.open, uptimeSeconds: Int((ContinuousClock.now - startedAt).components.seconds),
                                   generation: 0)
        }
    }

    public func run() async throws {
        let config = registry.state.config
        OpenFileLimit.prepare(logger: logger)
        let accessLog = config.accessLog.enabled
            ? AccessLog(path: config.accessLog.path, capacity: config.accessLog.buffer, node: control.cluster?.nodeName) : nil
        self.accessLogState.withLock { $0 = accessLog }
        var authEndpoints: AuthEndpoints?
        var authService: AuthService?
        var authorizer: Authorizer?
        var gatewayTokens: GatewayTokenIssuer?
        if config.auth.isEnabled {
            do {
                // In cluster mode users, refresh families and keys live in the cluster store; the node
                // reads its keys once the cluster listener has connected (a snapshot asks for it).
                let credentials = control.cluster.map { PostgresCredentialStore(cluster: $0, bcryptCost: config.auth.bcryptCost) }
                let service = try await AuthService(config: config.auth, dataDirectory: config.dataDirectory, store: credentials,
                                                    loadAtStart: credentials == nil, logger: logger)
                authService = service
                authEndpoints = AuthEndpoints(auth: service, registrationOpen: config.auth.registration)
                authorizer = Authorizer(auth: service, publicPaths: config.auth.publicPaths)
                let key = try GatewayTokenIssuer.loadOrCreateKey(path: config.auth.gatewayTokenKeyPath(dataDirectory: config.dataDirectory))
                gatewayTokens = GatewayTokenIssuer(key: key, issuer: config.auth.issuer, lifetime: config.auth.gatewayTokenTTL)
            } catch {
                listening.fail(error)
                throw error
            }
        }
        let tracing = config.tracing.enabled ? RequestTracing(config: config.tracing, logger: logger) : nil
        let responder = GatewayResponder(registry: registry, control: control,
                                         forwarder: Forwarder(transport: transport, registry: registry, logger: logger, tracing: tracing),
                                         admin: AdminAPI(control: control, listener: listenerInfo)
                                             .responder(auth: authService, credentialThrottle: authService?.credentialThrottle
                                                 ?? LoginThrottle(maxFailures: config.auth.maxCredentialFailures, baseLockout: config.auth.lockout,
                                                                  maxLockout: config.auth.maxLockout)),
                                         auth: authEndpoints,
                                         authorizer: authorizer, gatewayTokens: gatewayTokens,
                                         jwksBody: Self.jwks(gatewayTokens: gatewayTokens, auth: authService), rateLimiter: rateLimiter,
                                         accessLog: accessLog, listener: ListenerTelemetry(connections: connections, acceptPressure: acceptPressure, listeners: listeners),
                                         tracing: tracing)
        let maintenance = RegistryMaintenance(registry: registry, eventLoopGroup: eventLoopGroup, transport: transport, logger: logger) { [control] service, id in
            control.removalCompleted(service: service, id: id)
        }
        let connections = self.connections
        // One server per listener; the gateway is listening once all are bound.
        let bound = ManagedAtomic<Int>(0)
        let servers = listeners.enumerated().map { index, listener in
            GatewayListener(http: GatewayHTTPServer(responder: { try await responder.respond(to: $0, context: $1) }, listener: listener,
                                                    accessLog: responder.accessLog, settings: { [registry] in registry.state.connectionSettings },
                                                    connections: connections, logger: logger,
                                                    workers: RequestWorkerPools(group: eventLoopGroup)),
                            host: listener.config.address.host, port: listener.config.address.port, backlog: 1024,
                            eventLoopGroup: eventLoopGroup, logger: logger) { [listening, port, acceptPressure, listeners] channel in
                try? await channel.eventLoop.submit {
                    try channel.pipeline.syncOperations.addHandler(AcceptFailureObserver(pressure: acceptPressure), position: .first)
                }.get()
                listener.boundPort = channel.localAddress?.port ?? 0
                if index == 0 { port.store(listener.boundPort, ordering: .relaxed) }
                if bound.wrappingIncrementThenLoad(ordering: .relaxed) == listeners.count {
                    listening.succeed(port: listeners[0].boundPort)
                }
            }
        }
        // Services stop in reverse order: the server first (it drains), then the rest.
        var services: [any Service] = []
        if let cluster = control.cluster {
            // First, so it stops last: it writes what this node has yet to publish once the rest has stopped.
            services.append(cluster)
            if let membership = control.membership { services.append(membership) }
            if let leases = control.leases { services.append(leases) }
            if let shared = rateLimiter.shared as? ClusterRateLimits { services.append(shared.sync) }
            services.append(ClusterListener(store: cluster) { [control, authService] event in
                control.apply(event)
                if let authService, let change = event.change { Self.apply(change, to: authService) }
            })
        }
        // The span exporter stops after the servers, so the last requests' spans are sent.
        if let tracing { services.append(tracing.service) }
        services += [TransportShutdown(transport: transport), maintenance, MemoryReturn(connections: connections, logger: logger)]
        if control.configPath != nil { services.append(await ReloadOnHangup.make(control: control)) }
        if let authService {
            services.append(authService.apiKeys)
            services.append(contentsOf: authService.externalIssuers as [any Service])
        }
        if let accessLog { services.append(accessLog) }
        if listeners.contains(where: { $0.tls != nil }) { services.append(CertificateWatcher(listeners: listeners, logger: logger)) }
        services.append(ListenerServers(servers: servers))
        // Last, so it is the first to hear of a shutdown: streams never end on their own, and the
        // listeners' drain would wait for them until `shutdown_grace`.
        services.append(StreamShutdown(streams: registry.streams))
        let app = ServiceGroup(configuration: .init(services: services, logger: logger))
        do {
            try await app.run()
            await control.flushOperatorState()
            listening.fail(GatewayStartError.stopped)
        } catch {
            await control.flushOperatorState()
            listening.fail(error)
            throw error
        }
    }
}

extension Gateway {
    /// `{"keys": [...]}`: the gateway-token key and any asymmetric access-token keys (never a secret).
    static func jwks(gatewayTokens: GatewayTokenIssuer?, auth: AuthService?) -> ByteBuffer {
        var keys: [[String: String]] = []
        if let gatewayTokens { keys.append(gatewayTokens.jwk) }
        if let auth {
            for (kid, key) in auth.verificationKeys.sorted(by: { $0.key < $1.key }) {
                if let jwk = key.jwk(keyID: kid) { keys.append(jwk) }
            }
        }
        let data = (try? APIJSON.encoder.encode(["keys": keys])) ?? Data(#"{"keys":[]}"#.utf8)
        return ByteBuffer(bytes: data)
    }
}
