import Foundation
import HTTPTypes
import Synchronization

/// One policy's verdict for one request.
package struct RateDecision: Sendable, Equatable {
    package var allowed: Bool
    /// Requests that would still pass right now.
    package var remaining: Int
    /// Seconds until the full burst is available again.
    package var resetSeconds: Int
    /// For a refusal: seconds until one request passes.
    package var retryAfterSeconds: Int
}

/// Where the limiter keeps its per-key state: in this process (`LocalRateLimitStore`). The requirement
/// is synchronous on purpose — it is asked on the request path, under no lock but its own, and must not
/// wait on I/O. A store shared by several gateways cannot answer synchronously; it needs a different
/// shape (an async decision, or local allowances topped up from a shared store in the background) and
/// must keep the same semantics: one atomic decision per request, refused requests not charged.
package protocol RateLimitStore: Sendable {
    /// Decides for `key` under `policy` at monotonic time `now` (ns) and, when allowed, charges it.
    func acquire(_ key: String, policy: RateLimitPolicy, now: Int64) -> RateDecision
    /// Undoes one charge (when another policy refused the same request).
    func refund(_ key: String, policy: RateLimitPolicy)
}

/// The cluster's side of rate limiting (`ClusterRateLimits`), for policies whose `scope` is `split` or
/// `exact`. Absent on a single gateway: every scope is then this process's own.
package protocol SharedRateLimits: Sendable {
    /// The nodes alive, by their heartbeats (this one included; 1 while unknown). `split` divides by it.
    var nodeCount: Int { get }
    /// Whether the cluster store answers (an `exact` decision needs it).
    var isAvailable: Bool { get }
    /// One atomic decision in the shared store: allowed while the key's count in the policy's current
    /// window (by the store's clock) is below the limit; a refusal is not counted. Throws when the
    /// store cannot decide in time.
    func acquireExact(_ key: String, policy: RateLimitPolicy) async throws -> RateDecision
    /// Undoes one allowed exact decision (when another policy refused the same request).
    func refundExact(_ key: String, policy: RateLimitPolicy) async
    /// A `sync` decision: local, from this node's allowance (recomputed from the store every sync).
    func acquireSync(_ key: String, policy: RateLimitPolicy) -> RateDecision
    func refundSync(_ key: String, policy: RateLimitPolicy)
}
