import Atomics
import HTTPTypes

/// Per-service objects that live across snapshots: the retry budget.
final class ServiceRuntime: Sendable {
    let retryBudget: RetryBudget
    /// Requests in flight to the service (for `max_in_flight`), across rebuilds.
    fileprivate let inFlightCounter = ManagedAtomic<Int>(0)

    /// Admitted requests now (`ServiceAdmission` is the only writer).
    var inFlight: Int { inFlightCounter.load(ordering: .relaxed) }

    init(retries: RetryConfig) {
        self.retryBudget = RetryBudget(config: retries)
    }
}

extension ServiceRuntime {
    var retryConfig: RetryConfig { retryBudget.config }
}

/// One admitted request under a service's `max_in_flight`, released when the last reference goes
/// (the response body finished, failed or was abandoned).
final class ServiceAdmission: Sendable {
    let shared: ServiceRuntime

    /// nil when the service is at its limit.
    init?(_ shared: ServiceRuntime, limit: Int) {
        guard shared.inFlightCounter.wrappingIncrementThenLoad(ordering: .relaxed) <= limit else {
            shared.inFlightCounter.wrappingDecrement(ordering: .relaxed)
            return nil
        }
        self.shared = shared
    }

    deinit {
        shared.inFlightCounter.wrappingDecrement(ordering: .relaxed)
    }
}
