import Foundation
import Synchronization

/// Slows down password guessing: after `maxFailures` failed logins for one username (or four times
/// as many from one client address), further attempts for that key are refused for a lockout that
/// doubles with every further failure, from `baseLockout` up to `maxLockout`. The check runs before
/// any password work and treats unknown usernames like known ones, so it reveals nothing about which
/// users exist. A success clears the username's record; a key with no failure for `maxLockout` is
/// forgotten. Memory is bounded: past `capacity` keys, the stalest records are dropped.
final class LoginThrottle: Sendable {
    struct Record {
        var failures = 0
        var lastFailure: Date
        var lockedUntil: Date?
    }

    let maxFailures: Int
    let baseLockout: TimeInterval
    let maxLockout: TimeInterval
    let capacity: Int
    private let records = Mutex<[String: Record]>([:])
    /// Whether any failure was ever recorded: until then a check takes no lock (it runs on the
    /// request path for every credential presented).
    private let anyFailure = Atomic<Bool>(false)

    init(maxFailures: Int, baseLockout: Duration, maxLockout: Duration, capacity: Int = 100_000) {
        self.maxFailures = maxFailures
        self.baseLockout = Double(baseLockout.components.seconds) + Double(baseLockout.components.attoseconds) / 1e18
        self.maxLockout = Double(maxLockout.components.seconds) + Double(maxLockout.components.attoseconds) / 1e18
        self.capacity = capacity
    }

    static func userKey(_ username: String) -> String { "user:" + username.lowercased() }
    static func addressKey(_ address: String) -> String { "ip:" + address }

    /// Seconds until `keys` may try again, or nil when none is locked.
    func retryAfter(_ keys: [String], now: Date = Date()) -> TimeInterval? {
        guard anyFailure.load(ordering: .relaxed) else { return nil }
        return records.withLock { records in
            keys.compactMap { records[$0]?.lockedUntil }.filter { $0 > now }.max().map { $0.timeIntervalSince(now) }
        }
    }

    func recordFailure(user: String, address: String?, now: Date = Date()) {
        anyFailure.store(true, ordering: .relaxed)
        records.withLock { records in
            record(&records, Self.userKey(user), threshold: maxFailures, now: now)
            if let address { record(&records, Self.addressKey(address), threshold: maxFailures * 4, now: now) }
            if records.count > capacity {
                let stale = records.sorted { $0.value.lastFailure < $1.value.lastFailure }.prefix(records.count - capacity).map(\.key)
                for key in stale { records[key] = nil }
            }
        }
    }

    /// A failure counted against one client address only (invalid tokens and API keys), locked out at
    /// `maxFailures`.
    func recordFailure(address: String, now: Date = Date()) {
        anyFailure.store(true, ordering: .relaxed)
        records.withLock { records in
            record(&records, Self.addressKey(address), threshold: maxFailures, now: now)
            if records.count > capacity {
                let stale = records.sorted { $0.value.lastFailure < $1.value.lastFailure }.prefix(records.count - capacity).map(\.key)
                for key in stale { records[key] = nil }
            }
        }
    }

    func recordSuccess(user: String) {
        _ = records.withLock { $0.removeValue(forKey: Self.userKey(user)) }
    }

    private func record(_ records: inout [String: Record], _ key: String, threshold: Int, now: Date) {
        var entry = records[key] ?? Record(lastFailure: now)
        if now.timeIntervalSince(entry.lastFailure) > maxLockout { entry = Record(lastFailure: now) }
        entry.failures += 1
        entry.lastFailure = now
        if entry.failures >= threshold {
            let doublings = min(entry.failures - threshold, 30)
            entry.lockedUntil = now.addingTimeInterval(min(maxLockout, baseLockout * pow(2, Double(doublings))))
        }
        records[key] = entry
    }
}
