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

/// Where the limiter keeps its per-key state. The in-process store below is the default; a shared
/// store (Redis) for several gateways must give the same answers: one atomic decision per request,
/// refused requests not charged.
package protocol RateLimitStore: Sendable {
    /// Decides for `key` under `policy` at monotonic time `now` (ns) and, when allowed, charges it.
    func acquire(_ key: String, policy: RateLimitPolicy, now: Int64) -> RateDecision
    /// Undoes one charge (when another policy refused the same request).
    func refund(_ key: String, policy: RateLimitPolicy)
}
