import Atomics
import HTTPTypes

/// The instances of one service (optionally narrowed to one API version) and the balancer over the
/// eligible ones. Rebuilt, never mutated.
package final class ServicePool: Sendable {
    package let service: ServiceConfig
    package let strategy: BalancingStrategyKind
    /// Every instance of the service (matching the version filter), whatever its state.
    package let members: [PoolMember]
    /// The instances the balancer chooses from.
    package let eligible: [PoolMember]
    /// No instance is eligible and `panic_routing` is on: traffic is spread over every non-drained instance.
    package let panic: Bool
    let balancer: any Balancer
    let shared: ServiceRuntime
    package let metrics: MetricSeries

    init(service: ServiceConfig, strategy: BalancingStrategyKind, members: [PoolMember], shared: ServiceRuntime, metrics: MetricSeries) {
        self.metrics = metrics
        self.service = service
        self.strategy = strategy
        self.members = members
        self.shared = shared
        var eligible = members.filter { $0.runtime.isEligible }
        var panic = false
        if eligible.isEmpty && service.panicRouting {
            eligible = members.filter { $0.runtime.isPanicCandidate }
            panic = !eligible.isEmpty
        }
        self.eligible = eligible
        self.panic = panic
        self.balancer = strategy.makeBalancer(members: eligible)
    }

    package var name: String { service.name }
}
