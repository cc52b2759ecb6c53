import Atomics
import Foundation
import Logging
import Synchronization

/// Owns the services and their instances, and publishes `GatewayState` snapshots. Structural changes
/// (config apply, registration, drain, health transitions) take a short lock and publish a new
/// snapshot; requests only ever load the snapshot.
package final class ServiceRegistry: Sendable {
    private let current: ManagedAtomic<GatewayState>
    private let data: Mutex<RegistryData>
    package let events: EventLog
    package let telemetry: Telemetry
    /// Every open WebSocket and event stream of the gateway: shutdown ends them.
    let streams = OpenStreams()
    let logger: Logger

    struct DynamicInstance {
        var config: InstanceConfig
        var ttl: Duration?
    }

    struct RegistryData {
        var config: GatewayConfig
        var generation = 0
        /// Runtime facts by instance id, with the address they describe.
        var runtimes: [String: (runtime: InstanceRuntime, url: UpstreamURL)] = [:]
        /// Instances registered through the control API, by service.
        var dynamic: [String: [DynamicInstance]] = [:]
        /// Strategies chosen by an operator, kept until the file's strategy for the service changes.
        var strategyOverrides: [String: BalancingStrategyKind] = [:]
        var shared: [String: ServiceRuntime] = [:]
        /// Registered instances being drained before removal: id → (service, deadline).
        var pendingRemovals: [String: (service: String, deadline: ContinuousClock.Instant)] = [:]
    }

    package init(config: GatewayConfig, events: EventLog = EventLog(capacity: 1000), telemetry: Telemetry = Telemetry(), logger: Logger = Logger(label: "redfire.registry")) {
        self.events = events
        self.telemetry = telemetry
        self.logger = logger
        var data = RegistryData(config: config)
        let state = Self.build(&data, telemetry: telemetry)
        self.data = Mutex(data)
        self.current = ManagedAtomic(state)
    }

    /// The current snapshot.
    package var state: GatewayState { current.load(ordering: .acquiring) }

    /// Every instance runtime currently known (config and registered).
    var allRuntimes: [InstanceRuntime] { data.withLock { $0.runtimes.values.map(\.runtime) } }

    func runtime(id: String) -> InstanceRuntime? { data.withLock { $0.runtimes[id]?.runtime } }

    /// Applies a new configuration, keeping the runtime facts (health, drain, in-flight) of instances
    /// whose id and address are unchanged.
    package func apply(_ config: GatewayConfig) {
        data.withLock { data in
            for service in config.services {
                if let old = data.config.service(named: service.name), old.strategy != service.strategy {
                    data.strategyOverrides[service.name] = nil
                }
            }
            data.config = config
            publish(&data)
        }
    }

    /// Rebuilds the snapshot from the current data (after health, drain or ejection changes).
    func rebuild() {
        data.withLock { publish(&$0) }
    }

    private func publish(_ data: inout RegistryData) {
        current.store(Self.build(&data, telemetry: telemetry), ordering: .releasing)
    }

    private static func build(_ data: inout RegistryData, telemetry: Telemetry) -> GatewayState {
        data.generation += 1
        var seen: Set<String> = []
        var pools: [ServicePool] = []
        var membersByService: [String: [PoolMember]] = [:]
        var effectiveServices: [String: (ServiceConfig, BalancingStrategyKind, ServiceRuntime)] = [:]
        for service in data.config.services {
            var members: [PoolMember] = []
            let configured = service.instances.map { DynamicInstance(config: $0, ttl: nil) }
            for entry in configured + (data.dynamic[service.name] ?? []) {
                let instance = entry.config
                guard seen.insert(instance.id).inserted else { continue }
                let runtime: InstanceRuntime
                if let existing = data.runtimes[instance.id], existing.url == instance.url, existing.runtime.serviceName == service.name {
                    runtime = existing.runtime
                } else {
                    data.runtimes[instance.id]?.runtime.markRemoved()
                    runtime = InstanceRuntime(id: instance.id, serviceName: service.name,
                                              initialHealth: service.healthCheck.enabled ? .unknown : .healthy,
                                              metrics: telemetry.instance(instance.id))
                    data.runtimes[instance.id] = (runtime, instance.url)
                }
                members.append(PoolMember(runtime: runtime, url: instance.url, weight: instance.weight, version: instance.version, metadata: instance.metadata))
            }
            let strategy = data.strategyOverrides[service.name] ?? service.strategy
            let shared: ServiceRuntime
            if let existing = data.shared[service.name], existing.retryConfig == service.retries {
                shared = existing
            } else {
                shared = ServiceRuntime(retries: service.retries)
                data.shared[service.name] = shared
            }
            membersByService[service.name] = members
            effectiveServices[service.name] = (service, strategy, shared)
            pools.append(ServicePool(service: service, strategy: strategy, members: members, shared: shared, metrics: telemetry.service(service.name)))
        }
        // Instances no longer configured or registered leave for good.
        for (id, entry) in data.runtimes where !seen.contains(id) {
            entry.runtime.markRemoved()
            data.runtimes[id] = nil
        }
        var routes: [RouteEntry] = []
        for route in data.config.routes {
            guard let (service, strategy, shared) = effectiveServices[route.service] else { continue }
            let all = membersByService[route.service] ?? []
            let pool: ServicePool
            if let version = route.version {
                let members = all.filter { Self.version($0.version, matches: version) }
                pool = ServicePool(service: service, strategy: strategy, members: members, shared: shared, metrics: telemetry.service(service.name))
            } else {
                pool = pools.first { $0.name == route.service }!
            }
            routes.append(RouteEntry(config: route, pool: pool, metrics: telemetry.route(route.name)))
        }
        telemetry.retain(routes: Set(data.config.routes.map(\.name)), services: Set(data.config.services.map(\.name)), instances: seen)
        routes.sort { $0.prefixUTF8.count > $1.prefixUTF8.count }
        return GatewayState(generation: data.generation, config: data.config, routes: routes, services: pools)
    }

    /// `2` matches `2`, `2.1`, `2.1.7`; `2.1` matches `2.1.x`; never `21`.
    static func version(_ version: String?, matches selector: String) -> Bool {
        guard let version else { return false }
        return version == selector || version.hasPrefix(selector + ".")
    }

    // MARK: Operator state (persisted across restarts)

    /// Drained instances and operator-chosen strategies, as they are now.
    func operatorState() -> OperatorState {
        data.withLock { data in
            var state = OperatorState()
            for (id, entry) in data.runtimes where entry.runtime.isDraining {
                state.drained[entry.runtime.serviceName, default: []].append(id)
            }
            for key in state.drained.keys { state.drained[key]?.sort() }
            state.strategies = data.strategyOverrides.mapValues(\.rawValue)
            return state
        }
    }

    /// Re-applies saved operator decisions to the services and instances that still exist.
    func restore(_ state: OperatorState) {
        data.withLock { data in
            for (service, ids) in state.drained {
                for id in ids {
                    if let runtime = data.runtimes[id]?.runtime, runtime.serviceName == service {
                        _ = runtime.setDraining(true)
                    }
                }
            }
            for (service, raw) in state.strategies {
                if data.config.service(named: service) != nil, let strategy = BalancingStrategyKind(rawValue: raw) {
                    data.strategyOverrides[service] = strategy
                }
            }
            publish(&data)
        }
    }

    // MARK: Changes (called through GatewayControl and the health checker)

    func setStrategy(service: String, strategy: BalancingStrategyKind) throws(ControlError) {
        try data.withLock { data throws(ControlError) in
            guard data.config.service(named: service) != nil else { throw .serviceNotFound(service) }
            data.strategyOverrides[service] = strategy
            publish(&data)
        }
    }

    func register(service: String, instance: InstanceConfig, ttl: Duration?, now: ContinuousClock.Instant) throws(ControlError) -> InstanceRuntime {
        try data.withLock { data throws(ControlError) in
            guard let serviceConfig = data.config.service(named: service) else { throw .serviceNotFound(service) }
            if serviceConfig.instances.contains(where: { $0.id == instance.id }) {
                throw .conflict("instance \(instance.id) is defined in the configuration file")
            }
            if let owner = data.runtimes[instance.id]?.runtime.serviceName, owner != service {
                throw .conflict("instance id \(instance.id) is already used by service \(owner)")
            }
            var list = data.dynamic[service] ?? []
            list.removeAll { $0.config.id == instance.id }
            list.append(DynamicInstance(config: instance, ttl: ttl))
            data.dynamic[service] = list
            publish(&data)
            let runtime = data.runtimes[instance.id]!.runtime
            if let ttl { runtime.renewLease(ttl: ttl, now: now) }
            return runtime
        }
    }

    func deregister(service: String, id: String) throws(ControlError) {
        try data.withLock { data throws(ControlError) in
            guard data.config.service(named: service) != nil else { throw .serviceNotFound(service) }
            guard var list = data.dynamic[service], list.contains(where: { $0.config.id == id }) else {
                if data.config.service(named: service)!.instances.contains(where: { $0.id == id }) {
                    throw .conflict("instance \(id) is defined in the configuration file; drain it instead")
                }
                throw .instanceNotFound(service: service, id: id)
            }
            list.removeAll { $0.config.id == id }
            data.dynamic[service] = list
            publish(&data)
        }
    }

    /// Drains a registered instance and removes it once nothing is in flight or the deadline passes.
    func scheduleRemoval(service: String, id: String, deadline: ContinuousClock.Instant) throws(ControlError) {
        try data.withLock { data throws(ControlError) in
            guard data.config.service(named: service) != nil else { throw .serviceNotFound(service) }
            guard data.dynamic[service]?.contains(where: { $0.config.id == id }) == true, let runtime = data.runtimes[id]?.runtime else {
                if data.config.service(named: service)!.instances.contains(where: { $0.id == id }) {
                    throw .conflict("instance \(id) is defined in the configuration file; drain it instead")
                }
                throw .instanceNotFound(service: service, id: id)
            }
            _ = runtime.setDraining(true)
            data.pendingRemovals[id] = (service, deadline)
            publish(&data)
        }
    }

    /// Removes the instances scheduled for removal that are idle or past their deadline.
    func completeRemovals(now: ContinuousClock.Instant) -> [(service: String, id: String, inFlight: Int)] {
        data.withLock { data in
            guard !data.pendingRemovals.isEmpty else { return [] }
            var removed: [(String, String, Int)] = []
            for (id, pending) in data.pendingRemovals {
                let inFlight = data.runtimes[id]?.runtime.inFlight ?? 0
                guard inFlight == 0 || now >= pending.deadline else { continue }
                data.dynamic[pending.service]?.removeAll { $0.config.id == id }
                data.pendingRemovals[id] = nil
                removed.append((pending.service, id, inFlight))
            }
            if !removed.isEmpty { publish(&data) }
            return removed
        }
    }

    /// A registered (not configured) instance as registered; nil when there is none.
    func registeredInstance(service: String, id: String) -> InstanceConfig? {
        data.withLock { $0.dynamic[service]?.first { $0.config.id == id }?.config }
    }

    /// Every registered instance: (service, id).
    func registeredInstances() -> [(service: String, id: String)] {
        data.withLock { data in data.dynamic.flatMap { service, list in list.map { (service, $0.config.id) } } }
    }

    func heartbeat(service: String, id: String, now: ContinuousClock.Instant) throws(ControlError) {
        try data.withLock { data throws(ControlError) in
            guard let entry = data.dynamic[service]?.first(where: { $0.config.id == id }),
                  let runtime = data.runtimes[id]?.runtime else {
                throw .instanceNotFound(service: service, id: id)
            }
            if let ttl = entry.ttl { runtime.renewLease(ttl: ttl, now: now) }
        }
    }

    /// Removes registered instances whose lease ran out; returns their ids.
    func expireLeases(now: ContinuousClock.Instant) -> [(service: String, id: String)] {
        data.withLock { data in
            var expired: [(String, String)] = []
            for (service, list) in data.dynamic {
                for entry in list where data.runtimes[entry.config.id]?.runtime.leaseExpired(now: now) == true {
                    expired.append((service, entry.config.id))
                }
            }
            guard !expired.isEmpty else { return [] }
            for (service, id) in expired {
                data.dynamic[service]?.removeAll { $0.config.id == id }
            }
            publish(&data)
            return expired
        }
    }

    func instance(service: String, id: String) throws(ControlError) -> InstanceRuntime {
        try data.withLock { data throws(ControlError) in
            guard data.config.service(named: service) != nil else { throw .serviceNotFound(service) }
            guard let runtime = data.runtimes[id]?.runtime, runtime.serviceName == service else {
                throw .instanceNotFound(service: service, id: id)
            }
            return runtime
        }
    }

    /// Drains (or undrains) an instance in one registry operation: finding it, setting its flag and
    /// deadline and publishing the new snapshot happen under the registry's lock, so a reload that
    /// replaces the instance cannot slip in between and leave the drain on an object no longer served.
    /// Returns the instance and whether its drain state changed.
    func setDrain(service: String, id: String, draining: Bool, deadline: ContinuousClock.Instant?) throws(ControlError) -> (InstanceRuntime, changed: Bool) {
        try data.withLock { data throws(ControlError) in
            guard data.config.service(named: service) != nil else { throw .serviceNotFound(service) }
            guard let runtime = data.runtimes[id]?.runtime, runtime.serviceName == service else {
                throw .instanceNotFound(service: service, id: id)
            }
            runtime.setDrainDeadline(deadline)
            let changed = runtime.setDraining(draining)
            if changed { publish(&data) }
            return (runtime, changed)
        }
    }

    /// Finds an instance by id alone (the console's `:drain ID`).
    func instance(id: String) -> InstanceRuntime? {
        data.withLock { $0.runtimes[id]?.runtime }
    }

    func record(_ kind: GatewayEvent.Kind, service: String?, instance: String?, _ message: String) {
        events.append(GatewayEvent(at: Date(), kind: kind, service: service, instance: instance, message: message))
        var metadata: Logger.Metadata = ["event": .string(kind.rawValue)]
        if let service { metadata["service"] = .string(service) }
        if let instance { metadata["instance"] = .string(instance) }
        logger.info("\(message)", metadata: metadata)
    }
}
