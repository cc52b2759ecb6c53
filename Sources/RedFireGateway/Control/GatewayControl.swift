import Foundation
import Synchronization

/// The one way to change the gateway's runtime state. The admin API and the operations console both
/// call it; every call is written to the audit trail and, when it changes something, to the events.
public final class GatewayControl: Sendable {
    /// Reload attempts since start, and whether the last one was refused.
    struct ReloadOutcomes {
        var succeeded = 0
        var failed = 0
        var lastFailed = false
    }

    package let registry: ServiceRegistry
    public let audit: AuditTrail
    /// The file `reload` reads; nil when the gateway was built from a value.
    public let configPath: String?
    let reloadOutcomes = Mutex(ReloadOutcomes())
    let store: OperatorStateStore?
    let writer: OperatorStateWriter?
    /// The cluster's shared store, when `cluster.store` is set: drains and strategies go there too and
    /// reach every node; the local file stays as this node's snapshot.
    package let cluster: ClusterStore?
    /// The cluster's nodes by their heartbeats (with `cluster`).
    package let membership: ClusterMembership?
    /// Leases of registered instances, kept in the cluster store (with `cluster`).
    package let leases: ClusterLeases?
    /// The gateway's listeners: a reload gives TLS listeners their new certificates and settings.
    package let listeners: [ListenerRuntime]

    /// - Parameter dataDirectory: where drain and strategy decisions are kept across restarts; the
    ///   saved decisions are applied now.
    package init(registry: ServiceRegistry, audit: AuditTrail = AuditTrail(), configPath: String? = nil, dataDirectory: String? = nil,
                 cluster: ClusterStore? = nil, membership: ClusterMembership? = nil, leases: ClusterLeases? = nil,
                 listeners: [ListenerRuntime] = []) {
        self.registry = registry
        self.listeners = listeners
        self.cluster = cluster
        self.membership = membership
        self.leases = leases
        self.audit = audit
        self.configPath = configPath
        self.store = dataDirectory.map { OperatorStateStore(directory: $0, logger: registry.logger) }
        self.writer = store.map { OperatorStateWriter(store: $0) }
        if let saved = store?.load() {
            registry.restore(saved)
            registry.record(.operatorAction, service: nil, instance: nil,
                            "restored operator state: \(saved.drained.values.reduce(0) { $0 + $1.count }) drained instance(s), \(saved.strategies.count) strategy choice(s)")
        }
    }

    func persist(_ change: ClusterChange? = nil, actor: String = "") {
        writer?.save(registry.operatorState())
        if let cluster, let change { cluster.enqueue(change, actor: "\(actor)@\(cluster.nodeName)") }
    }

    /// In a cluster, an operator change must reach every node: while the store cannot be reached it is
    /// refused rather than applied here alone.
    func requireClusterStore() throws(ControlError) {
        guard let cluster, let since = cluster.unreachableSince else { return }
        throw .conflict("the cluster store \(cluster.url) is unreachable since \(since.formatted(.iso8601)): "
                        + "this change would reach this node only; retry when the store is back")
    }

    /// Waits until the last operator decision is saved (graceful shutdown).
    /// (The cluster store flushes its own queue, bounded in time, as the last service to stop.)
    public func flushOperatorState() async {
        await writer?.flush()
    }

    /// Takes an instance out of rotation: no new requests; in-flight ones finish. The state reads
    /// `draining` until in-flight reaches zero, then `drained`. Survives health changes and reloads.
    ///
    /// - Parameter deadline: the longest to wait: then the instance reads `drained` even with requests
    ///   still in flight. They are not cut: a request the service may have acted on (an order) must not
    ///   end in an unknown state for its client. Draining again replaces the deadline; nil keeps none.
    public func drain(service: String, instance id: String, deadline: Duration? = nil, actor: String) throws(ControlError) {
        try perform("drain", target: "\(service)/\(id)", actor: actor) { () throws(ControlError) in
            try requireClusterStore()
            let (runtime, changed) = try registry.setDrain(service: service, id: id, draining: true, deadline: deadline.map { .now + $0 })
            let within = deadline.map { " within \(ConfigDuration.format($0))" } ?? ""
            // In a cluster every request is published, changed here or not: this node's state may be an
            // older event of its own coming back, and the log's order is what every node ends with.
            if changed || deadline != nil || cluster != nil {
                persist(.drain(service: service, instance: id, draining: true, deadlineMillis: deadline?.milliseconds), actor: actor)
            }
            guard changed else {
                if deadline != nil { registry.record(.drain, service: service, instance: id, "\(id) drain deadline set\(within) by \(actor)") }
                return
            }
            registry.record(.drain, service: service, instance: id, "\(id) draining\(within) (\(runtime.inFlight) in flight) by \(actor)")
        }
    }

    /// Returns a drained or draining instance to rotation.
    public func undrain(service: String, instance id: String, actor: String) throws(ControlError) {
        try perform("undrain", target: "\(service)/\(id)", actor: actor) { () throws(ControlError) in
            try requireClusterStore()
            let changed = try registry.setDrain(service: service, id: id, draining: false, deadline: nil).changed
            if changed || cluster != nil { persist(.drain(service: service, instance: id, draining: false, deadlineMillis: nil), actor: actor) }
            guard changed else { return }
            registry.record(.drain, service: service, instance: id, "\(id) back in rotation by \(actor)")
        }
    }

    /// Switches a service's balancing strategy. In-flight requests are unaffected; new requests use the
    /// new strategy from the next snapshot on.
    public func setStrategy(service: String, strategy: BalancingStrategyKind, actor: String) throws(ControlError) {
        try perform("set_strategy", target: "\(service)=\(strategy.rawValue)", actor: actor) { () throws(ControlError) in
            try requireClusterStore()
            let before = registry.state.service(named: service)?.strategy
            try registry.setStrategy(service: service, strategy: strategy)
            persist(.strategy(service: service, strategy: strategy.rawValue), actor: actor)
            if before != strategy {
                registry.record(.strategy, service: service, instance: nil, "\(service) strategy \(before?.rawValue ?? "?") → \(strategy.rawValue) by \(actor)")
            }
        }
    }

    /// Registers an instance at runtime. With a `leaseTTL` it must send heartbeats within each TTL, or it
    /// leaves rotation and the registry.
    public func register(service: String, instance: InstanceConfig, leaseTTL: Duration?, actor: String) throws(ControlError) {
        try perform("register", target: "\(service)/\(instance.id)", actor: actor) { () throws(ControlError) in
            guard GatewayConfig.isValidName(instance.id) else { throw .invalid("instance ids may use letters, digits, '_', '.' and '-' only") }
            guard (1...1000).contains(instance.weight) else { throw .invalid("weight must be between 1 and 1000") }
            if let ttl = leaseTTL, ttl < .milliseconds(100) { throw .invalid("lease TTL must be at least 100ms") }
            try requireClusterStore()
            // In a cluster the lease lives in the store (`ClusterLeases`): renewed by heartbeats to any node,
            // expired by the store's clock for every node at once — never by this node alone.
            _ = try registry.register(service: service, instance: instance, ttl: cluster == nil ? leaseTTL : nil, now: .now)
            registry.record(.registration, service: service, instance: instance.id, "\(instance.id) registered at \(instance.url) by \(actor)")
            persistRegistration(service: service, instance: instance, leaseTTL: leaseTTL, actor: actor)
        }
    }

    public func deregister(service: String, instance id: String, actor: String) throws(ControlError) {
        try perform("deregister", target: "\(service)/\(id)", actor: actor) { () throws(ControlError) in
            try requireClusterStore()
            try registry.deregister(service: service, id: id)
            registry.record(.registration, service: service, instance: id, "\(id) deregistered by \(actor)")
            persist(.deregistered(service: service, id: id, reason: "deregistered"), actor: actor)
        }
    }

    /// Drains a registered instance, then deregisters it when nothing is left in flight or when
    /// `deadline` has passed, whichever comes first.
    public func deregisterAfterDrain(service: String, instance id: String, deadline: Duration, actor: String) throws(ControlError) {
        try perform("deregister_after_drain", target: "\(service)/\(id)", actor: actor) { () throws(ControlError) in
            try requireClusterStore()
            try registry.scheduleRemoval(service: service, id: id, deadline: .now + deadline)
            // Every node drains it; this one deregisters it for all when it is done (`removalCompleted`).
            persist(.drain(service: service, instance: id, draining: true, deadlineMillis: Int64(deadline.components.seconds * 1000)), actor: actor)
            registry.record(.drain, service: service, instance: id, "\(id) draining before deregistration (deadline \(ConfigDuration.format(deadline))) by \(actor)")
        }
    }

    public func heartbeat(service: String, instance id: String, actor: String) throws(ControlError) {
        // Heartbeats are frequent and change nothing visible: they are not audited.
        try registry.heartbeat(service: service, id: id, now: .now)
        // In a cluster, the renewal is written to the store with the next batch — kept while it is away.
        leases?.heartbeat(service: service, id: id)
    }

    func perform(_ action: String, target: String, actor: String, _ body: () throws(ControlError) -> Void) throws(ControlError) {
        // In a cluster the audit trail says on which node an action was taken: `console@node-b`.
        let actor = cluster.map { "\(actor)@\($0.nodeName)" } ?? actor
        func record(_ result: String) {
            let entry = AuditEntry(at: Date(), actor: actor, action: action, target: target, result: result)
            audit.append(entry)
            // In a cluster the trail is every node's: the entry goes to the store too.
            cluster?.enqueueAudit(at: entry.at, actor: entry.actor, action: entry.action, target: entry.target, result: entry.result)
        }
        do {
            try body()
            record("ok")
        } catch {
            record(error.code)
            throw error
        }
    }
}
