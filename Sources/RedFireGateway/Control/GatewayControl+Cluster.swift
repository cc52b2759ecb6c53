import Foundation

/// What a node applies from the cluster's log, and what it writes there for registrations.
extension GatewayControl {
    /// Applies a change from the cluster's log (another node's, or this node's own coming back):
    /// idempotent, so a change applied twice leaves one result and one event.
    package func apply(_ event: ClusterEvent) {
        guard let change = event.change else { return }
        let remote = !event.node.isEmpty && event.node != cluster?.nodeName
        let by = event.node.isEmpty ? "" : " by \(event.actor)"
        switch change {
        case .drain(let service, let id, let draining, let deadlineMillis):
            guard let (_, changed) = try? registry.setDrain(service: service, id: id, draining: draining,
                                                            deadline: deadlineMillis.map { .now + .milliseconds($0) }) else { return }
            guard changed else { return }
            writer?.save(registry.operatorState())
            if remote || event.node.isEmpty {
                registry.record(.drain, service: service, instance: id, draining ? "\(id) draining\(by) (cluster)" : "\(id) back in rotation\(by) (cluster)")
            }
        case .strategy(let service, let raw):
            guard let strategy = BalancingStrategyKind(rawValue: raw) else { return }
            let before = registry.state.service(named: service)?.strategy
            guard before != strategy, (try? registry.setStrategy(service: service, strategy: strategy)) != nil else { return }
            writer?.save(registry.operatorState())
            if remote || event.node.isEmpty {
                registry.record(.strategy, service: service, instance: nil, "\(service) strategy \(before?.rawValue ?? "?") → \(raw)\(by) (cluster)")
            }
        case .registered(let service, let id, let url, let weight, let version, let metadata, _):
            guard let address = UpstreamURL(parsing: url) else { return }
            let instance = InstanceConfig(id: id, url: address, weight: weight, version: version, metadata: metadata)
            let known = registry.registeredInstance(service: service, id: id)
            guard known != instance else { return }
            guard (try? registry.register(service: service, instance: instance, ttl: nil, now: .now)) != nil else { return }
            if remote || event.node.isEmpty {
                registry.record(.registration, service: service, instance: id, "\(id) registered at \(url)\(by) (cluster)")
            }
        case .deregistered(let service, let id, let reason):
            guard registry.registeredInstance(service: service, id: id) != nil,
                  (try? registry.deregister(service: service, id: id)) != nil else { return }
            registry.record(.registration, service: service, instance: id, "\(id) left: \(reason)\(by) (cluster)")
        case .registrationSet(let keys):
            let stored = Set(keys)
            for (service, id) in registry.registeredInstances() where !stored.contains(ClusterChange.registrationKey(service, id)) {
                guard (try? registry.deregister(service: service, id: id)) != nil else { continue }
                registry.record(.registration, service: service, instance: id, "\(id) left while this node was away from the cluster store")
            }
        case .sessionRevoked, .accessCutoff, .apiKeysChanged:
            return  // the auth service's (`Gateway` hands them over)
        }
    }

    /// Writes a registration to the cluster (with its lease, if any).
    func persistRegistration(service: String, instance: InstanceConfig, leaseTTL: Duration?, actor: String) {
        let lease = leaseTTL.map { $0.components.seconds * 1000 + $0.components.attoseconds / 1_000_000_000_000_000 }
        persist(.registered(service: service, id: instance.id, url: instance.url.description, weight: instance.weight, version: instance.version,
                            metadata: instance.metadata, leaseMillis: lease), actor: actor)
    }

    /// A registered instance this node drained before deregistering it is gone: the other nodes drop it too.
    package func removalCompleted(service: String, id: String) {
        persist(.deregistered(service: service, id: id, reason: "drained"), actor: "maintenance")
    }
}
