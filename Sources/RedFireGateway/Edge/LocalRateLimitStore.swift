import Foundation
import HTTPTypes
import Synchronization

/// GCRA (the generic cell rate algorithm; a token bucket in one number per key): each key holds a
/// theoretical arrival time (TAT). A request at `now` passes when `TAT - τ <= now`, and moves the TAT
/// to `max(TAT, now) + T`. Check and update happen under the key's shard lock, so N concurrent
/// requests never let more than the limit through; a refused request leaves the TAT untouched.
///
/// Memory: a key whose TAT is in the past is indistinguishable from a new key (it has its whole burst
/// again), so such keys are dropped without handing anyone an allowance sooner than the limit allows.
/// The keys still held are those seen within their last burst window: bounded by the request rate.
package final class LocalRateLimitStore: RateLimitStore {
    private final class Shard: Sendable {
        let entries = Mutex<[String: Int64]>([:])
        /// Sweep expired keys when the shard has grown past this since the last sweep.
        let sweepAt = Atomic<Int>(1024)
    }
    private let shards: [Shard]

    package init(shards: Int = 64) {
        self.shards = (0..<shards).map { _ in Shard() }
    }

    private func shard(_ key: String) -> Shard {
        shards[Int(UInt(bitPattern: key.hashValue) % UInt(shards.count))]
    }

    package func acquire(_ key: String, policy: RateLimitPolicy, now: Int64) -> RateDecision {
        let shard = shard(key)
        let storageKey = policy.name + "\u{0}" + key
        let interval = policy.interval, tolerance = policy.tolerance
        return shard.entries.withLock { entries in
            let tat = max(entries[storageKey] ?? now, now)
            let allowAt = tat - tolerance
            if allowAt > now {
                let wait = allowAt - now
                return RateDecision(allowed: false, remaining: 0, resetSeconds: Self.seconds(tat - now),
                                    retryAfterSeconds: max(1, Self.seconds(wait)))
            }
            let next = tat + interval
            entries[storageKey] = next
            if entries.count >= shard.sweepAt.load(ordering: .relaxed) {
                entries = entries.filter { $0.value > now }
                shard.sweepAt.store(max(1024, entries.count * 2), ordering: .relaxed)
            }
            let remaining = Int((tolerance - (next - now - interval)) / interval)
            return RateDecision(allowed: true, remaining: max(0, min(policy.burst - 1, remaining)), resetSeconds: Self.seconds(next - now),
                                retryAfterSeconds: 0)
        }
    }

    package func refund(_ key: String, policy: RateLimitPolicy) {
        let storageKey = policy.name + "\u{0}" + key
        shard(key).entries.withLock { entries in
            if let tat = entries[storageKey] { entries[storageKey] = tat - policy.interval }
        }
    }

    /// Keys currently held (for tests and telemetry).
    package var keyCount: Int { shards.reduce(0) { $0 + $1.entries.withLock { $0.count } } }

    static func seconds(_ nanos: Int64) -> Int { Int((max(0, nanos) + 999_999_999) / 1_000_000_000) }
}
