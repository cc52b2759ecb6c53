import Atomics
import Synchronization

/// Health as seen by active checks.
public enum HealthStatus: String, Sendable, Codable {
    /// Not checked yet. Eligible for traffic: a new instance serves at once, and one failing first
    /// check takes it out (see `InstanceRuntime.recordCheck`).
    case unknown
    case healthy
    case unhealthy
}

/// What an operator or a client sees of an instance, derived from health, ejection and drain.
public enum InstanceState: String, Sendable, Codable {
    case unknown
    case healthy
    case unhealthy
    /// Taken out by passive ejection until a time.
    case ejected
    /// Gets no new requests; in-flight requests still run.
    case draining
    /// Draining with nothing left in flight.
    case drained
}

/// The result of one active health check, kept for the admin API and the console.
public struct HealthCheckResult: Sendable, Equatable {
    public var passed: Bool
    public var reason: String
    public var at: ContinuousClock.Instant
}

/// The mutable facts about one instance that survive snapshot swaps and config reloads: in-flight
/// count, health, drain and ejection. Counters are atomics (touched per request); the rest sits
/// behind a short mutex, touched only by health checks, ejections and operator actions.
package final class InstanceRuntime: Sendable {
    package let id: String
    package let serviceName: String

    // The atomics are this type's own: other files go through the methods below, which say what
    // happens (a request dispatched, a drain set, the instance removed), never raw loads and stores.
    /// Requests dispatched to this instance whose response has not finished yet (`dispatch()`).
    private let inFlightCounter = ManagedAtomic<Int>(0)
    /// Requests ever dispatched (used by tests and the console).
    private let dispatchedCounter = ManagedAtomic<Int>(0)
    private let consecutiveFailures = ManagedAtomic<Int>(0)
    private let drainFlag = ManagedAtomic<Bool>(false)
    /// Set once when the instance leaves the registry; its health-check loop then stops.
    private let removedFlag = ManagedAtomic<Bool>(false)
    private let checkerStarted = ManagedAtomic<Bool>(false)
    /// Active health checks run, by result.
    private let checksPassed = ManagedAtomic<Int>(0)
    private let checksFailed = ManagedAtomic<Int>(0)

    private struct Mutable {
        var health: HealthStatus = .unknown
        var consecutivePasses = 0
        var consecutiveCheckFailures = 0
        var recentChecks: [HealthCheckResult] = []
        var ejectedUntil: ContinuousClock.Instant?
        var ejectionCount = 0
        var lastEjectionAt: ContinuousClock.Instant?
        var leaseExpiresAt: ContinuousClock.Instant?
        var leaseTTL: Duration?
        /// `drain` with a deadline: from then on the instance counts as drained even with requests in flight.
        var drainDeadline: ContinuousClock.Instant?
        var drainDeadlineReported = false
    }
    private let mutable = Mutex(Mutable())

    /// This instance's telemetry.
    package let metrics: MetricSeries
    /// Its open WebSockets and event streams: a drain deadline ends them.
    let streams = OpenStreams()

    init(id: String, serviceName: String, initialHealth: HealthStatus = .unknown, metrics: MetricSeries? = nil) {
        self.metrics = metrics ?? MetricSeries(name: id)
        self.id = id
        self.serviceName = serviceName
        self.mutable.withLock { $0.health = initialHealth }
    }

    /// One request sent to this instance: counted in flight until the lease is released, which happens
    /// exactly once however the request ends (the lease cannot be copied, and releases when dropped).
    func dispatch() -> InFlightLease {
        inFlightCounter.wrappingIncrement(ordering: .relaxed)
        dispatchedCounter.wrappingIncrement(ordering: .relaxed)
        return InFlightLease(runtime: self)
    }

    /// Ends one request's in-flight count; only `InFlightLease` calls it.
    fileprivate func released() {
        inFlightCounter.wrappingDecrement(ordering: .relaxed)
    }

    /// Starts or ends a drain; returns whether it changed.
    func setDraining(_ draining: Bool) -> Bool {
        drainFlag.exchange(draining, ordering: .acquiringAndReleasing) != draining
    }

    /// The instance has left the registry: it takes no requests and its health-check loop stops.
    func markRemoved() {
        removedFlag.store(true, ordering: .relaxed)
    }

    var isRemoved: Bool { removedFlag.load(ordering: .relaxed) }

    /// True exactly once: for the caller that starts this instance's health-check loop.
    func claimHealthChecker() -> Bool {
        !checkerStarted.exchange(true, ordering: .relaxed)
    }

    /// Active health checks run so far.
    var checkCounts: (passed: Int, failed: Int) {
        (checksPassed.load(ordering: .relaxed), checksFailed.load(ordering: .relaxed))
    }

    /// Failed requests in a row (passive health), as counted now.
    var failuresInARow: Int { consecutiveFailures.load(ordering: .relaxed) }

    package var inFlight: Int { inFlightCounter.load(ordering: .relaxed) }
    package var dispatched: Int { dispatchedCounter.load(ordering: .relaxed) }
    package var isDraining: Bool { drainFlag.load(ordering: .acquiring) }
    package var health: HealthStatus { mutable.withLock { $0.health } }
    package var recentChecks: [HealthCheckResult] { mutable.withLock { $0.recentChecks } }
    package var ejectedUntil: ContinuousClock.Instant? { mutable.withLock { $0.ejectedUntil } }
    package var leaseExpiresAt: ContinuousClock.Instant? { mutable.withLock { $0.leaseExpiresAt } }
    package var drainDeadline: ContinuousClock.Instant? { mutable.withLock { $0.drainDeadline } }

    /// Sets (or with nil clears) the time after which a draining instance counts as drained.
    func setDrainDeadline(_ deadline: ContinuousClock.Instant?) {
        mutable.withLock {
            $0.drainDeadline = deadline
            $0.drainDeadlineReported = false
        }
    }

    /// Once per drain: the in-flight count when the drain deadline passed with requests still running.
    func passedDrainDeadline(now: ContinuousClock.Instant) -> Int? {
        guard isDraining else { return nil }
        let inFlight = self.inFlight
        return mutable.withLock { m in
            guard let deadline = m.drainDeadline, now >= deadline, !m.drainDeadlineReported else { return nil }
            m.drainDeadlineReported = true
            return inFlight > 0 ? inFlight : nil
        }
    }

    /// The state to show, derived from health, ejection and drain (drain wins: it is an operator decision).
    package var state: InstanceState {
        if isDraining {
            if inFlight == 0 { return .drained }
            // Past its deadline the drain is over: the requests still running are left to finish.
            if let deadline = drainDeadline, ContinuousClock.now >= deadline { return .drained }
            return .draining
        }
        return mutable.withLock { m in
            if m.ejectedUntil != nil { return .ejected }
            switch m.health {
            case .unknown: return .unknown
            case .healthy: return .healthy
            case .unhealthy: return .unhealthy
            }
        }
    }

    /// Whether the balancer may choose this instance for a new request.
    var isEligible: Bool {
        if isDraining || removedFlag.load(ordering: .relaxed) { return false }
        return mutable.withLock { $0.health != .unhealthy && $0.ejectedUntil == nil }
    }

    /// Whether the instance could serve if the service is in panic mode (anything not drained or removed).
    var isPanicCandidate: Bool {
        !isDraining && !removedFlag.load(ordering: .relaxed)
    }

    // MARK: Active health checks

    /// Records one check; returns true when the instance's eligibility changed.
    func recordCheck(passed: Bool, reason: String, config: HealthCheckConfig, now: ContinuousClock.Instant) -> HealthTransition? {
        (passed ? checksPassed : checksFailed).wrappingIncrement(ordering: .relaxed)
        return mutable.withLock { m in
            m.recentChecks.append(HealthCheckResult(passed: passed, reason: reason, at: now))
            if m.recentChecks.count > 10 { m.recentChecks.removeFirst(m.recentChecks.count - 10) }
            let before = m.health
            var endedEjection = false
            if passed {
                m.consecutivePasses += 1
                m.consecutiveCheckFailures = 0
                if m.ejectedUntil != nil {
                    m.ejectedUntil = nil
                    endedEjection = true
                }
                // A never-verified instance becomes healthy on its first pass.
                if m.health == .unknown || (m.health == .unhealthy && m.consecutivePasses >= config.healthyThreshold) {
                    m.health = .healthy
                }
            } else {
                m.consecutiveCheckFailures += 1
                m.consecutivePasses = 0
                // A never-verified instance leaves rotation on its first failure.
                if m.health == .unknown || (m.health == .healthy && m.consecutiveCheckFailures >= config.unhealthyThreshold) {
                    m.health = .unhealthy
                }
            }
            if before != m.health || endedEjection {
                return HealthTransition(from: before, to: m.health, endedEjection: endedEjection, reason: reason)
            }
            return nil
        }
    }

    // MARK: Passive ejection

    /// Records the outcome of a proxied request. Returns the ejection length when this outcome ejects.
    func recordOutcome(failed: Bool, config: PassiveEjectionConfig, now: ContinuousClock.Instant) -> Duration? {
        guard failed else {
            if consecutiveFailures.load(ordering: .relaxed) != 0 { consecutiveFailures.store(0, ordering: .relaxed) }
            return nil
        }
        guard config.enabled else { return nil }
        let failures = consecutiveFailures.wrappingIncrementThenLoad(ordering: .relaxed)
        guard failures >= config.consecutiveFailures else { return nil }
        return mutable.withLock { m in
            guard m.ejectedUntil == nil else { return nil }
            // Repeated ejections double the time; a quiet spell of max_time forgets the history.
            if let last = m.lastEjectionAt, now - last > config.maxTime + config.maxTime { m.ejectionCount = 0 }
            let multiplier = 1 << min(m.ejectionCount, 20)
            let length = min(config.baseTime * multiplier, config.maxTime)
            m.ejectionCount += 1
            m.lastEjectionAt = now
            m.ejectedUntil = now + length
            consecutiveFailures.store(0, ordering: .relaxed)
            return length
        }
    }

    /// Ends an ejection whose time has passed; returns true if one ended.
    func expireEjection(now: ContinuousClock.Instant) -> Bool {
        mutable.withLock { m in
            guard let until = m.ejectedUntil, until <= now else { return false }
            m.ejectedUntil = nil
            return true
        }
    }

    // MARK: Leases

    func renewLease(ttl: Duration, now: ContinuousClock.Instant) {
        mutable.withLock {
            $0.leaseTTL = ttl
            $0.leaseExpiresAt = now + ttl
        }
    }

    /// In a cluster the store keeps the lease (`ClusterLeases`): this node only shows when it runs out
    /// (console, admin API) and never expires it on its own — `leaseExpired` stays false.
    package func showClusterLease(expiresAt: ContinuousClock.Instant?) {
        mutable.withLock {
            $0.leaseTTL = nil
            $0.leaseExpiresAt = expiresAt
        }
    }

    func leaseExpired(now: ContinuousClock.Instant) -> Bool {
        mutable.withLock { m in
            guard m.leaseTTL != nil, let expiry = m.leaseExpiresAt else { return false }
            return expiry <= now
        }
    }
}

/// A change of an instance's health worth an event and a snapshot rebuild.
struct HealthTransition: Sendable {
    var from: HealthStatus
    var to: HealthStatus
    var endedEjection: Bool
    var reason: String
}

/// One unit of an instance's in-flight count, from `InstanceRuntime.dispatch()` until released: by
/// `release()`, by being dropped on any path, or — for a response that streams — by the `InFlightHold`
/// its body keeps. Not copyable, so it cannot be released twice or forgotten.
struct InFlightLease: ~Copyable {
    private var runtime: InstanceRuntime?

    fileprivate init(runtime: InstanceRuntime) {
        self.runtime = runtime
    }

    /// Ends the count now.
    consuming func release() {}

    /// Hands the count to an object whose lifetime it then follows (a streaming body's closure).
    consuming func held() -> InFlightHold {
        let hold = InFlightHold(runtime: runtime!)
        runtime = nil
        return hold
    }

    deinit {
        runtime?.released()
    }
}

/// An in-flight count kept by whatever holds this object; released when it is deallocated.
final class InFlightHold: Sendable {
    private let runtime: InstanceRuntime

    fileprivate init(runtime: InstanceRuntime) {
        self.runtime = runtime
    }

    deinit {
        runtime.released()
    }
}
