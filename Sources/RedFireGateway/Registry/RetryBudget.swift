import Atomics
import HTTPTypes

/// Retry budget: each request deposits `budget_ratio` of a retry, each retry withdraws one, with
/// `min_retries` in reserve at start. Retries can therefore add at most about `budget_ratio` to the
/// load a struggling service sees. Lock-free (fixed-point tokens in an atomic).
final class RetryBudget: Sendable {
    private static let scale = 1000
    private let tokens: ManagedAtomic<Int>
    private let deposit: Int
    private let capacity: Int
    let config: RetryConfig

    init(config: RetryConfig) {
        self.config = config
        self.deposit = Int(config.budgetRatio * Double(Self.scale))
        self.capacity = max(config.minRetries, 1) * Self.scale
        self.tokens = ManagedAtomic(max(config.minRetries, 0) * Self.scale)
    }

    func recordRequest() {
        guard deposit > 0 else { return }
        var current = tokens.load(ordering: .relaxed)
        while current < capacity {
            let (exchanged, original) = tokens.compareExchange(expected: current, desired: min(capacity, current + deposit), ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }

    func tryWithdraw() -> Bool {
        var current = tokens.load(ordering: .relaxed)
        while current >= Self.scale {
            let (exchanged, original) = tokens.compareExchange(expected: current, desired: current - Self.scale, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }
}
