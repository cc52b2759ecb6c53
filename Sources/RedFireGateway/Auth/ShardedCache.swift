import Synchronization

/// A bounded map split over 16 independently locked shards, so concurrent requests rarely meet on a
/// lock. A shard that reaches its capacity is cleared (entries are cheap to recompute): memory stays
/// bounded whatever the number of distinct keys.
final class ShardedCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    /// A key with its hash, computed once per lookup: it picks the shard, and the shard's dictionary
    /// hashes only that number (a bearer token is ~500 bytes to hash). Still the process-seeded hash of
    /// the whole key, so keys cannot be chosen to collide.
    private struct Hashed: Hashable, Sendable {
        let key: Key
        let hash: Int

        init(_ key: Key) {
            self.key = key
            self.hash = key.hashValue
        }

        func hash(into hasher: inout Hasher) { hasher.combine(hash) }
        static func == (lhs: Self, rhs: Self) -> Bool { lhs.hash == rhs.hash && lhs.key == rhs.key }
    }

    private final class Shard: Sendable {
        let entries = Mutex<[Hashed: Value]>([:])
    }
    private let shards: [Shard]
    private let shardCapacity: Int

    init(shards: Int = 16, capacityPerShard: Int = 4096) {
        self.shards = (0..<shards).map { _ in Shard() }
        self.shardCapacity = capacityPerShard
    }

    private func shard(_ key: Hashed) -> Shard {
        shards[Int(UInt(bitPattern: key.hash) % UInt(shards.count))]
    }

    subscript(key: Key) -> Value? {
        let hashed = Hashed(key)
        return shard(hashed).entries.withLock { $0[hashed] }
    }

    func set(_ value: Value, for key: Key) {
        let hashed = Hashed(key)
        shard(hashed).entries.withLock { entries in
            if entries.count >= shardCapacity && entries[hashed] == nil { entries.removeAll(keepingCapacity: true) }
            entries[hashed] = value
        }
    }
}
