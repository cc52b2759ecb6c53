import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The admin API under `/gateway/*`: services and instances with their state and recent figures,
/// registration, drain, strategy, routes, stats and the audit trail. Every change goes through
/// `GatewayControl`. Callers need the `gateway:admin` permission in a user's access token, or the
/// operators' `admin.token` from the configuration; with neither configured it is disabled.
struct AdminAPI: Sendable {
    let control: GatewayControl
    /// The listener as it runs (`GET /gateway`): the bound address, open connections, uptime.
    var listener: @Sendable () -> GatewayInfoView = { GatewayInfoView(listen: "", port: 0, openConnections: 0, uptimeSeconds: 0, generation: 0) }

    var registry: ServiceRegistry { control.registry }

    static let encoder = APIJSON.encoder
    static let decoder = APIJSON.decoder

    /// - Parameter auth: when set, an access token with `gateway:admin` is accepted besides `admin.token`.
    /// - Parameter credentialThrottle: counts invalid credentials per client (shared with the proxy path
    ///   when authentication is on, so guessing here and there adds up).
    /// - Parameter credentialThrottle: invalid credentials per resolved client (`auth.max_credential_failures`).
    func responder(auth: AuthService? = nil, credentialThrottle: LoginThrottle? = nil) -> AdminResponder {
        AdminResponder(router: router().buildResponder(), registry: registry,
                       authenticator: Authenticator(auth: auth, throttle: credentialThrottle, realm: "redfire-gateway-admin"))
    }

    /// The admin routes (also read by the test that checks the OpenAPI document covers them all).
    func router() -> Router<GatewayRequestContext> {
        let router = Router(context: GatewayRequestContext.self)
        router.get("/gateway") { _, context in
            var info = listener()
            info.generation = registry.state.generation
            return try json(info, context)
        }
        router.get("/gateway/services") { _, context in
            try json(["services": registry.state.services.map(serviceView)], context)
        }
        router.get("/gateway/services/:name") { _, context in
            let name = try context.parameters.require("name")
            guard let pool = registry.state.service(named: name) else { throw ControlError.serviceNotFound(name) }
            return try json(serviceView(pool), context)
        }
        router.post("/gateway/services/:name/instances") { request, context in
            let name = try context.parameters.require("name")
            let body = try await decode(RegisterBody.self, request)
            guard let url = UpstreamURL(parsing: body.url) else { throw ControlError.invalid("url must be http://HOST:PORT") }
            var ttl: Duration?
            if let text = body.leaseTtl {
                guard let parsed = ConfigDuration.parse(text) else { throw ControlError.invalid("lease_ttl must be a duration such as 10s") }
                ttl = parsed
            }
            let instance = InstanceConfig(id: body.id, url: url, weight: body.weight ?? 1, version: body.version, metadata: body.metadata ?? [:])
            try control.register(service: name, instance: instance, leaseTTL: ttl, actor: actor(context))
            return try json(instanceView(name, id: body.id), context, status: .created)
        }
        router.put("/gateway/services/:name/instances/:id/heartbeat") { _, context in
            let (name, id) = try (context.parameters.require("name"), context.parameters.require("id"))
            try control.heartbeat(service: name, instance: id, actor: actor(context))
            return try json(instanceView(name, id: id), context)
        }
        router.delete("/gateway/services/:name/instances/:id") { request, context in
            let (name, id) = try (context.parameters.require("name"), context.parameters.require("id"))
            if request.uri.queryParameters.get("drain") == "true" {
                var deadline: Duration = .seconds(30)
                if let text = request.uri.queryParameters.get("deadline") {
                    guard let parsed = ConfigDuration.parse(text) else { throw ControlError.invalid("deadline must be a duration such as 30s") }
                    deadline = parsed
                }
                try control.deregisterAfterDrain(service: name, instance: id, deadline: deadline, actor: actor(context))
                return try json(instanceView(name, id: id), context, status: .accepted)
            }
            try control.deregister(service: name, instance: id, actor: actor(context))
            return Response(status: .noContent, headers: [.requestID: context.requestID])
        }
        router.post("/gateway/services/:name/instances/:id/drain") { request, context in
            let (name, id) = try (context.parameters.require("name"), context.parameters.require("id"))
            // `?deadline=30s` or `{"deadline": "30s"}`: the longest to wait for in-flight requests.
            var text = request.uri.queryParameters.get("deadline")
            if text == nil, request.headers[.contentLength].map({ $0 != "0" }) ?? request.headers.contains(.transferEncoding) {
                text = try await decode(DrainBody.self, request).deadline
            }
            var deadline: Duration?
            if let text {
                guard let parsed = ConfigDuration.parse(text), parsed > .zero else { throw ControlError.invalid("deadline must be a duration such as 30s") }
                deadline = parsed
            }
            try control.drain(service: name, instance: id, deadline: deadline, actor: actor(context))
            return try json(instanceView(name, id: id), context)
        }
        router.post("/gateway/services/:name/instances/:id/undrain") { _, context in
            let (name, id) = try (context.parameters.require("name"), context.parameters.require("id"))
            try control.undrain(service: name, instance: id, actor: actor(context))
            return try json(instanceView(name, id: id), context)
        }
        router.put("/gateway/services/:name/strategy") { request, context in
            let name = try context.parameters.require("name")
            let body = try await decode(StrategyBody.self, request)
            guard let strategy = BalancingStrategyKind(rawValue: body.strategy) else {
                throw ControlError.invalid("strategy must be one of \(BalancingStrategyKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            try control.setStrategy(service: name, strategy: strategy, actor: actor(context))
            guard let pool = registry.state.service(named: name) else { throw ControlError.serviceNotFound(name) }
            return try json(serviceView(pool), context)
        }
        router.get("/gateway/cluster") { _, context in
            try json(clusterView(), context)
        }
        router.get("/gateway/routes") { _, context in
            try json(["routes": registry.state.config.routes.map {
                RouteView(name: $0.name, prefix: $0.prefix, service: $0.service, methods: $0.methods, stripPrefix: $0.stripPrefix, version: $0.version)
            }], context)
        }
        router.get("/gateway/stats") { request, context in
            let text = request.uri.queryParameters.get("window") ?? "1m"
            guard let duration = ConfigDuration.parse(text), duration >= .seconds(1) else {
                throw ControlError.invalid("window must be a duration such as 10s, 1m or 15m")
            }
            return try json(stats(window: text, seconds: Int(duration.components.seconds)), context)
        }
        router.get("/gateway/audit") { _, context in
            let formatter = ISO8601DateFormatter()
            // In a cluster, every node's trail from the store; this node's own when the store cannot be read
            // (`scope` says which).
            if let cluster = control.cluster, let entries = try? await cluster.auditTrail(limit: 1000) {
                return try json(AuditListView(scope: "cluster", entries: entries.reversed().map {
                    AuditView(at: formatter.string(from: $0.at), actor: $0.actor, action: $0.action, target: $0.target, result: $0.result)
                }), context)
            }
            return try json(AuditListView(scope: control.cluster == nil ? "node" : "node (cluster store unreachable)", entries: control.audit.recent(1000).map {
                AuditView(at: formatter.string(from: $0.at), actor: $0.actor, action: $0.action, target: $0.target, result: $0.result)
            }), context)
        }
        router.get("/gateway/events") { _, context in
            let formatter = ISO8601DateFormatter()
            return try json(["events": registry.events.recent(500).map {
                EventView(at: formatter.string(from: $0.at), kind: $0.kind.rawValue, service: $0.service, instance: $0.instance, message: $0.message)
            }], context)
        }
        router.post("/gateway/config/reload") { _, context in
            let result = await control.reloadOffLoop(actor: actor(context))
            guard result.applied else {
                let problems = result.problems.map { ProblemView(path: $0.path, line: $0.line, message: $0.message) }
                let details = try Self.encoder.encode(ReloadView(applied: false, generation: result.generation, problems: problems, restartRequired: []))
                return ErrorEnvelope.response(.invalidConfig, requestID: context.requestID, details: ByteBuffer(bytes: details))
            }
            return try json(ReloadView(applied: true, generation: result.generation, problems: [], restartRequired: result.restartRequired), context)
        }
        return router
    }

    private func actor(_ context: GatewayRequestContext) -> String { context.actor }

    private func decode<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        var request = request
        let body = try await request.collectBody(upTo: 64 * 1024)
        do {
            return try Self.decoder.decode(type, from: Data(buffer: body))
        } catch {
            throw ControlError.invalid("the body must be a JSON object with the documented fields")
        }
    }

    private func json(_ value: some Encodable, _ context: GatewayRequestContext, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try Self.encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json", .requestID: context.requestID, .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The cluster as this node sees it: its store, and the nodes by their heartbeats.
    func clusterView() -> ClusterView {
        guard let store = control.cluster else { return ClusterView(enabled: false) }
        let nodes = control.membership?.nodes ?? []
        return ClusterView(enabled: true, node: store.nodeName,
                           store: .init(url: store.url.description, reachable: store.isReachable,
                                        unreachableSince: store.isKnownUnreachable ? store.unreachableSince : nil,
                                        lastError: store.lastError),
                           nodes: nodes.filter(\.alive), departed: nodes.filter { !$0.alive }, readAt: control.membership?.readAt,
                           housekeeping: control.membership?.lastHouseKeeping)
    }

    private func serviceView(_ pool: ServicePool) -> ServiceView {
        let window = pool.metrics.window(seconds: 60)
        return ServiceView(name: pool.name, strategy: pool.strategy.rawValue, hashKey: pool.service.hashKey.description, panic: pool.panic,
                           eligibleInstances: pool.eligible.count, requestsPerSecond: window.requestsPerSecond, errorRatio: window.errorRatio,
                           p99Ms: window.latency.quantile(0.99).map { Double($0) / 1000 },
                           instances: pool.members.map(instanceView))
    }

    private func instanceView(_ service: String, id: String) throws -> InstanceView {
        guard let member = registry.state.service(named: service)?.members.first(where: { $0.id == id }) else {
            throw ControlError.instanceNotFound(service: service, id: id)
        }
        return instanceView(member)
    }

    private func instanceView(_ member: PoolMember) -> InstanceView {
        let runtime = member.runtime
        let now = ContinuousClock.now
        let window = runtime.metrics.window(seconds: 60)
        func ms(_ duration: Duration) -> Int { Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000) }
        return InstanceView(id: runtime.id, url: member.url.description, state: runtime.state.rawValue, health: runtime.health.rawValue,
                            weight: member.weight, version: member.version, metadata: member.metadata, inFlight: runtime.inFlight,
                            dispatched: runtime.dispatched, requestsPerSecond: window.requestsPerSecond, errorRatio: window.errorRatio,
                            p99Ms: window.latency.quantile(0.99).map { Double($0) / 1000 },
                            ejectedForMs: runtime.ejectedUntil.map { max(0, ms($0 - now)) },
                            leaseExpiresInMs: runtime.leaseExpiresAt.map { max(0, ms($0 - now)) },
                            drainDeadlineInMs: runtime.isDraining ? runtime.drainDeadline.map { max(0, ms($0 - now)) } : nil,
                            lastChecks: runtime.recentChecks.reversed().map { CheckView(passed: $0.passed, reason: $0.reason, ageMs: ms(now - $0.at)) },
                            healthByNode: control.membership?.healthByNode(instance: runtime.id))
    }

    private func stats(window: String, seconds: Int) -> StatsView {
        let state = registry.state
        var routes: [String: WindowView] = [:]
        for route in state.routes { routes[route.name] = WindowView(route.metrics.window(seconds: seconds)) }
        var services: [String: WindowView] = [:]
        var instances: [String: WindowView] = [:]
        for pool in state.services {
            services[pool.name] = WindowView(pool.metrics.window(seconds: seconds))
            for member in pool.members { instances[member.id] = WindowView(member.runtime.metrics.window(seconds: seconds)) }
        }
        let gateway = registry.telemetry.gatewayWindow(seconds: seconds, state: state)
        return StatsView(window: window, windowSeconds: gateway.seconds, generation: state.generation, gateway: WindowView(gateway),
                         routes: routes, services: services, instances: instances)
    }
}
