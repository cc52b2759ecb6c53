import Foundation
import HTTPTypes
import Synchronization

/// Applies the configured policies to a request: the route's policy, and the caller's role policy or
/// the default; the tightest decides. Keys: the API key, else the user, else the client address.
///
/// In a cluster, a policy's `scope` says whose allowance it is: `node` (this process's), `split` (this
/// node's share of the limit, from the nodes alive) or `exact` (one decision in the cluster store).
final class RateLimiter: Sendable {
    let store: any RateLimitStore
    /// The cluster's side (nil on a single gateway, where every scope is this process's own).
    let shared: (any SharedRateLimits)?
    /// Rejections per key, for the dashboard's top limited keys; bounded.
    private let rejections = Mutex<[String: Int]>([:])

    init(store: any RateLimitStore = LocalRateLimitStore(), shared: (any SharedRateLimits)? = nil) {
        self.store = store
        self.shared = shared
    }

    enum Outcome {
        case allowed(HTTPFields)
        case limited(HTTPFields, retryAfter: Int)
        /// An `exact` policy could not be decided (the cluster store is away): 503 with Retry-After.
        case unavailable(retryAfter: Int)

        /// As the access log says it (and a trace's `gateway.rate_limit` event).
        var outcome: String {
            switch self {
            case .allowed: "allowed"
            case .limited: "limited"
            case .unavailable: "unavailable"
            }
        }
    }

    /// How a policy is decided here and now.
    private enum Decider {
        case local(RateLimitPolicy)
        case sync
        case exact
        case unavailable
    }

    private func decider(_ policy: RateLimitPolicy) -> Decider {
        guard let shared else { return .local(policy) }
        switch policy.scope {
        case .node: return .local(policy)
        case .split: return .local(policy.split(among: shared.nodeCount))
        // Without the store its counts go stale: decide as split until it is back.
        case .sync: return shared.isAvailable ? .sync : .local(policy.split(among: shared.nodeCount))
        case .exact:
            if shared.isAvailable { return .exact }
            return policy.whenStoreUnavailable == .split ? .local(policy.split(among: shared.nodeCount)) : .unavailable
        }
    }

    /// One policy's decision — in this process (GCRA), or in the cluster store — with the policy as it
    /// applied (a `split` share; an `exact` window of `count`), which the answer's fields describe.
    nonisolated(nonsending) private func acquire(_ key: String, _ policy: RateLimitPolicy, now: Int64) async -> (policy: RateLimitPolicy, decision: RateDecision)? {
        switch decider(policy) {
        case .local(let effective):
            return (effective, store.acquire(key, policy: effective, now: now))
        case .sync:
            guard let decision = shared?.acquireSync(key, policy: policy) else { return nil }
            var window = policy
            window.burst = policy.count
            return (window, decision)
        case .exact:
            guard let decision = try? await shared?.acquireExact(key, policy: policy) else { return nil }
            var window = policy
            window.burst = policy.count
            return (window, decision)
        case .unavailable:
            return nil
        }
    }

    nonisolated(nonsending) private func refund(_ key: String, _ policy: RateLimitPolicy) async {
        switch decider(policy) {
        case .local(let effective): store.refund(key, policy: effective)
        case .sync: shared?.refundSync(key, policy: policy)
        case .exact: await shared?.refundExact(key, policy: policy)
        case .unavailable: break
        }
    }

    /// nil when no policy applies. `config` is read from the current state, so a reload changes limits
    /// without resetting anyone's allowance.
    ///
    /// - Parameters:
    ///   - key: the caller's limiter key (`RateLimiter.key(identity:clientIP:)`).
    ///   - roles: the caller's roles, whose policies replace the default.
    ///   - route: the route's name and `rate_limit`, if it has one.
    nonisolated(nonsending) func check(key: String, roles: [String]?, route: (name: String, policy: RateLimitPolicy?), config: RateLimitConfig,
               now: Int64 = Int64(DispatchTime.now().uptimeNanoseconds)) async -> Outcome? {
        // The client's policy: the most generous of its roles' policies, else the default.
        var clientPolicy: RateLimitPolicy?
        if let roles {
            for role in roles {
                guard let policy = config.rolePolicies[role] else { continue }
                if let best = clientPolicy, Double(best.count) / best.period.secondsDouble >= Double(policy.count) / policy.period.secondsDouble { continue }
                clientPolicy = policy
            }
        }
        if clientPolicy == nil { clientPolicy = config.defaultPolicy }
        let routePolicy = route.policy
        guard routePolicy != nil || clientPolicy != nil else { return nil }
        // Both must allow (the tightest decides); a refusal by the second refunds the first.
        var tightest: (policy: RateLimitPolicy, decision: RateDecision)?
        if let configured = routePolicy {
            guard let (policy, decision) = await acquire(route.name + "\u{0}" + key, configured, now: now) else { return .unavailable(retryAfter: 1) }
            guard decision.allowed else { return refuse(key, policy, decision, config) }
            tightest = (policy, decision)
        }
        if let configured = clientPolicy {
            guard let (policy, decision) = await acquire(key, configured, now: now) else {
                if let routePolicy { await refund(route.name + "\u{0}" + key, routePolicy) }
                return .unavailable(retryAfter: 1)
            }
            guard decision.allowed else {
                if let routePolicy { await refund(route.name + "\u{0}" + key, routePolicy) }
                return refuse(key, policy, decision, config)
            }
            if tightest == nil || decision.remaining < tightest!.decision.remaining { tightest = (policy, decision) }
        }
        return tightest.map { .allowed(headers($0.policy, $0.decision, style: config.headers)) }
    }

    private func refuse(_ key: String, _ policy: RateLimitPolicy, _ decision: RateDecision, _ config: RateLimitConfig) -> Outcome {
        rejections.withLock { counts in
            if counts.count >= 10_000 && counts[key] == nil { counts = counts.filter { $0.value > 1 } }
            counts[key, default: 0] += 1
        }
        return .limited(headers(policy, decision, style: config.headers), retryAfter: decision.retryAfterSeconds)
    }

    /// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers), and optionally the
    /// older `X-RateLimit-*` trio.
    func headers(_ policy: RateLimitPolicy, _ decision: RateDecision, style: RateLimitConfig.HeaderStyle) -> HTTPFields {
        var fields = HTTPFields()
        guard style != .none else { return fields }
        // Appended (each name once): setting by name would search the list first.
        fields.reserveCapacity(style == .ietfAndLegacy ? 5 : 2)
        let window = max(1, LocalRateLimitStore.seconds(policy.interval * Int64(policy.burst)))
        let reset = decision.allowed ? decision.resetSeconds : decision.retryAfterSeconds
        // The values that change with every response are not for HPACK's table (`HTTP2StreamGuard`).
        func volatile(_ name: HTTPField.Name, _ value: String) -> HTTPField {
            var field = HTTPField(name: name, value: value)
            field.indexingStrategy = .avoid
            return field
        }
        fields.append(HTTPField(name: .rateLimitPolicy, value: Self.item(policy.name, "q", policy.burst, "w", Int(window))))
        fields.append(volatile(.rateLimit, Self.item(policy.name, "r", decision.remaining, "t", Int(reset))))
        if style == .ietfAndLegacy {
            fields.append(HTTPField(name: .xRateLimitLimit, value: String(policy.burst)))
            fields.append(volatile(.xRateLimitRemaining, String(decision.remaining)))
            fields.append(volatile(.xRateLimitReset, String(reset)))
        }
        return fields
    }

    /// `"name";q=10;w=1`: a policy's name and two parameters (RFC 8941 item), made in one allocation (an
    /// interpolation of its five pieces grows its string piece by piece).
    static func item(_ name: String, _ first: StaticString, _ firstValue: Int, _ second: StaticString, _ secondValue: Int) -> String {
        let bound = name.utf8.count + 2 + first.utf8CodeUnitCount + second.utf8CodeUnitCount + 4 + 2 * ReservedText.decimalBound
        return String(reservedAtMost: bound) { text in
            text.write(byte: UInt8(ascii: "\""))
            text.write(name)
            text.write("\";")
            text.write(first)
            text.write(byte: UInt8(ascii: "="))
            text.writeDecimal(firstValue)
            text.write(byte: UInt8(ascii: ";"))
            text.write(second)
            text.write(byte: UInt8(ascii: "="))
            text.writeDecimal(secondValue)
        }
    }

    /// The most-limited keys, most rejections first.
    func topLimitedKeys(_ count: Int) -> [(key: String, rejections: Int)] {
        rejections.withLock { $0.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }.prefix(count).map { ($0.key, $0.value) } }
    }
}
