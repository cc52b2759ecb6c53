import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// `scope: sync` rate limits: decided on this node with no store access, and shared every
/// `sync_interval` (default 200 ms) in one statement for every key active in the current window.
///
/// A key's limit holds per fixed window of the policy's period (by this node's clock; keep the nodes'
/// clocks in sync). Between two syncs a node admits at most its allowance, which each sync recomputes from
/// what the store says: with R the part of the limit left in the window (every node's count, plus what
/// this node admitted since it last wrote), the allowance is ⌈f·R⌉ with f half of this node's share of
/// the key's traffic in the previous window (1/N without one), N the nodes alive — a share from a whole
/// window, not from the few writes of this one, which arrive staggered. A new window starts every node
/// at ⌈L/(2N)⌉. Taking half of a share, not all of it, is what keeps what other
/// nodes admitted since their last write (unseen here) from adding up past the limit: see
/// docs/configuration.md for the bound and the measurements.
package final class ClusterRateSync: Service, Sendable {
    let store: ClusterStore
    let membership: ClusterMembership?
    let interval: Duration

    struct Entry {
        var windowStart: Int64
        var periodMillis: Int64
        var limit: Int
        /// Admissions left until the next sync.
        var allowance: Int
        /// Admitted since the last write.
        var unpushed: Int
    }

    /// A key's entry per window: the previous window's stays until what it admitted is written.
    struct Slot: Hashable {
        var storageKey: String
        var windowStart: Int64
    }

    private final class Shard: Sendable {
        let entries = Mutex<[Slot: Entry]>([:])
    }
    private let shards: [Shard]

    package init(store: ClusterStore, membership: ClusterMembership?, interval: Duration = .milliseconds(200), shards: Int = 32) {
        self.store = store
        self.membership = membership
        self.interval = interval
        self.shards = (0..<shards).map { _ in Shard() }
    }

    private func shard(_ key: String) -> Shard {
        shards[Int(UInt(bitPattern: key.hashValue) % UInt(shards.count))]
    }

    static func nowMillis() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }

    var nodeCount: Int { membership?.aliveCount ?? 1 }

    static func initialAllowance(limit: Int, nodes: Int) -> Int {
        max(1, Int((Double(limit) / Double(2 * max(1, nodes))).rounded(.up)))
    }

    /// The next allowance from what the store said: half of this node's share of the key's traffic in
    /// the previous window (1/N when it had none), of what is left of the limit in this one.
    static func allowance(limit: Int, all: Int, share previous: Double?, unpushed: Int, nodes: Int) -> Int {
        let left = limit - all - unpushed
        guard left > 0 else { return 0 }
        let share = previous ?? 1 / Double(max(1, nodes))
        return max(1, Int((0.5 * share * Double(left)).rounded(.up)))
    }

    /// A local decision: admitted while this node's allowance lasts.
    package func acquire(_ key: String, policy: RateLimitPolicy, nowMillis: Int64 = ClusterRateSync.nowMillis()) -> RateDecision {
        let period = ClusterRateLimits.periodMillis(policy)
        let window = nowMillis - nowMillis % period
        let storageKey = policy.name + "\u{1F}" + ClusterRateLimits.storedKey(key)
        let nodes = nodeCount
        let left = max(1, Int((window + period - nowMillis + 999) / 1000))
        let slot = Slot(storageKey: storageKey, windowStart: window)
        return shard(storageKey).entries.withLock { entries in
            var entry = entries[slot] ?? Entry(windowStart: window, periodMillis: period, limit: policy.count,
                                               allowance: Self.initialAllowance(limit: policy.count, nodes: nodes), unpushed: 0)
            guard entry.allowance > 0 else {
                entries[slot] = entry
                // More may come with the next sync; at the latest the next window.
                let retry = max(1, min(left, Int((interval.components.seconds * 1000 + 999) / 1000)))
                return RateDecision(allowed: false, remaining: 0, resetSeconds: left, retryAfterSeconds: retry)
            }
            entry.allowance -= 1
            entry.unpushed += 1
            entries[slot] = entry
            return RateDecision(allowed: true, remaining: entry.allowance, resetSeconds: left, retryAfterSeconds: 0)
        }
    }

    /// Undoes one admission (when another policy refused the same request).
    package func refund(_ key: String, policy: RateLimitPolicy, nowMillis: Int64 = ClusterRateSync.nowMillis()) {
        let storageKey = policy.name + "\u{1F}" + ClusterRateLimits.storedKey(key)
        let period = ClusterRateLimits.periodMillis(policy)
        let slot = Slot(storageKey: storageKey, windowStart: nowMillis - nowMillis % period)
        shard(storageKey).entries.withLock { entries in
            guard var entry = entries[slot], entry.unpushed > 0 else { return }
            entry.unpushed -= 1
            entry.allowance += 1
            entries[slot] = entry
        }
    }

    package func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            guard !Task.isShuttingDownGracefully && !Task.isCancelled else { break }
            do { try await sync() } catch {
                store.logger.debug("rate-limit sync failed", metadata: ["error": .string(String(reflecting: error))])
            }
        }
    }

    /// Writes what this node admitted per key since the last sync and reads every node's counts back, in
    /// one statement; then sets each key's allowance until the next sync.
    func sync(nowMillis: Int64 = ClusterRateSync.nowMillis()) async throws {
        // Take the counts to write (entries of ended windows are dropped).
        var policies: [String] = [], keys: [String] = [], windows: [Int64] = [], deltas: [Int] = [], periods: [Int64] = []
        var slots: [Slot] = []
        for shard in shards {
            shard.entries.withLock { entries in
                for (slot, entry) in entries {
                    // A window that ended is written one last time (if anything is left), then forgotten.
                    if entry.windowStart + entry.periodMillis <= nowMillis && entry.unpushed == 0 {
                        entries[slot] = nil
                        continue
                    }
                    let parts = slot.storageKey.split(separator: "\u{1F}", maxSplits: 1, omittingEmptySubsequences: false)
                    policies.append(String(parts[0]))
                    keys.append(parts.count > 1 ? String(parts[1]) : "")
                    windows.append(entry.windowStart)
                    deltas.append(entry.unpushed)
                    periods.append(entry.periodMillis)
                    slots.append(slot)
                    entries[slot]?.unpushed = 0
                }
            }
        }
        guard !slots.isEmpty else { return }
        let node = store.nodeName
        let rows: [(all: Int, previousShare: Double?)]
        do {
            rows = try await Deadline.run(.seconds(2)) { [store, policies, keys, windows, deltas, periods] in
                try await store.client.withConnection { connection -> [(all: Int, previousShare: Double?)] in
                    let result = try await connection.query("""
                        WITH input AS (
                          SELECT * FROM unnest(\(policies)::text[], \(keys)::text[], \(windows)::bigint[], \(deltas)::int[])
                            WITH ORDINALITY AS i(policy, key, window_start, delta, n)),
                        up AS (
                          INSERT INTO redfire.rate_sync AS r (policy, key, window_start, node, count)
                          SELECT policy, key, window_start, \(node), delta FROM input
                          ON CONFLICT (policy, key, window_start, node) DO UPDATE SET count = r.count + excluded.count
                          RETURNING r.policy, r.key, r.window_start, r.count)
                        SELECT i.n, up.count + coalesce((SELECT sum(s.count) FROM redfire.rate_sync s
                            WHERE s.policy = i.policy AND s.key = i.key AND s.window_start = i.window_start AND s.node <> \(node)), 0)::bigint,
                          coalesce((SELECT sum(p.count) FROM redfire.rate_sync p
                            WHERE p.policy = i.policy AND p.key = i.key AND p.window_start = i.window_start - \(periods)[i.n]), 0)::bigint,
                          coalesce((SELECT p.count FROM redfire.rate_sync p
                            WHERE p.policy = i.policy AND p.key = i.key AND p.window_start = i.window_start - \(periods)[i.n] AND p.node = \(node)), 0)::bigint
                        FROM input i JOIN up ON up.policy = i.policy AND up.key = i.key AND up.window_start = i.window_start
                        ORDER BY i.n
                        """, logger: store.logger)
                    var rows: [(all: Int, previousShare: Double?)] = []
                    for try await (_, all, previousAll, previousMine) in result.decode((Int64, Int64, Int64, Int64).self) {
                        rows.append((Int(all), previousAll > 0 ? Double(previousMine) / Double(previousAll) : nil))
                    }
                    return rows
                }
            }
        } catch {
            // Not written: the counts stay to be written next time.
            for (index, slot) in slots.enumerated() where deltas[index] > 0 {
                shard(slot.storageKey).entries.withLock { $0[slot]?.unpushed += deltas[index] }
            }
            throw error
        }
        guard rows.count == slots.count else { return }
        let nodes = nodeCount
        for (index, slot) in slots.enumerated() {
            let (all, previousShare) = rows[index]
            shard(slot.storageKey).entries.withLock { entries in
                guard var entry = entries[slot] else { return }
                if entry.windowStart + entry.periodMillis <= nowMillis && entry.unpushed == 0 {
                    entries[slot] = nil  // its window ended and all of it is written
                    return
                }
                entry.allowance = Self.allowance(limit: entry.limit, all: all, share: previousShare, unpushed: entry.unpushed, nodes: nodes)
                entries[slot] = entry
            }
        }
    }
}
