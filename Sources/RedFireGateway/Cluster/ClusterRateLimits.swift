import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Rate limits shared by the cluster: the node count for `split` (from `ClusterMembership`) and the
/// `exact` decision — one statement per request on `redfire.rate_windows`, a counter per policy, key and
/// fixed window of the policy's period by the store's clock, incremented only while below the limit, so
/// the cluster never admits more than the limit in a window. Each decision waits at most `deadline`;
/// beyond it, or while the listener knows the store is down, the policy cannot be decided here (503, or
/// `split` when the policy says `when_store_unavailable: split`).
package final class ClusterRateLimits: SharedRateLimits {
    let store: ClusterStore
    let membership: ClusterMembership?
    let deadline: Duration
    /// `scope: sync` decisions and their batched writes.
    package let sync: ClusterRateSync
    private let lastWarning = Mutex<ContinuousClock.Instant?>(nil)

    package init(store: ClusterStore, membership: ClusterMembership?, syncInterval: Duration = .milliseconds(200), deadline: Duration = .seconds(1)) {
        self.store = store
        self.membership = membership
        self.deadline = deadline
        self.sync = ClusterRateSync(store: store, membership: membership, interval: syncInterval)
    }

    package func acquireSync(_ key: String, policy: RateLimitPolicy) -> RateDecision {
        sync.acquire(key, policy: policy)
    }

    package func refundSync(_ key: String, policy: RateLimitPolicy) {
        sync.refund(key, policy: policy)
    }

    package var nodeCount: Int { membership?.aliveCount ?? 1 }
    package var isAvailable: Bool { !store.isKnownUnreachable }

    static func periodMillis(_ policy: RateLimitPolicy) -> Int64 {
        max(1, policy.period.components.seconds * 1000 + policy.period.components.attoseconds / 1_000_000_000_000_000)
    }

    package func acquireExact(_ key: String, policy: RateLimitPolicy) async throws -> RateDecision {
        let period = Self.periodMillis(policy)
        let limit = policy.count
        let name = policy.name
        let row: (count: Int?, millisLeft: Int64)
        do {
            row = try await decide(Self.storedKey(key), name: name, period: period, limit: limit)
        } catch {
            warnAtMostEverySecond(error)
            throw error
        }
        let seconds = max(1, Int((row.millisLeft + 999) / 1000))
        guard let count = row.count else {
            return RateDecision(allowed: false, remaining: 0, resetSeconds: seconds, retryAfterSeconds: seconds)
        }
        return RateDecision(allowed: true, remaining: max(0, limit - count), resetSeconds: seconds, retryAfterSeconds: 0)
    }

    /// One failure in a second is logged; the rest are counted in it (a failing store must not flood the log).
    private func warnAtMostEverySecond(_ error: any Error) {
        let now = ContinuousClock.now
        let due = lastWarning.withLock { last -> Bool in
            if let last, now - last < .seconds(1) { return false }
            last = now
            return true
        }
        if due { store.logger.warning("an exact rate limit could not be decided in the cluster store", metadata: ["error": .string(String(reflecting: error))]) }
    }

    private func decide(_ key: String, name: String, period: Int64, limit: Int) async throws -> (count: Int?, millisLeft: Int64) {
        try await Deadline.run(deadline) { [store] in
            try await store.client.withConnection { connection -> (count: Int?, millisLeft: Int64) in
                let rows = try await connection.query("""
                    WITH now AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms),
                    attempt AS (
                      INSERT INTO redfire.rate_windows AS w (policy, key, window_start, count)
                      SELECT \(name), \(key), ms - ms % \(period), 1 FROM now
                      ON CONFLICT (policy, key, window_start) DO UPDATE SET count = w.count + 1 WHERE w.count < \(limit)
                      RETURNING w.count)
                    SELECT (SELECT count FROM attempt), (SELECT \(period) - ms % \(period) FROM now)
                    """, logger: store.logger)
                var result: (count: Int?, millisLeft: Int64) = (nil, period)
                for try await (count, left) in rows.decode((Int?, Int64).self) { result = (count, left) }
                return result
            }
        }
    }

    /// The limiter joins route and client with NUL, which PostgreSQL text cannot hold.
    static func storedKey(_ key: String) -> String {
        key.contains("\u{0}") ? key.replacingOccurrences(of: "\u{0}", with: "\u{1F}") : key
    }

    package func refundExact(_ key: String, policy: RateLimitPolicy) async {
        let key = Self.storedKey(key)
        let period = Self.periodMillis(policy)
        let name = policy.name
        _ = try? await Deadline.run(deadline) { [store] in
            try await store.client.query("""
                UPDATE redfire.rate_windows SET count = count - 1
                WHERE policy = \(name) AND key = \(key) AND count > 0
                  AND window_start = (extract(epoch FROM clock_timestamp()) * 1000)::bigint / \(period) * \(period)
                """, logger: store.logger)
        }
    }
}
